//! The [`Desired`] state and a journal of what changed in it since the last report.
//!
//! Every write goes through [`Output`]. The first time an item (set, set member, policy,
//! profile, endpoint) is touched after a report, the journal keeps its value as it was at
//! that report; [`Output::take_changes`] compares those values with the current ones. The
//! report is therefore exact (a change undone before the report is not reported) and costs
//! work proportional to what was touched, never to the size of the state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::desired::{
    Changes, Desired, Failsafe, HostEndpointPlan, LocalEndpoint, Pool, PublishedPort, Rules,
};

/// The desired state, written only through methods that keep the journal.
#[derive(Debug, Default)]
pub(crate) struct Output {
    desired: Desired,
    journal: Journal,
}

/// Values as they were at the last report, for everything touched since.
#[derive(Debug, Default)]
struct Journal {
    /// Set ID → whether the set existed.
    sets: HashMap<String, bool>,
    /// Set ID → address → whether it was a member.
    members: HashMap<String, HashMap<IpAddr, bool>>,
    policies: HashMap<String, Option<Rules>>,
    profiles: HashMap<String, Option<Rules>>,
    endpoints: HashMap<String, Option<LocalEndpoint>>,
    host_endpoints: HashMap<String, Option<HostEndpointPlan>>,
    /// The failsafe ports as they were, once changed.
    failsafe: Option<Failsafe>,
    /// Every pool, as it was (pools are few: the whole map is kept).
    pools: Option<BTreeMap<IpNet, Pool>>,
    /// Every published port, as it was (a host has few: the whole map is kept).
    published: Option<BTreeMap<String, Vec<PublishedPort>>>,
}

impl Output {
    pub(crate) fn desired(&self) -> &Desired {
        &self.desired
    }

    /// Creates an empty IP set (no-op when it exists).
    pub(crate) fn create_set(&mut self, id: &str) {
        if self.desired.ip_sets.contains_key(id) {
            return;
        }
        self.journal.sets.entry(id.to_owned()).or_insert(false);
        self.desired.ip_sets.insert(id.to_owned(), BTreeSet::new());
    }

    /// Deletes an IP set with its members (no-op when it does not exist).
    pub(crate) fn delete_set(&mut self, id: &str) {
        let Some(members) = self.desired.ip_sets.remove(id) else {
            return;
        };
        self.journal.sets.entry(id.to_owned()).or_insert(true);
        let journal = self.journal.members.entry(id.to_owned()).or_default();
        for ip in members {
            journal.entry(ip).or_insert(true);
        }
    }

    /// Adds a member to an existing set.
    pub(crate) fn add_member(&mut self, id: &str, ip: IpAddr) {
        if let Some(set) = self.desired.ip_sets.get_mut(id) {
            let was = !set.insert(ip);
            record_member(&mut self.journal.members, id, ip, was);
        }
    }

    /// Removes a member from an existing set.
    pub(crate) fn remove_member(&mut self, id: &str, ip: IpAddr) {
        if let Some(set) = self.desired.ip_sets.get_mut(id) {
            let was = set.remove(&ip);
            record_member(&mut self.journal.members, id, ip, was);
        }
    }

    /// Sets (or, with `None`, removes) a policy's rules.
    pub(crate) fn set_policy(&mut self, name: &str, rules: Option<Rules>) {
        write(
            &mut self.desired.policies,
            &mut self.journal.policies,
            name,
            rules,
        );
    }

    /// Sets (or, with `None`, removes) a profile's rules.
    pub(crate) fn set_profile(&mut self, name: &str, rules: Option<Rules>) {
        write(
            &mut self.desired.profiles,
            &mut self.journal.profiles,
            name,
            rules,
        );
    }

    /// Sets (or, with `None`, removes) a local endpoint's plan.
    pub(crate) fn set_endpoint(&mut self, interface: &str, plan: Option<LocalEndpoint>) {
        write(
            &mut self.desired.endpoints,
            &mut self.journal.endpoints,
            interface,
            plan,
        );
    }

    /// Sets (or, with `None`, removes) the plan of the host endpoint on `interface`.
    pub(crate) fn set_host_endpoint(&mut self, interface: &str, plan: Option<HostEndpointPlan>) {
        write(
            &mut self.desired.host_endpoints,
            &mut self.journal.host_endpoints,
            interface,
            plan,
        );
    }

    /// Sets the failsafe ports (every host endpoint is reported changed when they differ).
    pub(crate) fn set_failsafe(&mut self, failsafe: Failsafe) {
        if self.desired.failsafe == failsafe {
            return;
        }
        let old = std::mem::replace(&mut self.desired.failsafe, failsafe);
        self.journal.failsafe.get_or_insert(old);
    }

    /// Sets (or, with `None`, removes) an IP pool.
    pub(crate) fn set_pool(&mut self, cidr: IpNet, pool: Option<Pool>) {
        let pools = &mut self.desired.pools;
        if pools.get(&cidr) == pool.as_ref() {
            return;
        }
        self.journal.pools.get_or_insert_with(|| pools.clone());
        match pool {
            Some(pool) => pools.insert(cidr, pool),
            None => pools.remove(&cidr),
        };
    }

    /// Sets the ports published to the endpoint on `interface` (none: an empty list).
    pub(crate) fn set_published(&mut self, interface: &str, mut ports: Vec<PublishedPort>) {
        ports.sort();
        ports.dedup();
        let published = &mut self.desired.published;
        if published
            .get(interface)
            .map_or(ports.is_empty(), |p| *p == ports)
        {
            return;
        }
        self.journal
            .published
            .get_or_insert_with(|| published.clone());
        if ports.is_empty() {
            published.remove(interface);
        } else {
            published.insert(interface.to_owned(), ports);
        }
    }

    /// What differs between the state at the last report and now; starts a new journal.
    pub(crate) fn take_changes(&mut self) -> Changes {
        let journal = std::mem::take(&mut self.journal);
        let desired = &self.desired;
        let mut changes = Changes::default();
        for (id, existed) in journal.sets {
            match (existed, desired.ip_sets.contains_key(&id)) {
                (false, true) => {
                    changes.sets_created.insert(id);
                }
                (true, false) => {
                    changes.sets_deleted.insert(id);
                }
                _ => {}
            }
        }
        for (id, members) in journal.members {
            // A deleted set's members go with it; a set that never existed has none.
            let Some(current) = desired.ip_sets.get(&id) else {
                continue;
            };
            let mut added = BTreeSet::new();
            let mut removed = BTreeSet::new();
            for (ip, was) in members {
                match (was, current.contains(&ip)) {
                    (false, true) => added.insert(ip),
                    (true, false) => removed.insert(ip),
                    _ => false,
                };
            }
            if !added.is_empty() {
                changes.members_added.insert(id.clone(), added);
            }
            if !removed.is_empty() {
                changes.members_removed.insert(id, removed);
            }
        }
        diff(
            &desired.policies,
            journal.policies,
            &mut changes.policies_changed,
            &mut changes.policies_removed,
        );
        diff(
            &desired.profiles,
            journal.profiles,
            &mut changes.profiles_changed,
            &mut changes.profiles_removed,
        );
        diff(
            &desired.endpoints,
            journal.endpoints,
            &mut changes.endpoints_changed,
            &mut changes.endpoints_removed,
        );
        diff(
            &desired.host_endpoints,
            journal.host_endpoints,
            &mut changes.host_endpoints_changed,
            &mut changes.host_endpoints_removed,
        );
        if journal.failsafe.is_some_and(|old| old != desired.failsafe) {
            changes
                .host_endpoints_changed
                .extend(desired.host_endpoints.keys().cloned());
        }
        changes.pools_changed = journal.pools.is_some_and(|old| old != desired.pools);
        changes.published_changed = journal
            .published
            .is_some_and(|old| old != desired.published);
        changes
    }
}

fn record_member(
    journal: &mut HashMap<String, HashMap<IpAddr, bool>>,
    id: &str,
    ip: IpAddr,
    was: bool,
) {
    if let Some(members) = journal.get_mut(id) {
        members.entry(ip).or_insert(was);
    } else {
        journal.insert(id.to_owned(), HashMap::from([(ip, was)]));
    }
}

/// Writes `value` under `name`, journalling the previous value on first touch.
fn write<V: Clone + PartialEq>(
    map: &mut BTreeMap<String, V>,
    journal: &mut HashMap<String, Option<V>>,
    name: &str,
    value: Option<V>,
) {
    let current = map.get(name);
    if current == value.as_ref() {
        return;
    }
    if !journal.contains_key(name) {
        journal.insert(name.to_owned(), current.cloned());
    }
    match value {
        Some(value) => map.insert(name.to_owned(), value),
        None => map.remove(name),
    };
}

/// Sorts journalled names into changed (now present and different) and removed.
fn diff<V: PartialEq>(
    current: &BTreeMap<String, V>,
    journal: HashMap<String, Option<V>>,
    changed: &mut BTreeSet<String>,
    removed: &mut BTreeSet<String>,
) {
    for (name, before) in journal {
        match (before, current.get(&name)) {
            (Some(_), None) => {
                removed.insert(name);
            }
            (before, Some(now)) if before.as_ref() != Some(now) => {
                changed.insert(name);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn undone_changes_are_not_reported() {
        let mut out = Output::default();
        out.create_set("s");
        out.add_member("s", ip("10.0.0.1"));
        out.set_policy("p", Some(Rules::default()));
        let first = out.take_changes();
        assert!(first.sets_created.contains("s"));
        assert_eq!(first.members_added["s"], BTreeSet::from([ip("10.0.0.1")]));
        assert!(first.policies_changed.contains("p"));

        out.remove_member("s", ip("10.0.0.1"));
        out.add_member("s", ip("10.0.0.1"));
        out.delete_set("s");
        out.create_set("s");
        out.add_member("s", ip("10.0.0.1"));
        out.set_policy("p", None);
        out.set_policy("p", Some(Rules::default()));
        assert!(out.take_changes().is_empty());
    }

    #[test]
    fn deleted_sets_report_no_member_removals() {
        let mut out = Output::default();
        out.create_set("s");
        out.add_member("s", ip("10.0.0.1"));
        out.take_changes();
        out.remove_member("s", ip("10.0.0.1"));
        out.delete_set("s");
        let changes = out.take_changes();
        assert_eq!(changes.sets_deleted, BTreeSet::from(["s".to_owned()]));
        assert!(changes.members_removed.is_empty());
    }

    #[test]
    fn writes_to_missing_sets_are_ignored() {
        let mut out = Output::default();
        out.add_member("nope", ip("10.0.0.1"));
        out.remove_member("nope", ip("10.0.0.1"));
        assert!(out.take_changes().is_empty());
        assert!(out.desired().ip_sets.is_empty());
    }
}
