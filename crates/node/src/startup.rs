//! What calico-node does once before serving: register the node, make sure a pool exists,
//! and record the cluster's version.

use anyhow::{bail, Context, Result};
use calico_model::{
    Cidr, IpPool, IpPoolMetadata, IpPoolSpec, Kind, Node, NodeBgpSpec, NodeMetadata, Resource,
    ResourceKey,
};
use calico_store::resources::{Filter, ResourceError, ResourceStore};
use calico_store::{keys, Datastore, StoreError};
use tracing::{info, warn};

use crate::config::Config;

/// The version calico-node records as the cluster's (`calicoctl version` shows it).
pub const VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));
/// The cluster type recorded beside it.
pub const CLUSTER_TYPE: &str = "docker";

/// Creates or updates this node's `node` resource with its IPv4 address and AS number,
/// refusing an address another node already uses.
pub async fn register_node(store: &ResourceStore, config: &Config, ipv4: Cidr) -> Result<()> {
    for resource in store.list(Kind::Node, &Filter::default()).await? {
        let Resource::Node(other) = resource else {
            continue;
        };
        let other_ip = other.spec.bgp.as_ref().and_then(|b| b.ipv4_address);
        if other.metadata.name != config.node_name
            && other_ip.map(|c| c.addr()) == Some(ipv4.addr())
        {
            bail!(
                "Calico node '{}' is already using the IPv4 address {}.",
                other.metadata.name,
                ipv4.addr()
            );
        }
    }
    let key = ResourceKey::Node {
        name: config.node_name.clone(),
    };
    let mut node = match store.get(&key).await? {
        Some(stored) => match stored.resource {
            Resource::Node(node) => node,
            _ => bail!("{key} holds a resource of another kind"),
        },
        None => Node {
            metadata: NodeMetadata {
                name: config.node_name.clone(),
            },
            ..Node::default()
        },
    };
    let bgp = node.spec.bgp.get_or_insert_with(NodeBgpSpec::default);
    if let Some(old) = bgp.ipv4_address.filter(|old| old.addr() != ipv4.addr()) {
        warn!(old = %old, new = %ipv4, "this node's IPv4 address changed");
    }
    bgp.ipv4_address = Some(ipv4);
    if config.as_number.is_some() {
        bgp.as_number = config.as_number;
    }
    store
        .apply(&node.into())
        .await
        .context("cannot register the node")?;
    info!(node = %config.node_name, ip = %ipv4, "node registered");
    Ok(())
}

/// Creates the default IPv4 pool ([`default_ipv4_pool`]) when no IPv4 pool exists, unless
/// disabled.
pub async fn ensure_default_pool(store: &ResourceStore, config: &Config) -> Result<()> {
    if config.no_default_pools {
        return Ok(());
    }
    let pools = store.list(Kind::IpPool, &Filter::default()).await?;
    let has_v4 = pools.iter().any(|r| match r {
        Resource::IpPool(p) => p.metadata.cidr.is_some_and(|c| c.version() == 4),
        _ => false,
    });
    if has_v4 {
        return Ok(());
    }
    match store.create(&default_ipv4_pool(config).into()).await {
        Ok(()) => {
            info!("{}", created_message(config));
            Ok(())
        }
        Err(ResourceError::AlreadyExists(_)) => {
            info!(
                "Default IPv4 pool ({}) was created meanwhile by another node; keeping its settings",
                config.ipv4_pool_cidr
            );
            Ok(())
        }
        Err(e) => Err(e).context("cannot create the default IPv4 pool"),
    }
}

/// The pool of `CALICO_IPV4POOL_CIDR`, `CALICO_IPV4POOL_NAT_OUTGOING` and
/// `CALICO_IPV4POOL_IPIP`.
fn default_ipv4_pool(config: &Config) -> IpPool {
    IpPool {
        metadata: IpPoolMetadata {
            cidr: Some(config.ipv4_pool_cidr),
        },
        spec: IpPoolSpec {
            nat_outgoing: config.ipv4_pool_nat_outgoing,
            ipip: config.ipv4_pool_ipip.configuration(),
            ..IpPoolSpec::default()
        },
    }
}

/// What calico-node logs once it created [`default_ipv4_pool`], in calico/node's words.
fn created_message(config: &Config) -> String {
    let nat = if config.ipv4_pool_nat_outgoing {
        "enabled"
    } else {
        "disabled"
    };
    format!(
        "Created default IPv4 pool ({}) with NAT outgoing {nat}. IPIP mode: {}",
        config.ipv4_pool_cidr, config.ipv4_pool_ipip
    )
}

/// Records the cluster's version and type (`calicoctl version`).
pub async fn record_cluster_info(ds: &dyn Datastore) -> Result<()> {
    put(ds, keys::CLUSTER_VERSION, VERSION).await?;
    put(ds, keys::CLUSTER_TYPE, CLUSTER_TYPE).await
}

/// Writes a plain value whatever was there, retrying lost races.
async fn put(ds: &dyn Datastore, key: &str, value: &str) -> Result<()> {
    loop {
        let result = match ds.get(key).await? {
            Some(kv) if kv.value == value.as_bytes() => return Ok(()),
            Some(kv) => ds.update(key, value.as_bytes(), kv.mod_revision).await,
            None => ds.create(key, value.as_bytes()).await,
        };
        match result {
            Ok(_) => return Ok(()),
            Err(
                StoreError::Conflict(_) | StoreError::AlreadyExists(_) | StoreError::NotFound(_),
            ) => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot write {key}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use calico_store::SqliteStore;

    use super::*;

    fn setup(pairs: &[(&str, &str)]) -> (ResourceStore, Config, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let ds = SqliteStore::open(dir.path().join("calico.db")).unwrap();
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let config = Config::from_env(|k| map.get(k).cloned()).unwrap();
        (ResourceStore::new(Arc::new(ds)), config, dir)
    }

    async fn node(store: &ResourceStore, name: &str) -> Node {
        let key = ResourceKey::Node { name: name.into() };
        match store.get(&key).await.unwrap().unwrap().resource {
            Resource::Node(n) => n,
            other => panic!("not a node: {other:?}"),
        }
    }

    #[tokio::test]
    async fn registers_the_node_and_refuses_a_taken_address() {
        let (store, config, _dir) = setup(&[("NODENAME", "calico-01"), ("AS", "64513")]);
        let ip: Cidr = "10.10.0.11/24".parse().unwrap();
        register_node(&store, &config, ip).await.unwrap();
        let n = node(&store, "calico-01").await;
        let bgp = n.spec.bgp.unwrap();
        assert_eq!(bgp.ipv4_address, Some(ip));
        assert_eq!(bgp.as_number.map(|a| a.0), Some(64513));
        register_node(&store, &config, ip).await.unwrap();

        let (_, other, _) = setup(&[("NODENAME", "calico-02")]);
        let err = register_node(&store, &other, ip).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "Calico node 'calico-01' is already using the IPv4 address 10.10.0.11."
        );
        register_node(&store, &other, "10.10.0.12/24".parse().unwrap())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn creates_the_default_pool_only_when_no_ipv4_pool_exists() {
        let (store, config, _dir) = setup(&[("NODENAME", "n")]);
        ensure_default_pool(&store, &config).await.unwrap();
        ensure_default_pool(&store, &config).await.unwrap();
        let pools = store.list(Kind::IpPool, &Filter::default()).await.unwrap();
        assert_eq!(pools.len(), 1);
        let Resource::IpPool(pool) = &pools[0] else {
            panic!()
        };
        assert_eq!(pool.metadata.cidr.unwrap().to_string(), "192.168.0.0/16");
        assert!(pool.spec.nat_outgoing);

        let (store, config, _dir) = setup(&[("NODENAME", "n"), ("NO_DEFAULT_POOLS", "true")]);
        ensure_default_pool(&store, &config).await.unwrap();
        assert!(store
            .list(Kind::IpPool, &Filter::default())
            .await
            .unwrap()
            .is_empty());

        let (store, config, _dir) =
            setup(&[("NODENAME", "n"), ("CALICO_IPV4POOL_CIDR", "10.99.0.0/16")]);
        ensure_default_pool(&store, &config).await.unwrap();
        let pools = store.list(Kind::IpPool, &Filter::default()).await.unwrap();
        let Resource::IpPool(pool) = &pools[0] else {
            panic!()
        };
        assert_eq!(pool.metadata.cidr.unwrap().to_string(), "10.99.0.0/16");
    }

    #[tokio::test]
    async fn the_default_pool_follows_the_settings() {
        let (store, config, _dir) = setup(&[("NODENAME", "n")]);
        assert_eq!(
            created_message(&config),
            "Created default IPv4 pool (192.168.0.0/16) with NAT outgoing enabled. IPIP mode: off"
        );
        ensure_default_pool(&store, &config).await.unwrap();
        let key = ResourceKey::IpPool {
            cidr: config.ipv4_pool_cidr,
        };
        let stored = store.get(&key).await.unwrap().unwrap().resource;
        assert_eq!(stored, default_ipv4_pool(&config).into());
        assert_eq!(
            default_ipv4_pool(&config).spec,
            IpPoolSpec {
                nat_outgoing: true,
                ..IpPoolSpec::default()
            }
        );

        let (store, config, _dir) = setup(&[
            ("NODENAME", "n"),
            ("CALICO_IPV4POOL_CIDR", "10.99.0.0/16"),
            ("CALICO_IPV4POOL_NAT_OUTGOING", "false"),
            ("CALICO_IPV4POOL_IPIP", "cross-subnet"),
        ]);
        assert_eq!(
            created_message(&config),
            "Created default IPv4 pool (10.99.0.0/16) with NAT outgoing disabled. IPIP mode: \
             cross-subnet"
        );
        ensure_default_pool(&store, &config).await.unwrap();
        let key = ResourceKey::IpPool {
            cidr: config.ipv4_pool_cidr,
        };
        let Resource::IpPool(pool) = store.get(&key).await.unwrap().unwrap().resource else {
            panic!("not a pool")
        };
        assert_eq!(
            pool.spec,
            IpPoolSpec {
                nat_outgoing: false,
                ipip: Some(calico_model::IpipConfiguration {
                    enabled: true,
                    mode: "cross-subnet".into()
                }),
                disabled: false,
            }
        );

        let (_, config, _dir) = setup(&[("NODENAME", "n"), ("CALICO_IPV4POOL_IPIP", "Always")]);
        assert_eq!(
            created_message(&config),
            "Created default IPv4 pool (192.168.0.0/16) with NAT outgoing enabled. IPIP mode: always"
        );
        assert_eq!(
            default_ipv4_pool(&config).spec.ipip,
            Some(calico_model::IpipConfiguration {
                enabled: true,
                mode: "always".into()
            })
        );
    }

    #[tokio::test]
    async fn records_version_and_type() {
        let (store, _, _dir) = setup(&[("NODENAME", "n")]);
        record_cluster_info(store.datastore().as_ref())
            .await
            .unwrap();
        record_cluster_info(store.datastore().as_ref())
            .await
            .unwrap();
        let ds = store.datastore();
        let version = ds.get(keys::CLUSTER_VERSION).await.unwrap().unwrap();
        assert_eq!(version.value, VERSION.as_bytes());
        let kind = ds.get(keys::CLUSTER_TYPE).await.unwrap().unwrap();
        assert_eq!(kind.value, b"docker");
    }
}
