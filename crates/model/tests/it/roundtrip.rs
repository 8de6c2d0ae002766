//! Round trips: decode(to_yaml(x)) == x, decode(to_json(x)) == x and stable YAML, over
//! generated valid resources; and decode never panics on arbitrary or truncated input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use calico_model::codec::{decode, to_json, to_yaml};
use calico_model::*;
use calico_testkit::tutorial::{POLICIES, PROFILES_WITH_RULES};
use ipnet::IpNet;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::select;

fn name() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9._-]{0,12}"
}

fn labels() -> impl Strategy<Value = std::collections::BTreeMap<String, String>> {
    btree_map(
        "[a-zA-Z0-9][a-zA-Z0-9_./-]{0,12}",
        "([a-zA-Z0-9]([a-zA-Z0-9_.-]{0,8}[a-zA-Z0-9])?)?",
        0..3,
    )
}

/// Any text at all, including control characters, quotes and YAML indicators.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        vec(any::<char>(), 0..10).prop_map(String::from_iter),
        vec(
            select(vec![
                "a", " ", ":", "#", "-", "'", "\"", "\n", "\t", "0", "1", ".", "true", "~", "{",
                "[", "&", "*", "!", "%", "@", "\\", "é", "\u{85}"
            ]),
            0..6
        )
        .prop_map(|parts| parts.concat()),
    ]
}

fn selector() -> impl Strategy<Value = String> {
    select(vec![
        "",
        "all()",
        "role == 'db'",
        "has(a) && !has(b)",
        "k in {'x', 'y'}",
        "a != \"b\" || c == 'd'",
        "!(x == 'y')",
    ])
    .prop_map(str::to_owned)
}

fn ip(v6: bool) -> BoxedStrategy<IpAddr> {
    if v6 {
        any::<u128>()
            .prop_map(|n| IpAddr::V6(Ipv6Addr::from(n)))
            .boxed()
    } else {
        any::<u32>()
            .prop_map(|n| IpAddr::V4(Ipv4Addr::from(n)))
            .boxed()
    }
}

fn net(v6: bool) -> BoxedStrategy<Cidr> {
    let max: u8 = if v6 { 128 } else { 32 };
    (ip(v6), 0u8..=max)
        .prop_map(|(addr, len)| Cidr::new(IpNet::new(addr, len).expect("prefix in range")))
        .boxed()
}

fn port() -> impl Strategy<Value = Port> {
    prop_oneof![
        (1u16..).prop_map(Port::single),
        (1u16.., 0u16..1000).prop_map(|(a, d)| Port::range(a, a.saturating_add(d))),
    ]
}

fn entity(v6: bool, ports: bool) -> impl Strategy<Value = EntityRule> {
    let ports = move || {
        if ports {
            vec(port(), 0..3).boxed()
        } else {
            Just(Vec::new()).boxed()
        }
    };
    (
        (
            prop_oneof![Just(String::new()), name()],
            prop_oneof![Just(String::new()), name()],
        ),
        (vec(net(v6), 0..3), vec(net(v6), 0..2)),
        (selector(), selector()),
        (ports(), ports()),
    )
        .prop_map(
            |((tag, not_tag), (nets, not_nets), (selector, not_selector), (ports, not_ports))| {
                EntityRule {
                    tag,
                    net: None,
                    nets,
                    selector,
                    ports,
                    not_tag,
                    not_net: None,
                    not_nets,
                    not_selector,
                    not_ports,
                }
            },
        )
}

fn rule() -> impl Strategy<Value = Rule> {
    (any::<bool>(), 0..7usize, any::<bool>())
        .prop_flat_map(|(v6, protocol, declare_version)| {
            let icmp_name = if v6 { "icmpv6" } else { "icmp" };
            let protocol = [
                None,
                Some("tcp".into()),
                Some("udp".into()),
                Some(Protocol::Number(6)),
                Some(Protocol::Number(17)),
                Some(Protocol::from(icmp_name)),
                Some(Protocol::Number(47)),
            ][protocol]
                .clone();
            let ports = protocol.as_ref().is_some_and(Protocol::supports_ports);
            let is_icmp = protocol
                .as_ref()
                .and_then(Protocol::number)
                .is_some_and(|n| n == 1 || n == 58);
            let icmp = move || {
                if is_icmp {
                    proptest::option::of((0i64..=254, proptest::option::of(0i64..=255)).prop_map(
                        |(t, code)| IcmpFields {
                            icmp_type: Some(t),
                            code,
                        },
                    ))
                    .boxed()
                } else {
                    Just(None).boxed()
                }
            };
            (
                select(vec!["allow", "deny", "log", "pass"]),
                Just(protocol),
                icmp(),
                icmp(),
                proptest::option::of(select(vec![Protocol::from("sctp"), Protocol::Number(132)])),
                entity(v6, ports),
                entity(v6, ports),
                Just(declare_version.then_some(if v6 { 6 } else { 4 })),
            )
        })
        .prop_map(
            |(action, protocol, icmp, not_icmp, not_protocol, source, destination, ip_version)| {
                Rule {
                    action: action.into(),
                    ip_version,
                    protocol,
                    icmp,
                    not_protocol,
                    not_icmp,
                    source,
                    destination,
                }
            },
        )
}

fn order() -> impl Strategy<Value = Option<f64>> {
    proptest::option::of(prop_oneof![
        (-1000i32..1000).prop_map(f64::from),
        (any::<i32>(), 1..6).prop_map(|(n, shift)| f64::from(n) / f64::from(1 << shift)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
    ])
}

fn profile() -> impl Strategy<Value = Resource> {
    (
        name(),
        vec(name(), 0..3),
        labels(),
        vec(rule(), 0..3),
        vec(rule(), 0..3),
    )
        .prop_map(|(name, tags, labels, ingress, egress)| {
            Resource::Profile(Profile {
                metadata: ProfileMetadata { name, tags, labels },
                spec: ProfileSpec { ingress, egress },
            })
        })
}

fn policy() -> impl Strategy<Value = Resource> {
    (
        name(),
        btree_map(text(), text(), 0..4),
        order(),
        selector(),
        vec(rule(), 0..3),
        vec(rule(), 0..3),
        0..3u8,
        any::<bool>(),
    )
        .prop_map(
            |(name, annotations, order, selector, ingress, mut egress, mode, explicit_types)| {
                let (do_not_track, pre_dnat) = (mode == 1, mode == 2);
                if pre_dnat {
                    egress.clear();
                }
                let mut spec = PolicySpec {
                    order,
                    ingress,
                    egress,
                    selector,
                    do_not_track,
                    pre_dnat,
                    types: Vec::new(),
                };
                if explicit_types && !pre_dnat {
                    spec.types = vec!["ingress".into(), "egress".into()];
                }
                spec.fill_default_types();
                Resource::Policy(Policy {
                    metadata: PolicyMetadata { name, annotations },
                    spec,
                })
            },
        )
}

fn workload_endpoint() -> impl Strategy<Value = Resource> {
    (
        (
            name(),
            name(),
            name(),
            name(),
            prop_oneof![Just(String::new()), name()],
            labels(),
        ),
        (
            vec(ip(false), 0..3),
            vec(ip(true), 0..2),
            ip(false),
            any::<bool>(),
        ),
        (
            proptest::option::of(ip(false)),
            proptest::option::of(ip(true)),
        ),
        (
            vec(name(), 0..3),
            "[a-zA-Z0-9_-]{1,15}",
            proptest::option::of(any::<[u8; 6]>()),
        ),
    )
        .prop_map(
            |(
                (name, workload, orchestrator, node, active_instance_id, labels),
                (v4, v6, external, nat),
                (ipv4_gateway, ipv6_gateway),
                (profiles, interface_name, mac),
            )| {
                let ip_nats = match v4.first() {
                    Some(internal) if nat => vec![IpNat {
                        internal_ip: *internal,
                        external_ip: external,
                    }],
                    _ => Vec::new(),
                };
                let mac = mac.map(|b| {
                    b.iter()
                        .map(|x| format!("{x:02x}"))
                        .collect::<Vec<_>>()
                        .join(":")
                        .parse()
                        .unwrap()
                });
                Resource::WorkloadEndpoint(WorkloadEndpoint {
                    metadata: WorkloadEndpointMetadata {
                        name,
                        workload,
                        orchestrator,
                        node,
                        active_instance_id,
                        labels,
                    },
                    spec: WorkloadEndpointSpec {
                        ip_networks: v4.into_iter().chain(v6).map(Cidr::from).collect(),
                        ip_nats,
                        ipv4_gateway,
                        ipv6_gateway,
                        profiles,
                        interface_name,
                        mac,
                    },
                })
            },
        )
}

fn host_endpoint() -> impl Strategy<Value = Resource> {
    (
        name(),
        name(),
        labels(),
        prop_oneof![Just(String::new()), "[a-z0-9_-]{1,15}"],
        vec(prop_oneof![ip(false), ip(true)], 1..3),
        vec(name(), 0..2),
    )
        .prop_map(|(name, node, labels, interface_name, ips, profiles)| {
            let expected_ips = if interface_name.is_empty() {
                ips
            } else {
                Vec::new()
            };
            Resource::HostEndpoint(HostEndpoint {
                metadata: HostEndpointMetadata { name, node, labels },
                spec: HostEndpointSpec {
                    interface_name,
                    expected_ips,
                    profiles,
                },
            })
        })
}

fn ip_pool() -> impl Strategy<Value = Resource> {
    let v4 = (any::<u32>(), 1u8..=26)
        .prop_map(|(n, len)| IpNet::new(IpAddr::V4(n.into()), len).unwrap().trunc());
    let v6 = (any::<u128>(), 1u8..=122)
        .prop_map(|(n, len)| IpNet::new(IpAddr::V6(n.into()), len).unwrap().trunc());
    let link_local: [Cidr; 2] = [
        "169.254.0.0/16".parse().unwrap(),
        "fe80::/10".parse().unwrap(),
    ];
    (
        prop_oneof![v4, v6],
        any::<bool>(),
        select(vec!["", "always", "cross-subnet"]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_filter("not link-local", move |(net, ..)| {
            !link_local.iter().any(|ll| ll.overlaps(&Cidr::new(*net)))
        })
        .prop_map(|(net, ipip, mode, nat_outgoing, disabled)| {
            let ipip = (ipip || !mode.is_empty()).then(|| IpipConfiguration {
                enabled: ipip && matches!(net, IpNet::V4(_)),
                mode: mode.into(),
            });
            Resource::IpPool(IpPool {
                metadata: IpPoolMetadata {
                    cidr: Some(Cidr::new(net)),
                },
                spec: IpPoolSpec {
                    ipip,
                    nat_outgoing,
                    disabled,
                },
            })
        })
}

fn node() -> impl Strategy<Value = Resource> {
    let bgp = (
        proptest::option::of(any::<u32>().prop_map(AsNumber)),
        proptest::option::of(net(false)),
        net(true),
        any::<bool>(),
    )
        .prop_map(|(as_number, ipv4_address, v6, with_v6)| NodeBgpSpec {
            as_number,
            ipv6_address: (with_v6 || ipv4_address.is_none()).then_some(v6),
            ipv4_address,
        });
    let orch = vec(
        (prop_oneof![Just(String::new()), name()], name()).prop_map(|(node_name, orchestrator)| {
            OrchRef {
                node_name,
                orchestrator,
            }
        }),
        0..2,
    );
    (name(), proptest::option::of(bgp), orch).prop_map(|(name, bgp, orch_refs)| {
        Resource::Node(Node {
            metadata: NodeMetadata { name },
            spec: NodeSpec { bgp, orch_refs },
        })
    })
}

fn bgp_peer() -> impl Strategy<Value = Resource> {
    (
        any::<bool>(),
        name(),
        prop_oneof![ip(false), ip(true)],
        any::<u32>(),
    )
        .prop_map(|(global, node, ip, asn)| {
            Resource::BgpPeer(BgpPeer {
                metadata: BgpPeerMetadata {
                    scope: if global { "global" } else { "node" }.into(),
                    node: if global { String::new() } else { node },
                    peer_ip: Some(ip),
                },
                spec: BgpPeerSpec {
                    as_number: AsNumber(asn),
                },
            })
        })
}

fn resource() -> impl Strategy<Value = Resource> {
    prop_oneof![
        profile(),
        policy(),
        workload_endpoint(),
        host_endpoint(),
        ip_pool(),
        node(),
        bgp_peer()
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn yaml_and_json_round_trip(resources in vec(resource(), 0..4)) {
        for r in &resources {
            prop_assert_eq!(r.validate(), Ok(()), "generated resource is invalid: {:?}", r);
        }
        let yaml = to_yaml(&resources);
        let from_yaml = decode(&yaml).map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
        prop_assert_eq!(&from_yaml, &resources, "YAML:\n{}", yaml);
        prop_assert_eq!(to_yaml(&from_yaml), yaml);
        let json = to_json(&resources);
        let from_json = decode(&json).map_err(|e| TestCaseError::fail(format!("{e}\n{json}")))?;
        prop_assert_eq!(&from_json, &resources, "JSON:\n{}", json);
    }

    #[test]
    fn decode_never_panics_on_yamlish_noise(parts in vec(select(vec![
        "apiVersion: v1\n", "kind: profile\n", "kind: profileList\n", "kind: ipPool\n", "- ", "  ", "metadata:", "spec:",
        "items:", "{", "}", "[", "]", ": ", ",", "---\n", "...\n", "\n", "'", "\"", "name: x\n", "&a ", "*a", "!t ",
        "#c", "\t", "ports: [80]", "protocol: tcp", "ingress:", "- action: allow\n", "%YAML 1.2\n", "<<: ", "?", "|\n",
        "\u{feff}", "\0", "é",
    ]), 0..40)) {
        let _ = decode(&parts.concat());
    }

    #[test]
    fn decode_never_panics_on_any_text(input in ".*") {
        let _ = decode(&input);
    }

    #[test]
    fn decode_never_panics_on_truncated_documents(cut in 0usize..2000) {
        let input = format!("{PROFILES_WITH_RULES}---\n{POLICIES}");
        let end = input.char_indices().map(|(i, _)| i).find(|i| *i >= cut).unwrap_or(input.len());
        let _ = decode(&input[..end]);
    }
}

#[test]
fn tutorial_documents_round_trip() {
    for input in [PROFILES_WITH_RULES, POLICIES] {
        let resources = decode(input).unwrap();
        let yaml = to_yaml(&resources);
        assert_eq!(decode(&yaml).unwrap(), resources);
        assert_eq!(decode(&to_json(&resources)).unwrap(), resources);
        assert_eq!(to_yaml(&decode(&yaml).unwrap()), yaml);
    }
}
