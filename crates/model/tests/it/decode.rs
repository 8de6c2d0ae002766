//! Decoding: document shapes, error positions and messages, validation on decode.

use calico_model::codec::{decode, DecodeError};
use calico_model::{Kind, Port, Protocol, Resource};
use calico_testkit::tutorial::{POLICIES, PROFILES_WITH_RULES};

/// The (line, column, message) of a parse error, failing the test otherwise.
fn parse_error(input: &str) -> (u64, u64, String) {
    match decode(input) {
        Err(DecodeError::Parse {
            line,
            column,
            message,
        }) => (line, column, message),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

fn names(resources: &[Resource]) -> Vec<(Kind, String)> {
    resources
        .iter()
        .map(|r| (r.kind(), r.key().map(|k| k.to_string()).unwrap_or_default()))
        .collect()
}

#[test]
fn tutorial_profiles_decode_and_validate() {
    let resources = decode(PROFILES_WITH_RULES).unwrap();
    assert_eq!(resources.len(), 2);
    let Resource::Profile(db) = &resources[0] else {
        panic!("not a profile")
    };
    assert_eq!(db.metadata.name, "database");
    assert_eq!(db.metadata.labels["role"], "database");
    assert_eq!(db.spec.ingress.len(), 2);
    assert_eq!(
        db.spec.ingress[0].protocol,
        Some(Protocol::Name("tcp".into()))
    );
    assert_eq!(db.spec.ingress[0].source.selector, "role == 'frontend'");
    assert_eq!(
        db.spec.ingress[0].destination.ports,
        vec![Port::single(3306)]
    );
    assert_eq!(db.spec.egress[0].destination.selector, "role == 'database'");
    let Resource::Profile(fe) = &resources[1] else {
        panic!("not a profile")
    };
    assert!(fe.spec.ingress.is_empty());
    assert_eq!(
        fe.spec.egress[0].destination.ports,
        vec![Port::single(3306)]
    );
}

#[test]
fn tutorial_policies_decode_with_default_types() {
    let resources = decode(POLICIES).unwrap();
    let types: Vec<Vec<String>> = resources
        .iter()
        .map(|r| match r {
            Resource::Policy(p) => p.spec.types.clone(),
            other => panic!("not a policy: {other:?}"),
        })
        .collect();
    assert_eq!(types, [vec!["ingress", "egress"], vec!["egress"]]);
    let Resource::Policy(db) = &resources[0] else {
        unreachable!()
    };
    assert_eq!(db.spec.order, Some(0.0));
    assert_eq!(db.spec.selector, "role == 'database'");
}

#[test]
fn policy_types_default_only_when_absent() {
    let doc = |spec: &str| {
        let input = format!("apiVersion: v1\nkind: policy\nmetadata: {{name: p}}\nspec: {spec}\n");
        match &decode(&input).unwrap()[0] {
            Resource::Policy(p) => p.spec.types.clone(),
            _ => unreachable!(),
        }
    };
    assert_eq!(doc("{}"), ["ingress"]);
    assert_eq!(doc("{ingress: [{action: allow}]}"), ["ingress"]);
    assert_eq!(doc("{egress: [{action: allow}]}"), ["egress"]);
    assert_eq!(
        doc("{ingress: [{action: deny}], egress: [{action: allow}]}"),
        ["ingress", "egress"]
    );
    assert_eq!(
        doc("{egress: [{action: allow}], types: [ingress, egress]}"),
        ["ingress", "egress"]
    );
    assert_eq!(doc("{types: [egress]}"), ["egress"]);
}

#[test]
fn empty_inputs_give_no_resources() {
    for input in [
        "",
        "\n\n",
        "# only a comment\n",
        "---\n",
        "---\n...\n",
        "--- \n---\n# c\n",
        "[]",
        "null",
    ] {
        assert_eq!(decode(input).unwrap(), Vec::new(), "{input:?}");
    }
}

#[test]
fn documents_sequences_and_lists_mix() {
    let input = "\
---
apiVersion: v1
kind: node
metadata: {name: host1}
---
- apiVersion: v1
  kind: ipPool
  metadata: {cidr: 192.168.0.0/16}
- apiVersion: v1
  kind: profile
  metadata: {name: p1}
---
# empty document
---
apiVersion: v1
kind: profileList
metadata: {}
items:
- metadata: {name: p2}
- apiVersion: v1
  kind: profile
  metadata: {name: p3}
...
apiVersion: v1
kind: bgpPeer
metadata: {scope: global, peerIP: 10.0.0.9}
spec: {asNumber: 64512}
";
    let resources = decode(input).unwrap();
    assert_eq!(
        names(&resources),
        [
            (Kind::Node, "Node(name=host1)".to_owned()),
            (Kind::IpPool, "IPPool(cidr=192.168.0.0/16)".to_owned()),
            (Kind::Profile, "Profile(name=p1)".to_owned()),
            (Kind::Profile, "Profile(name=p2)".to_owned()),
            (Kind::Profile, "Profile(name=p3)".to_owned()),
            (Kind::BgpPeer, "BGPPeer(global, ip=10.0.0.9)".to_owned()),
        ]
    );
}

#[test]
fn json_input_decodes() {
    let single = r#"{"kind": "profile", "apiVersion": "v1", "metadata": {"name": "p"}, "spec": {"ingress": [{"action": "allow", "protocol": 6, "destination": {"ports": [80, "1000:2000"]}}]}}"#;
    let list = format!("[{single},\n{single}]");
    let tabs = "{\n\t\"kind\": \"node\",\n\t\"apiVersion\": \"v1\",\n\t\"metadata\": {\n\t\t\"name\": \"n\"\n\t}\n}\n";
    assert_eq!(decode(single).unwrap().len(), 1);
    assert_eq!(decode(&list).unwrap().len(), 2);
    assert_eq!(
        names(&decode(tabs).unwrap()),
        [(Kind::Node, "Node(name=n)".to_owned())]
    );
    let Resource::Profile(p) = &decode(single).unwrap()[0] else {
        unreachable!()
    };
    assert_eq!(p.spec.ingress[0].protocol, Some(Protocol::Number(6)));
    assert_eq!(
        p.spec.ingress[0].destination.ports,
        [Port::single(80), Port::range(1000, 2000)]
    );
}

#[test]
fn null_fields_read_as_empty() {
    let input = "apiVersion: v1\nkind: profile\nmetadata:\n  name: p\n  labels:\n  tags:\nspec:\n  ingress:\n  - action: allow\n    source:\n  egress:\n";
    let Resource::Profile(p) = &decode(input).unwrap()[0] else {
        unreachable!()
    };
    assert!(p.metadata.labels.is_empty() && p.metadata.tags.is_empty() && p.spec.egress.is_empty());
    assert_eq!(p.spec.ingress.len(), 1);
}

#[test]
fn unknown_field_in_second_document_has_its_position() {
    let input = "\
apiVersion: v1
kind: profile
metadata:
  name: a
---
apiVersion: v1
kind: profile
metadata:
  name: b
  bogus: 1
";
    let (line, column, message) = parse_error(input);
    assert_eq!((line, column), (10, 3));
    assert!(message.contains("unknown field `bogus`"), "{message}");
    assert!(message.contains("name, tags, labels"), "{message}");
}

#[test]
fn unknown_field_in_second_item_has_its_position() {
    let input = "\
- apiVersion: v1
  kind: profile
  metadata:
    name: a
- apiVersion: v1
  kind: profile
  metadata:
    name: b
  spec:
    ingress:
    - action: allow
      destination:
        prots: [80]
";
    let (line, column, message) = parse_error(input);
    assert_eq!((line, column), (13, 9));
    assert!(message.contains("unknown field `prots`"), "{message}");
}

#[test]
fn unknown_envelope_field_points_at_the_key() {
    let (line, column, message) = parse_error("apiVersion: v1\nkind: node\nmetdata: {name: n}\n");
    assert_eq!((line, column), (3, 1));
    assert!(
        message
            .contains("unknown field `metdata`, expected one of apiVersion, kind, metadata, spec"),
        "{message}"
    );
    let (line, column, _) = parse_error("- apiVersion: v1\n  kind: node\n  extra: 1\n");
    assert_eq!((line, column), (3, 3));
}

#[test]
fn yaml_syntax_errors_have_positions() {
    let input = "apiVersion: v1\nkind: profile\nmetadata:\n  name: a\n labels: {}\n";
    let (line, column, message) = parse_error(input);
    assert_eq!((line, column), (5, 2));
    assert!(message.contains("did not find expected key"), "{message}");
    let input = "apiVersion: v1\nkind: profile\n---\nkind: profile\nmetadata: {name: [x\n";
    let (line, _, _) = parse_error(input);
    assert!(line >= 5, "line {line}");
}

#[test]
fn wrong_value_types_have_positions() {
    let cases = [
        ("spec:\n  ingress:\n  - action: allow\n    protocol: tcp\n    destination:\n      ports: [70000]\n", (9, 15), "invalid port '70000'"),
        ("spec:\n  ingress:\n  - action: allow\n    source:\n      nets: [10.0.0.0/33]\n", (8, 14), "invalid CIDR '10.0.0.0/33'"),
        ("spec:\n  ingress:\n  - action: allow\n    protocol: 256\n", (7, 15), "invalid protocol '256'"),
        ("spec:\n  ingress:\n  - action: allow\n    protocol: tcp\n    source:\n      ports: ['90:80']\n", (9, 15), "minimum port 90 is greater than maximum port 80"),
        ("spec:\n  ingress: {action: allow}\n", (5, 12), ""),
    ];
    for (spec, position, expected) in cases {
        let input = format!("apiVersion: v1\nkind: profile\nmetadata: {{name: p}}\n{spec}");
        let (line, column, message) = parse_error(&input);
        assert_eq!((line, column), position, "{message}");
        assert!(message.contains(expected), "{message}");
    }
}

#[test]
fn value_errors_in_other_kinds() {
    let cases = [
        (
            "workloadEndpoint",
            "spec: {mac: 'zz:zz'}",
            "invalid MAC address 'zz:zz'",
        ),
        (
            "bgpPeer",
            "metadata: {scope: global, peerIP: 10.0.0}",
            "invalid IP address '10.0.0'",
        ),
        (
            "node",
            "spec: {bgp: {asNumber: 4294967296, ipv4Address: 10.0.0.1/24}}",
            "invalid AS number '4294967296'",
        ),
        (
            "hostEndpoint",
            "spec: {expectedIPs: [nope]}",
            "invalid IP address 'nope'",
        ),
    ];
    for (kind, body, expected) in cases {
        let input = format!("apiVersion: v1\nkind: {kind}\n{body}\n");
        let (line, _, message) = parse_error(&input);
        assert_eq!(line, 3, "{message}");
        assert!(message.contains(expected), "{message}");
    }
}

#[test]
fn unknown_kind_or_version_is_reported_where_written() {
    let unknown = |input: &str| match decode(input) {
        Err(DecodeError::UnknownKind {
            kind,
            api_version,
            line,
            column,
        }) => (kind, api_version, line, column),
        other => panic!("expected UnknownKind, got {other:?}"),
    };
    assert_eq!(
        unknown("apiVersion: v1\nkind: profiles\n"),
        ("profiles".into(), "v1".into(), 2, 7)
    );
    assert_eq!(
        unknown("kind: profile\napiVersion: v2\n"),
        ("profile".into(), "v2".into(), 2, 13)
    );
    assert_eq!(unknown("metadata: {}\n"), ("".into(), "".into(), 1, 1));
    assert_eq!(
        unknown("- apiVersion: v1\n  kind: profile\n- apiVersion: v1\n  kind: Profile\n"),
        ("Profile".into(), "v1".into(), 4, 9)
    );
    assert_eq!(
        unknown("apiVersion: v1\nkind: profileList\nitems:\n- kind: node\n"),
        ("node".into(), "".into(), 4, 9)
    );
    assert_eq!(unknown("- \n"), ("".into(), "".into(), 1, 3));
    let message = DecodeError::UnknownKind {
        kind: "x".into(),
        api_version: "v1".into(),
        line: 1,
        column: 7,
    }
    .to_string();
    assert_eq!(
        message,
        "Unknown resource type (x) and/or version (v1) at line 1, column 7"
    );
}

#[test]
fn non_resource_documents_are_rejected() {
    let (line, column, message) = parse_error("a\n---\n42\n");
    assert_eq!((line, column), (1, 1));
    assert!(message.contains("expected a resource"), "{message}");
    let (line, column, _) = parse_error("apiVersion: v1\nkind: node\n---\n- [1, 2]\n");
    assert_eq!((line, column), (4, 3));
    let (line, _, message) = parse_error("apiVersion: v1\nkind: nodeList\nitems: 5\n");
    assert_eq!(line, 3);
    assert!(message.contains("items"), "{message}");
}

#[test]
fn duplicate_keys_are_rejected() {
    let (line, column, message) =
        parse_error("apiVersion: v1\nkind: node\nmetadata: {name: a}\nmetadata: {name: b}\n");
    assert_eq!((line, column), (4, 1));
    assert!(message.contains("duplicate"), "{message}");
}

#[test]
fn one_valid_and_one_invalid_resource_is_an_error() {
    let valid = "- apiVersion: v1\n  kind: profile\n  metadata: {name: good}\n";
    let cases = [
        ("  kind: profile\n  metadata: {name: bad, bogus: 1}\n", "unknown field `bogus`"),
        (
            "  kind: profile\n  metadata: {name: bad}\n  spec:\n    ingress:\n    - action: allow\n      source: {selector: \"role == \"}\n",
            "resource 2 (profile 'bad' at line 4): error with field spec.ingress[0].source.selector = 'role == ' (invalid selector: ",
        ),
        (
            "  kind: profile\n  metadata: {name: bad}\n  spec:\n    ingress:\n    - action: allow\n      protocol: icmp\n      destination: {ports: [80]}\n",
            "error with field spec.ingress[0].destination.ports = '[80]' (protocol does not support ports",
        ),
        (
            "  kind: profile\n  metadata: {name: bad}\n  spec:\n    ingress:\n    - action: allow\n      protocol: icmp\n      icmp: {code: 1}\n",
            "error with field spec.ingress[0].icmp.code = '1' (ICMP code specified without an ICMP type",
        ),
        (
            "  kind: ipPool\n  metadata: {cidr: 10.0.0.0/30}\n",
            "resource 2 (ipPool '10.0.0.0/30' at line 4): error with field metadata.cidr = '10.0.0.0/30' (IP pool size is too small (min /26) for use with Calico IPAM)",
        ),
    ];
    for (bad, expected) in cases {
        let input = format!("{valid}- apiVersion: v1\n{bad}");
        let err = decode(&input).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}\n--- expected: {expected}");
    }
}

#[test]
fn selector_errors_report_the_column() {
    let input = "apiVersion: v1\nkind: policy\nmetadata: {name: p}\nspec: {selector: \"role == 'db' && \"}\n";
    let Err(DecodeError::Invalid(invalid)) = decode(input) else {
        panic!("expected a validation error")
    };
    let error = &invalid[0].errors.errors()[0];
    assert_eq!(error.path, "spec.selector");
    assert!(
        error.reason.starts_with("invalid selector: "),
        "{}",
        error.reason
    );
    assert!(error.reason.contains("at column 17"), "{}", error.reason);
}

#[test]
fn all_invalid_resources_are_reported() {
    let input = "\
- apiVersion: v1
  kind: profile
  metadata: {name: 'a b'}
- apiVersion: v1
  kind: profile
  metadata: {name: ok}
- apiVersion: v1
  kind: ipPool
  metadata: {cidr: 10.0.0.1/24}
  spec: {ipip: {enabled: true, mode: sometimes}}
";
    let Err(DecodeError::Invalid(invalid)) = decode(input) else {
        panic!("expected validation errors")
    };
    assert_eq!(
        invalid
            .iter()
            .map(|i| (i.index, i.line))
            .collect::<Vec<_>>(),
        [(1, 1), (3, 7)]
    );
    let message = DecodeError::Invalid(invalid).to_string();
    let expected = "\
resource 1 (profile 'a b' at line 1): error with field metadata.name = 'a b' (invalid name: use 1-128 characters from a-z, A-Z, 0-9, '.', '_', '-', '/')
resource 3 (ipPool '10.0.0.1/24' at line 7): error with the following fields:
-  spec.ipip.mode = 'sometimes' (invalid IPIP mode: use always or cross-subnet)
-  metadata.cidr = '10.0.0.1/24' (IP pool CIDR is not strictly masked; use 10.0.0.0/24)";
    assert_eq!(message, expected);
}

#[test]
fn hostile_input_fails_without_panicking() {
    let deep_flow = format!("a: {}", "[".repeat(100_000));
    let deep_block: String = (0..500)
        .map(|i| format!("{}- \n", " ".repeat(i * 2)))
        .collect();
    let deep_map: String = (0..500)
        .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
        .collect();
    let aliases =
        "a: &a [x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nd: [*c, *c, *c, *c]\n";
    for input in [
        deep_flow.as_str(),
        &deep_block,
        &deep_map,
        aliases,
        "\u{feff}",
        "\0",
        "---\u{0}",
        "--- |\n  ---x\n",
        "%YAML 1.2\n---\n",
    ] {
        let _ = decode(input);
    }
    let many_docs = "apiVersion: v1\nkind: node\nmetadata: {name: n}\n---\n".repeat(2000);
    assert_eq!(decode(&many_docs).unwrap().len(), 2000);
}

#[test]
fn directives_and_inline_document_content() {
    let input = "%YAML 1.2\n--- {apiVersion: v1, kind: node, metadata: {name: a}}\n%YAML 1.2\n---\napiVersion: v1\nkind: node\nmetadata: {name: b}\n";
    assert_eq!(decode(input).unwrap().len(), 2);
    let input = "--- {apiVersion: v1, kind: node, metadata: {name: a}}\n--- {apiVersion: v1, kind: node, metadatum: {}}\n";
    let (line, column, _) = parse_error(input);
    assert_eq!((line, column), (2, 34));
}
