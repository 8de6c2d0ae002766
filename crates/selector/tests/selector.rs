//! Table tests for the selector language, built from Calico's documented behaviour,
//! plus property tests for the canonical form.

use std::collections::HashMap;

use calico_selector::parse;
use proptest::prelude::*;

/// A selector, the labels it is evaluated against, and the expected verdict.
type MatchCase<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);

fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn evaluation_follows_calico_absent_key_rules() {
    let cases: &[MatchCase] = &[
        (r#"a == "b""#, &[("a", "b")], true),
        (r#"a == "b""#, &[("a", "c")], false),
        (r#"a == "b""#, &[], false),
        (r#"a != "b""#, &[], true),
        (r#"a != "b""#, &[("a", "b")], false),
        (r#"a != "b""#, &[("a", "c")], true),
        ("has(a)", &[("a", "")], true),
        ("has(a)", &[("b", "")], false),
        ("!has(a)", &[], true),
        ("!has(a)", &[("a", "x")], false),
        (r#"a in {"b", "c"}"#, &[("a", "c")], true),
        (r#"a in {"b", "c"}"#, &[("a", "d")], false),
        (r#"a in {"b", "c"}"#, &[], false),
        (r#"a not in {"b"}"#, &[], true),
        (r#"a not in {"b"}"#, &[("a", "b")], false),
        (r#"a not in {"b"}"#, &[("a", "c")], true),
        ("a in {}", &[("a", "")], false),
        ("a not in {}", &[("a", "")], true),
        (r#"a contains "bc""#, &[("a", "abcd")], true),
        (r#"a contains "bc""#, &[("a", "ab")], false),
        (r#"a contains """#, &[("a", "x")], true),
        (r#"a contains """#, &[], false),
        (r#"a starts with "ab""#, &[("a", "abc")], true),
        (r#"a starts with "ab""#, &[("a", "cab")], false),
        (r#"a ends with "bc""#, &[("a", "abc")], true),
        (r#"a ends with "bc""#, &[], false),
        ("all()", &[], true),
        ("", &[("x", "y")], true),
        (" \t ", &[], true),
        ("global()", &[], true),
        (r#"a == "B""#, &[("a", "b")], false),
        // Precedence: `||` is weakest, then `&&`, then `!`.
        (r#"a == "1" || b == "1" && c == "1""#, &[("a", "1")], true),
        (r#"a == "1" || b == "1" && c == "1""#, &[("b", "1")], false),
        (
            r#"(a == "1" || b == "1") && c == "1""#,
            &[("a", "1")],
            false,
        ),
        (r#"!a == "b""#, &[("a", "b")], false),
        (r#"!a == "b""#, &[], true),
        (r#"!a in {"b"}"#, &[], true),
        ("!!has(a)", &[("a", "x")], true),
        ("!(!has(a))", &[("a", "x")], true),
        (r#"!has(a) && b == "c""#, &[("b", "c")], true),
        (r#"x/y.z-w_1 == "v""#, &[("x/y.z-w_1", "v")], true),
        (r#"a == 'say "hi"'"#, &[("a", r#"say "hi""#)], true),
        ("contains contains 'x'", &[("contains", "axb")], true),
        (r#"in in {"in"}"#, &[("in", "in")], true),
        (r#"has == "x""#, &[("has", "x")], true),
        (r#"a=="b"&&c!="d""#, &[("a", "b")], true),
        (r#"a in {"x",}"#, &[("a", "x")], true),
    ];
    for (expr, pairs, want) in cases {
        let sel = parse(expr).unwrap_or_else(|e| panic!("{expr:?} should parse: {e}"));
        assert_eq!(
            sel.matches(&labels(pairs)),
            *want,
            "{expr:?} against {pairs:?}"
        );
    }
}

#[test]
fn rejects_what_calico_rejects() {
    let long_key = "k".repeat(513);
    let long_sel = format!("{long_key} == 'x'");
    let bad: &[&str] = &[
        r#"a = "b""#,
        r#"a === "b""#,
        "a == b",
        r#""b" == a"#,
        r#"a in "x""#,
        "a in {,}",
        r#"a in {"x",,"y"}"#,
        r#"a in {"x" "y"}"#,
        "has (a)",
        "has(a",
        "has()",
        "all(x)",
        "a == \"b\"\n",
        "\na == \"b\"",
        r#"a == "b"#,
        "a & b",
        "a | b",
        "a IN {}",
        "a inf {}",
        r#"a Contains "x""#,
        r#"(a == "b""#,
        r#"a == "b")"#,
        r#"a == "b" b == "c""#,
        r#"&& a == "b""#,
        "!",
        "()",
        "a",
        r#"é == "x""#,
        r#"a == "x" ||"#,
        r#"a == "x" &&"#,
        &long_sel,
    ];
    for expr in bad {
        assert!(parse(expr).is_err(), "{expr:?} should be rejected");
    }
    let max_key = format!("{} == 'x'", "k".repeat(512));
    assert!(parse(&max_key).is_ok(), "a 512-byte key is allowed");
}

#[test]
fn errors_name_the_column_and_what_was_expected() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "a == ",
            6,
            "expected a quoted string after '==', found end of selector",
        ),
        ("role == 'frontend", 9, "unterminated string literal"),
        ("a = 'b'", 3, "expected '=='"),
        (
            "a == 'b' c",
            10,
            "expected '&&', '||' or end of selector, found label 'c'",
        ),
        (
            "a in {'x' 'y'}",
            11,
            "expected ',' or '}', found string \"y\"",
        ),
        ("has (a)", 5, "expected an operator"),
        ("(a == 'b'", 10, "expected ')', found end of selector"),
        ("a == 'b'\n", 9, "expected a label key"),
    ];
    for (expr, column, message) in cases {
        let err = parse(expr).expect_err(expr);
        assert_eq!(err.column(), *column, "{expr:?}: {err}");
        assert!(
            err.to_string().starts_with(message),
            "{expr:?}: got {err:?}, want a message starting {message:?}"
        );
        assert!(err.to_string().ends_with(&format!("at column {column}")));
    }
}

#[test]
fn canonical_form_matches_calico() {
    let cases: &[(&str, &str)] = &[
        ("", "all()"),
        ("   ", "all()"),
        ("all()", "all()"),
        ("all( )", "all()"),
        ("global()", "global()"),
        (r#"a=="b""#, r#"a == "b""#),
        ("a == 'b'", r#"a == "b""#),
        ("a != 'b'", r#"a != "b""#),
        ("a startswith 'x'", r#"a starts with "x""#),
        ("a ends  with 'x'", r#"a ends with "x""#),
        ("a contains 'x'", r#"a contains "x""#),
        (r#"a in {'b', "a", 'B', "a"}"#, r#"a in {"B", "a", "b"}"#),
        (r#"a notin {"x",}"#, r#"a not in {"x"}"#),
        ("a in {}", "a in {}"),
        ("has( a )", "has(a)"),
        (r#"a == "b" && c == "d""#, r#"(a == "b" && c == "d")"#),
        (
            r#"a == "b" && (c == "d" && e == "f")"#,
            r#"(a == "b" && (c == "d" && e == "f"))"#,
        ),
        (
            r#"a == "1" || b == "1" && c == "1""#,
            r#"(a == "1" || (b == "1" && c == "1"))"#,
        ),
        (
            r#"a == "1" && b == "1" && c == "1""#,
            r#"(a == "1" && b == "1" && c == "1")"#,
        ),
        (r#"((a == "b"))"#, r#"a == "b""#),
        ("!(k == 'v')", r#"!k == "v""#),
        (r#"!(a == "b" || c == "d")"#, r#"!(a == "b" || c == "d")"#),
        ("!(!has(a))", "!!has(a)"),
        ("!!has(a)", "has(a)"),
        ("!!!has(a)", "!has(a)"),
        (r#"a == 'x"y'"#, r#"a == 'x"y'"#),
        ("role == 'database'", r#"role == "database""#),
    ];
    for (expr, want) in cases {
        let sel = parse(expr).unwrap_or_else(|e| panic!("{expr:?}: {e}"));
        assert_eq!(sel.canonical(), *want, "canonical of {expr:?}");
        assert_eq!(sel.to_string(), *want);
    }
}

#[test]
fn uid_matches_the_published_vector() {
    let all = parse("all()").unwrap();
    assert_eq!(all.uid(), "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug");
    assert_eq!(parse("").unwrap().uid(), all.uid());
    assert_eq!(all.uid().len(), 40);
    let a = parse("role == 'db'").unwrap();
    let b = parse(r#"role=="db""#).unwrap();
    assert_eq!(a.uid(), b.uid());
    assert_eq!(a, b);
    assert_ne!(a.uid(), parse("role == 'web'").unwrap().uid());
}

/// Generates selector source text covering every grammar form, with varied spacing and quoting.
fn selector_text() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec!["a", "b", "role", "x/y", "in", "has"]);
    let value = prop::sample::select(vec!["", "1", "db", "x\"y", "B", "a b"]);
    let quote = |v: &str| {
        if v.contains('"') {
            format!("'{v}'")
        } else {
            format!("\"{v}\"")
        }
    };
    let leaf = prop_oneof![
        (
            key.clone(),
            value.clone(),
            prop::sample::select(vec![
                "==",
                "!=",
                "contains",
                "starts with",
                "endswith",
                "ends with"
            ])
        )
            .prop_map(move |(k, v, op)| format!("{k} {op} {}", quote(v))),
        (
            key.clone(),
            prop::collection::vec(value, 0..4),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(move |(k, vs, negate, trailing)| {
                let mut body: Vec<String> = vs.iter().map(|v| quote(v)).collect::<Vec<_>>();
                if trailing && !body.is_empty() {
                    body.push(String::new());
                }
                let op = if negate { "not in" } else { "in" };
                format!("{k} {op} {{{}}}", body.join(","))
            }),
        key.prop_map(|k| format!("has({k})")),
        Just("all()".to_string()),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|s| format!("!{s}")),
            inner.clone().prop_map(|s| format!("!({s})")),
            inner.clone().prop_map(|s| format!("( {s} )")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} && {b}")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("{a}\t||{b}")),
        ]
    })
}

fn label_set() -> impl Strategy<Value = HashMap<String, String>> {
    prop::collection::hash_map(
        prop::sample::select(vec!["a", "b", "role", "x/y", "in", "has"]).prop_map(String::from),
        prop::sample::select(vec!["", "1", "db", "x\"y", "B", "a b", "dbx"]).prop_map(String::from),
        0..5,
    )
}

proptest! {
    #[test]
    fn canonical_is_stable_and_keeps_meaning(text in selector_text(), labels in label_set()) {
        let first = parse(&text).expect("generated selectors are valid");
        let second = parse(first.canonical()).expect("canonical form parses");
        let third = parse(second.canonical()).expect("canonical form parses");
        prop_assert_eq!(second.canonical(), third.canonical());
        if !first.canonical().contains("!!") {
            prop_assert_eq!(first.canonical(), second.canonical());
        }
        prop_assert_eq!(first.matches(&labels), second.matches(&labels));
    }

    #[test]
    fn arbitrary_input_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = parse(&text) {
            prop_assert!(e.column() >= 1 && e.column() <= text.len() + 1);
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{}has(a){}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(parse(&deep).is_err());
    let nots = format!("{}has(a)", "!".repeat(100_001));
    assert_eq!(parse(&nots).unwrap().canonical(), "!has(a)");
}
