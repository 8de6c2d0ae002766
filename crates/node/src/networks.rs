//! Networks that span hosts. Docker ≥ 23 keeps networks per daemon, so calico-node records each
//! Calico network its dockerd has in the datastore, and creates every recorded network that its
//! dockerd lacks: `docker network create` on one host makes the network usable on all.
//!
//! Keys (names escaped as every key segment): `/calico/docker/v1/network/<name>`, value JSON
//! `{"name", "ipamDriver", "subnet"}`; and `/calico/docker/v1/host/<node>/network/<name>`, value
//! `{}`, once a host has had the network. A host creates a recorded network only if it never had
//! it, so a `docker network rm` on one host stays done there, across restarts too, while the
//! other hosts keep their copies (they may still have containers on them).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, Result};
use calico_docker::{DockerClient, NetworkInfo};
use calico_store::keys::{escape, DOCKER_HOSTS_PREFIX, DOCKER_NETWORKS_PREFIX};
use calico_store::{Datastore, StoreError};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tracing::{info, instrument, warn};

/// The network driver whose networks are shared.
const CALICO_DRIVER: &str = "calico";
/// The IPAM driver's dummy pool: no `--subnet` was given.
const NO_SUBNET: &str = "0.0.0.0/0";

/// What is recorded of a network: enough to create it again elsewhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedNetwork {
    /// The network's name (and its profile's).
    pub name: String,
    /// `calico-ipam` or `calico`.
    pub ipam_driver: String,
    /// The pool given with `--subnet`, if any.
    pub subnet: Option<IpNet>,
}

impl SharedNetwork {
    /// The record of a Calico network as Docker shows it; `None` for other drivers.
    pub fn from_docker(net: &NetworkInfo) -> Option<SharedNetwork> {
        if net.driver != CALICO_DRIVER {
            return None;
        }
        let subnet = net
            .ipam_pools
            .iter()
            .map(|p| p.subnet.as_str())
            .find(|s| !s.is_empty() && *s != NO_SUBNET)
            .and_then(|s| s.parse().ok());
        Some(SharedNetwork {
            name: net.name.clone(),
            ipam_driver: net.ipam_driver.clone(),
            subnet,
        })
    }
}

/// Keeps this host's dockerd and the datastore's network records in step.
pub struct NetworkSync {
    /// The datastore.
    pub ds: Arc<dyn Datastore>,
    /// This host's Docker.
    pub docker: DockerClient,
    /// This host's node name.
    pub node: String,
    /// How often to compare.
    pub interval: Duration,
}

impl NetworkSync {
    /// Compares now and every `interval`, forever; failures are logged and retried.
    pub async fn run(self) {
        loop {
            if let Err(e) = self.sync_once().await {
                warn!(error = %format!("{e:#}"), "network sync failed; will retry");
            }
            tokio::time::sleep(self.interval).await;
        }
    }

    /// Records local Calico networks the datastore lacks, and creates recorded ones Docker lacks.
    #[instrument(name = "network_sync", skip_all)]
    pub async fn sync_once(&self) -> Result<()> {
        let local: BTreeMap<String, SharedNetwork> = self
            .docker
            .networks(Some(CALICO_DRIVER))
            .await
            .context("listing Docker's calico networks")?
            .iter()
            .filter_map(SharedNetwork::from_docker)
            .map(|n| (n.name.clone(), n))
            .collect();
        let listing = self.ds.list(DOCKER_NETWORKS_PREFIX).await?;
        let mut recorded = BTreeMap::new();
        for kv in &listing.items {
            match serde_json::from_slice::<SharedNetwork>(&kv.value) {
                Ok(net) => {
                    recorded.insert(net.name.clone(), net);
                }
                Err(e) => warn!(key = kv.key, error = %e, "ignoring an unreadable network record"),
            }
        }
        let had: BTreeSet<String> = self
            .ds
            .list(&self.host_prefix())
            .await?
            .items
            .iter()
            .filter_map(|kv| kv.key.rsplit('/').next().map(unescape))
            .collect();
        for (name, net) in &local {
            if !recorded.contains_key(name) {
                self.create_if_absent(&key_of(name), &serde_json::to_vec(net)?)
                    .await?;
                info!(
                    network = name,
                    "recorded a Calico network for the other hosts"
                );
            }
            if !had.contains(name) {
                self.create_if_absent(&self.host_key(name), b"{}").await?;
            }
        }
        for (name, net) in &recorded {
            if local.contains_key(name) || had.contains(name) {
                continue;
            }
            info!(
                network = name,
                "creating a Calico network recorded by another host"
            );
            self.docker
                .network_create(
                    name,
                    CALICO_DRIVER,
                    &net.ipam_driver,
                    net.subnet,
                    &BTreeMap::new(),
                )
                .await
                .with_context(|| format!("creating network {name} on this host"))?;
            self.create_if_absent(&self.host_key(name), b"{}").await?;
        }
        Ok(())
    }

    fn host_prefix(&self) -> String {
        format!("{DOCKER_HOSTS_PREFIX}{}/network/", escape(&self.node))
    }

    fn host_key(&self, name: &str) -> String {
        format!("{}{}", self.host_prefix(), escape(name))
    }

    async fn create_if_absent(&self, key: &str, value: &[u8]) -> Result<()> {
        match self.ds.create(key, value).await {
            Ok(_) | Err(StoreError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("writing {key}")),
        }
    }
}

fn key_of(name: &str) -> String {
    format!("{DOCKER_NETWORKS_PREFIX}{}", escape(name))
}

/// The inverse of the key escaping (`%2f` → `/`, `%25` → `%`).
fn unescape(segment: &str) -> String {
    segment.replace("%2f", "/").replace("%25", "%")
}

#[cfg(test)]
mod tests {
    use super::*;
    use calico_docker::IpamPool;

    fn network(driver: &str, subnet: &str) -> NetworkInfo {
        NetworkInfo {
            name: "net3".into(),
            driver: driver.into(),
            ipam_driver: "calico-ipam".into(),
            ipam_pools: vec![IpamPool {
                subnet: subnet.into(),
                ..IpamPool::default()
            }],
            ..NetworkInfo::default()
        }
    }

    #[test]
    fn records_calico_networks_with_their_subnet() {
        assert_eq!(SharedNetwork::from_docker(&network("bridge", "")), None);
        let plain = SharedNetwork::from_docker(&network("calico", "0.0.0.0/0")).unwrap();
        assert_eq!(plain.subnet, None);
        assert_eq!(plain.ipam_driver, "calico-ipam");
        let pool = SharedNetwork::from_docker(&network("calico", "192.168.0.0/16")).unwrap();
        assert_eq!(pool.subnet, Some("192.168.0.0/16".parse().unwrap()));
        let json = serde_json::to_string(&pool).unwrap();
        assert_eq!(
            json,
            r#"{"name":"net3","ipamDriver":"calico-ipam","subnet":"192.168.0.0/16"}"#
        );
        assert_eq!(serde_json::from_str::<SharedNetwork>(&json).unwrap(), pool);
    }
}
