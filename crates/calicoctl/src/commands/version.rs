//! `calicoctl version`: client build facts, then what the cluster reports about itself.

use std::path::Path;

use calico_store::{keys, DatastoreConfig};

use super::Outcome;

/// Prints client version, build date and commit, then the cluster's version and type
/// (`unknown` when the datastore has none or cannot be reached) and the Docker Engine this
/// host's calico-node serves.
pub async fn run(config: Option<&Path>) -> Outcome {
    let mut out = String::new();
    let mut line = |label: &str, value: &str| out.push_str(&format!("{label:<18} {value}\n"));
    line("Client Version:", concat!("v", env!("CARGO_PKG_VERSION")));
    line("Build date:", env!("CALICOCTL_BUILD_DATE"));
    line("Git commit:", env!("CALICOCTL_GIT_COMMIT"));
    let (version, cluster_type) = cluster_facts(config).await;
    line("Cluster Version:", &version);
    line("Cluster Type:", &cluster_type);
    line("Docker Engine:", &super::node::docker_engine());
    Outcome::ok(out)
}

async fn cluster_facts(config: Option<&Path>) -> (String, String) {
    let unknown = || ("unknown".to_string(), "unknown".to_string());
    let Ok(cfg) = DatastoreConfig::load(config, |name| std::env::var(name).ok()) else {
        return unknown();
    };
    let Ok(ds) = cfg.connect().await else {
        return unknown();
    };
    let read = |key: &'static str| {
        let ds = ds.clone();
        async move {
            match ds.get(key).await {
                Ok(Some(kv)) => String::from_utf8_lossy(&kv.value).trim().to_string(),
                _ => "unknown".to_string(),
            }
        }
    };
    (
        read(keys::CLUSTER_VERSION).await,
        read(keys::CLUSTER_TYPE).await,
    )
}
