//! What calico-node's reconciler needs from the driver: which endpoints this process is
//! handling, and taking over endpoints Docker has but the datastore lost (for example ones
//! joined while calico-node was down or before it restarted).

use std::collections::HashSet;

use ipnet::IpNet;
use tracing::instrument;

use super::{Driver, EndpointRecord, EndpointState};
use calico_model::endpoint_naming::{DockerId, InvalidDockerId};

/// An endpoint Docker reports on this host, as the reconciler found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExistingEndpoint {
    /// Docker's network ID.
    pub network_id: String,
    /// The network's name (its profile).
    pub network_name: String,
    /// Docker's endpoint ID.
    pub endpoint_id: String,
    /// The endpoint's addresses, each a /32 or /128.
    pub addrs: Vec<IpNet>,
    /// The container interface's MAC.
    pub mac: [u8; 6],
}

impl Driver {
    /// IDs of the endpoints this process created (or adopted) and has not deleted; their
    /// workload endpoints may not be written yet.
    pub async fn live_endpoint_ids(&self) -> HashSet<String> {
        self.inner
            .endpoints
            .lock()
            .await
            .keys()
            .map(|id| id.to_string())
            .collect()
    }

    /// Takes over an endpoint Docker has but the datastore lacks: remembers it like
    /// `CreateEndpoint` does and writes its workload endpoint once Docker shows its container.
    #[instrument(name = "adopt", skip_all, fields(network_id = %existing.network_id, endpoint_id = %existing.endpoint_id))]
    pub async fn adopt(&self, existing: ExistingEndpoint) -> Result<(), InvalidDockerId> {
        let id = DockerId::new(existing.endpoint_id.as_str())?;
        let network_id = DockerId::new(existing.network_id.as_str())?;
        let record = EndpointRecord {
            network_id,
            network_name: Some(existing.network_name),
            addrs: existing.addrs,
            mac: existing.mac,
        };
        self.inner
            .endpoints
            .lock()
            .await
            .entry(id.clone())
            .or_insert(EndpointState {
                record,
                writer: None,
            });
        self.start_endpoint_writer(&id).await;
        Ok(())
    }
}
