//! Host endpoints in the desired state (Felix 2.x, v1 API): which interface each covers, the
//! plans of normal, `doNotTrack` and `preDNAT` policies, and the failsafe ports.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use calico_calc::desired::{Action, DirectionPlan, Failsafe, FailsafePort, HostEndpointPlan};
use calico_calc::CalcGraph;
use calico_model::Resource;
use common::*;

fn graph(resources: Vec<Resource>) -> CalcGraph {
    let mut graph = CalcGraph::new(NODE);
    for resource in resources {
        graph.upsert(resource);
    }
    graph
}

/// A policy selecting `selector` with one `allow` ingress rule and one `allow` egress rule,
/// made `doNotTrack` or `preDNAT` by `kind` ("untracked", "pre-dnat", else normal).
fn kind_policy(name: &str, selector: &str, order: f64, kind: &str) -> Resource {
    let egress = if kind == "pre-dnat" {
        vec![]
    } else {
        vec![action("allow")]
    };
    let mut resource = policy(
        name,
        selector,
        Some(order),
        &[],
        vec![allow_from("has(x)")],
        egress,
    );
    if let Resource::Policy(p) = &mut resource {
        p.spec.do_not_track = kind == "untracked";
        p.spec.pre_dnat = kind == "pre-dnat";
    }
    resource
}

fn addresses(pairs: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<IpAddr>> {
    pairs
        .iter()
        .map(|(iface, ips)| {
            let ips = ips.iter().map(|ip| ip.parse().unwrap()).collect();
            ((*iface).to_owned(), ips)
        })
        .collect()
}

#[test]
fn each_kind_of_policy_has_its_place_in_the_plan_and_only_normal_ones_reach_workloads() {
    let g = graph(vec![
        host_endpoint(
            NODE,
            "eth0",
            "eth0",
            &["192.0.2.1"],
            &[("role", "edge")],
            &["p"],
        ),
        endpoint(NODE, "w", "cali1", &["10.0.0.1"], &[("role", "edge")], &[]),
        kind_policy("b-normal", "role == 'edge'", 2.0, "normal"),
        kind_policy("a-normal", "role == 'edge'", 3.0, "normal"),
        kind_policy("untracked", "has(role)", 1.0, "untracked"),
        kind_policy("pre-dnat", "all()", 1.0, "pre-dnat"),
        kind_policy("elsewhere", "role == 'core'", 1.0, "normal"),
        profile("p", &[], &[], vec![action("allow")], vec![]),
    ]);
    let d = g.desired();
    let normal = |names: &[&str]| DirectionPlan {
        policies: strings(names),
        profiles: strings(&["p"]),
    };
    assert_eq!(
        d.host_endpoints["eth0"],
        HostEndpointPlan {
            ingress: normal(&["b-normal", "a-normal"]),
            egress: normal(&["b-normal", "a-normal"]),
            untracked_ingress: strings(&["untracked"]),
            untracked_egress: strings(&["untracked"]),
            pre_dnat_ingress: strings(&["pre-dnat"]),
        }
    );
    assert_eq!(
        d.endpoints["cali1"].ingress.policies,
        strings(&["b-normal", "a-normal"])
    );
    assert_eq!(
        d.policies.keys().collect::<Vec<_>>(),
        ["a-normal", "b-normal", "pre-dnat", "untracked"]
    );
    assert_eq!(
        d.policies["untracked"].ingress[0].action,
        Action::AllowUntracked
    );
    assert_eq!(
        d.policies["untracked"].egress[0].action,
        Action::AllowUntracked
    );
    assert_eq!(
        d.policies["pre-dnat"].ingress[0].action,
        Action::AllowPreDnat
    );
    assert_eq!(d.policies["a-normal"].ingress[0].action, Action::Allow);
    assert!(d.profiles.contains_key("p"));
}

#[test]
fn expected_ips_find_the_interface_and_follow_its_addresses() {
    let mut g = graph(vec![host_endpoint(
        NODE,
        "fabric",
        "",
        &["192.0.2.1"],
        &[],
        &[],
    )]);
    assert!(g.desired().host_endpoints.is_empty());
    g.take_changes();
    g.set_host_addresses(addresses(&[
        ("eth0", &["192.0.2.1"]),
        ("eth1", &["198.51.100.1"]),
    ]));
    assert_eq!(
        g.desired().host_endpoints.keys().collect::<Vec<_>>(),
        ["eth0"]
    );
    assert_eq!(g.take_changes().host_endpoints_changed, names(&["eth0"]));
    g.set_host_addresses(addresses(&[
        ("eth0", &["192.0.2.1"]),
        ("eth1", &["198.51.100.1"]),
    ]));
    assert!(g.take_changes().is_empty());
    g.set_host_addresses(addresses(&[("eth1", &["198.51.100.1", "192.0.2.1"])]));
    let changes = g.take_changes();
    assert_eq!(changes.host_endpoints_changed, names(&["eth1"]));
    assert_eq!(changes.host_endpoints_removed, names(&["eth0"]));
}

#[test]
fn a_named_interface_wins_then_the_first_by_key_and_workload_interfaces_are_never_covered() {
    let mut g = graph(vec![
        host_endpoint(NODE, "b-by-ip", "", &["192.0.2.1"], &[], &["by-ip"]),
        host_endpoint(NODE, "a-by-ip", "", &["192.0.2.1"], &[], &["first"]),
        host_endpoint(NODE, "z-named", "eth0", &[], &[], &["named"]),
        host_endpoint(NODE, "veth", "cali1", &[], &[], &[]),
        host_endpoint(NODE, "later", "eth9", &[], &[], &[]),
        host_endpoint(REMOTE, "remote", "eth0", &["192.0.2.9"], &[("x", "")], &[]),
    ]);
    g.set_host_addresses(addresses(&[
        ("eth0", &["192.0.2.1"]),
        ("eth1", &["192.0.2.1"]),
        ("cali2", &["192.0.2.1"]),
    ]));
    let d = g.desired();
    assert_eq!(
        d.host_endpoints.keys().collect::<Vec<_>>(),
        ["eth0", "eth1", "eth9"],
        "eth9 does not exist yet and is covered all the same"
    );
    assert_eq!(
        d.host_endpoints["eth0"].ingress.profiles,
        strings(&["named"])
    );
    assert_eq!(
        d.host_endpoints["eth1"].ingress.profiles,
        strings(&["first"])
    );
    g.remove(&host_endpoint_key(NODE, "z-named"));
    assert_eq!(
        g.desired().host_endpoints["eth0"].ingress.profiles,
        strings(&["first"])
    );
}

#[test]
fn host_endpoints_of_every_node_are_set_members() {
    let g = graph(vec![
        host_endpoint(REMOTE, "remote", "eth0", &["192.0.2.9"], &[("x", "")], &[]),
        host_endpoint(NODE, "local", "eth0", &["192.0.2.1"], &[("x", "")], &[]),
        endpoint(NODE, "w", "cali1", &["10.0.0.1"], &[], &[]),
        kind_policy("p", "all()", 1.0, "normal"),
    ]);
    let d = g.desired();
    let members: Vec<String> = d.ip_sets[&uid("has(x)")]
        .iter()
        .map(IpAddr::to_string)
        .collect();
    assert_eq!(members, ["192.0.2.1", "192.0.2.9"]);
}

#[test]
fn policy_changes_and_removals_reach_the_host_endpoint_plans() {
    let mut g = graph(vec![
        host_endpoint(NODE, "eth0", "eth0", &[], &[("role", "edge")], &[]),
        kind_policy("p", "role == 'edge'", 1.0, "normal"),
    ]);
    g.take_changes();
    g.upsert(kind_policy("p", "role == 'edge'", 1.0, "untracked"));
    let changes = g.take_changes();
    assert_eq!(changes.host_endpoints_changed, names(&["eth0"]));
    assert_eq!(changes.policies_changed, names(&["p"]));
    let plan = &g.desired().host_endpoints["eth0"];
    assert!(plan.ingress.policies.is_empty());
    assert_eq!(plan.untracked_ingress, strings(&["p"]));
    g.upsert(kind_policy("p", "role == 'core'", 1.0, "untracked"));
    assert_eq!(
        g.desired().host_endpoints["eth0"],
        HostEndpointPlan::default()
    );
    assert_eq!(g.take_changes().policies_removed, names(&["p"]));
    g.remove(&host_endpoint_key(NODE, "eth0"));
    assert_eq!(g.take_changes().host_endpoints_removed, names(&["eth0"]));
}

#[test]
fn new_failsafe_ports_rewrite_every_host_endpoint() {
    let mut g = graph(vec![
        host_endpoint(NODE, "a", "eth0", &[], &[], &[]),
        host_endpoint(NODE, "b", "eth1", &[], &[], &[]),
    ]);
    assert_eq!(g.desired().failsafe, Failsafe::default());
    g.take_changes();
    g.set_failsafe(Failsafe::default());
    assert!(g.take_changes().is_empty());
    g.set_failsafe(Failsafe {
        inbound: vec![FailsafePort {
            protocol: 6,
            port: 2222,
        }],
        outbound: vec![],
    });
    assert_eq!(
        g.take_changes().host_endpoints_changed,
        names(&["eth0", "eth1"])
    );
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}
