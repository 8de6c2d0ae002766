//! The datastore (backend) rule form and its conversion to and from API rules.

use calico_model::{BackendRule, EntityRule, IcmpFields, Port, Protocol, Rule};
use serde_json::json;

fn nets(list: &[&str]) -> Vec<calico_model::Cidr> {
    list.iter().map(|n| n.parse().unwrap()).collect()
}

#[test]
fn docker_default_profile_rules_read_back() {
    let stored = r#"{"inbound_rules":[{"action":"allow","src_tag":"net1"}],"outbound_rules":[{"action":"allow"}]}"#;
    let value: serde_json::Value = serde_json::from_str(stored).unwrap();
    let inbound: Vec<BackendRule> = serde_json::from_value(value["inbound_rules"].clone()).unwrap();
    let outbound: Vec<BackendRule> =
        serde_json::from_value(value["outbound_rules"].clone()).unwrap();
    let ingress: Vec<Rule> = inbound.iter().map(Rule::from).collect();
    let egress: Vec<Rule> = outbound.iter().map(Rule::from).collect();
    assert_eq!(ingress[0].action, "allow");
    assert_eq!(ingress[0].source.tag, "net1");
    assert_eq!(
        egress,
        [Rule {
            action: "allow".into(),
            ..Default::default()
        }]
    );
    let rewritten: Vec<BackendRule> = ingress.iter().map(BackendRule::from).collect();
    assert_eq!(
        serde_json::to_string(&rewritten).unwrap(),
        r#"[{"action":"allow","src_tag":"net1"}]"#
    );
}

#[test]
fn api_rule_maps_to_backend_keys() {
    let rule = Rule {
        action: "pass".into(),
        ip_version: Some(4),
        protocol: Some("tcp".into()),
        icmp: None,
        not_protocol: Some(Protocol::Number(17)),
        not_icmp: Some(IcmpFields {
            icmp_type: Some(8),
            code: Some(0),
        }),
        source: EntityRule {
            tag: "t1".into(),
            nets: nets(&["10.0.0.1/8"]),
            selector: "a == 'b'".into(),
            ports: vec![Port::single(80)],
            not_tag: "t2".into(),
            not_nets: nets(&["10.1.0.0/16"]),
            not_selector: "has(c)".into(),
            not_ports: vec![Port::range(1, 2)],
            ..Default::default()
        },
        destination: EntityRule {
            tag: "t3".into(),
            net: Some("192.168.1.5/24".parse().unwrap()),
            selector: "d == 'e'".into(),
            ports: vec![Port::single(443)],
            not_tag: "t4".into(),
            not_net: Some("172.16.5.5/12".parse().unwrap()),
            not_selector: "has(f)".into(),
            not_ports: vec![Port::single(22)],
            ..Default::default()
        },
    };
    let backend = BackendRule::from(&rule);
    assert_eq!(
        serde_json::to_value(&backend).unwrap(),
        json!({
            "action": "next-tier",
            "ip_version": 4,
            "protocol": "tcp",
            "!protocol": 17,
            "!icmp_type": 8,
            "!icmp_code": 0,
            "src_tag": "t1",
            "src_nets": ["10.0.0.1/8"],
            "src_selector": "a == 'b'",
            "src_ports": [80],
            "dst_tag": "t3",
            "dst_selector": "d == 'e'",
            "dst_net": "192.168.1.0/24",
            "dst_ports": [443],
            "!src_tag": "t2",
            "!src_nets": ["10.1.0.0/16"],
            "!src_selector": "has(c)",
            "!src_ports": ["1:2"],
            "!dst_tag": "t4",
            "!dst_selector": "has(f)",
            "!dst_net": "172.16.0.0/12",
            "!dst_ports": [22],
        })
    );
    let back = Rule::from(&backend);
    assert_eq!(back.action, "pass");
    assert_eq!(back.not_icmp, rule.not_icmp);
    assert_eq!(back.source, rule.source);
    assert_eq!(back.destination.nets, nets(&["192.168.1.0/24"]));
    assert_eq!(back.destination.net, None);
    assert_eq!(back.destination.not_nets, nets(&["172.16.0.0/12"]));
}

#[test]
fn backend_rule_maps_to_api() {
    let stored = r#"{"protocol": "icmp", "icmp_code": 3, "src_net": "10.0.0.0/8", "src_nets": ["10.1.0.0/16"],
        "!dst_net": "fd00::/8", "log_prefix": "x", "src_sa_name": ["sa"], "dst_ports": ["1000:2000", 22]}"#;
    let backend: BackendRule = serde_json::from_str(stored).unwrap();
    let rule = Rule::from(&backend);
    assert_eq!(rule.action, "allow");
    assert_eq!(
        rule.icmp,
        Some(IcmpFields {
            icmp_type: None,
            code: Some(3)
        })
    );
    assert_eq!(rule.source.nets, nets(&["10.1.0.0/16", "10.0.0.0/8"]));
    assert_eq!(rule.destination.not_nets, nets(&["fd00::/8"]));
    assert_eq!(
        rule.destination.ports,
        [Port::range(1000, 2000), Port::single(22)]
    );
    for (action, api) in [
        ("", "allow"),
        ("next-tier", "pass"),
        ("deny", "deny"),
        ("log", "log"),
    ] {
        let backend = BackendRule {
            action: action.into(),
            ..Default::default()
        };
        assert_eq!(Rule::from(&backend).action, api);
    }
}

#[test]
fn api_backend_api_is_lossless_for_nets_and_masked_destinations() {
    let rule = Rule {
        action: "deny".into(),
        ip_version: Some(6),
        protocol: Some("icmpv6".into()),
        icmp: Some(IcmpFields {
            icmp_type: Some(128),
            code: None,
        }),
        source: EntityRule {
            nets: nets(&["fd00::1/64"]),
            ..Default::default()
        },
        destination: EntityRule {
            not_nets: nets(&["fd01::/64"]),
            ..Default::default()
        },
        ..Default::default()
    };
    let backend = BackendRule::from(&rule);
    assert_eq!(Rule::from(&backend), rule);
    let json = serde_json::to_string(&backend).unwrap();
    assert_eq!(serde_json::from_str::<BackendRule>(&json).unwrap(), backend);
}
