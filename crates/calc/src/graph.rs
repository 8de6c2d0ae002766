//! [`CalcGraph`]: keeps the indexes that tie endpoints, profiles and policies together and
//! drives [`Output`] so that [`Desired`] is up to date after every call.
//!
//! State and indexes:
//! - every endpoint (workload and host endpoints of all hosts) with its effective labels
//!   (cached) and addresses; local ones also with the set of policies whose selector matches
//!   them, local workloads by interface name;
//! - this host's interfaces and their addresses (given by the agent), to find the interface of
//!   a host endpoint that names only its expected IPs;
//! - every policy with its parsed selector, order, directions, compiled rules and the local
//!   endpoints it matches;
//! - every profile that exists or is referenced, with what it gives to endpoints (labels,
//!   tags), its compiled rules, the endpoints (all hosts) that list it and how many are local;
//! - the [`SelectorIndex`] of active rule selectors and their members;
//! - every IP pool's CIDR and NAT setting, kept in [`Output`] as they are (no index).
//!
//! An update first brings those indexes up to date and marks the policies, profiles and
//! interfaces it may have affected as dirty; [`CalcGraph::flush`] then reconciles only the
//! dirty items with [`Output`], referencing newly used selectors before releasing the
//! selectors no longer used (so a selector moving between rules is never rebuilt).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::mem;
use std::net::IpAddr;
use std::sync::Arc;

use calico_model::endpoint_naming::HOST_INTERFACE_PREFIX;
use calico_model::{
    Cidr, HostEndpoint, Policy, PolicySpec, Profile, Resource, ResourceKey, WorkloadEndpoint,
};
use calico_selector::Selector;
use ipnet::IpNet;

use crate::compile::Compiled;
use crate::desired::{
    Action, Changes, Desired, DirectionPlan, Failsafe, HostEndpointPlan, LocalEndpoint, Pool,
    PublishedPort,
};
use crate::index::{Member, SelectorIndex};
use crate::labels::{self, Inherited, LabelMap};
use crate::output::Output;

/// An endpoint's identity; cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct EndpointId(Arc<EndpointKey>);

#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum EndpointKey {
    /// A workload endpoint: node, orchestrator, workload, name.
    Workload([String; 4]),
    /// A host endpoint: node, name.
    Host([String; 2]),
}

impl EndpointId {
    /// A workload endpoint's; `None` when a part is empty (such an endpoint has no key and is
    /// ignored).
    fn workload(node: &str, orchestrator: &str, workload: &str, name: &str) -> Option<Self> {
        let parts = [node, orchestrator, workload, name];
        if parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        Some(EndpointId(Arc::new(EndpointKey::Workload(
            parts.map(str::to_owned),
        ))))
    }

    /// A host endpoint's; `None` when a part is empty.
    fn host(node: &str, name: &str) -> Option<Self> {
        if node.is_empty() || name.is_empty() {
            return None;
        }
        Some(EndpointId(Arc::new(EndpointKey::Host([
            node.to_owned(),
            name.to_owned(),
        ]))))
    }
}

#[derive(Debug)]
struct Endpoint {
    local: bool,
    /// A host endpoint (its `interface` may be empty: then its expected IPs find it one).
    host: bool,
    own_labels: LabelMap,
    profiles: Vec<String>,
    interface: String,
    addrs: Vec<IpNet>,
    ips: BTreeSet<IpAddr>,
    /// Effective labels (own, then inherited from profiles).
    labels: LabelMap,
    /// Local endpoints only: the policies whose selector matches.
    policies: BTreeSet<String>,
}

impl Endpoint {
    fn member(&self) -> Member<'_> {
        Member {
            labels: &self.labels,
            ips: &self.ips,
        }
    }
}

/// When a policy applies: with the connection-tracked filter (normal), before connection
/// tracking (`doNotTrack`) or before DNAT (`preDNAT`). Only normal policies apply to workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PolicyKind {
    Normal,
    Untracked,
    PreDnat,
}

#[derive(Debug)]
struct PolicyDef {
    /// `None` when the selector does not parse: the policy then applies to nothing.
    selector: Option<Selector>,
    order: Option<f64>,
    kind: PolicyKind,
    ingress: bool,
    egress: bool,
    compiled: Compiled,
}

impl PolicyDef {
    fn new(spec: &PolicySpec) -> Self {
        // Validation refuses both flags at once; if stored anyway, doNotTrack wins (it applies
        // first).
        let (kind, allow) = match (spec.do_not_track, spec.pre_dnat) {
            (true, _) => (PolicyKind::Untracked, Action::AllowUntracked),
            (false, true) => (PolicyKind::PreDnat, Action::AllowPreDnat),
            (false, false) => (PolicyKind::Normal, Action::Allow),
        };
        let governs = |t: &str| spec.types.is_empty() || spec.types.iter().any(|s| s == t);
        // preDNAT policies have no egress (validation refuses it): such rules are left out.
        let (ingress, egress) = (
            governs("ingress"),
            governs("egress") && kind != PolicyKind::PreDnat,
        );
        PolicyDef {
            selector: calico_selector::parse(&spec.selector).ok(),
            order: spec.order,
            kind,
            ingress,
            egress,
            compiled: Compiled::new(
                ingress.then_some(&spec.ingress[..]),
                egress.then_some(&spec.egress[..]),
                allow,
            ),
        }
    }

    /// True when the policy applies, in some direction, to an endpoint with these labels: a
    /// host endpoint (`host`) or a workload (normal policies only).
    fn selects(&self, labels: &LabelMap, host: bool) -> bool {
        (self.ingress || self.egress)
            && (host || self.kind == PolicyKind::Normal)
            && self.selector.as_ref().is_some_and(|s| s.matches(labels))
    }

    /// True when `other` applies to the same endpoints in the same directions.
    fn same_reach(&self, other: &PolicyDef) -> bool {
        self.kind == other.kind && self.ingress == other.ingress && self.egress == other.egress
    }

    /// Sort key: missing order is last.
    fn order_key(&self) -> f64 {
        self.order.unwrap_or(f64::INFINITY)
    }
}

#[derive(Debug, Default)]
struct PolicyEntry {
    def: Option<PolicyDef>,
    /// Local endpoints the policy selects (empty when `def` is `None`).
    matches: BTreeSet<EndpointId>,
    /// What is in [`Desired`] and referenced in the index.
    applied: Option<Compiled>,
}

#[derive(Debug)]
struct ProfileDef {
    inherited: Inherited,
    compiled: Compiled,
}

#[derive(Debug, Default)]
struct ProfileEntry {
    def: Option<ProfileDef>,
    /// Endpoints (all hosts) that list the profile.
    users: BTreeSet<EndpointId>,
    /// How many of them are local.
    local_users: usize,
    /// What is in [`Desired`] and referenced in the index.
    applied: Option<Compiled>,
}

impl ProfileEntry {
    fn is_unused(&self) -> bool {
        self.def.is_none() && self.users.is_empty() && self.applied.is_none()
    }
}

#[derive(Debug, Default)]
struct Dirty {
    policies: BTreeSet<String>,
    profiles: BTreeSet<String>,
    interfaces: BTreeSet<String>,
    /// Some local host endpoint (or the host's interfaces) changed: every host endpoint plan
    /// is worked out again (a host has few).
    host_endpoints: bool,
}

impl Dirty {
    /// Marks the plan of a local endpoint as dirty.
    fn interface(&mut self, endpoint: &Endpoint) {
        if !endpoint.local {
            return;
        }
        if endpoint.host {
            self.host_endpoints = true;
        } else if !endpoint.interface.is_empty() {
            self.interfaces.insert(endpoint.interface.clone());
        }
    }
}

/// The calculation graph of one host: feed it the datastore's profiles, policies, workload and
/// host endpoints and IP pools; read the [`Desired`] state of this host and what changed in it.
///
/// Semantics (Felix 2.x with the v1 API, one `default` tier):
/// - A local endpoint's plan lists, per direction, the policies that select it and govern that
///   direction (by `order`, missing last, then name), then its profiles in its order.
/// - Effective labels: the endpoint's own, then each profile in order (labels, then tags as
///   `tag=""`); they feed policy selectors and IP set membership alike.
/// - Workload endpoints of other nodes, and host endpoints of every node (their expected IPs),
///   give IP set members.
/// - A host endpoint of this node covers the interface it names; one that names none covers
///   each interface of the host that has one of its expected IPs (see
///   [`CalcGraph::set_host_addresses`]). An interface covered by several takes the first one
///   that names it, else the first by expected IPs (by node and name); `cali*` interfaces are
///   workloads' and never covered. Its plan: normal policies that select it (ingress, egress)
///   then its profiles; `doNotTrack` policies (ingress, egress) and `preDNAT` policies
///   (ingress), each sorted as above. Only normal policies apply to workloads.
/// - [`Desired`] holds the policies that select at least one local endpoint, the profiles
///   that at least one local endpoint lists (a missing one as a deny-all entry under its
///   name) and the IP sets their rules reference. Endpoints without an interface name, or
///   whose interface is already taken by an endpoint with a smaller key, get no plan but
///   still make policies and profiles active.
/// - A policy governs the directions its `types` lists (`ingress`, `egress`), both when
///   `types` is empty; its rules for a direction it does not govern are left out (so they
///   reference no IP set).
/// - Fail closed: a policy whose selector does not parse applies to nothing; a policy or
///   profile with a rule that cannot be compiled becomes a single `deny` in the directions it
///   governs. Resources without a complete key are ignored.
#[derive(Debug)]
pub struct CalcGraph {
    node: String,
    endpoints: HashMap<EndpointId, Endpoint>,
    local_endpoints: BTreeSet<EndpointId>,
    /// Local endpoints by interface name; the first one owns the interface.
    interfaces: HashMap<String, BTreeSet<EndpointId>>,
    /// This host's host endpoints.
    local_hosts: BTreeSet<EndpointId>,
    /// This host's interfaces and their addresses.
    host_addresses: BTreeMap<String, BTreeSet<IpAddr>>,
    policies: HashMap<String, PolicyEntry>,
    profiles: HashMap<String, ProfileEntry>,
    index: SelectorIndex,
    out: Output,
    dirty: Dirty,
}

impl CalcGraph {
    /// An empty graph for the host named `node` (compared with workload endpoints' `node`).
    pub fn new(node: &str) -> Self {
        CalcGraph {
            node: node.to_owned(),
            endpoints: HashMap::new(),
            local_endpoints: BTreeSet::new(),
            interfaces: HashMap::new(),
            local_hosts: BTreeSet::new(),
            host_addresses: BTreeMap::new(),
            policies: HashMap::new(),
            profiles: HashMap::new(),
            index: SelectorIndex::default(),
            out: Output::default(),
            dirty: Dirty::default(),
        }
    }

    /// Adds or replaces a profile, policy, workload or host endpoint or IP pool; other kinds
    /// are ignored.
    pub fn upsert(&mut self, resource: Resource) {
        match resource {
            Resource::WorkloadEndpoint(endpoint) => self.upsert_workload(endpoint),
            Resource::HostEndpoint(endpoint) => self.upsert_host(endpoint),
            Resource::Policy(policy) => self.upsert_policy(policy),
            Resource::Profile(profile) => self.upsert_profile(profile),
            Resource::IpPool(pool) => {
                if let Some(cidr) = pool.metadata.cidr {
                    let nat_outgoing = pool.spec.nat_outgoing;
                    self.out
                        .set_pool(cidr.network().ip_net(), Some(Pool { nat_outgoing }));
                }
            }
            _ => {}
        }
        self.flush();
    }

    /// Removes a profile, policy, workload or host endpoint or IP pool; other kinds and unknown
    /// keys are ignored.
    pub fn remove(&mut self, key: &ResourceKey) {
        match key {
            ResourceKey::WorkloadEndpoint {
                node,
                orchestrator,
                workload,
                name,
            } => {
                if let Some(id) = EndpointId::workload(node, orchestrator, workload, name) {
                    self.remove_endpoint(&id);
                }
            }
            ResourceKey::HostEndpoint { node, name } => {
                if let Some(id) = EndpointId::host(node, name) {
                    self.remove_endpoint(&id);
                }
            }
            ResourceKey::Policy { name } => self.remove_policy(name),
            ResourceKey::Profile { name } => self.remove_profile(name),
            ResourceKey::IpPool { cidr } => self.out.set_pool(cidr.network().ip_net(), None),
            _ => {}
        }
        self.flush();
    }

    /// Makes `ports` the host ports published to the endpoint on `interface` (from the plugin
    /// driver; an empty list: none). The endpoint's policy still decides what reaches it.
    pub fn set_published(&mut self, interface: &str, ports: Vec<PublishedPort>) {
        self.out.set_published(interface, ports);
    }

    /// Makes `addresses` this host's interfaces (other than workloads' `cali*`) and their
    /// addresses, which place the host endpoints that name only expected IPs. Cheap when
    /// nothing changed.
    pub fn set_host_addresses(&mut self, addresses: BTreeMap<String, BTreeSet<IpAddr>>) {
        if addresses == self.host_addresses {
            return;
        }
        self.host_addresses = addresses;
        self.dirty.host_endpoints = true;
        self.flush();
    }

    /// Makes `failsafe` the ports host endpoint policy never blocks.
    pub fn set_failsafe(&mut self, failsafe: Failsafe) {
        self.out.set_failsafe(failsafe);
    }

    /// The desired state, consistent with everything given so far.
    pub fn desired(&self) -> &Desired {
        self.out.desired()
    }

    /// What changed in [`CalcGraph::desired`] since the previous call (exactly: changes that
    /// were undone in between are not reported).
    pub fn take_changes(&mut self) -> Changes {
        self.out.take_changes()
    }

    fn inherited<'a>(
        profiles: &'a HashMap<String, ProfileEntry>,
        name: &str,
    ) -> Option<&'a Inherited> {
        profiles.get(name)?.def.as_ref().map(|d| &d.inherited)
    }

    fn upsert_workload(&mut self, endpoint: WorkloadEndpoint) {
        let WorkloadEndpoint { metadata, spec } = endpoint;
        let Some(id) = EndpointId::workload(
            &metadata.node,
            &metadata.orchestrator,
            &metadata.workload,
            &metadata.name,
        ) else {
            return;
        };
        let new = Endpoint {
            local: metadata.node == self.node,
            host: false,
            own_labels: metadata.labels,
            profiles: spec.profiles,
            interface: spec.interface_name,
            addrs: spec.ip_networks.iter().map(Cidr::ip_net).collect(),
            ips: spec.ip_networks.iter().map(Cidr::addr).collect(),
            labels: LabelMap::new(),
            policies: BTreeSet::new(),
        };
        self.upsert_endpoint(id, new);
    }

    fn upsert_host(&mut self, endpoint: HostEndpoint) {
        let HostEndpoint { metadata, spec } = endpoint;
        let Some(id) = EndpointId::host(&metadata.node, &metadata.name) else {
            return;
        };
        let new = Endpoint {
            local: metadata.node == self.node,
            host: true,
            own_labels: metadata.labels,
            profiles: spec.profiles,
            interface: spec.interface_name,
            addrs: Vec::new(),
            ips: spec.expected_ips.into_iter().collect(),
            labels: LabelMap::new(),
            policies: BTreeSet::new(),
        };
        self.upsert_endpoint(id, new);
    }

    /// Adds or replaces the endpoint `id` (its effective `labels` and `policies` are worked out
    /// here).
    fn upsert_endpoint(&mut self, id: EndpointId, mut new: Endpoint) {
        new.labels = labels::effective(
            &new.own_labels,
            new.profiles
                .iter()
                .map(|p| Self::inherited(&self.profiles, p)),
        );
        let mut old = self.endpoints.remove(&id);
        let old_profiles = old.as_ref().map_or(&[][..], |o| &o.profiles[..]);
        self.link_profiles(&id, new.local, old_profiles, &new.profiles);
        let unchanged_membership = old
            .as_ref()
            .is_some_and(|o| o.labels == new.labels && o.ips == new.ips);
        if !unchanged_membership {
            self.index.update(
                old.as_ref().map(Endpoint::member),
                Some(new.member()),
                &mut self.out,
            );
        }
        if new.local {
            let current = old
                .as_mut()
                .map(|o| mem::take(&mut o.policies))
                .unwrap_or_default();
            let unchanged_labels = old.as_ref().is_some_and(|o| o.labels == new.labels);
            new.policies = if unchanged_labels {
                current
            } else {
                rematch(
                    &mut self.policies,
                    &mut self.dirty,
                    &id,
                    (&new.labels, new.host),
                    current,
                )
                .0
            };
            if let Some(old) = &old {
                self.unlink_interface(&id, old);
            }
            self.link_interface(&id, &new);
            self.local_endpoints.insert(id.clone());
            if new.host {
                self.local_hosts.insert(id.clone());
            }
        }
        self.endpoints.insert(id, new);
    }

    fn remove_endpoint(&mut self, id: &EndpointId) {
        let Some(old) = self.endpoints.remove(id) else {
            return;
        };
        self.link_profiles(id, old.local, &old.profiles, &[]);
        self.index.update(Some(old.member()), None, &mut self.out);
        for name in &old.policies {
            if let Some(entry) = self.policies.get_mut(name) {
                entry.matches.remove(id);
                self.dirty.policies.insert(name.clone());
            }
        }
        if old.local {
            self.unlink_interface(id, &old);
            self.local_endpoints.remove(id);
            self.local_hosts.remove(id);
        }
    }

    /// Moves an endpoint's registration from the profiles it listed to those it lists now.
    fn link_profiles(&mut self, id: &EndpointId, local: bool, old: &[String], new: &[String]) {
        let old: BTreeSet<&String> = old.iter().collect();
        let new: BTreeSet<&String> = new.iter().collect();
        for name in old.difference(&new) {
            let Some(entry) = self.profiles.get_mut(*name) else {
                continue;
            };
            entry.users.remove(id);
            if local {
                entry.local_users = entry.local_users.saturating_sub(1);
                self.dirty.profiles.insert((*name).clone());
            } else if entry.is_unused() {
                self.profiles.remove(*name);
            }
        }
        for name in new.difference(&old) {
            let entry = self.profiles.entry((*name).clone()).or_default();
            entry.users.insert(id.clone());
            if local {
                entry.local_users += 1;
                self.dirty.profiles.insert((*name).clone());
            }
        }
    }

    /// Registers a local endpoint's interface (workloads; a host endpoint just marks the host
    /// endpoints dirty).
    fn link_interface(&mut self, id: &EndpointId, endpoint: &Endpoint) {
        if endpoint.host || endpoint.interface.is_empty() {
            self.dirty.interface(endpoint);
            return;
        }
        self.interfaces
            .entry(endpoint.interface.clone())
            .or_default()
            .insert(id.clone());
        self.dirty.interface(endpoint);
    }

    fn unlink_interface(&mut self, id: &EndpointId, endpoint: &Endpoint) {
        if endpoint.host {
            self.dirty.interface(endpoint);
            return;
        }
        if let Some(ids) = self.interfaces.get_mut(&endpoint.interface) {
            ids.remove(id);
            if ids.is_empty() {
                self.interfaces.remove(&endpoint.interface);
            }
        }
        self.dirty.interface(endpoint);
    }

    fn upsert_policy(&mut self, policy: Policy) {
        let Policy { metadata, spec } = policy;
        let name = metadata.name;
        if name.is_empty() {
            return;
        }
        let def = PolicyDef::new(&spec);
        let entry = self.policies.entry(name.clone()).or_default();
        let old = entry.def.take();
        let reselect = old
            .as_ref()
            .is_none_or(|o| o.selector != def.selector || !o.same_reach(&def));
        let reorder = old
            .as_ref()
            .is_some_and(|o| o.order != def.order || !o.same_reach(&def));
        if reselect {
            let selected: BTreeSet<EndpointId> = self
                .local_endpoints
                .iter()
                .filter(|id| {
                    self.endpoints
                        .get(*id)
                        .is_some_and(|e| def.selects(&e.labels, e.host))
                })
                .cloned()
                .collect();
            for id in selected.symmetric_difference(&entry.matches) {
                if let Some(endpoint) = self.endpoints.get_mut(id) {
                    if selected.contains(id) {
                        endpoint.policies.insert(name.clone());
                    } else {
                        endpoint.policies.remove(&name);
                    }
                    self.dirty.interface(endpoint);
                }
            }
            entry.matches = selected;
        }
        if reorder {
            for id in &entry.matches {
                if let Some(endpoint) = self.endpoints.get(id) {
                    self.dirty.interface(endpoint);
                }
            }
        }
        entry.def = Some(def);
        self.dirty.policies.insert(name);
    }

    fn remove_policy(&mut self, name: &str) {
        let Some(entry) = self.policies.get_mut(name) else {
            return;
        };
        entry.def = None;
        for id in mem::take(&mut entry.matches) {
            if let Some(endpoint) = self.endpoints.get_mut(&id) {
                endpoint.policies.remove(name);
                self.dirty.interface(endpoint);
            }
        }
        self.dirty.policies.insert(name.to_owned());
    }

    fn upsert_profile(&mut self, profile: Profile) {
        let Profile { metadata, spec } = profile;
        let name = metadata.name;
        if name.is_empty() {
            return;
        }
        let def = ProfileDef {
            inherited: Inherited {
                labels: metadata.labels,
                tags: metadata.tags,
            },
            compiled: Compiled::new(Some(&spec.ingress), Some(&spec.egress), Action::Allow),
        };
        let entry = self.profiles.entry(name.clone()).or_default();
        let relabel = match &entry.def {
            Some(old) => old.inherited != def.inherited,
            None => !def.inherited.is_empty(),
        };
        entry.def = Some(def);
        self.dirty.profiles.insert(name.clone());
        if relabel {
            self.relabel_users(&name);
        }
    }

    fn remove_profile(&mut self, name: &str) {
        let Some(entry) = self.profiles.get_mut(name) else {
            return;
        };
        let Some(old) = entry.def.take() else {
            return;
        };
        self.dirty.profiles.insert(name.to_owned());
        if !old.inherited.is_empty() {
            self.relabel_users(name);
        }
    }

    /// Recomputes the effective labels of every endpoint that lists the profile.
    fn relabel_users(&mut self, profile: &str) {
        let Some(entry) = self.profiles.get(profile) else {
            return;
        };
        let users: Vec<EndpointId> = entry.users.iter().cloned().collect();
        for id in &users {
            self.relabel(id);
        }
    }

    /// Recomputes one endpoint's effective labels and, when they changed, its set
    /// memberships and (local endpoints) which policies select it.
    fn relabel(&mut self, id: &EndpointId) {
        let CalcGraph {
            endpoints,
            policies,
            profiles,
            index,
            out,
            dirty,
            ..
        } = self;
        let Some(endpoint) = endpoints.get_mut(id) else {
            return;
        };
        let labels = labels::effective(
            &endpoint.own_labels,
            endpoint
                .profiles
                .iter()
                .map(|p| Self::inherited(profiles, p)),
        );
        if labels == endpoint.labels {
            return;
        }
        let old_labels = mem::replace(&mut endpoint.labels, labels);
        index.update(
            Some(Member {
                labels: &old_labels,
                ips: &endpoint.ips,
            }),
            Some(endpoint.member()),
            out,
        );
        if endpoint.local {
            let current = mem::take(&mut endpoint.policies);
            let (matched, changed) = rematch(
                policies,
                dirty,
                id,
                (&endpoint.labels, endpoint.host),
                current,
            );
            endpoint.policies = matched;
            if changed {
                dirty.interface(endpoint);
            }
        }
    }

    /// Reconciles the dirty policies, profiles and interfaces with [`Output`].
    fn flush(&mut self) {
        let CalcGraph {
            endpoints,
            interfaces,
            local_hosts,
            host_addresses,
            policies,
            profiles,
            index,
            out,
            dirty,
            ..
        } = self;
        let mut released: Vec<Selector> = Vec::new();
        let mut apply = |target: Option<&Compiled>, applied: &mut Option<Compiled>| {
            if target == applied.as_ref() {
                return false;
            }
            for selector in target.iter().flat_map(|t| &t.selectors) {
                index.add_ref(selector, endpoints.values().map(Endpoint::member), out);
            }
            if let Some(old) = mem::replace(applied, target.cloned()) {
                released.extend(old.selectors);
            }
            true
        };
        let mut policy_writes = Vec::new();
        for name in mem::take(&mut dirty.policies) {
            let Some(entry) = policies.get_mut(&name) else {
                continue;
            };
            let target = entry
                .def
                .as_ref()
                .filter(|_| !entry.matches.is_empty())
                .map(|d| &d.compiled);
            if apply(target, &mut entry.applied) {
                policy_writes.push((
                    name.clone(),
                    entry.applied.as_ref().map(|c| c.rules.clone()),
                ));
            }
            if entry.def.is_none() && entry.applied.is_none() {
                policies.remove(&name);
            }
        }
        let mut profile_writes = Vec::new();
        let deny_all = Compiled::deny_all(true, true);
        for name in mem::take(&mut dirty.profiles) {
            let Some(entry) = profiles.get_mut(&name) else {
                continue;
            };
            let target = match &entry.def {
                _ if entry.local_users == 0 => None,
                Some(def) => Some(&def.compiled),
                None => Some(&deny_all),
            };
            if apply(target, &mut entry.applied) {
                profile_writes.push((
                    name.clone(),
                    entry.applied.as_ref().map(|c| c.rules.clone()),
                ));
            }
            if entry.is_unused() {
                profiles.remove(&name);
            }
        }
        for (name, rules) in policy_writes {
            out.set_policy(&name, rules);
        }
        for (name, rules) in profile_writes {
            out.set_profile(&name, rules);
        }
        for selector in released {
            index.remove_ref(selector.uid(), out);
        }
        for interface in mem::take(&mut dirty.interfaces) {
            let owner = interfaces
                .get(&interface)
                .and_then(|ids| ids.first())
                .and_then(|id| endpoints.get(id));
            out.set_endpoint(&interface, owner.map(|e| plan(e, policies)));
        }
        if mem::take(&mut dirty.host_endpoints) {
            let owners = host_interfaces(local_hosts, host_addresses, endpoints);
            let gone: Vec<String> = out
                .desired()
                .host_endpoints
                .keys()
                .filter(|iface| !owners.contains_key(iface.as_str()))
                .cloned()
                .collect();
            for iface in gone {
                out.set_host_endpoint(&iface, None);
            }
            for (iface, endpoint) in owners {
                out.set_host_endpoint(iface, Some(host_plan(endpoint, policies)));
            }
        }
    }
}

/// Which local host endpoint covers each interface: the first (by key) that names it, else the
/// first that names no interface and expects one of its addresses. `cali*` interfaces are
/// never covered.
fn host_interfaces<'a>(
    local_hosts: &BTreeSet<EndpointId>,
    host_addresses: &'a BTreeMap<String, BTreeSet<IpAddr>>,
    endpoints: &'a HashMap<EndpointId, Endpoint>,
) -> BTreeMap<&'a str, &'a Endpoint> {
    let hosts: Vec<&Endpoint> = local_hosts
        .iter()
        .filter_map(|id| endpoints.get(id))
        .collect();
    let mut owners = BTreeMap::new();
    for endpoint in &hosts {
        if !endpoint.interface.is_empty() {
            owners
                .entry(endpoint.interface.as_str())
                .or_insert(*endpoint);
        }
    }
    for endpoint in hosts.iter().filter(|e| e.interface.is_empty()) {
        for (iface, addrs) in host_addresses {
            if !addrs.is_disjoint(&endpoint.ips) {
                owners.entry(iface.as_str()).or_insert(*endpoint);
            }
        }
    }
    owners.retain(|iface, _| !iface.starts_with(HOST_INTERFACE_PREFIX));
    owners
}

/// Re-evaluates every policy's selector against a local endpoint's labels (O(policies)).
/// Returns the policies that select it, and whether that differs from `current`.
fn rematch(
    policies: &mut HashMap<String, PolicyEntry>,
    dirty: &mut Dirty,
    id: &EndpointId,
    (labels, host): (&LabelMap, bool),
    mut current: BTreeSet<String>,
) -> (BTreeSet<String>, bool) {
    let mut changed = false;
    for (name, entry) in policies.iter_mut() {
        let Some(def) = &entry.def else {
            continue;
        };
        let selects = def.selects(labels, host);
        if selects == current.contains(name) {
            continue;
        }
        if selects {
            current.insert(name.clone());
            entry.matches.insert(id.clone());
        } else {
            current.remove(name);
            entry.matches.remove(id);
        }
        dirty.policies.insert(name.clone());
        changed = true;
    }
    (current, changed)
}

/// The policies that select a local endpoint, by `order` (missing last) then name.
fn selecting<'a>(
    endpoint: &'a Endpoint,
    policies: &'a HashMap<String, PolicyEntry>,
) -> Vec<(&'a String, &'a PolicyDef)> {
    let mut selecting: Vec<(&String, &PolicyDef)> = endpoint
        .policies
        .iter()
        .filter_map(|name| Some((name, policies.get(name)?.def.as_ref()?)))
        .collect();
    selecting.sort_by(|(an, a), (bn, b)| {
        a.order_key()
            .total_cmp(&b.order_key())
            .then_with(|| an.cmp(bn))
    });
    selecting
}

/// The names of the `selecting` policies of `kind` that govern ingress (else egress).
fn names(selecting: &[(&String, &PolicyDef)], kind: PolicyKind, ingress: bool) -> Vec<String> {
    selecting
        .iter()
        .filter(|(_, def)| def.kind == kind && if ingress { def.ingress } else { def.egress })
        .map(|(name, _)| (*name).clone())
        .collect()
}

/// A local workload's plan: its policies per direction, sorted, then its profiles.
fn plan(endpoint: &Endpoint, policies: &HashMap<String, PolicyEntry>) -> LocalEndpoint {
    let selecting = selecting(endpoint, policies);
    let direction = |ingress| DirectionPlan {
        policies: names(&selecting, PolicyKind::Normal, ingress),
        profiles: endpoint.profiles.clone(),
    };
    LocalEndpoint {
        interface: endpoint.interface.clone(),
        addrs: endpoint.addrs.clone(),
        ingress: direction(true),
        egress: direction(false),
    }
}

/// A local host endpoint's plan: normal policies then profiles, untracked and preDNAT
/// policies.
fn host_plan(endpoint: &Endpoint, policies: &HashMap<String, PolicyEntry>) -> HostEndpointPlan {
    let selecting = selecting(endpoint, policies);
    let direction = |ingress| DirectionPlan {
        policies: names(&selecting, PolicyKind::Normal, ingress),
        profiles: endpoint.profiles.clone(),
    };
    HostEndpointPlan {
        ingress: direction(true),
        egress: direction(false),
        untracked_ingress: names(&selecting, PolicyKind::Untracked, true),
        untracked_egress: names(&selecting, PolicyKind::Untracked, false),
        pre_dnat_ingress: names(&selecting, PolicyKind::PreDnat, true),
    }
}
