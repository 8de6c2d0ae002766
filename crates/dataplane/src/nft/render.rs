//! The `inet calico` table as nft text transactions for `nft -f -`.
//!
//! Text rather than JSON, as knftables (and so Felix's nftables mode) does: it is what `nft list`
//! prints, reads well in logs and snapshots, and every name we write is a plain identifier
//! (see [`super::names`]), which avoids the one hole of the text syntax (names with `:`).
//!
//! [`render_full`] replaces the whole table in one atomic transaction (`add table`, `delete
//! table`, then the table's definition), so leftovers of any kind disappear. [`render_changes`]
//! writes only what a [`Changes`] report names, as one transaction:
//! 1. new sets (and empty sets a changed rule names but [`Desired`] lacks);
//! 2. set element additions and removals;
//! 3. changed policy and profile chains (`add chain`, `flush chain`, `add rule`…);
//! 4. changed endpoint chains, then their verdict-map elements;
//! 5. removed endpoints' map elements and chains, 6. removed policy and profile chains,
//!    7. removed sets — deletions come last, once nothing refers to them.
//!
//! A placeholder chain (for a policy or profile an endpoint names but [`Desired`] lacks, which
//! only happens if the calculation graph breaks its contract) is written with the endpoint that
//! names it and removed when a report lists it as removed; if none does, read-back reports it as
//! drift and the next resync removes it.
//!
//! Removals are written as `add` followed by `delete`, so they succeed whether or not the object
//! is still there. Every rule carries a comment with a hash of its body (see
//! [`super::readback`]).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;

use calico_calc::desired::{Changes, Desired, DirectionPlan, LocalEndpoint};

use super::layout::{
    endpoint_chains, layout, map_elements, policy_chains, profile_chains, set_pair, Chain, Map,
    Set, FROM_MAP, TO_MAP,
};
use super::names::{rule_tag, usable_interface};
use super::rule::referenced_sets;
use super::TABLE;

/// How many set elements go on one line.
const ELEMENTS_PER_LINE: usize = 16;

/// A transaction that replaces the whole table with the one `desired` calls for.
pub fn render_full(desired: &Desired) -> String {
    let layout = layout(desired);
    let mut out = format!("add table {TABLE}\ndelete table {TABLE}\ntable {TABLE} {{\n");
    for set in &layout.sets {
        set_block(&mut out, set);
    }
    for chain in &layout.chains {
        chain_block(&mut out, chain);
    }
    for map in &layout.maps {
        map_block(&mut out, map);
    }
    for chain in &layout.base_chains {
        chain_block(&mut out, chain);
    }
    out.push_str("}\n");
    out
}

/// A transaction that brings a table written for the previous state up to `desired`, touching
/// only what `changes` names; empty when `changes` is empty.
pub fn render_changes(desired: &Desired, changes: &Changes) -> String {
    let mut tx = String::new();

    let endpoints_written: Vec<(&str, &LocalEndpoint)> = changes
        .endpoints_changed
        .iter()
        .filter(|iface| usable_interface(iface))
        .filter_map(|iface| Some((iface.as_str(), desired.endpoints.get(iface)?)))
        .collect();
    let endpoints_removed: BTreeSet<&str> = changes
        .endpoints_removed
        .iter()
        .chain(&changes.endpoints_changed)
        .filter(|iface| usable_interface(iface) && !desired.endpoints.contains_key(*iface))
        .map(String::as_str)
        .collect();

    let policy_used = |name: &str| {
        desired.policies.contains_key(name)
            || plans(desired).any(|p| p.policies.iter().any(|n| n == name))
    };
    let profile_used = |name: &str| {
        desired.profiles.contains_key(name)
            || plans(desired).any(|p| p.profiles.iter().any(|n| n == name))
    };
    let mut chains = Vec::new();
    let mut policies: BTreeSet<&str> = changes
        .policies_changed
        .iter()
        .map(String::as_str)
        .filter(|name| policy_used(name))
        .collect();
    let mut profiles: BTreeSet<&str> = changes
        .profiles_changed
        .iter()
        .map(String::as_str)
        .filter(|name| profile_used(name))
        .collect();
    // Placeholders for what a changed endpoint names but `desired` lacks.
    for (_, ep) in &endpoints_written {
        for plan in [&ep.ingress, &ep.egress] {
            policies.extend(
                plan.policies
                    .iter()
                    .filter(|n| !desired.policies.contains_key(*n))
                    .map(String::as_str),
            );
            profiles.extend(
                plan.profiles
                    .iter()
                    .filter(|n| !desired.profiles.contains_key(*n))
                    .map(String::as_str),
            );
        }
    }
    for name in &policies {
        chains.extend(policy_chains(desired, name));
    }
    for name in &profiles {
        chains.extend(profile_chains(desired, name));
    }

    // 1. Sets.
    let mut new_sets: BTreeSet<&str> = changes.sets_created.iter().map(String::as_str).collect();
    new_sets.extend(
        policies
            .iter()
            .filter_map(|n| desired.policies.get(*n))
            .chain(profiles.iter().filter_map(|n| desired.profiles.get(*n)))
            .flat_map(|rules| rules.ingress.iter().chain(&rules.egress))
            .flat_map(referenced_sets)
            .filter(|id| !desired.ip_sets.contains_key(*id))
            .map(String::as_str),
    );
    for id in &new_sets {
        let members = desired.ip_sets.get(*id).into_iter().flatten();
        for set in set_pair(id, members) {
            let _ = writeln!(
                tx,
                "add set {TABLE} {} {{ type {}; }}",
                set.name,
                set.family.set_type()
            );
            elements(&mut tx, "add", &set.name, &set.elements);
        }
    }
    let sets_removed: BTreeSet<&str> = changes
        .sets_deleted
        .iter()
        .map(String::as_str)
        .filter(|id| !set_used(desired, id))
        .collect();

    // 2. Set elements.
    for (id, members) in &changes.members_added {
        if !new_sets.contains(id.as_str()) && !sets_removed.contains(id.as_str()) {
            for set in set_pair(id, members.iter()) {
                elements(&mut tx, "add", &set.name, &set.elements);
            }
        }
    }
    for (id, members) in &changes.members_removed {
        if !sets_removed.contains(id.as_str()) {
            for set in set_pair(id, members.iter()) {
                elements(&mut tx, "add", &set.name, &set.elements);
                elements(&mut tx, "delete", &set.name, &set.elements);
            }
        }
    }

    // 3. Policy and profile chains.
    for chain in &chains {
        replace_chain(&mut tx, chain);
    }

    // 4. Endpoint chains and their map elements.
    for (iface, ep) in &endpoints_written {
        for chain in endpoint_chains(iface, ep) {
            replace_chain(&mut tx, &chain);
        }
        for (map, (key, target)) in [FROM_MAP, TO_MAP].into_iter().zip(map_elements(iface)) {
            let _ = writeln!(
                tx,
                "add element {TABLE} {map} {{ \"{key}\" : goto {target} }}"
            );
        }
    }

    // 5. Removed endpoints.
    for iface in &endpoints_removed {
        let mapped = [FROM_MAP, TO_MAP].into_iter().zip(map_elements(iface));
        for (map, (key, target)) in mapped.clone() {
            let _ = writeln!(tx, "add chain {TABLE} {target}");
            let _ = writeln!(
                tx,
                "add element {TABLE} {map} {{ \"{key}\" : goto {target} }}"
            );
            let _ = writeln!(tx, "delete element {TABLE} {map} {{ \"{key}\" }}");
        }
        for (_, (_, target)) in mapped {
            let _ = writeln!(tx, "delete chain {TABLE} {target}");
        }
    }

    // 6. Removed policies and profiles.
    for name in gone(
        &changes.policies_removed,
        &changes.policies_changed,
        policy_used,
    ) {
        for chain in policy_chains(desired, name) {
            delete_chain(&mut tx, &chain.name);
        }
    }
    for name in gone(
        &changes.profiles_removed,
        &changes.profiles_changed,
        profile_used,
    ) {
        for chain in profile_chains(desired, name) {
            delete_chain(&mut tx, &chain.name);
        }
    }

    // 7. Removed sets.
    for id in sets_removed {
        for set in set_pair(id, std::iter::empty()) {
            let _ = writeln!(
                tx,
                "add set {TABLE} {} {{ type {}; }}",
                set.name,
                set.family.set_type()
            );
            let _ = writeln!(tx, "delete set {TABLE} {}", set.name);
        }
    }
    tx
}

/// The names in `removed` or `changed` that the table no longer has.
fn gone<'a>(
    removed: &'a BTreeSet<String>,
    changed: &'a BTreeSet<String>,
    used: impl Fn(&str) -> bool,
) -> BTreeSet<&'a str> {
    removed
        .iter()
        .chain(changed)
        .map(String::as_str)
        .filter(|name| !used(name))
        .collect()
}

/// Every direction plan of every endpoint the table holds.
fn plans(desired: &Desired) -> impl Iterator<Item = &DirectionPlan> {
    desired
        .endpoints
        .iter()
        .filter(|(iface, _)| usable_interface(iface))
        .flat_map(|(_, ep)| [&ep.ingress, &ep.egress])
}

/// True when the full table for `desired` has IP set `id`.
fn set_used(desired: &Desired, id: &str) -> bool {
    desired.ip_sets.contains_key(id)
        || [&desired.policies, &desired.profiles]
            .into_iter()
            .flat_map(|map| map.values())
            .flat_map(|rules| rules.ingress.iter().chain(&rules.egress))
            .flat_map(referenced_sets)
            .any(|used| used == id)
}

/// `<body> comment "<tag>"`.
fn tagged(body: &str) -> String {
    format!("{body} comment \"{}\"", rule_tag(body))
}

/// `verb element` lines for `values` of set `name`, if any.
fn elements(tx: &mut String, verb: &str, name: &str, values: &[IpAddr]) {
    for chunk in values.chunks(ELEMENTS_PER_LINE) {
        let list: Vec<String> = chunk.iter().map(IpAddr::to_string).collect();
        let _ = writeln!(
            tx,
            "{verb} element {TABLE} {name} {{ {} }}",
            list.join(", ")
        );
    }
}

/// Creates `chain` if needed and replaces its rules.
fn replace_chain(tx: &mut String, chain: &Chain) {
    let _ = writeln!(tx, "add chain {TABLE} {}", chain.name);
    let _ = writeln!(tx, "flush chain {TABLE} {}", chain.name);
    for body in &chain.rules {
        let _ = writeln!(tx, "add rule {TABLE} {} {}", chain.name, tagged(body));
    }
}

/// Deletes chain `name`, whether or not it exists.
fn delete_chain(tx: &mut String, name: &str) {
    let _ = writeln!(tx, "add chain {TABLE} {name}");
    let _ = writeln!(tx, "delete chain {TABLE} {name}");
}

/// A set definition inside the table block.
fn set_block(out: &mut String, set: &Set) {
    let _ = writeln!(
        out,
        "\tset {} {{\n\t\ttype {}",
        set.name,
        set.family.set_type()
    );
    if !set.elements.is_empty() {
        let lines: Vec<String> = set
            .elements
            .chunks(ELEMENTS_PER_LINE)
            .map(|chunk| {
                let items: Vec<String> = chunk.iter().map(IpAddr::to_string).collect();
                items.join(", ")
            })
            .collect();
        let _ = writeln!(out, "\t\telements = {{ {} }}", lines.join(",\n\t\t\t"));
    }
    out.push_str("\t}\n");
}

/// A chain definition inside the table block.
fn chain_block(out: &mut String, chain: &Chain) {
    let _ = writeln!(out, "\tchain {} {{", chain.name);
    if let Some(hook) = chain.hook {
        let _ = writeln!(
            out,
            "\t\ttype filter hook {} priority {}; policy accept;",
            hook.hook, hook.priority
        );
    }
    for body in &chain.rules {
        let _ = writeln!(out, "\t\t{}", tagged(body));
    }
    out.push_str("\t}\n");
}

/// A verdict map definition inside the table block.
fn map_block(out: &mut String, map: &Map) {
    let _ = writeln!(out, "\tmap {} {{\n\t\ttype ifname : verdict", map.name);
    if !map.elements.is_empty() {
        let items: Vec<String> = map
            .elements
            .iter()
            .map(|(key, target)| format!("\"{key}\" : goto {target}"))
            .collect();
        let _ = writeln!(out, "\t\telements = {{ {} }}", items.join(",\n\t\t\t"));
    }
    out.push_str("\t}\n");
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use calico_calc::desired::{Action, LocalEndpoint, PortRange, Rule, Rules, SideMatch};

    use super::*;

    const SEL: &str = "s:frontend";

    fn allow() -> Rule {
        Rule {
            action: Action::Allow,
            ip_version: None,
            protocol: None,
            not_protocol: None,
            icmp: None,
            not_icmp: None,
            source: SideMatch::default(),
            destination: SideMatch::default(),
        }
    }

    fn endpoint(
        iface: &str,
        addrs: &[&str],
        policies: &[&str],
        profiles: &[&str],
    ) -> LocalEndpoint {
        let plan = DirectionPlan {
            policies: policies.iter().map(|s| s.to_string()).collect(),
            profiles: profiles.iter().map(|s| s.to_string()).collect(),
        };
        LocalEndpoint {
            interface: iface.to_string(),
            addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            ingress: plan.clone(),
            egress: plan,
        }
    }

    /// Two endpoints, one policy using an IP set, one profile (the Docker network's).
    fn scenario() -> Desired {
        let mut from_frontend = Rule {
            protocol: Some(6),
            ..allow()
        };
        from_frontend.source.in_sets = vec![SEL.to_string()];
        from_frontend.destination.ports = vec![PortRange {
            first: 80,
            last: 80,
        }];
        let policy = Rules {
            ingress: vec![
                Rule {
                    action: Action::Log,
                    ..allow()
                },
                from_frontend,
                Rule {
                    action: Action::Pass,
                    ..allow()
                },
            ],
            egress: vec![allow()],
        };
        let mut from_net = allow();
        from_net.source.in_sets = vec!["net1".to_string()];
        let profile = Rules {
            ingress: vec![from_net],
            egress: vec![allow()],
        };
        let a = endpoint("calia", &["10.65.0.1/32", "fd00::1/128"], &[], &["net1"]);
        let b = endpoint("calib", &["10.65.0.2/32"], &["web"], &["net1"]);
        Desired {
            endpoints: BTreeMap::from([("calia".into(), a), ("calib".into(), b)]),
            policies: BTreeMap::from([("web".into(), policy)]),
            profiles: BTreeMap::from([("net1".into(), profile)]),
            ip_sets: BTreeMap::from([
                (SEL.into(), BTreeSet::from(["10.65.0.1".parse().unwrap()])),
                (
                    "net1".into(),
                    ["10.65.0.1", "10.65.0.2", "fd00::1"]
                        .iter()
                        .map(|a| a.parse().unwrap())
                        .collect(),
                ),
            ]),
        }
    }

    /// The scenario after: endpoint `calia` gone, `calic` new, policy `web` changed, profile
    /// `net1` unchanged, set `s:frontend` gone, set `s:backend` new, `net1` gained and lost
    /// members.
    fn after() -> (Desired, Changes) {
        let mut d = scenario();
        d.endpoints.remove("calia");
        d.endpoints.insert(
            "calic".into(),
            endpoint("calic", &["10.65.0.3/32"], &[], &["net1"]),
        );
        let mut to_backend = Rule {
            action: Action::Deny,
            ..allow()
        };
        to_backend.destination.in_sets = vec!["s:backend".into()];
        d.policies.get_mut("web").unwrap().ingress = vec![to_backend];
        d.ip_sets.remove(SEL);
        d.ip_sets.insert(
            "s:backend".into(),
            BTreeSet::from(["10.65.0.2".parse().unwrap()]),
        );
        let net1 = d.ip_sets.get_mut("net1").unwrap();
        net1.remove(&"10.65.0.1".parse().unwrap());
        net1.insert("10.65.0.3".parse().unwrap());
        let changes = Changes {
            sets_created: BTreeSet::from(["s:backend".into()]),
            sets_deleted: BTreeSet::from([SEL.into()]),
            members_added: BTreeMap::from([
                (
                    "s:backend".into(),
                    BTreeSet::from(["10.65.0.2".parse().unwrap()]),
                ),
                (
                    "net1".into(),
                    BTreeSet::from(["10.65.0.3".parse().unwrap()]),
                ),
            ]),
            members_removed: BTreeMap::from([(
                "net1".into(),
                BTreeSet::from(["10.65.0.1".parse().unwrap()]),
            )]),
            policies_changed: BTreeSet::from(["web".into()]),
            endpoints_changed: BTreeSet::from(["calic".into()]),
            endpoints_removed: BTreeSet::from(["calia".into()]),
            ..Changes::default()
        };
        (d, changes)
    }

    /// Compares `actual` with `snapshots/<name>`; `UPDATE_SNAPSHOTS=1` rewrites the file.
    fn snapshot(name: &str, actual: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/nft/snapshots")
            .join(name);
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(&path, actual).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            expected == actual,
            "{name} differs from {}; run with UPDATE_SNAPSHOTS=1 to accept:\n{actual}",
            path.display()
        );
    }

    #[test]
    fn full_table_snapshot() {
        snapshot("full.nft", &render_full(&scenario()));
    }

    #[test]
    fn changes_snapshot() {
        let (desired, changes) = after();
        snapshot("changes.nft", &render_changes(&desired, &changes));
    }

    #[test]
    fn no_changes_no_transaction() {
        assert_eq!(render_changes(&scenario(), &Changes::default()), "");
    }

    #[test]
    fn an_empty_state_still_drops_unknown_workload_interfaces() {
        let text = render_full(&Desired::default());
        assert!(text.starts_with("add table inet calico\ndelete table inet calico\n"));
        for chain in ["forward-from-wl", "forward-to-wl", "input-from-wl"] {
            assert!(text.contains(&format!("\tchain {chain} {{\n")), "{chain}");
        }
        assert_eq!(text.matches("\"cali*\" drop").count(), 3, "{text}");
        assert!(!text.contains("elements"));
    }

    /// The rule bodies of `chain` in the full render of `desired`.
    fn chain_rules(desired: &Desired, chain: &str) -> Vec<String> {
        let text = render_full(desired);
        let start = text
            .find(&format!("\tchain {chain} {{\n"))
            .unwrap_or_else(|| panic!("no chain {chain} in\n{text}"));
        text[start..]
            .lines()
            .skip(1)
            .take_while(|l| *l != "\t}")
            .map(|l| l.trim().split(" comment \"").next().unwrap().to_string())
            .collect()
    }

    #[test]
    fn endpoint_chains_run_policies_then_profiles_then_drop() {
        let mut d = scenario();
        d.endpoints.insert(
            "calid".into(),
            endpoint(
                "calid",
                &["10.65.0.4/32"],
                &["web", "other"],
                &["net1", "net2"],
            ),
        );
        d.policies.insert("other".into(), Rules::default());
        d.profiles.insert("net2".into(), Rules::default());
        assert_eq!(
            chain_rules(&d, "tw-calid"),
            [
                "ct state established,related accept",
                "ct state invalid drop",
                "meta mark set meta mark & 0xfffdffff",
                "meta mark & 0x00020000 == 0 jump pi-web",
                "meta mark & 0x00020000 == 0 jump pi-other",
                "meta mark & 0x00020000 == 0 drop",
                "meta mark set meta mark & 0xfffdffff",
                "jump pri-net1",
                "jump pri-net2",
                "drop",
            ]
        );
        assert_eq!(
            chain_rules(&d, "fw-calid")[2..4],
            ["ip saddr != 10.65.0.4 drop", "meta nfproto ipv6 drop"]
        );
        let no_policy = chain_rules(&d, "tw-calia");
        assert_eq!(no_policy[2..], ["jump pri-net1", "drop"]);
    }

    #[test]
    fn actions_map_to_verdicts() {
        let rules = |action| Rules {
            ingress: vec![Rule { action, ..allow() }],
            egress: Vec::new(),
        };
        let mut d = Desired::default();
        for (name, action) in [
            ("a", Action::Allow),
            ("d", Action::Deny),
            ("l", Action::Log),
            ("p", Action::Pass),
        ] {
            d.policies.insert(name.into(), rules(action));
            d.profiles.insert(name.into(), rules(action));
        }
        let verdicts = |prefix: &str| -> Vec<String> {
            ["a", "d", "l", "p"]
                .iter()
                .flat_map(|n| chain_rules(&d, &format!("{prefix}{n}")))
                .collect()
        };
        assert_eq!(
            verdicts("pi-"),
            [
                "accept",
                "drop",
                "log prefix \"calico-packet\"",
                "meta mark set meta mark | 0x00020000 return",
            ]
        );
        assert_eq!(
            verdicts("pri-"),
            ["accept", "drop", "log prefix \"calico-packet\"", "return"]
        );
        assert!(chain_rules(&d, "po-a").is_empty());
    }

    #[test]
    fn missing_policies_are_empty_and_missing_profiles_drop() {
        let mut d = Desired::default();
        d.endpoints.insert(
            "calie".into(),
            endpoint("calie", &["10.65.0.5/32"], &["ghost"], &["gone"]),
        );
        assert!(chain_rules(&d, "pi-ghost").is_empty());
        assert_eq!(chain_rules(&d, "pri-gone"), ["drop"]);
        assert_eq!(chain_rules(&d, "pro-gone"), ["drop"]);
        // A changed endpoint brings its placeholders along.
        let changes = Changes {
            endpoints_changed: BTreeSet::from(["calie".into()]),
            ..Changes::default()
        };
        let text = render_changes(&d, &changes);
        for chain in ["pi-ghost", "po-ghost", "pri-gone", "pro-gone", "tw-calie"] {
            assert!(
                text.contains(&format!("add chain inet calico {chain}\n")),
                "{chain}"
            );
        }
        assert!(text.contains("add rule inet calico pri-gone drop comment"));
    }

    #[test]
    fn sets_named_by_rules_but_missing_are_created_empty() {
        let mut d = scenario();
        d.ip_sets.clear();
        let text = render_full(&d);
        assert!(
            text.contains("\tset s4-net1 {\n\t\ttype ipv4_addr\n\t}\n"),
            "{text}"
        );
        let changes = Changes {
            policies_changed: BTreeSet::from(["web".into()]),
            ..Changes::default()
        };
        let text = render_changes(&d, &changes);
        let sel4 = super::super::rule::Family::V4.set_name(SEL);
        assert!(
            text.starts_with(&format!(
                "add set inet calico {sel4} {{ type ipv4_addr; }}\n"
            )),
            "{text}"
        );
    }

    #[test]
    fn unusable_interfaces_are_left_out() {
        let mut d = Desired::default();
        for iface in ["cali\"x", "cali*", "cali0123456789abc"] {
            d.endpoints
                .insert(iface.into(), endpoint(iface, &["10.65.0.6/32"], &[], &[]));
        }
        let text = render_full(&d);
        assert!(!text.contains("elements"), "{text}");
        let changes = Changes {
            endpoints_changed: d.endpoints.keys().cloned().collect(),
            endpoints_removed: BTreeSet::from(["cali\"y".into()]),
            ..Changes::default()
        };
        assert_eq!(render_changes(&d, &changes), "");
    }

    #[test]
    fn removals_are_idempotent_and_come_last() {
        let (desired, changes) = after();
        let text = render_changes(&desired, &changes);
        let lines: Vec<&str> = text.lines().collect();
        let first_delete = lines
            .iter()
            .position(|l| l.starts_with("delete chain"))
            .unwrap();
        assert!(lines[first_delete..]
            .iter()
            .all(|l| !l.starts_with("add rule")));
        for (i, line) in lines.iter().enumerate() {
            if let Some(rest) = line.strip_prefix("delete ") {
                let name = rest.split(" {").next().unwrap();
                assert!(
                    lines[..i]
                        .iter()
                        .any(|l| l.starts_with(&format!("add {name}"))),
                    "{line} without a preceding add"
                );
            }
        }
    }
}
