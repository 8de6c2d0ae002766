//! The policy agent: follows the datastore (profiles, policies, every host's workload
//! endpoints), feeds the calculation graph, and programs the nftables table with only what
//! changed. Nothing is written before the first complete listing; on start, a table that
//! already matches is left untouched. The same stream keeps the DNS name table (if any) in
//! step with the workload endpoints, so the datastore is followed once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use calico_calc::CalcGraph;
use calico_dataplane::nft::Nft;
use calico_dns::Names;
use calico_model::{Kind, Resource, ResourceKey};
use calico_store::keys::{kind_of_path, RESOURCES_PREFIX};
use calico_store::resources::decode;
use calico_store::{Datastore, KeyValue, WatchEvent};
use tracing::{info, instrument, warn};

use crate::names::{self, NameTable};

/// The kinds the calculation graph reads.
const POLICY_KINDS: [Kind; 3] = [Kind::Profile, Kind::Policy, Kind::WorkloadEndpoint];
/// Changes applied together at most, so a burst becomes a few transactions, not thousands.
const BATCH: usize = 256;

/// Follows the datastore and keeps this host's nftables table in line with policy.
pub struct Agent {
    node: String,
    ds: Arc<dyn Datastore>,
    nft: Nft,
    resync_interval: Duration,
    names: Option<NameTable>,
}

/// Runs a short blocking call (an `nft` or `iptables` process) without stalling other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

impl Agent {
    /// An agent for `node` reading `ds` and writing through `nft` (and into `names`, the DNS
    /// table, when there is one).
    pub fn new(
        node: &str,
        ds: Arc<dyn Datastore>,
        nft: Nft,
        resync_interval: Duration,
        names: Option<NameTable>,
    ) -> Self {
        Agent {
            node: node.to_string(),
            ds,
            nft,
            resync_interval,
            names,
        }
    }

    /// Runs forever: list, program, then follow changes; relists when the watch says so.
    pub async fn run(mut self) {
        loop {
            if let Err(e) = self.sync_and_follow().await {
                warn!(error = %format!("{e:#}"), "policy agent restarting its sync");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    /// One full sync followed by incremental updates until the watch ends.
    async fn sync_and_follow(&mut self) -> Result<()> {
        let mut graph = CalcGraph::new(&self.node);
        let mut paths: HashMap<String, ResourceKey> = HashMap::new();
        let listing = self
            .ds
            .list(RESOURCES_PREFIX)
            .await
            .context("listing resources")?;
        // A fresh name table replaces the old one only once complete; until then DNS answers
        // from the old one.
        let mut fresh_names = self.names.as_ref().map(|_| Names::new());
        for kv in &listing.items {
            apply_put(&mut graph, &mut paths, fresh_names.as_mut(), kv);
        }
        if let (Some(table), Some(fresh)) = (&self.names, fresh_names) {
            *lock(table) = fresh;
        }
        graph.take_changes();
        self.program_full(&graph)?;
        let mut watch = self
            .ds
            .watch(RESOURCES_PREFIX, listing.revision)
            .await
            .context("watching resources")?;
        let mut resync = tokio::time::interval(self.resync_interval);
        resync.tick().await;
        loop {
            tokio::select! {
                event = watch.next() => {
                    let Some(event) = event else {
                        anyhow::bail!("the datastore watch ended");
                    };
                    let mut pending = vec![event];
                    while pending.len() < BATCH {
                        match watch.try_next() {
                            Some(event) => pending.push(event),
                            None => break,
                        }
                    }
                    let mut names = self.names.as_ref().map(lock);
                    for event in pending {
                        match event {
                            WatchEvent::Put(kv) => {
                                apply_put(&mut graph, &mut paths, names.as_deref_mut(), &kv)
                            }
                            WatchEvent::Delete { key, .. } => {
                                if let Some(names) = names.as_deref_mut() {
                                    names.remove(&key);
                                }
                                if let Some(key) = paths.remove(&key) {
                                    graph.remove(&key);
                                }
                            }
                            WatchEvent::Relist => anyhow::bail!("the datastore asked for a relist"),
                        }
                    }
                    drop(names);
                    let changes = graph.take_changes();
                    if !changes.is_empty() {
                        let span = tracing::info_span!("dataplane_apply");
                        let _entered = span.enter();
                        let size = blocking(|| self.nft.apply_changes(graph.desired(), &changes))
                            .context("applying policy changes")?;
                        tracing::debug!(?size, "applied policy changes");
                    }
                }
                _ = resync.tick() => {
                    ensure_docker_user_accept();
                    if blocking(|| self.nft.resync(graph.desired()))? {
                        warn!("the nftables table had drifted from the desired state; rewrote it");
                    }
                }
            }
        }
    }

    /// Makes the table equal the desired state, writing nothing when it already is.
    #[instrument(name = "dataplane_full_sync", skip_all)]
    fn program_full(&mut self, graph: &CalcGraph) -> Result<()> {
        ensure_docker_user_accept();
        let wrote = blocking(|| self.nft.resync(graph.desired()))
            .context("programming the nftables table")?;
        if wrote {
            info!("nftables table programmed from the datastore");
        } else {
            info!("nftables table already matches the datastore; nothing to write");
        }
        Ok(())
    }
}

/// Lets allowed workload traffic past Docker's own FORWARD policy (a drop in any table is final).
fn ensure_docker_user_accept() {
    match blocking(calico_dataplane::nft::ensure_docker_user_accept) {
        Ok(0) => {}
        Ok(n) => info!(
            rules = n,
            "added DOCKER-USER accept rules for cali* interfaces"
        ),
        Err(e) => warn!(error = %e, "cannot check Docker's DOCKER-USER chain"),
    }
}

/// The name table, even if a panic poisoned it (it holds no invariant a panic could break).
fn lock(table: &NameTable) -> std::sync::RwLockWriteGuard<'_, Names> {
    table
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Feeds one stored resource to the graph (and a workload endpoint to `names`); an unreadable
/// one counts as deleted (fail closed).
fn apply_put(
    graph: &mut CalcGraph,
    paths: &mut HashMap<String, ResourceKey>,
    names: Option<&mut Names>,
    kv: &KeyValue,
) {
    let Some(kind) = kind_of_path(&kv.key).filter(|k| POLICY_KINDS.contains(k)) else {
        return;
    };
    match decode(kind, kv) {
        Ok(stored) => match stored.resource.key() {
            Ok(key) => {
                if let (Some(names), Resource::WorkloadEndpoint(wep)) = (names, &stored.resource) {
                    names::record(names, &kv.key, wep);
                }
                paths.insert(kv.key.clone(), key);
                graph.upsert(stored.resource);
            }
            Err(e) => warn!(key = kv.key, error = %e, "ignoring a resource without identity"),
        },
        Err(e) => {
            warn!(key = kv.key, error = %e, "ignoring an unreadable resource");
            if let Some(names) = names {
                names.remove(&kv.key);
            }
            if let Some(key) = paths.remove(&kv.key) {
                graph.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calico_dns::Lookup;
    use calico_model::codec;
    use calico_store::keys::key_path;

    const WEP: &str = "\
apiVersion: v1
kind: workloadEndpoint
metadata:
  name: ep-e
  workload: workload-E
  orchestrator: libnetwork
  node: calico-02
spec:
  ipNetworks: [192.168.2.5/32]
  profiles: [net1]
  interfaceName: cali0123456789a
";

    fn stored(resource: &Resource, value: Vec<u8>) -> KeyValue {
        KeyValue {
            key: key_path(&resource.key().unwrap()),
            value,
            create_revision: 1,
            mod_revision: 1,
        }
    }

    #[test]
    fn workload_endpoints_feed_the_name_table_and_unreadable_ones_leave_it() {
        let wep = codec::decode(WEP).unwrap().remove(0);
        let mut graph = CalcGraph::new("calico-01");
        let mut paths = HashMap::new();
        let mut names = Names::new();
        let kv = stored(&wep, serde_json::to_vec(&wep).unwrap());
        apply_put(&mut graph, &mut paths, Some(&mut names), &kv);
        assert_eq!(
            names.lookup("workload-E.net1"),
            Lookup::Addrs(vec!["192.168.2.5".parse().unwrap()])
        );
        let corrupt = stored(&wep, b"{not json".to_vec());
        apply_put(&mut graph, &mut paths, Some(&mut names), &corrupt);
        assert_eq!(names.lookup("workload-E.net1"), Lookup::NotOurs);
        assert!(paths.is_empty());
    }
}
