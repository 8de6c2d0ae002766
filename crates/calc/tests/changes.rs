//! What `take_changes` reports: exactly what changed, and only that.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use calico_calc::{CalcGraph, Changes};
use calico_model::{IpPool, IpPoolMetadata, IpPoolSpec, Resource, ResourceKey};
use common::*;

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn members(set: &str, list: &[&str]) -> BTreeMap<String, BTreeSet<IpAddr>> {
    BTreeMap::from([(
        set.to_owned(),
        list.iter().map(|s| s.parse().unwrap()).collect(),
    )])
}

/// Two local endpoints (web on cali1, db on cali2), one remote db, two policies and a profile.
fn cluster() -> CalcGraph {
    let mut g = CalcGraph::new(NODE);
    for resource in [
        profile(
            "base",
            &[("zone", "z")],
            &["base"],
            vec![allow_from_tag("base")],
            vec![action("allow")],
        ),
        endpoint(
            NODE,
            "web",
            "cali1",
            &["10.0.0.1"],
            &[("role", "web")],
            &["base"],
        ),
        endpoint(
            NODE,
            "db",
            "cali2",
            &["10.0.0.2"],
            &[("role", "db")],
            &["base"],
        ),
        endpoint(
            REMOTE,
            "db",
            "cali1",
            &["10.0.1.2"],
            &[("role", "db")],
            &["base"],
        ),
        policy(
            "web",
            "role == 'web'",
            Some(10.0),
            &[],
            vec![allow_from("role == 'db'")],
            vec![],
        ),
        policy("all", "", Some(20.0), &[], vec![action("log")], vec![]),
    ] {
        g.upsert(resource);
    }
    g
}

#[test]
fn the_first_report_holds_everything() {
    let mut g = cluster();
    let changes = g.take_changes();
    let d = g.desired();
    assert_eq!(changes.sets_created, d.ip_sets.keys().cloned().collect());
    let non_empty: BTreeMap<_, _> = d
        .ip_sets
        .iter()
        .filter(|(_, m)| !m.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(changes.members_added, non_empty);
    assert_eq!(changes.policies_changed, names(&["all", "web"]));
    assert_eq!(changes.profiles_changed, names(&["base"]));
    assert_eq!(changes.endpoints_changed, names(&["cali1", "cali2"]));
    assert!(changes.sets_deleted.is_empty() && changes.members_removed.is_empty());
    assert!(g.take_changes().is_empty());
}

#[test]
fn identical_upserts_change_nothing() {
    let mut g = cluster();
    g.take_changes();
    for resource in [
        profile(
            "base",
            &[("zone", "z")],
            &["base"],
            vec![allow_from_tag("base")],
            vec![action("allow")],
        ),
        endpoint(
            NODE,
            "web",
            "cali1",
            &["10.0.0.1"],
            &[("role", "web")],
            &["base"],
        ),
        endpoint(
            REMOTE,
            "db",
            "cali1",
            &["10.0.1.2"],
            &[("role", "db")],
            &["base"],
        ),
        policy(
            "web",
            "role == 'web'",
            Some(10.0),
            &[],
            vec![allow_from("role == 'db'")],
            vec![],
        ),
    ] {
        g.upsert(resource);
        assert_eq!(g.take_changes(), Changes::default());
    }
}

#[test]
fn a_remote_label_change_only_touches_set_members() {
    let mut g = cluster();
    g.take_changes();
    g.upsert(endpoint(
        REMOTE,
        "db",
        "cali1",
        &["10.0.1.2"],
        &[("role", "cache")],
        &["base"],
    ));
    assert_eq!(
        g.take_changes(),
        Changes {
            members_removed: members(&uid("role == 'db'"), &["10.0.1.2"]),
            ..Changes::default()
        }
    );
    g.upsert(endpoint(
        REMOTE,
        "db",
        "cali1",
        &["10.0.1.2"],
        &[("role", "db")],
        &["base"],
    ));
    assert_eq!(
        g.take_changes(),
        Changes {
            members_added: members(&uid("role == 'db'"), &["10.0.1.2"]),
            ..Changes::default()
        }
    );
    // Changed then changed back before the report: nothing to report.
    g.upsert(endpoint(
        REMOTE,
        "db",
        "cali1",
        &["10.0.1.9"],
        &[("role", "cache")],
        &[],
    ));
    g.upsert(endpoint(
        REMOTE,
        "db",
        "cali1",
        &["10.0.1.2"],
        &[("role", "db")],
        &["base"],
    ));
    assert!(g.take_changes().is_empty());
}

#[test]
fn a_profile_label_change_reaches_its_endpoints() {
    let mut g = cluster();
    g.upsert(policy("zone", "zone == 'z'", None, &[], vec![], vec![]));
    g.take_changes();
    g.upsert(profile(
        "base",
        &[("zone", "y")],
        &["base"],
        vec![allow_from_tag("base")],
        vec![action("allow")],
    ));
    assert_eq!(
        g.take_changes(),
        Changes {
            policies_removed: names(&["zone"]),
            endpoints_changed: names(&["cali1", "cali2"]),
            ..Changes::default()
        }
    );
}

#[test]
fn an_order_change_marks_only_the_endpoints_it_selects() {
    let mut g = cluster();
    g.take_changes();
    g.upsert(policy(
        "web",
        "role == 'web'",
        Some(30.0),
        &[],
        vec![allow_from("role == 'db'")],
        vec![],
    ));
    let changes = g.take_changes();
    assert_eq!(
        changes,
        Changes {
            endpoints_changed: names(&["cali1"]),
            ..Changes::default()
        }
    );
    assert_eq!(
        g.desired().endpoints["cali1"].ingress.policies,
        vec!["all".to_owned(), "web".to_owned()]
    );
}

#[test]
fn a_rule_change_touches_the_policy_and_its_sets() {
    let mut g = cluster();
    g.take_changes();
    g.upsert(policy(
        "web",
        "role == 'web'",
        Some(10.0),
        &[],
        vec![allow_from("zone == 'z'")],
        vec![],
    ));
    let created = uid("zone == 'z'");
    assert_eq!(
        g.take_changes(),
        Changes {
            sets_created: names(&[&created]),
            sets_deleted: names(&[&uid("role == 'db'")]),
            members_added: members(&created, &["10.0.0.1", "10.0.0.2", "10.0.1.2"]),
            policies_changed: names(&["web"]),
            ..Changes::default()
        }
    );
}

#[test]
fn removals_are_reported() {
    let mut g = cluster();
    g.take_changes();
    g.remove(&endpoint_key(NODE, "web"));
    assert_eq!(
        g.take_changes(),
        Changes {
            sets_deleted: names(&[&uid("role == 'db'")]),
            members_removed: members(&uid("has(base)"), &["10.0.0.1"]),
            policies_removed: names(&["web"]),
            endpoints_removed: names(&["cali1"]),
            ..Changes::default()
        }
    );
    g.remove(&policy_key("all"));
    assert_eq!(
        g.take_changes(),
        Changes {
            policies_removed: names(&["all"]),
            endpoints_changed: names(&["cali2"]),
            ..Changes::default()
        }
    );
    g.remove(&endpoint_key(NODE, "db"));
    assert_eq!(
        g.take_changes(),
        Changes {
            sets_deleted: names(&[&uid("has(base)")]),
            profiles_removed: names(&["base"]),
            endpoints_removed: names(&["cali2"]),
            ..Changes::default()
        }
    );
    g.remove(&endpoint_key(REMOTE, "db"));
    g.remove(&profile_key("base"));
    g.remove(&policy_key("web"));
    assert!(g.take_changes().is_empty());
    assert_eq!(g.desired(), &Default::default());
}

fn pool(cidr: &str, nat_outgoing: bool) -> Resource {
    Resource::IpPool(IpPool {
        metadata: IpPoolMetadata {
            cidr: Some(cidr.parse().unwrap()),
        },
        spec: IpPoolSpec {
            nat_outgoing,
            ..IpPoolSpec::default()
        },
    })
}

#[test]
fn pools_are_reported_when_their_nat_setting_or_existence_changes() {
    let mut g = cluster();
    g.take_changes();
    g.upsert(pool("192.168.0.0/16", true));
    g.upsert(pool("fd00::/64", false));
    let changes = g.take_changes();
    assert_eq!(
        changes,
        Changes {
            pools_changed: true,
            ..Changes::default()
        }
    );
    let nat = |cidr: &str| g.desired().pools[&cidr.parse().unwrap()].nat_outgoing;
    assert!(nat("192.168.0.0/16") && !nat("fd00::/64"));

    // the same pool again, or a flip undone before the report: nothing to report
    g.upsert(pool("192.168.0.0/16", true));
    g.upsert(pool("192.168.0.0/16", false));
    g.upsert(pool("192.168.0.0/16", true));
    assert!(g.take_changes().is_empty());

    g.upsert(pool("192.168.0.0/16", false));
    assert!(g.take_changes().pools_changed);
    assert!(!g.desired().pools[&"192.168.0.0/16".parse().unwrap()].nat_outgoing);

    g.remove(&ResourceKey::IpPool {
        cidr: "fd00::/64".parse().unwrap(),
    });
    assert!(g.take_changes().pools_changed);
    assert_eq!(g.desired().pools.len(), 1);
}

#[test]
fn published_ports_are_reported_when_they_change() {
    let mut g = cluster();
    g.take_changes();
    let port = calico_calc::desired::PublishedPort {
        protocol: 6,
        host_ip: None,
        host_port: 8080,
        endpoint_ip: "10.0.0.1".parse().unwrap(),
        endpoint_port: 80,
    };
    g.set_published("cali1", vec![port, port]);
    assert!(g.take_changes().published_changed);
    assert_eq!(g.desired().published["cali1"], [port]);
    g.set_published("cali1", vec![port]);
    g.set_published("cali2", vec![]);
    assert!(g.take_changes().is_empty());
    g.set_published("cali1", vec![]);
    assert!(g.take_changes().published_changed);
    assert!(g.desired().published.is_empty());
}
