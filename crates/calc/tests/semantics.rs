//! Policy semantics of the desired state (Felix 2.x, v1 API).

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;

use calico_calc::desired::Action;
use calico_calc::CalcGraph;
use calico_model::{IpPool, Node, Resource};
use common::*;

fn ips(list: &[&str]) -> BTreeSet<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn graph(resources: Vec<Resource>) -> CalcGraph {
    let mut graph = CalcGraph::new(NODE);
    for resource in resources {
        graph.upsert(resource);
    }
    graph
}

#[test]
fn policies_sort_by_order_missing_last_then_name() {
    let g = graph(vec![
        endpoint(NODE, "e", "cali1", &["10.0.0.1"], &[], &[]),
        policy("a", "", Some(10.0), &[], vec![], vec![]),
        policy("b", "", Some(5.0), &[], vec![], vec![]),
        policy("c", "", None, &[], vec![], vec![]),
        policy("aa", "", None, &[], vec![], vec![]),
        policy("e", "", Some(5.0), &[], vec![], vec![]),
        policy("neg", "all()", Some(-1.5), &[], vec![], vec![]),
    ]);
    let plan = &g.desired().endpoints["cali1"];
    let expected = strings(&["neg", "b", "e", "a", "aa", "c"]);
    assert_eq!(plan.ingress.policies, expected);
    assert_eq!(plan.egress.policies, expected);
}

#[test]
fn types_decide_the_directions() {
    let mut g = graph(vec![
        endpoint(NODE, "e", "cali1", &["10.0.0.1"], &[], &[]),
        policy(
            "in",
            "",
            None,
            &["ingress"],
            vec![action("allow")],
            vec![allow_from("has(x)")],
        ),
        policy("out", "", None, &["egress"], vec![], vec![action("deny")]),
        policy(
            "both",
            "",
            None,
            &["ingress", "egress"],
            vec![action("allow")],
            vec![],
        ),
        policy("empty", "", None, &[], vec![], vec![action("log")]),
        policy(
            "none",
            "",
            None,
            &["sideways"],
            vec![action("allow")],
            vec![],
        ),
    ]);
    let d = g.desired();
    let plan = &d.endpoints["cali1"];
    assert_eq!(plan.ingress.policies, strings(&["both", "empty", "in"]));
    assert_eq!(plan.egress.policies, strings(&["both", "empty", "out"]));
    // Rules of a direction the policy does not govern are left out, with their IP sets.
    assert!(d.policies["in"].egress.is_empty());
    assert!(d.ip_sets.is_empty());
    assert_eq!(d.policies["out"].egress[0].action, Action::Deny);
    // Governing egress with no egress rules: present, empty (default deny for egress).
    assert!(d.policies["both"].egress.is_empty());
    assert_eq!(d.policies["empty"].egress[0].action, Action::Log);
    // A policy governing no direction is not used.
    assert!(!d.policies.contains_key("none"));

    // Widening "in" to egress brings its egress rules and their set.
    g.take_changes();
    g.upsert(policy(
        "in",
        "",
        None,
        &["ingress", "egress"],
        vec![action("allow")],
        vec![allow_from("has(x)")],
    ));
    let d = g.desired();
    assert_eq!(
        d.endpoints["cali1"].egress.policies,
        strings(&["both", "empty", "in", "out"])
    );
    assert!(d.ip_sets.contains_key(&uid("has(x)")));
    let changes = g.take_changes();
    assert_eq!(changes.policies_changed, BTreeSet::from(["in".to_owned()]));
    assert_eq!(
        changes.endpoints_changed,
        BTreeSet::from(["cali1".to_owned()])
    );
}

#[test]
fn effective_labels_inherit_from_profiles_in_order() {
    let mut g = graph(vec![
        profile(
            "p1",
            &[("role", "p1"), ("zone", "p1")],
            &["tier", "zone"],
            vec![],
            vec![],
        ),
        profile(
            "p2",
            &[("role", "p2"), ("tier", "p2"), ("net", "p2")],
            &[],
            vec![],
            vec![],
        ),
        endpoint(
            NODE,
            "e",
            "cali1",
            &["10.0.0.1"],
            &[("role", "own")],
            &["p1", "p2"],
        ),
        policy("own", "role == 'own'", None, &[], vec![], vec![]),
        policy(
            "profile-role",
            "role == 'p1' || role == 'p2'",
            None,
            &[],
            vec![],
            vec![],
        ),
        policy("first-label", "zone == 'p1'", None, &[], vec![], vec![]),
        policy(
            "tag-beats-later-label",
            "tier == ''",
            None,
            &[],
            vec![],
            vec![],
        ),
        policy("later-profile", "net == 'p2'", None, &[], vec![], vec![]),
    ]);
    let selected = |g: &CalcGraph| g.desired().endpoints["cali1"].ingress.policies.clone();
    assert_eq!(
        selected(&g),
        strings(&[
            "first-label",
            "later-profile",
            "own",
            "tag-beats-later-label"
        ])
    );
    // The endpoint's own label goes: the first profile's label shows through.
    g.upsert(endpoint(
        NODE,
        "e",
        "cali1",
        &["10.0.0.1"],
        &[],
        &["p1", "p2"],
    ));
    assert_eq!(
        selected(&g),
        strings(&[
            "first-label",
            "later-profile",
            "profile-role",
            "tag-beats-later-label"
        ])
    );
    // Swapping profile order: p2's label now wins for `tier`.
    g.upsert(endpoint(
        NODE,
        "e",
        "cali1",
        &["10.0.0.1"],
        &[],
        &["p2", "p1"],
    ));
    assert_eq!(
        selected(&g),
        strings(&["first-label", "later-profile", "profile-role"])
    );
    // A profile's labels changing re-evaluates its endpoints.
    g.upsert(profile("p2", &[], &[], vec![], vec![]));
    assert_eq!(
        selected(&g),
        strings(&["first-label", "profile-role", "tag-beats-later-label"])
    );
}

#[test]
fn tags_in_rules_are_has_selectors_over_all_hosts() {
    let g = graph(vec![
        profile(
            "net1",
            &[],
            &["net1"],
            vec![allow_from_tag("net1")],
            vec![action("allow")],
        ),
        endpoint(NODE, "a", "cali1", &["10.0.0.1"], &[], &["net1"]),
        endpoint(REMOTE, "b", "cali1", &["10.0.1.1"], &[], &["net1"]),
        // A label named like the tag counts too (deliberate aliasing in Felix).
        endpoint(REMOTE, "c", "cali2", &["10.0.1.2"], &[("net1", "x")], &[]),
        endpoint(REMOTE, "d", "cali3", &["10.0.1.3"], &[], &[]),
    ]);
    let d = g.desired();
    let id = uid("has(net1)");
    assert_eq!(
        d.profiles["net1"].ingress[0].source.in_sets,
        vec![id.clone()]
    );
    assert_eq!(d.ip_sets[&id], ips(&["10.0.0.1", "10.0.1.1", "10.0.1.2"]));
    // Only local endpoints get plans.
    assert_eq!(d.endpoints.keys().collect::<Vec<_>>(), ["cali1"]);
    assert_eq!(
        d.endpoints["cali1"].addrs,
        vec!["10.0.0.1/32".parse().unwrap()]
    );
}

#[test]
fn selector_and_not_selector_sets() {
    let mut rule = action("deny");
    rule.source.selector = "role == 'db'".to_owned();
    rule.source.tag = "net".to_owned();
    rule.destination.not_selector = "role == 'web'".to_owned();
    rule.destination.not_tag = "admin".to_owned();
    let g = graph(vec![
        endpoint(
            NODE,
            "a",
            "cali1",
            &["10.0.0.1"],
            &[("role", "db"), ("net", "")],
            &[],
        ),
        endpoint(REMOTE, "b", "cali1", &["10.0.1.1"], &[("role", "web")], &[]),
        endpoint(REMOTE, "c", "cali2", &["10.0.1.2"], &[("role", "db")], &[]),
        policy("p", "has(role)", None, &["egress"], vec![], vec![rule]),
    ]);
    let d = g.desired();
    let compiled = &d.policies["p"].egress[0];
    assert_eq!(
        compiled.source.in_sets,
        vec![uid("role == 'db'"), uid("has(net)")]
    );
    assert_eq!(
        compiled.destination.not_in_sets,
        vec![uid("role == 'web'"), uid("has(admin)")]
    );
    assert_eq!(
        d.ip_sets[&uid("role == 'db'")],
        ips(&["10.0.0.1", "10.0.1.2"])
    );
    assert_eq!(d.ip_sets[&uid("has(net)")], ips(&["10.0.0.1"]));
    assert_eq!(d.ip_sets[&uid("role == 'web'")], ips(&["10.0.1.1"]));
    assert_eq!(d.ip_sets[&uid("has(admin)")], ips(&[]));
    assert_eq!(d.ip_sets.len(), 4);
}

#[test]
fn only_policies_and_sets_used_by_local_endpoints_appear() {
    let mut g = graph(vec![
        endpoint(NODE, "a", "cali1", &["10.0.0.1"], &[("role", "web")], &[]),
        endpoint(
            REMOTE,
            "b",
            "cali1",
            &["10.0.1.1"],
            &[("role", "db")],
            &["remote-only"],
        ),
        policy(
            "web",
            "role == 'web'",
            None,
            &[],
            vec![allow_from("role == 'db'")],
            vec![],
        ),
        policy(
            "db",
            "role == 'db'",
            None,
            &[],
            vec![allow_from("role == 'web'")],
            vec![],
        ),
        profile("remote-only", &[], &[], vec![allow_from("has(x)")], vec![]),
    ]);
    let d = g.desired();
    assert_eq!(d.policies.keys().collect::<Vec<_>>(), ["web"]);
    assert!(d.profiles.is_empty());
    assert_eq!(d.ip_sets.keys().collect::<Vec<_>>(), [&uid("role == 'db'")]);
    assert_eq!(d.ip_sets[&uid("role == 'db'")], ips(&["10.0.1.1"]));

    // The local endpoint becomes a db: the policies swap, and so do the sets.
    g.upsert(endpoint(
        NODE,
        "a",
        "cali1",
        &["10.0.0.1"],
        &[("role", "db")],
        &[],
    ));
    let d = g.desired();
    assert_eq!(d.policies.keys().collect::<Vec<_>>(), ["db"]);
    assert_eq!(
        d.ip_sets.keys().collect::<Vec<_>>(),
        [&uid("role == 'web'")]
    );
    assert!(d.ip_sets[&uid("role == 'web'")].is_empty());
    assert_eq!(d.endpoints["cali1"].ingress.policies, strings(&["db"]));
}

#[test]
fn missing_profile_is_deny_all_until_it_arrives() {
    let mut g = graph(vec![endpoint(
        NODE,
        "a",
        "cali1",
        &["10.0.0.1"],
        &[],
        &["late"],
    )]);
    let deny = g.desired().profiles["late"].clone();
    assert_eq!(deny.ingress.len(), 1);
    assert_eq!(deny.ingress[0].action, Action::Deny);
    assert_eq!(deny.egress, deny.ingress);
    assert_eq!(deny.ingress[0].source, Default::default());
    let plan = g.desired().endpoints["cali1"].clone();
    assert_eq!(plan.ingress.profiles, strings(&["late"]));
    g.take_changes();

    g.upsert(profile(
        "late",
        &[],
        &["late"],
        vec![allow_from_tag("late")],
        vec![action("allow")],
    ));
    let d = g.desired();
    assert_eq!(d.profiles["late"].egress[0].action, Action::Allow);
    assert_eq!(d.ip_sets[&uid("has(late)")], ips(&["10.0.0.1"]));
    assert_eq!(d.endpoints["cali1"], plan);
    let changes = g.take_changes();
    assert_eq!(
        changes.profiles_changed,
        BTreeSet::from(["late".to_owned()])
    );
    assert!(changes.endpoints_changed.is_empty());

    // Deleting it again fails closed.
    g.remove(&profile_key("late"));
    assert_eq!(g.desired().profiles["late"], deny);
    assert!(g.desired().ip_sets.is_empty());
}

#[test]
fn shared_addresses_are_reference_counted() {
    let mut g = graph(vec![
        endpoint(NODE, "a", "cali1", &["10.0.0.1"], &[("app", "x")], &[]),
        policy("p", "", None, &[], vec![allow_from("app == 'x'")], vec![]),
        endpoint(
            REMOTE,
            "b",
            "cali1",
            &["10.0.0.1", "10.0.0.2"],
            &[("app", "x")],
            &[],
        ),
    ]);
    let id = uid("app == 'x'");
    assert_eq!(g.desired().ip_sets[&id], ips(&["10.0.0.1", "10.0.0.2"]));
    g.remove(&endpoint_key(REMOTE, "b"));
    assert_eq!(g.desired().ip_sets[&id], ips(&["10.0.0.1"]));
    g.upsert(endpoint(
        REMOTE,
        "b",
        "cali1",
        &["10.0.0.1"],
        &[("app", "x")],
        &[],
    ));
    g.upsert(endpoint(
        NODE,
        "a",
        "cali1",
        &["10.0.0.1"],
        &[("app", "y")],
        &[],
    ));
    assert_eq!(g.desired().ip_sets[&id], ips(&["10.0.0.1"]));
    g.upsert(endpoint(
        REMOTE,
        "b",
        "cali1",
        &["10.0.0.3"],
        &[("app", "x")],
        &[],
    ));
    assert_eq!(g.desired().ip_sets[&id], ips(&["10.0.0.3"]));
}

#[test]
fn invalid_policies_fail_closed() {
    let mut bad_protocol = action("allow");
    bad_protocol.protocol = Some("gre".into());
    let g = graph(vec![
        endpoint(NODE, "a", "cali1", &["10.0.0.1"], &[], &[]),
        policy(
            "bad-selector",
            "role ==",
            Some(1.0),
            &[],
            vec![action("allow")],
            vec![],
        ),
        policy(
            "bad-rule",
            "",
            Some(2.0),
            &["ingress"],
            vec![action("allow"), bad_protocol],
            vec![],
        ),
    ]);
    let d = g.desired();
    assert!(!d.policies.contains_key("bad-selector"));
    let rules = &d.policies["bad-rule"];
    assert_eq!(rules.ingress.len(), 1);
    assert_eq!(rules.ingress[0].action, Action::Deny);
    assert!(rules.egress.is_empty());
    assert_eq!(
        d.endpoints["cali1"].ingress.policies,
        strings(&["bad-rule"])
    );
}

#[test]
fn an_interface_belongs_to_the_endpoint_with_the_smallest_key() {
    let mut g = graph(vec![
        endpoint(NODE, "b", "cali1", &["10.0.0.2"], &[], &[]),
        endpoint(NODE, "a", "cali1", &["10.0.0.1"], &[], &[]),
        endpoint(NODE, "c", "", &["10.0.0.3"], &[], &["p"]),
    ]);
    let d = g.desired();
    assert_eq!(d.endpoints.len(), 1);
    assert_eq!(
        d.endpoints["cali1"].addrs,
        vec!["10.0.0.1/32".parse().unwrap()]
    );
    // An endpoint without an interface has no plan but still uses its profile.
    assert!(d.profiles.contains_key("p"));
    g.remove(&endpoint_key(NODE, "a"));
    assert_eq!(
        g.desired().endpoints["cali1"].addrs,
        vec!["10.0.0.2/32".parse().unwrap()]
    );
}

#[test]
fn other_kinds_and_incomplete_resources_are_ignored() {
    let mut g = graph(vec![
        Resource::Node(Node::default()),
        Resource::IpPool(IpPool::default()),
        endpoint(NODE, "", "cali1", &["10.0.0.1"], &[], &[]),
        policy("", "", None, &[], vec![], vec![]),
        profile("", &[], &[], vec![], vec![]),
    ]);
    assert_eq!(g.desired(), &Default::default());
    assert!(g.take_changes().is_empty());
    g.remove(&policy_key("nope"));
    g.remove(&profile_key("nope"));
    g.remove(&endpoint_key(NODE, "nope"));
    g.remove(&calico_model::ResourceKey::Node {
        name: NODE.to_owned(),
    });
    assert!(g.take_changes().is_empty());
}

#[test]
fn the_graph_can_move_between_threads() {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<CalcGraph>();
}

#[test]
fn do_not_track_and_pre_dnat_policies_never_apply_to_workloads() {
    let host_only = |name: &str, set: fn(&mut calico_model::PolicySpec)| {
        let mut resource = policy(
            name,
            "all()",
            None,
            &[],
            vec![allow_from("has(x)")],
            vec![action("deny")],
        );
        if let Resource::Policy(p) = &mut resource {
            set(&mut p.spec);
        }
        resource
    };
    let g = graph(vec![
        endpoint(NODE, "e", "cali1", &["10.0.0.1"], &[], &[]),
        host_only("untracked", |s| s.do_not_track = true),
        host_only("pre-dnat", |s| s.pre_dnat = true),
        policy("normal", "all()", None, &[], vec![action("allow")], vec![]),
    ]);
    let d = g.desired();
    let plan = &d.endpoints["cali1"];
    assert_eq!(plan.ingress.policies, strings(&["normal"]));
    assert_eq!(plan.egress.policies, strings(&["normal"]));
    assert_eq!(d.policies.keys().collect::<Vec<_>>(), ["normal"]);
    assert!(d.ip_sets.is_empty(), "{:?}", d.ip_sets);
}
