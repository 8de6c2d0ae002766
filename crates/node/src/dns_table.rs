//! Names that span hosts: calico-node answers DNS for `<container>.<network>` and `<container>`
//! of the workloads of every host (calico-dns). The policy agent, which already follows every
//! workload endpoint in the datastore, keeps the table in step through [`NameFeed`], one of its
//! consumers; [`record`] says what an endpoint contributes: its names
//! come from its `workload` (the container name) and its `profiles` (the network names, as
//! calico-node writes them); its IPv4 `ipNetworks` answer. While the datastore is unreachable the
//! last table keeps answering.
//!
//! # Who is answered
//!
//! The server is not an open resolver. [`Admission`], its [`Clients`], admits two kinds of
//! source address and nothing else; every other query gets no reply at all, and every other
//! TCP connection is closed unread:
//!
//! - **This host's workloads**: the addresses (`ipNetworks`) of the workload endpoints whose
//!   `node` is this node, from the same feed as the names ([`LocalWorkloads`]). A workload's
//!   source address can be trusted: its packets to the host pass its `fw-` chain in the
//!   `inet calico` table, whose anti-spoofing drops any source that is not one of the
//!   endpoint's own addresses (docs/dataplane.md). Other hosts' workloads are refused: they ask
//!   their own calico-node.
//! - **The host itself**: a source that is one of this host's IPv4 addresses ([`HostAddrs`]).
//!   Such a source can only come from the host: the kernel drops a packet arriving on any other
//!   interface than loopback with a local source address as a martian (unless `accept_local` is
//!   set). The server listens on an IPv4 address only, so IPv6 host addresses are not listed.
//!
//! How "one of this host's addresses" is decided: `getifaddrs` lists the addresses once at
//! start; an address not in that list makes it list them again, at most once per
//! [`HOST_REREAD`]. The common case (a host process asking the node address, which the kernel
//! also picks as the source) costs a set lookup; a flood from outside costs one listing per
//! second; an address added later is admitted at most a second or a client retry late. Testing
//! each source with `bind(source, 0)` would be simpler, but it admits every address when
//! `net.ipv4.ip_nonlocal_bind` is set (common on keepalived or HAProxy hosts): an open resolver
//! again. Remembering only the node address would refuse host processes that use another of the
//! host's addresses.
//!
//! What remains: UDP sources are not authenticated. A packet from outside with a local
//! workload's address as its (forged) source is admitted, unless reverse-path filtering drops
//! it, and its answer goes to that workload, not to the spoofer: the server cannot be used to
//! reflect traffic at arbitrary addresses, only at this host's workloads. TCP needs a handshake,
//! so a forged source gets nowhere.
//!
//! Before the first listing of the datastore is complete (calico-node has just started) no
//! workload is known: only the host is admitted, and workloads from the moment the listing is
//! in. That fails closed, and costs a starting workload little, since its endpoint reaches the
//! datastore, and so this table, about when its policy reaches the dataplane. A later listing
//! (after the datastore lost its history) replaces the admitted workloads only once complete,
//! as it does the names.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use calico_dns::{Clients, DnsServer, Names};
use calico_model::{Resource, WorkloadEndpoint};
use tracing::{info, warn};

use crate::agent::feed::{Consumer, SyncStatus, Update};

/// The port Docker's embedded DNS forwards to (`--dns` / daemon.json `dns` take no port).
pub const DNS_PORT: u16 = 53;
/// Where the host's own resolvers are listed.
const RESOLV_CONF: &str = "/etc/resolv.conf";
/// Least time between two listings of the host's addresses.
pub const HOST_REREAD: Duration = Duration::from_secs(1);

/// The table the DNS server answers from, shared with whoever keeps it up to date.
pub type NameTable = Arc<RwLock<Names>>;
/// The workloads the DNS server answers, shared with whoever keeps them up to date.
pub type LocalTable = Arc<RwLock<LocalWorkloads>>;

/// Starts the DNS server on `address:53` for the host and the workloads of `node`; returns the
/// feed that keeps its tables in step. An address that cannot be bound (another DNS server on
/// the host) is logged, and calico-node runs on without names.
pub async fn serve(
    address: Ipv4Addr,
    node: &str,
    observer: Option<calico_dns::QueryObserver>,
) -> Option<NameFeed> {
    let names = NameTable::default();
    let local = LocalTable::default();
    let resolv = std::fs::read_to_string(RESOLV_CONF).unwrap_or_else(|e| {
        warn!(error = %e, "cannot read {RESOLV_CONF}: names other than workloads' will fail");
        String::new()
    });
    let upstreams = calico_dns::upstreams(&resolv, &[IpAddr::V4(address)]);
    let listen = SocketAddr::from((address, DNS_PORT));
    let host = HostAddrs::new(address, Box::new(host_addresses), Instant::now());
    let clients = Arc::new(Admission::new(local.clone(), host));
    match DnsServer::bind(listen, names.clone(), upstreams.clone(), clients).await {
        Ok(server) => {
            let server = match observer {
                Some(observer) => server.with_observer(observer),
                None => server,
            };
            info!(%listen, ?upstreams, "answering DNS for workload names");
            tokio::spawn(server.run());
            Some(NameFeed::new(node, names, local))
        }
        Err(e) => {
            warn!(error = %e, "not answering DNS for workload names");
            None
        }
    }
}

/// Records the endpoint stored under `key`: its container name, networks and IPv4 addresses.
pub fn record(names: &mut Names, key: &str, wep: &WorkloadEndpoint) {
    let addrs: Vec<Ipv4Addr> = wep
        .spec
        .ip_networks
        .iter()
        .filter_map(|net| match net.addr() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .collect();
    names.upsert(key, &wep.metadata.workload, &wep.spec.profiles, &addrs);
}

/// The addresses of this host's workload endpoints, by the datastore path of each endpoint.
#[derive(Debug, Default)]
pub struct LocalWorkloads {
    by_path: HashMap<String, Vec<IpAddr>>,
    /// How many endpoints hold each address: a new endpoint may be given an address before the
    /// removal of the endpoint that held it is seen.
    holders: HashMap<IpAddr, usize>,
}

impl LocalWorkloads {
    /// Records the endpoint stored under `path`: its addresses if it is one of `node`'s, else
    /// nothing (and forgets what was recorded under `path`).
    pub fn record(&mut self, node: &str, path: &str, wep: &WorkloadEndpoint) {
        self.remove(path);
        if wep.metadata.node != node {
            return;
        }
        let addrs: Vec<IpAddr> = wep.spec.ip_networks.iter().map(|net| net.addr()).collect();
        for addr in &addrs {
            *self.holders.entry(*addr).or_default() += 1;
        }
        self.by_path.insert(path.to_string(), addrs);
    }

    /// Forgets the endpoint stored under `path`.
    pub fn remove(&mut self, path: &str) {
        for addr in self.by_path.remove(path).unwrap_or_default() {
            if let Entry::Occupied(mut holders) = self.holders.entry(addr) {
                *holders.get_mut() -= 1;
                if *holders.get() == 0 {
                    holders.remove();
                }
            }
        }
    }

    /// Whether `addr` is an address of one of this host's workloads.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.holders.contains_key(&addr)
    }
}

/// Lists this host's IPv4 addresses.
pub type ReadAddrs = Box<dyn FnMut() -> anyhow::Result<HashSet<IpAddr>> + Send>;

/// This host's IPv4 addresses: the node address always, and those a [`ReadAddrs`] lists, at
/// start and again when asked about an address it does not hold, at most once per
/// [`HOST_REREAD`]. When a listing fails, the previous one stays.
pub struct HostAddrs {
    node: IpAddr,
    addrs: HashSet<IpAddr>,
    read: ReadAddrs,
    read_at: Instant,
    /// Whether the last listing failed (so that a lasting failure is logged once).
    failing: bool,
}

impl HostAddrs {
    /// The addresses of a host whose node address is `node`, listed by `read` now (`now`).
    pub fn new(node: Ipv4Addr, read: ReadAddrs, now: Instant) -> HostAddrs {
        let mut host = HostAddrs {
            node: IpAddr::V4(node),
            addrs: HashSet::new(),
            read,
            read_at: now,
            failing: false,
        };
        host.reread(now);
        host
    }

    /// Whether `addr` is one of this host's addresses, asked at `now`.
    pub fn holds(&mut self, addr: IpAddr, now: Instant) -> bool {
        if addr == self.node || self.addrs.contains(&addr) {
            return true;
        }
        if now.saturating_duration_since(self.read_at) < HOST_REREAD {
            return false;
        }
        self.reread(now);
        self.addrs.contains(&addr)
    }

    fn reread(&mut self, now: Instant) {
        self.read_at = now;
        match (self.read)() {
            Ok(addrs) => {
                if self.failing {
                    info!("DNS: listing this host's addresses works again");
                }
                self.failing = false;
                self.addrs = addrs;
            }
            Err(error) => {
                if !self.failing {
                    warn!(
                        %error,
                        "DNS: cannot list this host's addresses (getifaddrs); admitting from \
                         the host only the node address and the addresses listed before"
                    );
                }
                self.failing = true;
            }
        }
    }
}

/// This host's IPv4 addresses, as the kernel lists them (`getifaddrs`).
fn host_addresses() -> anyhow::Result<HashSet<IpAddr>> {
    Ok(crate::autodetect::interface_addresses()?
        .into_iter()
        .map(|(_, net)| IpAddr::V4(net.addr()))
        .collect())
}

/// Who may use calico-node's DNS server: this host's workloads and the host itself (see the
/// module docs).
pub struct Admission {
    local: LocalTable,
    host: Mutex<HostAddrs>,
}

impl Admission {
    /// Admits the workloads in `local` and the addresses of `host`.
    pub fn new(local: LocalTable, host: HostAddrs) -> Admission {
        Admission {
            local,
            host: Mutex::new(host),
        }
    }
}

impl Clients for Admission {
    /// A workload address of this host, or one of the host's own addresses.
    fn admits(&self, client: IpAddr) -> bool {
        self.local
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(client)
            || self
                .host
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .holds(client, Instant::now())
    }
}

/// Keeps a [`NameTable`] and a [`LocalTable`] in step with the datastore. A listing is gathered
/// into fresh tables that replace the served ones only once complete; until then DNS answers,
/// and admits, from the old ones.
pub struct NameFeed {
    node: String,
    names: NameTable,
    local: LocalTable,
    fresh: Option<(Names, LocalWorkloads)>,
}

impl NameFeed {
    /// Feeds `names` with every host's endpoints and `local` with those of `node`.
    pub fn new(node: &str, names: NameTable, local: LocalTable) -> NameFeed {
        NameFeed {
            node: node.to_string(),
            names,
            local,
            fresh: None,
        }
    }
}

impl Consumer for NameFeed {
    fn on_status(&mut self, status: SyncStatus) {
        match status {
            SyncStatus::Resyncing => self.fresh = Some((Names::new(), LocalWorkloads::default())),
            SyncStatus::InSync => {
                if let Some((names, local)) = self.fresh.take() {
                    *write(&self.names) = names;
                    *write(&self.local) = local;
                }
            }
        }
    }

    fn on_updates(&mut self, updates: &[Update]) {
        let (mut names_guard, mut local_guard);
        let (names, local) = match &mut self.fresh {
            Some((names, local)) => (names, local),
            None => {
                names_guard = write(&self.names);
                local_guard = write(&self.local);
                (&mut *names_guard, &mut *local_guard)
            }
        };
        for update in updates {
            match update {
                Update::Put { path, resource, .. } => {
                    if let Resource::WorkloadEndpoint(wep) = &**resource {
                        record(names, path, wep);
                        local.record(&self.node, path, wep);
                    }
                }
                Update::Remove { path } => {
                    names.remove(path);
                    local.remove(path);
                }
            }
        }
    }
}

/// A shared table, even if a panic poisoned it (neither holds an invariant a panic could break).
fn write<T>(table: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    table.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use calico_dns::Lookup;
    use calico_model::codec;

    const WEP_E: &str = "\
apiVersion: v1
kind: workloadEndpoint
metadata:
  name: ep-e
  workload: workload-E
  orchestrator: libnetwork
  node: calico-02
spec:
  ipNetworks: [192.168.2.5/32, 'fd00::5/128']
  profiles: [net1]
  interfaceName: cali0123456789a
";

    fn wep_e() -> WorkloadEndpoint {
        let Resource::WorkloadEndpoint(wep) = codec::decode(WEP_E).unwrap().remove(0) else {
            panic!("a workload endpoint");
        };
        wep
    }

    /// Endpoint E moved to `node` with `addrs`.
    fn wep_on(node: &str, addrs: &[&str]) -> WorkloadEndpoint {
        let mut wep = wep_e();
        wep.metadata.node = node.to_string();
        wep.spec.ip_networks = addrs.iter().map(|a| a.parse().unwrap()).collect();
        wep
    }

    fn put(path: &str, wep: &WorkloadEndpoint) -> Update {
        Update::Put {
            path: path.into(),
            key: Resource::WorkloadEndpoint(wep.clone()).key().unwrap(),
            resource: Box::new(Resource::WorkloadEndpoint(wep.clone())),
        }
    }

    fn remove(path: &str) -> Update {
        Update::Remove { path: path.into() }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// A feed for calico-01 and its tables.
    fn feed() -> (NameFeed, NameTable, LocalTable) {
        let (names, local) = (NameTable::default(), LocalTable::default());
        (
            NameFeed::new("calico-01", names.clone(), local.clone()),
            names,
            local,
        )
    }

    #[test]
    fn endpoints_of_any_host_answer_by_container_and_network() {
        let mut names = Names::new();
        record(&mut names, "/k/e", &wep_e());
        let e = Lookup::Addrs(vec!["192.168.2.5".parse().unwrap()]);
        assert_eq!(names.lookup("workload-E.net1"), e);
        assert_eq!(names.lookup("workload-e"), e);
        assert_eq!(names.lookup("workload-E.net2"), Lookup::NotOurs);
        assert_eq!(names.lookup("ghost.net1"), Lookup::NoSuchName);
        names.remove("/k/e");
        assert_eq!(names.lookup("workload-E.net1"), Lookup::NotOurs);
    }

    #[test]
    fn a_listing_replaces_the_served_table_only_once_complete() {
        let (mut feed, table, _) = feed();
        feed.on_updates(&[put("/k/e", &wep_e())]);
        let e = Lookup::Addrs(vec!["192.168.2.5".parse().unwrap()]);
        assert_eq!(table.read().unwrap().lookup("workload-E.net1"), e);
        feed.on_status(SyncStatus::Resyncing);
        feed.on_updates(&[remove("/k/e")]);
        assert_eq!(table.read().unwrap().lookup("workload-E.net1"), e);
        feed.on_status(SyncStatus::InSync);
        assert_eq!(
            table.read().unwrap().lookup("workload-E.net1"),
            Lookup::NotOurs
        );
    }

    #[test]
    fn only_this_hosts_endpoints_are_local_workloads_of_either_family() {
        let (mut feed, _, local) = feed();
        let here = wep_on("calico-01", &["10.65.0.1/32", "fd00::1/128"]);
        let there = wep_on("calico-02", &["10.65.1.1/32"]);
        feed.on_updates(&[put("/k/here", &here), put("/k/there", &there)]);
        let local = local.read().unwrap();
        assert!(local.contains(ip("10.65.0.1")));
        assert!(local.contains(ip("fd00::1")));
        assert!(!local.contains(ip("10.65.1.1")), "another node's endpoint");
        assert!(!local.contains(ip("10.65.0.2")));
    }

    #[test]
    fn removed_moved_and_readdressed_endpoints_stop_being_admitted() {
        let (mut feed, _, local) = feed();
        feed.on_updates(&[
            put("/k/a", &wep_on("calico-01", &["10.65.0.1/32"])),
            put("/k/b", &wep_on("calico-01", &["10.65.0.2/32"])),
            put("/k/c", &wep_on("calico-01", &["10.65.0.3/32"])),
        ]);
        feed.on_updates(&[
            remove("/k/a"),
            put("/k/b", &wep_on("calico-02", &["10.65.0.2/32"])),
            put("/k/c", &wep_on("calico-01", &["10.65.0.4/32"])),
        ]);
        let local = local.read().unwrap();
        assert!(!local.contains(ip("10.65.0.1")), "removed");
        assert!(!local.contains(ip("10.65.0.2")), "now another node's");
        assert!(!local.contains(ip("10.65.0.3")), "its old address");
        assert!(local.contains(ip("10.65.0.4")), "its new address");
    }

    #[test]
    fn an_address_stays_admitted_while_any_endpoint_holds_it() {
        let (mut feed, _, local) = feed();
        let shared = wep_on("calico-01", &["10.65.0.7/32"]);
        feed.on_updates(&[put("/k/old", &shared), put("/k/new", &shared)]);
        feed.on_updates(&[remove("/k/old")]);
        assert!(local.read().unwrap().contains(ip("10.65.0.7")));
        feed.on_updates(&[remove("/k/new")]);
        assert!(!local.read().unwrap().contains(ip("10.65.0.7")));
    }

    #[test]
    fn workloads_are_admitted_from_a_complete_listing_and_kept_until_the_next_one() {
        let (mut feed, _, local) = feed();
        feed.on_status(SyncStatus::Resyncing);
        feed.on_updates(&[put("/k/a", &wep_on("calico-01", &["10.65.0.1/32"]))]);
        assert!(
            !local.read().unwrap().contains(ip("10.65.0.1")),
            "admitted before the listing was complete"
        );
        feed.on_status(SyncStatus::InSync);
        assert!(local.read().unwrap().contains(ip("10.65.0.1")));
        feed.on_status(SyncStatus::Resyncing);
        feed.on_updates(&[put("/k/b", &wep_on("calico-01", &["10.65.0.2/32"]))]);
        assert!(
            local.read().unwrap().contains(ip("10.65.0.1")),
            "old set kept"
        );
        feed.on_status(SyncStatus::InSync);
        let local = local.read().unwrap();
        assert!(!local.contains(ip("10.65.0.1")), "not in the new listing");
        assert!(local.contains(ip("10.65.0.2")));
    }

    /// A [`ReadAddrs`] that lists what `listing` holds (an error when `None`) and counts calls.
    fn fake_reader(listing: Arc<Mutex<Option<Vec<IpAddr>>>>, calls: Arc<Mutex<u32>>) -> ReadAddrs {
        Box::new(move || {
            *calls.lock().unwrap() += 1;
            match &*listing.lock().unwrap() {
                Some(addrs) => Ok(addrs.iter().copied().collect()),
                None => Err(anyhow::anyhow!("permission denied")),
            }
        })
    }

    const NODE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);

    #[test]
    fn host_addresses_are_listed_again_at_most_once_per_interval() {
        let listing = Arc::new(Mutex::new(Some(vec![ip("10.0.0.11"), ip("172.17.0.1")])));
        let calls = Arc::new(Mutex::new(0));
        let start = Instant::now();
        let mut host = HostAddrs::new(NODE, fake_reader(listing.clone(), calls.clone()), start);
        assert_eq!(*calls.lock().unwrap(), 1, "listed at start");
        assert!(host.holds(ip("172.17.0.1"), start));
        assert!(!host.holds(ip("203.0.113.9"), start));
        assert_eq!(*calls.lock().unwrap(), 1, "an outsider within the interval");

        listing
            .lock()
            .unwrap()
            .as_mut()
            .unwrap()
            .push(ip("10.0.0.12"));
        let soon = start + HOST_REREAD / 2;
        assert!(!host.holds(ip("10.0.0.12"), soon), "not listed again yet");
        let later = start + HOST_REREAD;
        assert!(host.holds(ip("10.0.0.12"), later), "a new host address");
        assert!(host.holds(ip("10.0.0.12"), later));
        assert!(!host.holds(ip("203.0.113.9"), later + HOST_REREAD / 2));
        assert_eq!(*calls.lock().unwrap(), 2);
    }

    #[test]
    fn a_failed_listing_keeps_the_last_one_and_the_node_address() {
        let listing = Arc::new(Mutex::new(None));
        let calls = Arc::new(Mutex::new(0));
        let start = Instant::now();
        let mut host = HostAddrs::new(NODE, fake_reader(listing.clone(), calls.clone()), start);
        assert!(host.holds(IpAddr::V4(NODE), start), "the node address");
        assert!(!host.holds(ip("172.17.0.1"), start));
        *listing.lock().unwrap() = Some(vec![ip("172.17.0.1")]);
        let later = start + HOST_REREAD;
        assert!(host.holds(ip("172.17.0.1"), later));
        *listing.lock().unwrap() = None;
        let much_later = later + HOST_REREAD;
        assert!(!host.holds(ip("203.0.113.9"), much_later));
        assert!(host.holds(ip("172.17.0.1"), much_later), "kept");
        assert!(host.holds(IpAddr::V4(NODE), much_later));
        assert_eq!(*calls.lock().unwrap(), 3);
    }

    #[test]
    fn admits_this_hosts_workloads_and_the_host_only() {
        let (mut feed, _, local) = feed();
        feed.on_updates(&[
            put("/k/here", &wep_on("calico-01", &["10.65.0.1/32"])),
            put("/k/there", &wep_on("calico-02", &["10.65.1.1/32"])),
        ]);
        let listing = Arc::new(Mutex::new(Some(vec![ip("172.17.0.1")])));
        let host = HostAddrs::new(NODE, fake_reader(listing, Arc::default()), Instant::now());
        let admission = Admission::new(local, host);
        assert!(admission.admits(ip("10.65.0.1")), "a local workload");
        assert!(admission.admits(IpAddr::V4(NODE)), "the node address");
        assert!(admission.admits(ip("172.17.0.1")), "another host address");
        assert!(
            !admission.admits(ip("10.65.1.1")),
            "another node's workload"
        );
        assert!(!admission.admits(ip("203.0.113.9")), "an outsider");
    }

    #[test]
    fn the_kernel_lists_the_loopback_address_and_no_ipv6() {
        let addrs = host_addresses().unwrap();
        assert!(
            addrs.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "{addrs:?}"
        );
        assert!(addrs.iter().all(IpAddr::is_ipv4), "{addrs:?}");
    }
}
