//! Helpers shared by the IPAM integration suites (each suite uses a subset).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use calico_ipam::Ipam;
use calico_model::{Cidr, IpPool, IpPoolMetadata, IpPoolSpec, Resource};
use calico_store::resources::ResourceStore;
use calico_store::{Datastore, SqliteStore};

/// The longest any single test may run.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// IPAM on a fresh SQLite file, with direct access to the datastore beneath it.
pub struct Env {
    pub ipam: Ipam,
    pub store: ResourceStore,
    pub ds: Arc<dyn Datastore>,
    _dir: tempfile::TempDir,
}

/// A fresh SQLite store, on tmpfs where there is one (every write is an fsync).
pub fn sqlite() -> Env {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let ds: Arc<dyn Datastore> = Arc::new(SqliteStore::open(dir.path().join("calico.db")).unwrap());
    let store = ResourceStore::new(ds.clone());
    Env {
        ipam: Ipam::new(store.clone()),
        store,
        ds,
        _dir: dir,
    }
}

pub fn cidr(s: &str) -> Cidr {
    s.parse().unwrap()
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Creates or replaces an `ipPool`.
pub async fn set_pool(store: &ResourceStore, pool: &str, disabled: bool) {
    let resource = Resource::IpPool(IpPool {
        metadata: IpPoolMetadata {
            cidr: Some(cidr(pool)),
        },
        spec: IpPoolSpec {
            disabled,
            ..IpPoolSpec::default()
        },
    });
    store.apply(&resource).await.unwrap();
}

/// Every block key with its decoded JSON.
pub async fn blocks(ds: &Arc<dyn Datastore>) -> BTreeMap<String, serde_json::Value> {
    ds.list("/calico/ipam/v2/assignment/")
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|kv| (kv.key, serde_json::from_slice(&kv.value).unwrap()))
        .collect()
}

/// Runs 4 tasks per node for two nodes, 50 auto-assignments each, then releases everything
/// concurrently, checking the invariants on the way.
pub async fn concurrent_assign_and_release(ipam: &Ipam, ds: &Arc<dyn Datastore>) {
    const TASKS_PER_NODE: usize = 4;
    const PER_TASK: usize = 50;
    let nodes = ["node-a", "node-b"];
    let mut tasks = Vec::new();
    for node in nodes {
        for _ in 0..TASKS_PER_NODE {
            let ipam = ipam.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..PER_TASK {
                    got.push((node, ipam.auto_assign(node, 4, None).await.unwrap()));
                }
                got
            }));
        }
    }
    let mut assigned = Vec::new();
    for task in tasks {
        assigned.extend(task.await.unwrap());
    }
    let distinct: BTreeSet<IpAddr> = assigned.iter().map(|(_, ip)| *ip).collect();
    assert_eq!(distinct.len(), nodes.len() * TASKS_PER_NODE * PER_TASK);

    // The pool has room for every node's blocks, so every address is from its node's own block.
    let mut owned = Vec::new();
    for node in nodes {
        let affine = ipam.affine_blocks(node).await.unwrap();
        assert!(affine.len() >= 4, "{node} owns {affine:?}");
        for (_, ip) in assigned.iter().filter(|(n, _)| *n == node) {
            assert!(
                affine.iter().any(|b| b.ip_net().contains(ip)),
                "{ip} of {node}"
            );
        }
        owned.extend(affine);
    }
    let unique: BTreeSet<_> = owned.iter().map(|c| c.to_string()).collect();
    assert_eq!(unique.len(), owned.len(), "a block is affine to two nodes");
    let listed = ipam.allocations(None).await.unwrap();
    assert_eq!(listed.len(), distinct.len());
    for (ip, allocation) in &listed {
        let node = assigned.iter().find(|(_, a)| a == ip).map(|(n, _)| *n);
        assert_eq!(allocation.node.as_deref(), node);
    }

    let mut tasks = Vec::new();
    for chunk in assigned.chunks(assigned.len() / 8) {
        let ipam = ipam.clone();
        let chunk: Vec<IpAddr> = chunk.iter().map(|(_, ip)| *ip).collect();
        tasks.push(tokio::spawn(async move {
            for ip in chunk {
                assert!(ipam.release(ip).await.unwrap(), "{ip}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert!(ipam.allocations(None).await.unwrap().is_empty());
    for (key, block) in blocks(ds).await {
        assert!(block["affinity"].is_string(), "non-affine block {key} left");
        assert_eq!(block["unallocated"].as_array().unwrap().len(), 64, "{key}");
        assert!(block["attributes"].as_array().unwrap().is_empty(), "{key}");
    }
}
