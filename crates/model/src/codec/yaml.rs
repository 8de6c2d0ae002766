//! A small YAML emitter producing calicoctl's output style.
//!
//! calicoctl prints YAML by marshalling to JSON and re-encoding that with Go's yaml.v2, so:
//! block style throughout, map keys sorted (yaml.v2 order: runs of digits compare as numbers,
//! non-letters sort before letters), sequences inside a map not indented relative to their key,
//! and strings quoted only when a plain scalar would read back as something else.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Map, Value};

/// Renders a JSON value as a YAML document (ending with a newline).
pub(crate) fn emit(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Array(items) if !items.is_empty() => sequence(&mut out, items, 0, false),
        Value::Object(map) if !map.is_empty() => mapping(&mut out, map, 0, false),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

/// Longest key written as a simple `key:`; longer ones use the explicit `? key` form.
const MAX_SIMPLE_KEY: usize = 1000;

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// Writes the entries of a non-empty map at `indent`; when `inline_first`, the cursor is
/// already at the first entry's position (just after a `- `).
fn mapping(out: &mut String, map: &Map<String, Value>, indent: usize, inline_first: bool) {
    let entries = merge_sort(map.iter().collect(), &|a: &(&String, &Value), b| {
        go_key_cmp(a.0, b.0)
    });
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 || !inline_first {
            pad(out, indent);
        }
        let key = string(key);
        if key.chars().count() > MAX_SIMPLE_KEY {
            out.push_str("? ");
            out.push_str(&key);
            out.push('\n');
            pad(out, indent);
        } else {
            out.push_str(&key);
        }
        out.push(':');
        match value {
            Value::Object(m) if !m.is_empty() => {
                out.push('\n');
                mapping(out, m, indent + 2, false);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                sequence(out, items, indent, false);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

/// Writes the items of a non-empty sequence as `- item` lines at `indent`.
fn sequence(out: &mut String, items: &[Value], indent: usize, inline_first: bool) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !inline_first {
            pad(out, indent);
        }
        out.push_str("- ");
        match item {
            Value::Object(m) if !m.is_empty() => mapping(out, m, indent + 2, true),
            Value::Array(inner) if !inner.is_empty() => sequence(out, inner, indent + 2, true),
            other => {
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

fn scalar(value: &Value) -> Cow<'_, str> {
    match value {
        Value::Null => Cow::Borrowed("null"),
        Value::Bool(true) => Cow::Borrowed("true"),
        Value::Bool(false) => Cow::Borrowed("false"),
        Value::Number(n) => Cow::Owned(n.to_string()),
        Value::String(s) => string(s),
        Value::Array(_) => Cow::Borrowed("[]"),
        Value::Object(_) => Cow::Borrowed("{}"),
    }
}

/// A string as a plain, single-quoted or double-quoted scalar.
fn string(s: &str) -> Cow<'_, str> {
    if s.chars().any(needs_escape) || resolves_to_non_string(s) {
        Cow::Owned(double_quoted(s))
    } else if is_plain_safe(s) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(format!("'{}'", s.replace('\'', "''")))
    }
}

/// Characters that only a double-quoted scalar can hold (or that YAML treats as line breaks).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{FEFF}' | '\u{FFFE}' | '\u{FFFF}'
        )
}

fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\0' => out.push_str("\\0"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if needs_escape(c) && u32::from(c) <= 0xFF => {
                out.push_str(&format!("\\x{:02X}", u32::from(c)))
            }
            c if needs_escape(c) => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether a plain scalar with this text would be read as null, a boolean (YAML 1.1 spellings
/// included), a number or a timestamp rather than a string.
fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let b = s.as_bytes();
    if b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
        return true; // date / timestamp
    }
    let plain: String = s.chars().filter(|c| *c != '_').collect();
    let unsigned = plain.strip_prefix(['-', '+']).unwrap_or(&plain);
    let digits = |t: &str, radix: u32| !t.is_empty() && t.chars().all(|c| c.is_digit(radix));
    if digits(unsigned, 10)
        || unsigned.strip_prefix("0x").is_some_and(|t| digits(t, 16))
        || unsigned.strip_prefix("0o").is_some_and(|t| digits(t, 8))
        || unsigned.strip_prefix("0b").is_some_and(|t| digits(t, 2))
    {
        return true;
    }
    is_float(unsigned) || is_sexagesimal(unsigned)
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            all_digits(int) && all_digits(frac) && !(int.is_empty() && frac.is_empty())
        }
        None => !mantissa.is_empty() && all_digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    mantissa_ok && exponent_ok && (mantissa.contains('.') || exponent.is_some())
}

/// YAML 1.1 base-60 numbers such as `1:20` or `190:20:30.15`.
fn is_sexagesimal(s: &str) -> bool {
    let (int_part, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let mut parts = int_part.split(':');
    let first_ok = parts.next().is_some_and(|p| {
        p.starts_with(|c: char| c.is_ascii_digit()) && p.bytes().all(|b| b.is_ascii_digit())
    });
    let mut rest = parts.peekable();
    let has_rest = rest.peek().is_some();
    let rest_ok = rest.all(|p| {
        matches!(p.as_bytes(), [d] if d.is_ascii_digit())
            || matches!(p.as_bytes(), [t, d] if (b'0'..=b'5').contains(t) && d.is_ascii_digit())
    });
    first_ok && has_rest && rest_ok && frac.is_none_or(|f| f.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether the text can be written as a plain (unquoted) block scalar and read back as is.
fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let second = s.chars().nth(1);
    let indicator_ok = match first {
        '-' | '?' | ':' => second.is_some_and(|c| c != ' ' && c != '\t'),
        ',' | '[' | ']' | '{' | '}' | '#' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%'
        | '@' | '`' => false,
        _ => true,
    };
    indicator_ok
        && s != "<<"
        && !s.starts_with("---")
        && !s.starts_with("...")
        && !s.starts_with([' ', '\t'])
        && !s.ends_with([' ', '\t', ':'])
        && !s.contains(": ")
        && !s.contains(":\t")
        && !s.contains(" #")
        && !s.contains("\t#")
}

/// yaml.v2's key order: equal prefixes skipped; two letters compare as characters; a
/// non-letter sorts before a letter; runs of digits compare by value, then by length.
fn go_key_cmp(a: &str, b: &str) -> Ordering {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    for i in 0..a.len().min(b.len()) {
        let (ac, bc) = (a[i], b[i]);
        if ac == bc {
            continue;
        }
        let (al, bl) = (ac.is_alphabetic(), bc.is_alphabetic());
        if al && bl {
            return ac.cmp(&bc);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ac == '0' || bc == '0' {
            let nonzero_before = a[..i]
                .iter()
                .rev()
                .take_while(|c| c.is_ascii_digit())
                .any(|c| *c != '0');
            if nonzero_before {
                (an, bn) = (1, 1);
            }
        }
        let number = |s: &[char], n: &mut i64| {
            let run = s[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            for c in &s[i..i + run] {
                *n = n.wrapping_mul(10).wrapping_add(i64::from(*c as u8 - b'0'));
            }
            i + run
        };
        let (ai, bi) = (number(&a, &mut an), number(&b, &mut bn));
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ac.cmp(&bc);
    }
    a.len().cmp(&b.len())
}

/// A stable merge sort that tolerates any comparison function (the standard sort may panic
/// when a comparator is not a total order).
fn merge_sort<T: Copy>(items: Vec<T>, cmp: &impl Fn(&T, &T) -> Ordering) -> Vec<T> {
    if items.len() <= 1 {
        return items;
    }
    let mut left = items;
    let right = left.split_off(left.len() / 2);
    let (left, right) = (merge_sort(left, cmp), merge_sort(right, cmp));
    let mut merged = Vec::with_capacity(left.len() + right.len());
    let (mut l, mut r) = (left.into_iter().peekable(), right.into_iter().peekable());
    while let (Some(a), Some(b)) = (l.peek(), r.peek()) {
        if cmp(b, a) == Ordering::Less {
            merged.extend(r.next());
        } else {
            merged.extend(l.next());
        }
    }
    merged.extend(l);
    merged.extend(r);
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_strings_stay_plain() {
        for s in [
            "net1",
            "role == 'database'",
            "a,b",
            "-foo",
            "x:y",
            "192.168.0.0/16",
            "80:90",
        ] {
            assert_eq!(string(s), s, "{s}");
        }
    }

    #[test]
    fn ambiguous_strings_are_quoted() {
        let cases = [
            ("", "\"\""),
            ("true", "\"true\""),
            ("yes", "\"yes\""),
            ("123", "\"123\""),
            ("1_000", "\"1_000\""),
            ("0x1F", "\"0x1F\""),
            ("1.5e3", "\"1.5e3\""),
            (".inf", "\".inf\""),
            ("1:20", "\"1:20\""),
            ("2001-12-14", "\"2001-12-14\""),
            ("null", "\"null\""),
            ("~", "\"~\""),
            ("a: b", "'a: b'"),
            ("a #b", "'a #b'"),
            ("- x", "'- x'"),
            ("-", "'-'"),
            ("*x", "'*x'"),
            ("it's: x", "'it''s: x'"),
            (" lead", "' lead'"),
            ("trail:", "'trail:'"),
            ("---", "'---'"),
            ("<<", "'<<'"),
            ("line\nbreak", "\"line\\nbreak\""),
            ("tab\there", "\"tab\\there\""),
            ("bell\u{7}", "\"bell\\x07\""),
            ("nel\u{85}", "\"nel\\N\""),
        ];
        for (input, expected) in cases {
            assert_eq!(string(input), expected, "{input:?}");
        }
    }

    #[test]
    fn keys_sort_like_go_yaml() {
        let mut keys = vec![
            "b",
            "a10",
            "a9",
            "a_b",
            "aZ",
            "A",
            "egress",
            "ingress",
            "doNotTrack",
        ];
        keys = merge_sort(keys, &|a: &&str, b| go_key_cmp(a, b));
        assert_eq!(
            keys,
            [
                "A",
                "a_b",
                "a9",
                "a10",
                "aZ",
                "b",
                "doNotTrack",
                "egress",
                "ingress"
            ]
        );
    }

    #[test]
    fn nested_layout_matches_calicoctl() {
        let value = serde_json::json!([{
            "metadata": {"name": "net1", "tags": ["net1"]},
            "spec": {"ingress": [{"action": "allow", "source": {"tag": "net1"}}], "egress": [{"action": "allow"}]},
            "kind": "profile",
            "apiVersion": "v1",
            "empty": {},
            "none": [],
            "nested": [[1, 2], [3]]
        }]);
        let expected = "\
- apiVersion: v1
  empty: {}
  kind: profile
  metadata:
    name: net1
    tags:
    - net1
  nested:
  - - 1
    - 2
  - - 3
  none: []
  spec:
    egress:
    - action: allow
    ingress:
    - action: allow
      source:
        tag: net1
";
        assert_eq!(emit(&value), expected);
        assert_eq!(emit(&serde_json::json!([])), "[]\n");
    }
}
