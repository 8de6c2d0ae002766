//! States-style property test: random sequences of upserts and removals over a small universe
//! of endpoints (local and remote), profiles and policies. After every step the graph's
//! desired state must equal one computed from scratch by the brute-force reference below, and
//! replaying the reported changes onto a shadow copy must reproduce it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use calico_calc::desired::{Action, Desired, DirectionPlan, LocalEndpoint, Rule, Rules, SideMatch};
use calico_calc::{CalcGraph, Changes};
use calico_model::{Policy, Profile, Resource, ResourceKey, Rule as ApiRule, WorkloadEndpoint};
use common::*;
use proptest::prelude::*;
use proptest::sample::select;

// ---- the universe ---------------------------------------------------------------------------

const ENDPOINTS: [(&str, &str); 5] = [
    (NODE, "e0"),
    (NODE, "e1"),
    (NODE, "e2"),
    (REMOTE, "e0"),
    (REMOTE, "e3"),
];
const INTERFACES: [&str; 4] = ["cali0", "cali1", "cali2", ""];
const IPS: [&str; 4] = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "fd00::1"];
const LABEL_KEYS: [&str; 3] = ["role", "env", "t1"];
const LABEL_VALUES: [&str; 3] = ["a", "b", ""];
const PROFILES: [&str; 3] = ["p0", "p1", "p2"];
const TAGS: [&str; 3] = ["t1", "t2", "role"];
const POLICIES: [&str; 4] = ["pol0", "pol1", "pol2", "pol3"];
const SELECTORS: [&str; 7] = [
    "all()",
    "role == 'a'",
    "has(t1)",
    "env != 'b'",
    "role == 'a' && has(env)",
    "((bad",
    "",
];
const ORDERS: [Option<f64>; 3] = [None, Some(1.0), Some(2.0)];
const TYPES: [&[&str]; 4] = [&[], &["ingress"], &["egress"], &["ingress", "egress"]];
const RULES: usize = 7;

/// Rule templates: what the reference compiler below understands.
fn rule_template(i: usize) -> ApiRule {
    let mut rule = action(["allow", "deny", "allow", "allow", "log", "allow", ""][i]);
    match i {
        1 => rule.source.selector = "role == 'a'".to_owned(),
        2 => rule.source.tag = "t1".to_owned(),
        3 => {
            rule.source.selector = "has(env)".to_owned();
            rule.source.tag = "t2".to_owned();
            rule.destination.not_selector = "env == 'b'".to_owned();
            rule.destination.not_tag = "t1".to_owned();
        }
        4 => rule.protocol = Some("tcp".into()),
        5 => rule.protocol = Some("gre".into()),
        _ => rule.source.selector = "all()".to_owned(),
    }
    rule
}

#[derive(Clone, Debug)]
enum Op {
    Upsert(Box<Resource>),
    Remove(ResourceKey),
}

fn label_map() -> impl Strategy<Value = Vec<(&'static str, &'static str)>> {
    prop::collection::vec((select(&LABEL_KEYS[..]), select(&LABEL_VALUES[..])), 0..3)
}

fn rules() -> impl Strategy<Value = Vec<ApiRule>> {
    prop::collection::vec((0..RULES).prop_map(rule_template), 0..3)
}

fn op() -> impl Strategy<Value = Op> {
    let endpoint_op = (
        0..ENDPOINTS.len(),
        select(&INTERFACES[..]),
        prop::collection::vec(select(&IPS[..]), 0..3),
        label_map(),
        prop::collection::vec(select(&PROFILES[..]), 0..3),
    )
        .prop_map(|(i, iface, ips, own, profiles)| {
            let (node, name) = ENDPOINTS[i];
            Op::Upsert(Box::new(endpoint(node, name, iface, &ips, &own, &profiles)))
        });
    let profile_op = (
        select(&PROFILES[..]),
        label_map(),
        prop::collection::vec(select(&TAGS[..]), 0..2),
        rules(),
        rules(),
    )
        .prop_map(|(name, own, tags, ingress, egress)| {
            Op::Upsert(Box::new(profile(name, &own, &tags, ingress, egress)))
        });
    let policy_op = (
        select(&POLICIES[..]),
        select(&SELECTORS[..]),
        select(&ORDERS[..]),
        select(&TYPES[..]),
        rules(),
        rules(),
    )
        .prop_map(|(name, sel, order, types, ingress, egress)| {
            Op::Upsert(Box::new(policy(name, sel, order, types, ingress, egress)))
        });
    prop_oneof![
        4 => endpoint_op,
        2 => profile_op,
        3 => policy_op,
        1 => (0..ENDPOINTS.len()).prop_map(|i| Op::Remove(endpoint_key(ENDPOINTS[i].0, ENDPOINTS[i].1))),
        1 => select(&PROFILES[..]).prop_map(|n| Op::Remove(profile_key(n))),
        1 => select(&POLICIES[..]).prop_map(|n| Op::Remove(policy_key(n))),
    ]
}

// ---- the datastore as the test sees it ------------------------------------------------------

#[derive(Default)]
struct Store {
    endpoints: BTreeMap<(String, String), WorkloadEndpoint>,
    profiles: BTreeMap<String, Profile>,
    policies: BTreeMap<String, Policy>,
}

impl Store {
    fn apply(&mut self, op: &Op) {
        match op {
            Op::Upsert(resource) => match &**resource {
                Resource::WorkloadEndpoint(e) => {
                    let key = (e.metadata.node.clone(), e.metadata.name.clone());
                    self.endpoints.insert(key, e.clone());
                }
                Resource::Profile(p) => {
                    self.profiles.insert(p.metadata.name.clone(), p.clone());
                }
                Resource::Policy(p) => {
                    self.policies.insert(p.metadata.name.clone(), p.clone());
                }
                _ => unreachable!("not in the universe"),
            },
            Op::Remove(ResourceKey::WorkloadEndpoint { node, name, .. }) => {
                self.endpoints.remove(&(node.clone(), name.clone()));
            }
            Op::Remove(ResourceKey::Profile { name }) => {
                self.profiles.remove(name);
            }
            Op::Remove(ResourceKey::Policy { name }) => {
                self.policies.remove(name);
            }
            Op::Remove(_) => unreachable!("not in the universe"),
        }
    }
}

// ---- the brute-force reference --------------------------------------------------------------

fn effective_labels(store: &Store, e: &WorkloadEndpoint) -> BTreeMap<String, String> {
    let mut labels = e.metadata.labels.clone();
    for name in &e.spec.profiles {
        if let Some(p) = store.profiles.get(name) {
            for (k, v) in &p.metadata.labels {
                labels.entry(k.clone()).or_insert_with(|| v.clone());
            }
            for tag in &p.metadata.tags {
                labels.entry(tag.clone()).or_default();
            }
        }
    }
    labels
}

fn governs(p: &Policy, direction: &str) -> bool {
    p.spec.types.is_empty() || p.spec.types.iter().any(|t| t == direction)
}

fn selects(p: &Policy, labels: &BTreeMap<String, String>) -> bool {
    (governs(p, "ingress") || governs(p, "egress"))
        && calico_selector::parse(&p.spec.selector).is_ok_and(|s| s.matches(labels))
}

/// Compiles the templates' fields only; `None` when a rule is invalid.
fn compile(rules: &[ApiRule]) -> Option<Vec<Rule>> {
    let sets = |sel: &str, tag: &str| -> Vec<String> {
        let mut out = Vec::new();
        if !sel.is_empty() {
            out.push(uid(sel));
        }
        if !tag.is_empty() {
            out.push(uid(&format!("has({tag})")));
        }
        out
    };
    rules
        .iter()
        .map(|r| {
            let protocol = match r.protocol.as_ref().map(|p| p.to_string()) {
                None => None,
                Some(p) if p == "tcp" => Some(6),
                Some(_) => return None,
            };
            let action = match r.action.as_str() {
                "" | "allow" => Action::Allow,
                "deny" => Action::Deny,
                "log" => Action::Log,
                _ => Action::Pass,
            };
            Some(Rule {
                protocol,
                source: SideMatch {
                    in_sets: sets(&r.source.selector, &r.source.tag),
                    ..SideMatch::default()
                },
                destination: SideMatch {
                    not_in_sets: sets(&r.destination.not_selector, &r.destination.not_tag),
                    ..SideMatch::default()
                },
                ..Rule::new(action)
            })
        })
        .collect()
}

/// Rules for the governed directions; a single deny in each when any rule is invalid.
fn compile_both(ingress: Option<&[ApiRule]>, egress: Option<&[ApiRule]>) -> Rules {
    match (
        ingress.map_or(Some(vec![]), compile),
        egress.map_or(Some(vec![]), compile),
    ) {
        (Some(ingress), Some(egress)) => Rules { ingress, egress },
        _ => Rules {
            ingress: ingress.map_or(vec![], |_| vec![Rule::new(Action::Deny)]),
            egress: egress.map_or(vec![], |_| vec![Rule::new(Action::Deny)]),
        },
    }
}

fn reference(store: &Store) -> Desired {
    let labels: BTreeMap<_, _> = store
        .endpoints
        .iter()
        .map(|(k, e)| (k.clone(), effective_labels(store, e)))
        .collect();
    let local: Vec<_> = store
        .endpoints
        .iter()
        .filter(|(k, _)| k.0 == NODE)
        .collect();
    let mut d = Desired::default();
    for (name, p) in &store.policies {
        if local.iter().any(|(k, _)| selects(p, &labels[*k])) {
            let rules = compile_both(
                governs(p, "ingress").then_some(&p.spec.ingress[..]),
                governs(p, "egress").then_some(&p.spec.egress[..]),
            );
            d.policies.insert(name.clone(), rules);
        }
    }
    for (_, e) in &local {
        for name in &e.spec.profiles {
            let rules = match store.profiles.get(name) {
                Some(p) => compile_both(Some(&p.spec.ingress), Some(&p.spec.egress)),
                None => Rules {
                    ingress: vec![Rule::new(Action::Deny)],
                    egress: vec![Rule::new(Action::Deny)],
                },
            };
            d.profiles.insert(name.clone(), rules);
        }
    }
    let mut used = BTreeSet::new();
    for rules in d.policies.values().chain(d.profiles.values()) {
        for rule in rules.ingress.iter().chain(&rules.egress) {
            for side in [&rule.source, &rule.destination] {
                used.extend(side.in_sets.iter().chain(&side.not_in_sets).cloned());
            }
        }
    }
    let mut selectors: Vec<String> = SELECTORS.iter().map(|s| (*s).to_owned()).collect();
    selectors.extend(["has(env)", "env == 'b'"].map(str::to_owned));
    selectors.extend(TAGS.iter().map(|t| format!("has({t})")));
    for text in selectors {
        let Ok(sel) = calico_selector::parse(&text) else {
            continue;
        };
        if !used.contains(sel.uid()) {
            continue;
        }
        let members: BTreeSet<IpAddr> = store
            .endpoints
            .iter()
            .filter(|(k, _)| sel.matches(&labels[*k]))
            .flat_map(|(_, e)| e.spec.ip_networks.iter().map(|c| c.addr()))
            .collect();
        d.ip_sets.insert(sel.uid().to_owned(), members);
    }
    assert_eq!(
        d.ip_sets.len(),
        used.len(),
        "the reference misses a selector"
    );
    for (k, e) in &local {
        let iface = &e.spec.interface_name;
        if iface.is_empty() || d.endpoints.contains_key(iface) {
            continue; // keys iterate in order: the first endpoint owns the interface
        }
        let mut pols: Vec<&Policy> = store
            .policies
            .values()
            .filter(|p| selects(p, &labels[*k]))
            .collect();
        pols.sort_by(|a, b| {
            let key = |p: &Policy| p.spec.order.unwrap_or(f64::INFINITY);
            key(a)
                .partial_cmp(&key(b))
                .unwrap()
                .then(a.metadata.name.cmp(&b.metadata.name))
        });
        let plan = |direction: &str| DirectionPlan {
            policies: pols
                .iter()
                .filter(|p| governs(p, direction))
                .map(|p| p.metadata.name.clone())
                .collect(),
            profiles: e.spec.profiles.clone(),
        };
        d.endpoints.insert(
            iface.clone(),
            LocalEndpoint {
                interface: iface.clone(),
                addrs: e.spec.ip_networks.iter().map(|c| c.ip_net()).collect(),
                ingress: plan("ingress"),
                egress: plan("egress"),
            },
        );
    }
    d
}

// ---- replaying changes ----------------------------------------------------------------------

/// Applies `changes` to `shadow`, copying named items from `desired`, and checks that every
/// reported change is a real one.
fn replay(shadow: &mut Desired, changes: &Changes, desired: &Desired) {
    for id in &changes.sets_deleted {
        assert!(
            shadow.ip_sets.remove(id).is_some(),
            "deleted set {id} was not there"
        );
    }
    for id in &changes.sets_created {
        assert!(shadow.ip_sets.insert(id.clone(), BTreeSet::new()).is_none());
    }
    for (id, ips) in &changes.members_removed {
        let set = shadow
            .ip_sets
            .get_mut(id)
            .expect("members removed from a missing set");
        for ip in ips {
            assert!(set.remove(ip), "removed member {ip} was not in {id}");
        }
    }
    for (id, ips) in &changes.members_added {
        let set = shadow
            .ip_sets
            .get_mut(id)
            .expect("members added to a missing set");
        for ip in ips {
            assert!(set.insert(*ip), "added member {ip} was already in {id}");
        }
    }
    fn copy<V: Clone + PartialEq + std::fmt::Debug>(
        shadow: &mut BTreeMap<String, V>,
        desired: &BTreeMap<String, V>,
        changed: &BTreeSet<String>,
        removed: &BTreeSet<String>,
    ) {
        for name in removed {
            assert!(
                shadow.remove(name).is_some(),
                "removed {name} was not there"
            );
        }
        for name in changed {
            let now = desired[name].clone();
            let before = shadow.insert(name.clone(), now.clone());
            assert_ne!(before, Some(now), "{name} reported changed but is not");
        }
    }
    copy(
        &mut shadow.policies,
        &desired.policies,
        &changes.policies_changed,
        &changes.policies_removed,
    );
    copy(
        &mut shadow.profiles,
        &desired.profiles,
        &changes.profiles_changed,
        &changes.profiles_removed,
    );
    copy(
        &mut shadow.endpoints,
        &desired.endpoints,
        &changes.endpoints_changed,
        &changes.endpoints_removed,
    );
}

fn apply(graph: &mut CalcGraph, op: &Op) {
    match op {
        Op::Upsert(resource) => graph.upsert((**resource).clone()),
        Op::Remove(key) => graph.remove(key),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn incremental_state_matches_the_reference(
        steps in prop::collection::vec((op(), any::<bool>()), 1..40)
    ) {
        let mut graph = CalcGraph::new(NODE);
        let mut store = Store::default();
        let mut shadow = Desired::default();
        for (op, report) in &steps {
            apply(&mut graph, op);
            store.apply(op);
            prop_assert_eq!(graph.desired(), &reference(&store), "after {:?}", op);
            if *report {
                let changes = graph.take_changes();
                replay(&mut shadow, &changes, graph.desired());
                prop_assert_eq!(&shadow, graph.desired());
                // Doing it again changes nothing.
                apply(&mut graph, op);
                prop_assert!(graph.take_changes().is_empty(), "repeat of {:?}", op);
            }
        }
        let changes = graph.take_changes();
        replay(&mut shadow, &changes, graph.desired());
        prop_assert_eq!(&shadow, graph.desired());
    }
}
