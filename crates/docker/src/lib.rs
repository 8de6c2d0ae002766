//! A small Docker Engine API client over the daemon's unix socket: the network and container
//! calls the Calico plugin and agent need, nothing more, and which Engine releases calico-docker
//! supports ([`engine`]).
//!
//! Every call opens one HTTP/1.1 connection, speaks API version [`API_VERSION`] (understood by
//! Docker 20.10 and every later release) and returns typed results. "No such network/container"
//! is `Ok(None)`; every other failure is a [`DockerError`] naming the request and, for errors
//! the daemon reports, its HTTP status and message.
//!
//! ```no_run
//! # async fn demo() -> Result<(), calico_docker::DockerError> {
//! let docker = calico_docker::DockerClient::from_env()?;
//! if let Some(net) = docker.network_inspect("net1").await? {
//!     println!("{} is driven by {}", net.name, net.driver);
//! }
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod client;
pub mod engine;
mod error;
mod raw;
mod types;

pub use client::{DockerClient, API_VERSION, DEFAULT_SOCKET, DEFAULT_TIMEOUT};
pub use error::DockerError;
pub use types::{
    ContainerInfo, ContainerNetwork, ContainerPorts, ContainerSummary, HostBinding, IpamPool,
    NetworkContainer, NetworkInfo,
};
