//! The table of workload names (pure): which IPv4 addresses answer `<container>.<network>` and
//! `<container>`.
//!
//! Names are case-insensitive and a trailing dot is ignored, in the table as in queries.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

/// What the table says about a queried name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A workload name: its addresses, sorted and deduplicated (empty when it has none).
    Addrs(Vec<Ipv4Addr>),
    /// Under a known network but no such container on it: answer NXDOMAIN, do not forward.
    NoSuchName,
    /// Not a name this table is authoritative for: forward it.
    NotOurs,
}

/// The names of the workload endpoints of every host, kept up to date by their owner.
#[derive(Clone, Debug, Default)]
pub struct Names {
    /// Endpoint id → what it was upserted with.
    endpoints: HashMap<String, Endpoint>,
    /// Name (`<container>` or `<container>.<network>`) → ids of the endpoints answering it.
    by_name: HashMap<String, BTreeSet<String>>,
    /// Network → number of endpoints attached to it.
    networks: HashMap<String, usize>,
}

#[derive(Clone, Debug)]
struct Endpoint {
    names: Vec<String>,
    networks: Vec<String>,
    addrs: Vec<Ipv4Addr>,
}

impl Names {
    /// An empty table.
    pub fn new() -> Names {
        Names::default()
    }

    /// Sets endpoint `id`'s container name, networks and addresses, replacing what `id` had.
    ///
    /// Empty container and network names are skipped; an endpoint's networks count as known
    /// (see [`Lookup::NoSuchName`]) even when its container name is empty.
    pub fn upsert(&mut self, id: &str, container: &str, networks: &[String], addrs: &[Ipv4Addr]) {
        self.remove(id);
        let container = normalize(container);
        let networks: Vec<String> = networks
            .iter()
            .map(|n| normalize(n))
            .filter(|n| !n.is_empty())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut names = Vec::new();
        if !container.is_empty() {
            names.extend(networks.iter().map(|n| format!("{container}.{n}")));
            names.push(container);
        }
        for name in &names {
            self.by_name
                .entry(name.clone())
                .or_default()
                .insert(id.to_string());
        }
        for network in &networks {
            *self.networks.entry(network.clone()).or_default() += 1;
        }
        let endpoint = Endpoint {
            names,
            networks,
            addrs: addrs.to_vec(),
        };
        self.endpoints.insert(id.to_string(), endpoint);
    }

    /// Forgets endpoint `id` (nothing happens when it is unknown).
    pub fn remove(&mut self, id: &str) {
        let Some(endpoint) = self.endpoints.remove(id) else {
            return;
        };
        for name in &endpoint.names {
            if let Some(ids) = self.by_name.get_mut(name) {
                ids.remove(id);
                if ids.is_empty() {
                    self.by_name.remove(name);
                }
            }
        }
        for network in &endpoint.networks {
            if let Some(count) = self.networks.get_mut(network) {
                *count -= 1;
                if *count == 0 {
                    self.networks.remove(network);
                }
            }
        }
    }

    /// What the table answers for `qname`.
    pub fn lookup(&self, qname: &str) -> Lookup {
        let qname = normalize(qname);
        if let Some(ids) = self.by_name.get(&qname) {
            let addrs: BTreeSet<Ipv4Addr> = ids
                .iter()
                .filter_map(|id| self.endpoints.get(id))
                .flat_map(|e| e.addrs.iter().copied())
                .collect();
            return Lookup::Addrs(addrs.into_iter().collect());
        }
        let under_known_network = qname
            .match_indices('.')
            .any(|(dot, _)| self.networks.contains_key(&qname[dot + 1..]));
        if under_known_network {
            Lookup::NoSuchName
        } else {
            Lookup::NotOurs
        }
    }
}

fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, last)
    }

    fn nets(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn table() -> Names {
        let mut names = Names::new();
        names.upsert("ep-a", "workload-A", &nets(&["net1"]), &[ip(1)]);
        names.upsert(
            "ep-b",
            "workload-b",
            &nets(&["net1", "Net2"]),
            &[ip(3), ip(2)],
        );
        names.upsert("ep-b2", "workload-b", &nets(&["net2"]), &[ip(4), ip(2)]);
        names
    }

    #[test]
    fn answers_container_on_network_and_container_alone() {
        let names = table();
        assert_eq!(names.lookup("workload-a.net1"), Lookup::Addrs(vec![ip(1)]));
        assert_eq!(names.lookup("workload-a"), Lookup::Addrs(vec![ip(1)]));
        assert_eq!(
            names.lookup("workload-b.net1"),
            Lookup::Addrs(vec![ip(2), ip(3)])
        );
        assert_eq!(
            names.lookup("workload-b.net2"),
            Lookup::Addrs(vec![ip(2), ip(3), ip(4)])
        );
        assert_eq!(
            names.lookup("workload-b"),
            Lookup::Addrs(vec![ip(2), ip(3), ip(4)])
        );
    }

    #[test]
    fn case_and_trailing_dot_are_ignored() {
        let names = table();
        assert_eq!(names.lookup("WORKLOAD-A.Net1."), Lookup::Addrs(vec![ip(1)]));
        assert_eq!(
            names.lookup("Workload-B.NET2"),
            names.lookup("workload-b.net2")
        );
        assert_eq!(names.lookup("ghost.NET2."), Lookup::NoSuchName);
    }

    #[test]
    fn unknown_names_under_a_network_are_ours_others_are_not() {
        let names = table();
        assert_eq!(names.lookup("ghost.net1"), Lookup::NoSuchName);
        assert_eq!(names.lookup("a.b.net1"), Lookup::NoSuchName);
        assert_eq!(names.lookup("workload-a.net2"), Lookup::NoSuchName);
        assert_eq!(names.lookup("net1"), Lookup::NotOurs);
        assert_eq!(names.lookup("ghost"), Lookup::NotOurs);
        assert_eq!(names.lookup("example.com"), Lookup::NotOurs);
        assert_eq!(names.lookup("net1.example.com"), Lookup::NotOurs);
        assert_eq!(names.lookup(""), Lookup::NotOurs);
        assert_eq!(names.lookup("."), Lookup::NotOurs);
    }

    #[test]
    fn upsert_replaces_the_previous_entry() {
        let mut names = table();
        names.upsert("ep-a", "workload-a", &nets(&["net3"]), &[ip(9)]);
        assert_eq!(names.lookup("workload-a.net3"), Lookup::Addrs(vec![ip(9)]));
        assert_eq!(names.lookup("workload-a"), Lookup::Addrs(vec![ip(9)]));
        assert_eq!(names.lookup("workload-a.net1"), Lookup::NoSuchName);
        names.upsert("ep-a", "renamed", &nets(&["net3"]), &[ip(9)]);
        assert_eq!(names.lookup("workload-a"), Lookup::NotOurs);
        assert_eq!(names.lookup("renamed.net3"), Lookup::Addrs(vec![ip(9)]));
    }

    #[test]
    fn remove_forgets_names_and_networks() {
        let mut names = table();
        names.remove("ep-a");
        assert_eq!(names.lookup("workload-a.net1"), Lookup::NoSuchName);
        assert_eq!(names.lookup("workload-a"), Lookup::NotOurs);
        names.remove("ep-b");
        assert_eq!(names.lookup("workload-b.net1"), Lookup::NotOurs);
        assert_eq!(
            names.lookup("workload-b"),
            Lookup::Addrs(vec![ip(2), ip(4)])
        );
        names.remove("ep-b2");
        names.remove("never-there");
        assert_eq!(names.lookup("workload-b.net2"), Lookup::NotOurs);
        assert!(names.by_name.is_empty() && names.networks.is_empty());
    }

    #[test]
    fn skips_empty_names_and_duplicate_networks() {
        let mut names = Names::new();
        names.upsert("ep-1", "", &nets(&["net1"]), &[ip(1)]);
        names.upsert("ep-2", "solo", &nets(&["", "net2", "NET2"]), &[ip(2)]);
        assert_eq!(names.lookup("ghost.net1"), Lookup::NoSuchName);
        assert_eq!(names.lookup(".net1"), Lookup::NoSuchName);
        assert_eq!(names.lookup("solo"), Lookup::Addrs(vec![ip(2)]));
        assert_eq!(names.lookup("solo.net2"), Lookup::Addrs(vec![ip(2)]));
        assert_eq!(names.lookup("solo."), Lookup::Addrs(vec![ip(2)]));
        names.remove("ep-2");
        assert_eq!(names.lookup("x.net2"), Lookup::NotOurs);
    }

    #[test]
    fn known_name_without_addresses_and_dotted_names() {
        let mut names = Names::new();
        names.upsert("ep-v6", "v6only", &nets(&["net1"]), &[]);
        names.upsert("ep-dot", "my.app", &nets(&["team.net"]), &[ip(5)]);
        assert_eq!(names.lookup("v6only.net1"), Lookup::Addrs(vec![]));
        assert_eq!(names.lookup("my.app.team.net"), Lookup::Addrs(vec![ip(5)]));
        assert_eq!(names.lookup("other.team.net"), Lookup::NoSuchName);
        assert_eq!(names.lookup("other.net"), Lookup::NotOurs);
    }
}
