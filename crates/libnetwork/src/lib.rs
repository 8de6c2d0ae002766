//! Calico as a Docker network and IPAM driver ("libnetwork remote plugin").
//!
//! - [`wire`]: the protocol's JSON requests and replies.
//! - [`Driver`]: Calico's behaviour per call: routed `/32` endpoints on `cali*` veths behind
//!   the fake gateway `169.254.1.1`, one profile per network (named after it), workload
//!   endpoints in the Calico datastore, addresses from Calico IPAM.
//! - [`AddressAllocator`], [`DockerApi`], [`HostLinks`], [`PortPublisher`]: what the driver
//!   needs from outside
//!   (calico-node implements them; [`DockerApi`] is implemented here for
//!   [`calico_docker::DockerClient`]).
//! - [`serve`]: the HTTP server on `calico.sock` and `calico-ipam.sock`.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # async fn demo(
//! #     store: calico_store::resources::ResourceStore,
//! #     ipam: Arc<dyn calico_libnetwork::AddressAllocator>,
//! #     links: Arc<dyn calico_libnetwork::HostLinks>,
//! #     ports: Arc<dyn calico_libnetwork::PortPublisher>,
//! # ) -> anyhow::Result<()> {
//! use calico_libnetwork::{serve, Driver, DriverConfig, DEFAULT_PLUGIN_DIR};
//!
//! let docker = Arc::new(calico_docker::DockerClient::from_env()?);
//! let driver = Driver::new(DriverConfig::from_env("host1")?, store, ipam, docker, links, ports);
//! let server = serve(DEFAULT_PLUGIN_DIR, driver.clone(), None)?;
//! tokio::signal::ctrl_c().await?;
//! server.shutdown().await;
//! driver.settle().await;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod docker_api;
mod driver;
mod server;
mod traits;
pub mod wire;

pub use driver::{
    kernel_ephemeral_ports, requested_ports, AdoptError, ConfigError, Driver, DriverConfig,
    DriverError, ExistingEndpoint, PortError, Scope, CREATE_PROFILES_ENV, IFPREFIX_ENV,
    LABEL_ENDPOINTS_ENV, LABEL_POLL_TIMEOUT_ENV, SCOPE_ENV, VETH_MTU_ENV,
};
pub use server::{
    serve, CallObserver, Server, ServerError, DEFAULT_PLUGIN_DIR, IPAM_SOCKET, NETWORK_SOCKET,
};
pub use traits::{
    AddressAllocator, AllocError, ContainerRef, DockerApi, HostLinks, PortPublisher, PublishedPort,
    SourceError,
};
