//! Names that span hosts: calico-node answers DNS for `<container>.<network>` and `<container>`
//! of the workloads of every host (calico-dns), and keeps the table in step with the datastore's
//! workload endpoints. An endpoint's names come from its `workload` (the container name) and
//! its `profiles` (the network names, as calico-node writes them); its IPv4 `ipNetworks` answer.
//! While the datastore is unreachable the last table keeps answering.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use calico_dns::{DnsServer, Names};
use calico_model::{Kind, Resource};
use calico_store::keys::kind_prefix;
use calico_store::resources::decode;
use calico_store::{Datastore, KeyValue, WatchEvent};
use tracing::{info, warn};

/// The port Docker's embedded DNS forwards to (`--dns` / daemon.json `dns` take no port).
pub const DNS_PORT: u16 = 53;
/// Where the host's own resolvers are listed.
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Starts the DNS server on `address:53` and the task feeding it; an address that cannot be
/// bound (another DNS server on the host) is logged, and calico-node runs on without names.
pub async fn serve(ds: Arc<dyn Datastore>, address: Ipv4Addr) {
    let names = Arc::new(RwLock::new(Names::new()));
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
            tokio::spawn(follow(ds, names));
        }
        Err(e) => warn!(error = %e, "not answering DNS for workload names"),
    }
}

/// Keeps `names` equal to the datastore's workload endpoints, forever.
async fn follow(ds: Arc<dyn Datastore>, names: Arc<RwLock<Names>>) {
    loop {
        if let Err(e) = sync_and_follow(ds.as_ref(), &names).await {
            warn!(error = %format!("{e:#}"), "DNS names: restarting the sync");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

async fn sync_and_follow(ds: &dyn Datastore, names: &RwLock<Names>) -> Result<()> {
    let prefix = kind_prefix(Kind::WorkloadEndpoint);
    let listing = ds
        .list(&prefix)
        .await
        .context("listing workload endpoints")?;
    let mut fresh = Names::new();
    for kv in &listing.items {
        upsert(&mut fresh, kv);
    }
    replace(names, fresh);
    let mut watch = ds
        .watch(&prefix, listing.revision)
        .await
        .context("watching workload endpoints")?;
    while let Some(event) = watch.next().await {
        let mut table = names
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match event {
            WatchEvent::Put(kv) => upsert(&mut table, &kv),
            WatchEvent::Delete { key, .. } => table.remove(&key),
            WatchEvent::Relist => anyhow::bail!("the datastore asked for a relist"),
        }
    }
    anyhow::bail!("the datastore watch ended")
}

fn replace(names: &RwLock<Names>, fresh: Names) {
    *names
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
}

/// Records one stored endpoint under its key; an unreadable one answers nothing.
fn upsert(names: &mut Names, kv: &KeyValue) {
    match decode(Kind::WorkloadEndpoint, kv) {
        Ok(stored) => {
            if let Resource::WorkloadEndpoint(wep) = stored.resource {
                let (container, networks, addrs) = entry(&wep);
                names.upsert(&kv.key, container, networks, &addrs);
            }
        }
        Err(e) => {
            warn!(key = kv.key, error = %e, "DNS names: ignoring an unreadable endpoint");
            names.remove(&kv.key);
        }
    }
}

/// An endpoint's container name, networks and IPv4 addresses.
fn entry(wep: &calico_model::WorkloadEndpoint) -> (&str, &[String], Vec<Ipv4Addr>) {
    let addrs = wep
        .spec
        .ip_networks
        .iter()
        .filter_map(|net| match net.addr() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .collect();
    (&wep.metadata.workload, &wep.spec.profiles, addrs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use calico_dns::Lookup;
    use calico_model::codec;

    fn kv(key: &str, yaml: &str) -> KeyValue {
        let resource = codec::decode(yaml).unwrap().remove(0);
        KeyValue {
            key: key.into(),
            value: serde_json::to_vec(&resource).unwrap(),
            create_revision: 1,
            mod_revision: 1,
        }
    }

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
        let mut names = Names::new();
        upsert(&mut names, &kv("/k/e", WEP_E));
        let e = Lookup::Addrs(vec!["192.168.2.5".parse().unwrap()]);
        assert_eq!(names.lookup("workload-E.net1"), e);
        assert_eq!(names.lookup("workload-e"), e);
        assert_eq!(names.lookup("workload-E.net2"), Lookup::NotOurs);
        assert_eq!(names.lookup("ghost.net1"), Lookup::NoSuchName);
        names.remove("/k/e");
        assert_eq!(names.lookup("workload-E.net1"), Lookup::NotOurs);
    }

    #[test]
    fn an_unreadable_endpoint_answers_nothing() {
        let mut names = Names::new();
        upsert(&mut names, &kv("/k/e", WEP_E));
        upsert(
            &mut names,
            &KeyValue {
                key: "/k/e".into(),
                value: b"{not json".to_vec(),
                create_revision: 1,
                mod_revision: 2,
            },
        );
        assert_eq!(names.lookup("workload-E.net1"), Lookup::NotOurs);
    }
}
