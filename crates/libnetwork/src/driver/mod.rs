//! [`Driver`]: Calico's network and IPAM driver logic, one typed method per protocol call.
//!
//! Work Docker must not wait for runs in background tasks: naming a new network's profile once
//! Docker shows the network, and writing a joined endpoint's workload endpoint once Docker
//! shows its container. [`Driver::settle`] waits for them.

mod adopt;
mod config;
mod engine;
mod error;
mod ipam;
mod network;
mod ports;
mod resources;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use calico_store::resources::ResourceStore;
use ipnet::IpNet;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

pub use adopt::{requested_ports, AdoptError, ExistingEndpoint};
pub use config::{
    kernel_ephemeral_ports, ConfigError, DriverConfig, Scope, CREATE_PROFILES_ENV, IFPREFIX_ENV,
    LABEL_ENDPOINTS_ENV, LABEL_POLL_TIMEOUT_ENV, SCOPE_ENV, VETH_MTU_ENV,
};
pub use error::DriverError;
pub use ports::PortError;

use crate::traits::{AddressAllocator, DockerApi, HostLinks, PortPublisher, SourceError};
use crate::wire::{PortBinding, TransportPort};
use calico_model::endpoint_naming::DockerId;

/// Calico's libnetwork driver. Cheap to clone; clones share all state.
#[derive(Clone)]
pub struct Driver {
    inner: Arc<Inner>,
}

struct Inner {
    config: DriverConfig,
    store: ResourceStore,
    ipam: Arc<dyn AddressAllocator>,
    docker: Arc<dyn DockerApi>,
    links: Arc<dyn HostLinks>,
    ports: Arc<dyn PortPublisher>,
    /// Endpoints created through this process and not deleted since.
    endpoints: tokio::sync::Mutex<HashMap<DockerId, EndpointState>>,
    /// Network names Docker has told us, by network ID (IDs survive dockerd restarts, when
    /// Docker calls `CreateEndpoint` before its API answers).
    network_names: Mutex<HashMap<DockerId, String>>,
    /// Background tasks not yet awaited by [`Driver::settle`].
    background: Mutex<JoinSet<()>>,
    /// Why the Engine Docker runs is refused, once known (see [`Driver::set_engine_support`]).
    engine_refusal: Mutex<Option<calico_docker::engine::Unsupported>>,
    /// Woken by every `Plugin.Activate`.
    activations: tokio::sync::Notify,
}

/// What `CreateEndpoint` learnt, kept for `Join`, `Leave` and the endpoint writer.
#[derive(Clone, Debug)]
struct EndpointRecord {
    network_id: DockerId,
    /// Known when profiles are on, once Docker has answered (see `CreateEndpoint`).
    network_name: Option<String>,
    /// /32 and /128 networks.
    addrs: Vec<IpNet>,
    mac: [u8; 6],
}

struct EndpointState {
    record: EndpointRecord,
    /// The task writing the workload endpoint after `Join`.
    writer: Option<AbortHandle>,
    /// What `ProgramExternalConnectivity` (or adoption) published; `None` before it and
    /// after `RevokeExternalConnectivity`.
    ports: Option<EndpointPorts>,
    /// The ports an adopted endpoint's container asked for that are not published yet
    /// (see [`Driver::restore_ports`]); `None` once its ports are published or taken away.
    unrestored: Option<PortRequest>,
}

/// The ports a container asked for, as `ProgramExternalConnectivity` carries them.
#[derive(Clone, Debug)]
struct PortRequest {
    bindings: Vec<PortBinding>,
    exposed: Vec<TransportPort>,
}

/// An endpoint's published ports.
#[derive(Clone, Debug)]
struct EndpointPorts {
    decision: ports::Decision,
    exposed: Vec<TransportPort>,
}

impl Driver {
    /// A driver writing to `store` for node `config.node`, publishing ports through `ports`.
    pub fn new(
        config: DriverConfig,
        store: ResourceStore,
        ipam: Arc<dyn AddressAllocator>,
        docker: Arc<dyn DockerApi>,
        links: Arc<dyn HostLinks>,
        ports: Arc<dyn PortPublisher>,
    ) -> Self {
        Driver {
            inner: Arc::new(Inner {
                config,
                store,
                ipam,
                docker,
                links,
                ports,
                endpoints: tokio::sync::Mutex::new(HashMap::new()),
                network_names: Mutex::new(HashMap::new()),
                background: Mutex::new(JoinSet::new()),
                engine_refusal: Mutex::new(None),
                activations: tokio::sync::Notify::new(),
            }),
        }
    }

    /// The driver's settings.
    pub fn config(&self) -> &DriverConfig {
        &self.inner.config
    }

    /// Waits until every background task (profile and workload endpoint writers, including
    /// those they start) has finished.
    pub async fn settle(&self) {
        loop {
            let mut tasks = std::mem::take(&mut *self.background());
            if tasks.is_empty() {
                return;
            }
            while let Some(done) = tasks.join_next().await {
                if let Err(e) = done {
                    if e.is_panic() {
                        tracing::error!(error = %e, "a libnetwork background task panicked");
                    }
                }
            }
        }
    }

    fn background(&self) -> std::sync::MutexGuard<'_, JoinSet<()>> {
        self.inner
            .background
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `task` in the background, tracked for [`Driver::settle`].
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) -> AbortHandle {
        let mut tasks = self.background();
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task)
    }
}

/// Calls `probe` every `interval` until it yields a value or `timeout` has passed; errors
/// count as "not yet" and are logged.
async fn poll<T, F, Fut>(interval: Duration, timeout: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, SourceError>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(Some(value)) => return Some(value),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "Docker API poll failed; retrying"),
        }
        if Instant::now() + interval > deadline {
            return None;
        }
        tokio::time::sleep(interval).await;
    }
}
