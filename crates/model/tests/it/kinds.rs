//! Kinds, CLI aliases and resource keys.

use std::net::IpAddr;

use calico_model::codec::decode;
use calico_model::{Cidr, InsufficientIdentifiers, Kind, ResourceKey};

#[test]
fn cli_aliases_are_case_insensitive() {
    let table: &[(Kind, &[&str])] = &[
        (Kind::Node, &["node", "nodes", "no", "nos", "NODE", "Nodes"]),
        (
            Kind::HostEndpoint,
            &["hostendpoint", "hostEndpoints", "hep", "heps", "HEP"],
        ),
        (
            Kind::WorkloadEndpoint,
            &[
                "workloadendpoint",
                "workloadEndpoints",
                "wep",
                "weps",
                "WEP",
            ],
        ),
        (
            Kind::Profile,
            &["profile", "profiles", "pro", "pros", "Profile"],
        ),
        (
            Kind::Policy,
            &["policy", "policies", "pol", "pols", "POLICY"],
        ),
        (
            Kind::IpPool,
            &[
                "ippool", "ipPools", "ipp", "ipps", "pool", "pools", "IPPOOL",
            ],
        ),
        (
            Kind::BgpPeer,
            &[
                "bgppeer", "bgpPeers", "bgpp", "bgpps", "bp", "bps", "BGPPeer",
            ],
        ),
    ];
    for (kind, aliases) in table {
        for alias in *aliases {
            assert_eq!(Kind::from_cli(alias), Some(*kind), "{alias}");
        }
    }
    for bad in ["", "nodez", "policys", "ip-pool", "endpoint", "tier"] {
        assert_eq!(Kind::from_cli(bad), None, "{bad}");
    }
}

#[test]
fn file_names_are_case_sensitive() {
    for kind in Kind::ALL {
        assert_eq!(Kind::from_name(kind.name()), Some(kind));
        assert_eq!(Kind::from_list_name(kind.list_name()), Some(kind));
        assert_eq!(kind.to_string(), kind.name());
    }
    let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(
        names,
        [
            "node",
            "bgpPeer",
            "hostEndpoint",
            "workloadEndpoint",
            "ipPool",
            "policy",
            "profile"
        ]
    );
    assert_eq!(Kind::from_name("Profile"), None);
    assert_eq!(Kind::from_name("ippool"), None);
    assert_eq!(Kind::IpPool.list_name(), "ipPoolList");
}

#[test]
fn keys_print_like_calico_backend_keys() {
    let ip: IpAddr = "1.2.3.4".parse().unwrap();
    let cases = [
        (ResourceKey::Profile { name: "x".into() }, "Profile(name=x)"),
        (ResourceKey::Policy { name: "p1".into() }, "Policy(name=p1)"),
        (
            ResourceKey::IpPool {
                cidr: "192.168.0.0/16".parse::<Cidr>().unwrap(),
            },
            "IPPool(cidr=192.168.0.0/16)",
        ),
        (
            ResourceKey::WorkloadEndpoint {
                node: "h".into(),
                orchestrator: "o".into(),
                workload: "w".into(),
                name: "n".into(),
            },
            "WorkloadEndpoint(node=h, orchestrator=o, workload=w, name=n)",
        ),
        (
            ResourceKey::HostEndpoint {
                node: "h".into(),
                name: "n".into(),
            },
            "HostEndpoint(node=h, name=n)",
        ),
        (ResourceKey::Node { name: "n".into() }, "Node(name=n)"),
        (
            ResourceKey::GlobalBgpPeer { ip },
            "BGPPeer(global, ip=1.2.3.4)",
        ),
        (
            ResourceKey::NodeBgpPeer {
                node: "n".into(),
                ip,
            },
            "BGPPeer(node=n, ip=1.2.3.4)",
        ),
    ];
    for (key, expected) in cases {
        assert_eq!(key.to_string(), expected);
    }
}

#[test]
fn resources_give_their_keys() {
    let input = "\
- {apiVersion: v1, kind: workloadEndpoint, metadata: {node: h, orchestrator: o, workload: w, name: n}, spec: {interfaceName: cali0}}
- {apiVersion: v1, kind: hostEndpoint, metadata: {node: h, name: eth0}, spec: {interfaceName: eth0}}
- {apiVersion: v1, kind: bgpPeer, metadata: {scope: node, node: h, peerIP: 'fd00::1'}, spec: {asNumber: 1}}
- {apiVersion: v1, kind: ipPool, metadata: {cidr: 'fd00:1::/64'}}
";
    let keys: Vec<String> = decode(input)
        .unwrap()
        .iter()
        .map(|r| r.key().unwrap().to_string())
        .collect();
    assert_eq!(
        keys,
        [
            "WorkloadEndpoint(node=h, orchestrator=o, workload=w, name=n)",
            "HostEndpoint(node=h, name=eth0)",
            "BGPPeer(node=h, ip=fd00::1)",
            "IPPool(cidr=fd00:1::/64)",
        ]
    );
}

#[test]
fn missing_identifiers_are_named() {
    let missing = |input: &str| decode(input).unwrap()[0].key().unwrap_err();
    assert_eq!(
        missing("{apiVersion: v1, kind: workloadEndpoint, metadata: {node: h, workload: w, name: n}, spec: {interfaceName: c}}"),
        InsufficientIdentifiers("orchestrator")
    );
    assert_eq!(
        missing("{apiVersion: v1, kind: ipPool}"),
        InsufficientIdentifiers("cidr")
    );
    assert_eq!(
        missing("{apiVersion: v1, kind: bgpPeer, metadata: {scope: global}}"),
        InsufficientIdentifiers("peerIP")
    );
    assert_eq!(
        missing("{apiVersion: v1, kind: profile, metadata: {}}").to_string(),
        "insufficient identifiers, missing 'name'"
    );
}
