//! The `inet calico` table as nft text transactions for `nft -f -`.
//!
//! Text rather than JSON, as knftables (and so Felix's nftables mode) does: it is what `nft list`
//! prints, reads well in logs and snapshots, and every name we write is a plain identifier
//! (see [`super::names`]), which avoids the one hole of the text syntax (names with `:`).
//!
//! [`render_full`] replaces the whole table in one atomic transaction (`add table`, `delete
//! table`, then the table's definition), so leftovers of any kind disappear. [`render_changes`]
//! writes only what a [`Changes`] report names, as one transaction, in steps ordered as
//! Felix's `EventSequencer` flushes them (what an object refers to is written before it):
//! 1. [`add_sets`]: new sets (and empty sets a changed rule names but [`Desired`] lacks);
//! 2. [`update_members`]: set element additions and removals, and [`update_pools`]: the pool
//!    sets, rewritten whole (flushed and filled) when a pool changed;
//! 3. [`write_rule_chains`]: changed policy and profile chains (`add chain`, `flush chain`,
//!    `add rule`…);
//! 4. [`write_endpoint_chains`]: changed endpoint chains, and [`write_host_endpoint_chains`]:
//!    changed host endpoints' chains;
//! 5. [`write_dispatch`] and [`write_host_dispatch`]: their verdict-map elements, and
//!    [`write_nat`]: the nat chains, rewritten whole when the published ports changed;
//! 6. [`remove_endpoints`] and [`remove_host_endpoints`]: removed endpoints' map elements and
//!    chains, 7. [`remove_rule_chains`]: removed policy and profile chains, 8. [`remove_sets`]:
//!    removed sets — deletions come last, once nothing refers to them.
//!
//! A placeholder chain (for a policy or profile an endpoint names but [`Desired`] lacks, which
//! only happens if the calculation graph breaks its contract) is written with the endpoint that
//! names it and removed when a report lists it as removed; if none does, read-back reports it as
//! drift and the next resync removes it.
//!
//! Removals are written as `add` followed by `delete`, so they succeed whether or not the object
//! is still there. Every rule carries a comment with a hash of its body (see
//! [`super::readback`]).

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{Display, Write as _};
use std::net::IpAddr;

use calico_calc::desired::{
    Changes, Desired, DirectionPlan, HostEndpointPlan, LocalEndpoint, Rules,
};

use super::layout::{
    endpoint_chains, host_endpoint_chains, host_map_elements, host_policy_names,
    host_profile_names, layout, map_elements, nat_chains, policy_chains, pool_element, pool_sets,
    profile_chains, set_pair, Chain, Map, FROM_MAP, HOST_MAPS, TO_MAP,
};
use super::names::{rule_tag, usable_interface};
use super::rule::{referenced_sets, Family};
use super::TABLE;

/// How many set elements go on one line.
const ELEMENTS_PER_LINE: usize = 16;

/// A transaction that replaces the whole table with the one `desired` calls for.
pub fn render_full(desired: &Desired) -> String {
    let layout = layout(desired);
    let mut out = format!("add table {TABLE}\ndelete table {TABLE}\ntable {TABLE} {{\n");
    for set in &layout.sets {
        let items: Vec<String> = set.elements.iter().map(IpAddr::to_string).collect();
        set_block(
            &mut out,
            &set.name,
            &set_properties(set.family, false),
            &items,
        );
    }
    for set in &layout.pool_sets {
        let items: Vec<String> = set.elements.iter().map(pool_element).collect();
        set_block(
            &mut out,
            &set.name,
            &set_properties(set.family, true),
            &items,
        );
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
/// only what `changes` names; empty when `changes` is empty. Works out what each step writes,
/// then runs the steps in dependency order (see the module documentation).
pub fn render_changes(desired: &Desired, changes: &Changes) -> String {
    let endpoints = endpoints_written(desired, changes);
    let hosts = hosts_written(desired, changes);
    let policies = ChainNames::policies(desired);
    let profiles = ChainNames::profiles(desired);
    let policies_written = policies.written(&changes.policies_changed, &endpoints, &hosts);
    let profiles_written = profiles.written(&changes.profiles_changed, &endpoints, &hosts);
    let sets_added = sets_added(desired, changes, &policies_written, &profiles_written);
    let sets_removed = sets_removed(desired, changes);

    let mut tx = String::new();
    add_sets(&mut tx, desired, &sets_added);
    update_members(&mut tx, changes, &sets_added, &sets_removed);
    if changes.pools_changed {
        update_pools(&mut tx, desired);
    }
    write_rule_chains(&mut tx, desired, &policies_written, &profiles_written);
    write_endpoint_chains(&mut tx, &endpoints);
    write_host_endpoint_chains(&mut tx, desired, &hosts);
    write_dispatch(&mut tx, &endpoints);
    write_host_dispatch(&mut tx, &hosts);
    if changes.published_changed {
        write_nat(&mut tx, desired);
    }
    remove_endpoints(&mut tx, &endpoints_removed(desired, changes));
    remove_host_endpoints(&mut tx, &hosts_removed(desired, changes));
    remove_rule_chains(
        &mut tx,
        desired,
        &policies.gone(&changes.policies_removed, &changes.policies_changed),
        &profiles.gone(&changes.profiles_removed, &changes.profiles_changed),
    );
    remove_sets(&mut tx, &sets_removed);
    tx
}

/// A changed endpoint the table holds, by interface.
type Endpoint<'a> = (&'a str, &'a LocalEndpoint);

/// The changed endpoints that the table holds (usable interface, still in `desired`).
fn endpoints_written<'a>(desired: &'a Desired, changes: &'a Changes) -> Vec<Endpoint<'a>> {
    changes
        .endpoints_changed
        .iter()
        .filter(|iface| usable_interface(iface))
        .filter_map(|iface| Some((iface.as_str(), desired.endpoints.get(iface)?)))
        .collect()
}

/// The removed or changed endpoints whose chains go (usable interface, gone from `desired`).
fn endpoints_removed<'a>(desired: &Desired, changes: &'a Changes) -> BTreeSet<&'a str> {
    changes
        .endpoints_removed
        .iter()
        .chain(&changes.endpoints_changed)
        .filter(|iface| usable_interface(iface) && !desired.endpoints.contains_key(*iface))
        .map(String::as_str)
        .collect()
}

/// A changed host endpoint the table holds, by interface.
type HostEndpoint<'a> = (&'a str, &'a HostEndpointPlan);

/// The changed host endpoints that the table holds (usable interface, still in `desired`).
fn hosts_written<'a>(desired: &'a Desired, changes: &'a Changes) -> Vec<HostEndpoint<'a>> {
    changes
        .host_endpoints_changed
        .iter()
        .filter(|iface| usable_interface(iface))
        .filter_map(|iface| Some((iface.as_str(), desired.host_endpoints.get(iface)?)))
        .collect()
}

/// The removed or changed host endpoints whose chains go (usable, gone from `desired`).
fn hosts_removed<'a>(desired: &Desired, changes: &'a Changes) -> BTreeSet<&'a str> {
    changes
        .host_endpoints_removed
        .iter()
        .chain(&changes.host_endpoints_changed)
        .filter(|iface| usable_interface(iface) && !desired.host_endpoints.contains_key(*iface))
        .map(String::as_str)
        .collect()
}

/// The policies a host endpoint's plan names.
fn host_policies(plan: &HostEndpointPlan) -> Vec<&String> {
    host_policy_names(plan).collect()
}

/// The profiles a host endpoint's plan names.
fn host_profiles(plan: &HostEndpointPlan) -> Vec<&String> {
    host_profile_names(plan).collect()
}

/// The policies (or profiles) the full table for a state has chains for: those it defines and
/// those one of its endpoints or host endpoints names, indexed once so each name is a lookup.
struct ChainNames<'a> {
    desired: &'a Desired,
    defined: &'a BTreeMap<String, Rules>,
    /// The names usable endpoints' plans use, indexed on the first question `defined` cannot
    /// answer (rare: most batches never need it).
    named: OnceCell<BTreeSet<&'a str>>,
    plan_names: fn(&DirectionPlan) -> &Vec<String>,
    host_names: fn(&HostEndpointPlan) -> Vec<&String>,
}

impl<'a> ChainNames<'a> {
    /// The policies of `desired`'s table.
    fn policies(desired: &'a Desired) -> Self {
        Self::new(
            desired,
            &desired.policies,
            |plan| &plan.policies,
            host_policies,
        )
    }

    /// The profiles of `desired`'s table.
    fn profiles(desired: &'a Desired) -> Self {
        Self::new(
            desired,
            &desired.profiles,
            |plan| &plan.profiles,
            host_profiles,
        )
    }

    /// The names in `defined`, in `plan_names` of an endpoint of `desired` the table holds or
    /// in `host_names` of such a host endpoint.
    fn new(
        desired: &'a Desired,
        defined: &'a BTreeMap<String, Rules>,
        plan_names: fn(&DirectionPlan) -> &Vec<String>,
        host_names: fn(&HostEndpointPlan) -> Vec<&String>,
    ) -> Self {
        ChainNames {
            desired,
            defined,
            named: OnceCell::new(),
            plan_names,
            host_names,
        }
    }

    /// True when the table has chains for `name`.
    fn contains(&self, name: &str) -> bool {
        self.defined.contains_key(name)
            || self
                .named
                .get_or_init(|| {
                    self.desired
                        .endpoints
                        .iter()
                        .filter(|(iface, _)| usable_interface(iface))
                        .flat_map(|(_, ep)| [&ep.ingress, &ep.egress])
                        .flat_map(self.plan_names)
                        .chain(
                            self.desired
                                .host_endpoints
                                .iter()
                                .filter(|(iface, _)| usable_interface(iface))
                                .flat_map(|(_, plan)| (self.host_names)(plan)),
                        )
                        .map(String::as_str)
                        .collect()
                })
                .contains(name)
    }

    /// The chains to (re)write: the `changed` names the table has, and placeholders for the
    /// names `endpoints` and `hosts` use but the state does not define.
    fn written(
        &self,
        changed: &'a BTreeSet<String>,
        endpoints: &[Endpoint<'a>],
        hosts: &[HostEndpoint<'a>],
    ) -> BTreeSet<&'a str> {
        let placeholders = endpoints
            .iter()
            .flat_map(|(_, ep)| [&ep.ingress, &ep.egress])
            .flat_map(self.plan_names)
            .chain(hosts.iter().flat_map(|(_, plan)| (self.host_names)(plan)))
            .filter(|name| !self.defined.contains_key(*name));
        changed
            .iter()
            .filter(|name| self.contains(name))
            .chain(placeholders)
            .map(String::as_str)
            .collect()
    }

    /// The names in `removed` or `changed` that the table no longer has.
    fn gone(
        &self,
        removed: &'a BTreeSet<String>,
        changed: &'a BTreeSet<String>,
    ) -> BTreeSet<&'a str> {
        removed
            .iter()
            .chain(changed)
            .map(String::as_str)
            .filter(|name| !self.contains(name))
            .collect()
    }
}

/// The IP sets to create: those `changes` created, and those the written policy and profile
/// chains name but `desired` lacks (created empty).
fn sets_added<'a>(
    desired: &'a Desired,
    changes: &'a Changes,
    policies: &BTreeSet<&str>,
    profiles: &BTreeSet<&str>,
) -> BTreeSet<&'a str> {
    let written = policies
        .iter()
        .filter_map(|name| desired.policies.get(*name))
        .chain(
            profiles
                .iter()
                .filter_map(|name| desired.profiles.get(*name)),
        );
    let missing = written
        .flat_map(|rules| rules.ingress.iter().chain(&rules.egress))
        .flat_map(referenced_sets)
        .filter(|id| !desired.ip_sets.contains_key(*id));
    changes
        .sets_created
        .iter()
        .chain(missing)
        .map(String::as_str)
        .collect()
}

/// The deleted IP sets that the full table for `desired` no longer has: neither a member set
/// nor one a rule names (rules are scanned once, and only while a candidate is left).
fn sets_removed<'a>(desired: &Desired, changes: &'a Changes) -> BTreeSet<&'a str> {
    let mut removed: BTreeSet<&str> = changes
        .sets_deleted
        .iter()
        .map(String::as_str)
        .filter(|id| !desired.ip_sets.contains_key(*id))
        .collect();
    let named = [&desired.policies, &desired.profiles]
        .into_iter()
        .flat_map(BTreeMap::values)
        .flat_map(|rules| rules.ingress.iter().chain(&rules.egress))
        .flat_map(referenced_sets);
    for id in named {
        if removed.is_empty() {
            break;
        }
        removed.remove(id.as_str());
    }
    removed
}

/// Step 1: declares the new IP sets, with their members.
fn add_sets(tx: &mut String, desired: &Desired, ids: &BTreeSet<&str>) {
    for id in ids {
        let members = desired.ip_sets.get(*id).into_iter().flatten();
        for set in set_pair(id, members) {
            add_set(tx, &set.name, &set_properties(set.family, false));
            elements(tx, "add", &set.name, &set.elements);
        }
    }
}

/// Step 2: adds and removes members of the sets that neither step 1 nor step 8 writes whole.
fn update_members(
    tx: &mut String,
    changes: &Changes,
    added: &BTreeSet<&str>,
    removed: &BTreeSet<&str>,
) {
    for (id, members) in &changes.members_added {
        if !added.contains(id.as_str()) && !removed.contains(id.as_str()) {
            for set in set_pair(id, members.iter()) {
                elements(tx, "add", &set.name, &set.elements);
            }
        }
    }
    for (id, members) in &changes.members_removed {
        if !removed.contains(id.as_str()) {
            for set in set_pair(id, members.iter()) {
                elements(tx, "add", &set.name, &set.elements);
                elements(tx, "delete", &set.name, &set.elements);
            }
        }
    }
}

/// Step 3: replaces the chains of `policies`, then of `profiles`.
fn write_rule_chains(
    tx: &mut String,
    desired: &Desired,
    policies: &BTreeSet<&str>,
    profiles: &BTreeSet<&str>,
) {
    for chain in rule_chains(desired, policies, profiles) {
        replace_chain(tx, &chain);
    }
}

/// Step 4: replaces the chains of `endpoints`.
fn write_endpoint_chains(tx: &mut String, endpoints: &[Endpoint]) {
    for (iface, ep) in endpoints {
        for chain in endpoint_chains(iface, ep) {
            replace_chain(tx, &chain);
        }
    }
}

/// Step 4, continued: replaces the chains of `hosts`.
fn write_host_endpoint_chains(tx: &mut String, desired: &Desired, hosts: &[HostEndpoint]) {
    for (iface, plan) in hosts {
        for chain in host_endpoint_chains(iface, plan, desired) {
            replace_chain(tx, &chain);
        }
    }
}

/// Step 5, continued: points the host endpoint maps at the chains of `hosts`.
fn write_host_dispatch(tx: &mut String, hosts: &[HostEndpoint]) {
    for (iface, _) in hosts {
        for (map, (key, target)) in host_mapped(iface) {
            add_map_element(tx, map, &key, &target);
        }
    }
}

/// Each verdict map with the element of the endpoint on `iface`.
fn mapped(iface: &str) -> Vec<(&'static str, (String, String))> {
    [FROM_MAP, TO_MAP]
        .into_iter()
        .zip(map_elements(iface))
        .collect()
}

/// Each host endpoint map with the element of the host endpoint on `iface`.
fn host_mapped(iface: &str) -> Vec<(&'static str, (String, String))> {
    HOST_MAPS
        .into_iter()
        .zip(host_map_elements(iface))
        .collect()
}

/// Step 5: points the verdict maps at the chains of `endpoints`.
fn write_dispatch(tx: &mut String, endpoints: &[Endpoint]) {
    for (iface, _) in endpoints {
        for (map, (key, target)) in mapped(iface) {
            add_map_element(tx, map, &key, &target);
        }
    }
}

/// Step 6: removes the verdict-map elements of `ifaces`, then their chains.
fn remove_endpoints(tx: &mut String, ifaces: &BTreeSet<&str>) {
    for iface in ifaces {
        remove_mapped(tx, &mapped(iface));
    }
}

/// Removes verdict-map elements, then the chains they point at (whether or not they exist).
fn remove_mapped(tx: &mut String, elements: &[(&str, (String, String))]) {
    for (map, (key, target)) in elements {
        let _ = writeln!(tx, "add chain {TABLE} {target}");
        add_map_element(tx, map, key, target);
        let _ = writeln!(tx, "delete element {TABLE} {map} {{ \"{key}\" }}");
    }
    for (_, (_, target)) in elements {
        let _ = writeln!(tx, "delete chain {TABLE} {target}");
    }
}

/// Step 6, continued: removes the host endpoint map elements of `ifaces`, then their chains.
fn remove_host_endpoints(tx: &mut String, ifaces: &BTreeSet<&str>) {
    for iface in ifaces {
        remove_mapped(tx, &host_mapped(iface));
    }
}

/// Step 7: removes the chains of `policies`, then of `profiles`.
fn remove_rule_chains(
    tx: &mut String,
    desired: &Desired,
    policies: &BTreeSet<&str>,
    profiles: &BTreeSet<&str>,
) {
    for chain in rule_chains(desired, policies, profiles) {
        delete_chain(tx, &chain.name);
    }
}

/// The chains of `policies`, then of `profiles`.
fn rule_chains<'a>(
    desired: &'a Desired,
    policies: &'a BTreeSet<&str>,
    profiles: &'a BTreeSet<&str>,
) -> impl Iterator<Item = Chain> + 'a {
    let policies = policies
        .iter()
        .flat_map(|name| policy_chains(desired, name));
    policies.chain(
        profiles
            .iter()
            .flat_map(|name| profile_chains(desired, name)),
    )
}

/// Step 8: removes IP sets `ids`.
fn remove_sets(tx: &mut String, ids: &BTreeSet<&str>) {
    for id in ids {
        for set in set_pair(id, std::iter::empty()) {
            add_set(tx, &set.name, &set_properties(set.family, false));
            let _ = writeln!(tx, "delete set {TABLE} {}", set.name);
        }
    }
}

/// Step 2b: every pool set flushed and filled again, in the same transaction (so no packet
/// sees it empty).
fn update_pools(tx: &mut String, desired: &Desired) {
    for set in pool_sets(desired) {
        add_set(tx, &set.name, &set_properties(set.family, true));
        let _ = writeln!(tx, "flush set {TABLE} {}", set.name);
        let items: Vec<String> = set.elements.iter().map(pool_element).collect();
        elements(tx, "add", &set.name, &items);
    }
}

/// Step 5, continued: the nat chains (published ports' DNAT, hairpin, nat-outgoing), rules replaced.
fn write_nat(tx: &mut String, desired: &Desired) {
    for chain in nat_chains(desired) {
        replace_chain(tx, &chain);
    }
}

/// `<body> comment "<tag>"`.
fn tagged(body: &str) -> String {
    format!("{body} comment \"{}\"", rule_tag(body))
}

/// `verb element` lines for `values` of set `name`, if any.
fn elements<T: Display>(tx: &mut String, verb: &str, name: &str, values: &[T]) {
    for line in element_lines(values) {
        let _ = writeln!(tx, "{verb} element {TABLE} {name} {{ {line} }}");
    }
}

/// `values` as comma-separated lists of at most [`ELEMENTS_PER_LINE`] each.
fn element_lines<T: Display>(values: &[T]) -> impl Iterator<Item = String> + '_ {
    values.chunks(ELEMENTS_PER_LINE).map(|chunk| {
        let items: Vec<String> = chunk.iter().map(T::to_string).collect();
        items.join(", ")
    })
}

/// Declares set `name` with `properties`, whether or not it exists.
fn add_set(tx: &mut String, name: &str, properties: &[String]) {
    let _ = writeln!(
        tx,
        "add set {TABLE} {name} {{ {}; }}",
        properties.join("; ")
    );
}

/// What a set of `family` is declared with, in the table block and in `add set` alike: its
/// element type, and for a set of CIDRs the interval flag.
fn set_properties(family: Family, interval: bool) -> Vec<String> {
    let mut properties = vec![format!("type {}", family.set_type())];
    if interval {
        properties.push("flags interval".to_string());
    }
    properties
}

/// Adds the verdict-map element that sends `key` to chain `target`.
fn add_map_element(tx: &mut String, map: &str, key: &str, target: &str) {
    let _ = writeln!(
        tx,
        "add element {TABLE} {map} {{ \"{key}\" : goto {target} }}"
    );
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
fn set_block(out: &mut String, name: &str, properties: &[String], items: &[String]) {
    let _ = writeln!(out, "\tset {name} {{\n\t\t{}", properties.join("\n\t\t"));
    if !items.is_empty() {
        let lines: Vec<String> = element_lines(items).collect();
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
            "\t\ttype {} hook {} priority {}; policy accept;",
            hook.kind, hook.hook, hook.priority
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

    use calico_calc::desired::{
        Action, HostEndpointPlan, LocalEndpoint, Pool, PortRange, PublishedPort, Rule, Rules,
    };

    use super::*;

    const SEL: &str = "s:frontend";

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

    /// A `doNotTrack` policy: ingress to tcp 8000, egress from it, allowed untracked.
    fn untracked_policy() -> Rules {
        let mut to_service = Rule {
            protocol: Some(6),
            ..Rule::new(Action::AllowUntracked)
        };
        to_service.destination.ports = vec![PortRange {
            first: 8000,
            last: 8000,
        }];
        let mut from_service = to_service.clone();
        from_service.source.ports = std::mem::take(&mut from_service.destination.ports);
        Rules {
            ingress: vec![to_service],
            egress: vec![from_service],
        }
    }

    /// Two endpoints, one policy using an IP set, one profile (the Docker network's); a host
    /// endpoint on `eth0` with the profile, the normal policy and a `doNotTrack` policy.
    fn scenario() -> Desired {
        let mut from_frontend = Rule {
            protocol: Some(6),
            ..Rule::new(Action::Allow)
        };
        from_frontend.source.in_sets = vec![SEL.to_string()];
        from_frontend.destination.ports = vec![PortRange {
            first: 80,
            last: 80,
        }];
        let policy = Rules {
            ingress: vec![
                Rule::new(Action::Log),
                from_frontend,
                Rule::new(Action::Pass),
            ],
            egress: vec![Rule::new(Action::Allow)],
        };
        let mut from_net = Rule::new(Action::Allow);
        from_net.source.in_sets = vec!["net1".to_string()];
        let profile = Rules {
            ingress: vec![from_net],
            egress: vec![Rule::new(Action::Allow)],
        };
        let a = endpoint("calia", &["10.65.0.1/32", "fd00::1/128"], &[], &["net1"]);
        let b = endpoint("calib", &["10.65.0.2/32"], &["web"], &["net1"]);
        let eth0 = HostEndpointPlan {
            ingress: endpoint("", &[], &["web"], &["net1"]).ingress,
            egress: endpoint("", &[], &[], &["net1"]).egress,
            untracked_ingress: vec!["dnt".into()],
            untracked_egress: vec!["dnt".into()],
            pre_dnat_ingress: Vec::new(),
        };
        Desired {
            endpoints: BTreeMap::from([("calia".into(), a), ("calib".into(), b)]),
            host_endpoints: BTreeMap::from([("eth0".into(), eth0)]),
            policies: BTreeMap::from([("web".into(), policy), ("dnt".into(), untracked_policy())]),
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
            pools: BTreeMap::from([
                ("10.65.0.0/16".parse().unwrap(), Pool { nat_outgoing: true }),
                (
                    "fd00::/64".parse().unwrap(),
                    Pool {
                        nat_outgoing: false,
                    },
                ),
            ]),
            published: BTreeMap::from([(
                "calib".into(),
                vec![PublishedPort {
                    protocol: 6,
                    host_ip: None,
                    host_port: 8080,
                    endpoint_ip: "10.65.0.2".parse().unwrap(),
                    endpoint_port: 80,
                }],
            )]),
            ..Desired::default()
        }
    }

    /// The scenario after: endpoint `calia` gone, `calic` new, policy `web` changed, profile
    /// `net1` unchanged, set `s:frontend` gone, set `s:backend` new, `net1` gained and lost
    /// members, a pool without NAT added (nested in the NAT pool: the sets aggregate it); host
    /// endpoint `eth0` gone, `eth1` new with a `preDNAT` policy.
    fn after() -> (Desired, Changes) {
        let mut d = scenario();
        d.host_endpoints.remove("eth0");
        d.policies.remove("dnt");
        let mut deny_outside = Rule::new(Action::Deny);
        deny_outside.source.nets = vec!["10.10.0.254/32".parse().unwrap()];
        d.policies.insert(
            "protect".into(),
            Rules {
                ingress: vec![deny_outside, Rule::new(Action::AllowPreDnat)],
                egress: Vec::new(),
            },
        );
        d.host_endpoints.insert(
            "eth1".into(),
            HostEndpointPlan {
                pre_dnat_ingress: vec!["protect".into()],
                ..HostEndpointPlan::default()
            },
        );
        d.endpoints.remove("calia");
        d.endpoints.insert(
            "calic".into(),
            endpoint("calic", &["10.65.0.3/32"], &[], &["net1"]),
        );
        let mut to_backend = Rule::new(Action::Deny);
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
        d.pools.insert(
            "10.65.8.0/24".parse().unwrap(),
            Pool {
                nat_outgoing: false,
            },
        );
        d.pools.insert(
            "10.66.0.0/16".parse().unwrap(),
            Pool {
                nat_outgoing: false,
            },
        );
        d.published.insert(
            "calic".into(),
            vec![PublishedPort {
                protocol: 17,
                host_ip: Some("10.10.0.11".parse().unwrap()),
                host_port: 53,
                endpoint_ip: "10.65.0.3".parse().unwrap(),
                endpoint_port: 5353,
            }],
        );
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
            policies_changed: BTreeSet::from(["web".into(), "protect".into()]),
            policies_removed: BTreeSet::from(["dnt".into()]),
            endpoints_changed: BTreeSet::from(["calic".into()]),
            endpoints_removed: BTreeSet::from(["calia".into()]),
            host_endpoints_changed: BTreeSet::from(["eth1".into()]),
            host_endpoints_removed: BTreeSet::from(["eth0".into()]),
            pools_changed: true,
            published_changed: true,
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
                "meta mark & 0x00020000 == 0 counter drop",
                "meta mark set meta mark & 0xfffdffff",
                "jump pri-net1",
                "jump pri-net2",
                "counter drop",
            ]
        );
        assert_eq!(
            chain_rules(&d, "fw-calid")[2..4],
            ["ip saddr != 10.65.0.4 drop", "meta nfproto ipv6 drop"]
        );
        let no_policy = chain_rules(&d, "tw-calia");
        assert_eq!(no_policy[2..], ["jump pri-net1", "counter drop"]);
    }

    #[test]
    fn actions_map_to_verdicts() {
        let rules = |action| Rules {
            ingress: vec![Rule::new(action)],
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
                "counter accept",
                "counter drop",
                "counter log prefix \"calico-packet\"",
                "counter meta mark set meta mark | 0x00020000 return",
            ]
        );
        assert_eq!(
            verdicts("pri-"),
            [
                "counter accept",
                "counter drop",
                "counter log prefix \"calico-packet\"",
                "counter return"
            ]
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

    /// The sets of `&str` in `names`.
    fn names<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
        names.iter().copied().collect()
    }

    /// The owned names in `names`.
    fn owned(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    /// The text one step writes.
    fn step(write: impl FnOnce(&mut String)) -> String {
        let mut tx = String::new();
        write(&mut tx);
        tx
    }

    #[test]
    fn endpoints_written_are_changed_usable_and_present() {
        let mut d = scenario();
        d.endpoints.insert(
            "cali*".into(),
            endpoint("cali*", &["10.65.0.9/32"], &[], &[]),
        );
        let changes = Changes {
            endpoints_changed: owned(&["calia", "cali*", "calix"]),
            ..Changes::default()
        };
        let written: Vec<&str> = endpoints_written(&d, &changes)
            .iter()
            .map(|(iface, _)| *iface)
            .collect();
        assert_eq!(written, ["calia"]);
    }

    #[test]
    fn endpoints_removed_are_usable_and_gone() {
        let changes = Changes {
            endpoints_removed: owned(&["calia", "calix", "cali\"y"]),
            endpoints_changed: owned(&["caliz"]),
            ..Changes::default()
        };
        assert_eq!(
            endpoints_removed(&scenario(), &changes),
            names(&["calix", "caliz"])
        );
    }

    #[test]
    fn chain_names_are_defined_or_named_by_a_usable_endpoint() {
        let mut d = scenario();
        d.endpoints.insert(
            "calig".into(),
            endpoint("calig", &["10.65.0.7/32"], &["ghost"], &["net1"]),
        );
        d.endpoints.insert(
            "cali*".into(),
            endpoint("cali*", &["10.65.0.8/32"], &["hidden"], &[]),
        );
        let policies = ChainNames::policies(&d);
        assert!(policies.contains("web"));
        assert!(policies.contains("ghost"));
        assert!(!policies.contains("hidden"));
        assert!(!policies.contains("net1"));
        let changes = Changes {
            endpoints_changed: owned(&["calig"]),
            ..Changes::default()
        };
        let endpoints = endpoints_written(&d, &changes);
        let changed = owned(&["web", "old"]);
        assert_eq!(
            policies.written(&changed, &endpoints, &[]),
            names(&["web", "ghost"])
        );
        assert_eq!(
            policies.gone(&owned(&["old", "ghost"]), &owned(&["older", "web"])),
            names(&["old", "older"])
        );
        let profiles = ChainNames::profiles(&d);
        assert!(profiles.contains("net1"));
        assert!(!profiles.contains("web"));
    }

    #[test]
    fn sets_added_are_created_or_named_by_a_written_chain_but_missing() {
        let mut d = scenario();
        d.ip_sets.remove("net1");
        let changes = Changes {
            sets_created: owned(&["s:new"]),
            ..Changes::default()
        };
        let none = BTreeSet::new();
        assert_eq!(
            sets_added(&d, &changes, &names(&["web"]), &names(&["net1"])),
            names(&["s:new", "net1"])
        );
        assert_eq!(
            sets_added(&d, &changes, &names(&["web"]), &none),
            names(&["s:new"])
        );
    }

    #[test]
    fn sets_removed_are_deleted_unlisted_and_unnamed() {
        let mut d = scenario();
        d.ip_sets.remove(SEL);
        let changes = Changes {
            sets_deleted: owned(&[SEL, "net1", "s:old"]),
            ..Changes::default()
        };
        assert_eq!(sets_removed(&d, &changes), names(&["s:old"]));
        assert!(sets_removed(&d, &Changes::default()).is_empty());
    }

    #[test]
    fn add_sets_declares_both_halves_with_their_members() {
        let tx = step(|tx| add_sets(tx, &scenario(), &names(&["net1"])));
        assert_eq!(
            tx,
            "add set inet calico s4-net1 { type ipv4_addr; }\n\
             add element inet calico s4-net1 { 10.65.0.1, 10.65.0.2 }\n\
             add set inet calico s6-net1 { type ipv6_addr; }\n\
             add element inet calico s6-net1 { fd00::1 }\n"
        );
    }

    #[test]
    fn update_members_leaves_sets_written_whole_to_their_steps() {
        let member = |addr: &str| BTreeSet::from([addr.parse().unwrap()]);
        let changes = Changes {
            members_added: BTreeMap::from([
                ("net1".into(), member("10.65.0.3")),
                ("s:new".into(), member("10.65.0.4")),
                ("s:old".into(), member("10.65.0.5")),
            ]),
            members_removed: BTreeMap::from([
                ("net1".into(), member("fd00::1")),
                ("s:old".into(), member("10.65.0.6")),
            ]),
            ..Changes::default()
        };
        let tx = step(|tx| update_members(tx, &changes, &names(&["s:new"]), &names(&["s:old"])));
        assert_eq!(
            tx,
            "add element inet calico s4-net1 { 10.65.0.3 }\n\
             add element inet calico s6-net1 { fd00::1 }\n\
             delete element inet calico s6-net1 { fd00::1 }\n"
        );
    }

    /// The chains `tx` adds, in order.
    fn added_chains(tx: &str) -> Vec<&str> {
        tx.lines()
            .filter_map(|l| l.strip_prefix("add chain inet calico "))
            .collect()
    }

    #[test]
    fn write_rule_chains_replaces_policies_then_profiles() {
        let d = scenario();
        let tx = step(|tx| write_rule_chains(tx, &d, &names(&["web"]), &names(&["net1"])));
        assert_eq!(
            added_chains(&tx),
            ["pi-web", "po-web", "pri-net1", "pro-net1"]
        );
        assert_eq!(tx.matches("flush chain inet calico ").count(), 4);
        let rules = rule_chains(&d, &names(&["web"]), &names(&["net1"]))
            .map(|chain| chain.rules.len())
            .sum::<usize>();
        assert_eq!(tx.matches("add rule inet calico ").count(), rules);
    }

    #[test]
    fn write_endpoint_chains_replaces_both_directions() {
        let d = scenario();
        let endpoints = [("calia", &d.endpoints["calia"])];
        let tx = step(|tx| write_endpoint_chains(tx, &endpoints));
        assert_eq!(added_chains(&tx), ["fw-calia", "tw-calia"]);
        assert!(tx.contains("flush chain inet calico tw-calia\n"));
        assert!(tx.contains("add rule inet calico tw-calia jump pri-net1 comment"));
        assert!(!tx.contains("element"));
    }

    #[test]
    fn write_dispatch_points_both_maps_at_the_endpoint() {
        let d = scenario();
        let endpoints = [("calia", &d.endpoints["calia"])];
        assert_eq!(
            step(|tx| write_dispatch(tx, &endpoints)),
            "add element inet calico from-wl { \"calia\" : goto fw-calia }\n\
             add element inet calico to-wl { \"calia\" : goto tw-calia }\n"
        );
    }

    #[test]
    fn dispatch_follows_the_chains_of_every_changed_endpoint() {
        let changes = Changes {
            endpoints_changed: owned(&["calia", "calib"]),
            ..Changes::default()
        };
        let text = render_changes(&scenario(), &changes);
        let last_rule = text.rfind("add rule inet calico tw-calib").unwrap();
        let first_element = text.find("add element inet calico from-wl").unwrap();
        assert!(last_rule < first_element, "{text}");
    }

    #[test]
    fn remove_endpoints_drops_map_elements_before_chains() {
        assert_eq!(
            step(|tx| remove_endpoints(tx, &names(&["calia"]))),
            "add chain inet calico fw-calia\n\
             add element inet calico from-wl { \"calia\" : goto fw-calia }\n\
             delete element inet calico from-wl { \"calia\" }\n\
             add chain inet calico tw-calia\n\
             add element inet calico to-wl { \"calia\" : goto tw-calia }\n\
             delete element inet calico to-wl { \"calia\" }\n\
             delete chain inet calico fw-calia\n\
             delete chain inet calico tw-calia\n"
        );
    }

    #[test]
    fn remove_rule_chains_deletes_policies_then_profiles() {
        let tx = step(|tx| {
            remove_rule_chains(tx, &Desired::default(), &names(&["old"]), &names(&["gone"]))
        });
        assert_eq!(
            tx,
            "add chain inet calico pi-old\n\
             delete chain inet calico pi-old\n\
             add chain inet calico po-old\n\
             delete chain inet calico po-old\n\
             add chain inet calico pri-gone\n\
             delete chain inet calico pri-gone\n\
             add chain inet calico pro-gone\n\
             delete chain inet calico pro-gone\n"
        );
    }

    #[test]
    fn remove_sets_deletes_both_halves() {
        assert_eq!(
            step(|tx| remove_sets(tx, &names(&["net1"]))),
            "add set inet calico s4-net1 { type ipv4_addr; }\n\
             delete set inet calico s4-net1\n\
             add set inet calico s6-net1 { type ipv6_addr; }\n\
             delete set inet calico s6-net1\n"
        );
    }

    #[test]
    fn both_renderings_declare_a_set_with_its_type() {
        let [v4, v6] = set_pair("x", std::iter::empty());
        assert_eq!(set_properties(v6.family, false), ["type ipv6_addr"]);
        let props = set_properties(v4.family, false);
        assert_eq!(
            step(|tx| add_set(tx, &v4.name, &props)),
            "add set inet calico s4-x { type ipv4_addr; }\n"
        );
        assert_eq!(
            step(|out| set_block(out, &v4.name, &props, &[])),
            "\tset s4-x {\n\t\ttype ipv4_addr\n\t}\n"
        );
        let pools = set_properties(Family::V4, true);
        assert_eq!(
            step(|tx| add_set(tx, "all-pools4", &pools)),
            "add set inet calico all-pools4 { type ipv4_addr; flags interval; }\n"
        );
        assert_eq!(
            step(|out| set_block(out, "all-pools4", &pools, &["10.0.0.0/8".into()])),
            "\tset all-pools4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = { 10.0.0.0/8 }\n\t}\n"
        );
    }

    #[test]
    fn element_lines_hold_at_most_sixteen_elements() {
        let values: Vec<IpAddr> = (1..=17).map(|i| IpAddr::from([10, 0, 0, i])).collect();
        let lines: Vec<String> = element_lines(&values).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].matches(", ").count(), ELEMENTS_PER_LINE - 1);
        assert_eq!(lines[1], "10.0.0.17");
        let tx = step(|tx| elements(tx, "delete", "s4-x", &values[16..]));
        assert_eq!(tx, "delete element inet calico s4-x { 10.0.0.17 }\n");
        assert_eq!(step(|tx| elements::<IpAddr>(tx, "add", "s4-x", &[])), "");
    }
}
