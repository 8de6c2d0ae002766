//! IP set membership: the active rule selectors against every endpoint of the cluster.
//!
//! Each active selector (by UID) carries a count of the active policies and profiles whose
//! rules reference it, and a count per address of the matching endpoints that have it, so an
//! address shared by two endpoints stays in the set until both are gone. Nothing is stored per
//! endpoint: a change re-evaluates the endpoint's old and new labels against each active
//! selector, which gives the same answer the stored relation would.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use calico_selector::Selector;

use crate::labels::LabelMap;
use crate::output::Output;

/// What an endpoint contributes to the sets it matches.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Member<'a> {
    /// Effective labels.
    pub(crate) labels: &'a LabelMap,
    /// Addresses.
    pub(crate) ips: &'a BTreeSet<IpAddr>,
}

#[derive(Debug)]
struct IpSet {
    selector: Selector,
    refs: usize,
    members: HashMap<IpAddr, usize>,
}

impl IpSet {
    fn add(&mut self, id: &str, ip: IpAddr, out: &mut Output) {
        let count = self.members.entry(ip).or_insert(0);
        *count += 1;
        if *count == 1 {
            out.add_member(id, ip);
        }
    }

    fn remove(&mut self, id: &str, ip: IpAddr, out: &mut Output) {
        if let Some(count) = self.members.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                self.members.remove(&ip);
                out.remove_member(id, ip);
            }
        }
    }
}

/// The active selectors and their members.
#[derive(Debug, Default)]
pub(crate) struct SelectorIndex {
    sets: HashMap<String, IpSet>,
}

impl SelectorIndex {
    /// Adds a reference to `selector`. The first one creates the set and scans `endpoints`
    /// (O(endpoints)); later ones only count.
    pub(crate) fn add_ref<'a>(
        &mut self,
        selector: &Selector,
        endpoints: impl IntoIterator<Item = Member<'a>>,
        out: &mut Output,
    ) {
        let id = selector.uid();
        if let Some(set) = self.sets.get_mut(id) {
            set.refs += 1;
            return;
        }
        out.create_set(id);
        let mut set = IpSet {
            selector: selector.clone(),
            refs: 1,
            members: HashMap::new(),
        };
        for member in endpoints {
            if set.selector.matches(member.labels) {
                for ip in member.ips {
                    set.add(id, *ip, out);
                }
            }
        }
        self.sets.insert(id.to_owned(), set);
    }

    /// Drops a reference; the last one deletes the set.
    pub(crate) fn remove_ref(&mut self, id: &str, out: &mut Output) {
        let Some(set) = self.sets.get_mut(id) else {
            return;
        };
        set.refs -= 1;
        if set.refs == 0 {
            self.sets.remove(id);
            out.delete_set(id);
        }
    }

    /// An endpoint appeared (`old` is `None`), changed, or went away (`new` is `None`):
    /// re-evaluates it against every active selector (O(active selectors)).
    pub(crate) fn update(&mut self, old: Option<Member>, new: Option<Member>, out: &mut Output) {
        let same_labels = match (old, new) {
            (Some(o), Some(n)) => o.labels == n.labels,
            _ => false,
        };
        for (id, set) in &mut self.sets {
            let now = new.filter(|m| set.selector.matches(m.labels));
            let was = if same_labels {
                now.and(old)
            } else {
                old.filter(|m| set.selector.matches(m.labels))
            };
            let empty = BTreeSet::new();
            let was_ips = was.map_or(&empty, |m| m.ips);
            let now_ips = now.map_or(&empty, |m| m.ips);
            for ip in now_ips.difference(was_ips) {
                set.add(id, *ip, out);
            }
            for ip in was_ips.difference(now_ips) {
                set.remove(id, *ip, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> LabelMap {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn ips(list: &[&str]) -> BTreeSet<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn shared_addresses_are_counted() {
        let mut out = Output::default();
        let mut index = SelectorIndex::default();
        let sel = calico_selector::parse("has(a)").unwrap();
        let id = sel.uid().to_owned();
        let la = labels(&[("a", "")]);
        let one = ips(&["10.0.0.1"]);
        let both = ips(&["10.0.0.1", "10.0.0.2"]);
        index.add_ref(
            &sel,
            [Member {
                labels: &la,
                ips: &one,
            }],
            &mut out,
        );
        index.update(
            None,
            Some(Member {
                labels: &la,
                ips: &both,
            }),
            &mut out,
        );
        assert_eq!(out.desired().ip_sets[&id], both);
        // The first endpoint goes: 10.0.0.1 is still held by the second.
        index.update(
            Some(Member {
                labels: &la,
                ips: &one,
            }),
            None,
            &mut out,
        );
        assert_eq!(out.desired().ip_sets[&id], both);
        // The second one stops matching.
        let none = labels(&[]);
        index.update(
            Some(Member {
                labels: &la,
                ips: &both,
            }),
            Some(Member {
                labels: &none,
                ips: &both,
            }),
            &mut out,
        );
        assert!(out.desired().ip_sets[&id].is_empty());
    }

    #[test]
    fn sets_live_while_referenced() {
        let mut out = Output::default();
        let mut index = SelectorIndex::default();
        let sel = calico_selector::parse("all()").unwrap();
        index.add_ref(&sel, [], &mut out);
        index.add_ref(&sel, [], &mut out);
        index.remove_ref(sel.uid(), &mut out);
        assert!(out.desired().ip_sets.contains_key(sel.uid()));
        index.remove_ref(sel.uid(), &mut out);
        assert!(out.desired().ip_sets.is_empty());
        index.remove_ref(sel.uid(), &mut out);
    }
}
