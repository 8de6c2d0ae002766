//! Names that span hosts: calico-node answers DNS for `<container>.<network>` and `<container>`
//! of the workloads of every host (calico-dns). The policy agent, which already follows every
//! workload endpoint in the datastore, keeps the table in step through [`NameFeed`], one of its
//! consumers; [`record`] says what an endpoint contributes: its names
//! come from its `workload` (the container name) and its `profiles` (the network names, as
//! calico-node writes them); its IPv4 `ipNetworks` answer. While the datastore is unreachable the
//! last table keeps answering.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};

use calico_dns::{DnsServer, Names};
use calico_model::{Resource, WorkloadEndpoint};
use tracing::{info, warn};

use crate::agent::feed::{Consumer, SyncStatus, Update};

/// The port Docker's embedded DNS forwards to (`--dns` / daemon.json `dns` take no port).
pub const DNS_PORT: u16 = 53;
/// Where the host's own resolvers are listed.
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The table the DNS server answers from, shared with whoever keeps it up to date.
pub type NameTable = Arc<RwLock<Names>>;

/// Starts the DNS server on `address:53`; returns its table. An address that cannot be bound
/// (another DNS server on the host) is logged, and calico-node runs on without names.
pub async fn serve(address: Ipv4Addr) -> Option<NameTable> {
    let names = NameTable::default();
    let resolv = std::fs::read_to_string(RESOLV_CONF).unwrap_or_else(|e| {
        warn!(error = %e, "cannot read {RESOLV_CONF}: names other than workloads' will fail");
        String::new()
    });
    let upstreams = calico_dns::upstreams(&resolv, &[IpAddr::V4(address)]);
    let listen = SocketAddr::from((address, DNS_PORT));
    match DnsServer::bind(listen, names.clone(), upstreams.clone()).await {
        Ok(server) => {
            info!(%listen, ?upstreams, "answering DNS for workload names");
            tokio::spawn(server.run());
            Some(names)
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

/// Keeps a [`NameTable`] in step with the datastore. A listing is gathered into a fresh table
/// that replaces the served one only once complete; until then DNS answers from the old one.
pub struct NameFeed {
    table: NameTable,
    fresh: Option<Names>,
}

impl NameFeed {
    /// Feeds `table`.
    pub fn new(table: NameTable) -> NameFeed {
        NameFeed { table, fresh: None }
    }
}

impl Consumer for NameFeed {
    fn on_status(&mut self, status: SyncStatus) {
        match status {
            SyncStatus::Resyncing => self.fresh = Some(Names::new()),
            SyncStatus::InSync => {
                if let Some(fresh) = self.fresh.take() {
                    *lock(&self.table) = fresh;
                }
            }
        }
    }

    fn on_updates(&mut self, updates: &[Update]) {
        let mut guard;
        let names = match &mut self.fresh {
            Some(fresh) => fresh,
            None => {
                guard = lock(&self.table);
                &mut *guard
            }
        };
        for update in updates {
            match update {
                Update::Put { path, resource, .. } => {
                    if let Resource::WorkloadEndpoint(wep) = &**resource {
                        record(names, path, wep);
                    }
                }
                Update::Remove { path } => names.remove(path),
            }
        }
    }
}

/// The name table, even if a panic poisoned it (it holds no invariant a panic could break).
fn lock(table: &NameTable) -> std::sync::RwLockWriteGuard<'_, Names> {
    table
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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

    #[test]
    fn endpoints_of_any_host_answer_by_container_and_network() {
        let Resource::WorkloadEndpoint(wep) = codec::decode(WEP_E).unwrap().remove(0) else {
            panic!("a workload endpoint");
        };
        let mut names = Names::new();
        record(&mut names, "/k/e", &wep);
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
        let Resource::WorkloadEndpoint(wep) = codec::decode(WEP_E).unwrap().remove(0) else {
            panic!("a workload endpoint");
        };
        let table = NameTable::default();
        let mut feed = NameFeed::new(table.clone());
        let put = |path: &str| Update::Put {
            path: path.into(),
            key: Resource::WorkloadEndpoint(wep.clone()).key().unwrap(),
            resource: Box::new(Resource::WorkloadEndpoint(wep.clone())),
        };
        feed.on_updates(&[put("/k/e")]);
        let e = Lookup::Addrs(vec!["192.168.2.5".parse().unwrap()]);
        assert_eq!(table.read().unwrap().lookup("workload-E.net1"), e);
        feed.on_status(SyncStatus::Resyncing);
        feed.on_updates(&[Update::Remove {
            path: "/k/e".into(),
        }]);
        assert_eq!(table.read().unwrap().lookup("workload-E.net1"), e);
        feed.on_status(SyncStatus::InSync);
        assert_eq!(
            table.read().unwrap().lookup("workload-E.net1"),
            Lookup::NotOurs
        );
    }
}
