//! What the driver needs from outside, as narrow traits: Calico IPAM, the Docker API, the
//! host's links and the host's published ports (`docker run -p`). calico-node provides the real implementations; tests use fakes. Their errors
//! keep their cause ([`SourceError`]); the text Docker shows is made from them in one place,
//! [`crate::DriverError`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};

use async_trait::async_trait;
use calico_model::Cidr;
use ipnet::IpNet;

/// An error from one of the driver's outside parts (the kernel, Docker, the datastore), kept
/// whole: callers can walk its sources or downcast it to the implementation's own type.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// Why an address could not be assigned or released.
#[derive(Debug, thiserror::Error)]
pub enum AllocError {
    /// The pool asked for (or, for [`AddressAllocator::assign`], any pool holding the
    /// address) does not exist.
    #[error("no such Calico IP pool")]
    PoolNotFound,
    /// Anything else, with its cause.
    #[error(transparent)]
    Other(SourceError),
}

/// Calico IPAM, for the IPAM driver.
#[async_trait]
pub trait AddressAllocator: Send + Sync {
    /// The CIDRs of the enabled pools of IP `version` (4 or 6).
    async fn pool_cidrs(&self, version: u8) -> Result<Vec<Cidr>, SourceError>;
    /// Assigns one free address of `version` to this host, from `pool` or else any enabled pool.
    async fn auto_assign(&self, version: u8, pool: Option<Cidr>) -> Result<IpAddr, AllocError>;
    /// Assigns exactly `ip`, which must lie in an enabled pool and be free.
    async fn assign(&self, ip: IpAddr) -> Result<(), AllocError>;
    /// Releases `ip`; releasing an address that is not assigned is not an error.
    async fn release(&self, ip: IpAddr) -> Result<(), AllocError>;
}

/// The container behind an endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerRef {
    /// Full container ID.
    pub id: String,
    /// Container name, without the leading `/`.
    pub name: String,
    /// Container labels.
    pub labels: BTreeMap<String, String>,
}

/// The Docker Engine API, for what the plugin protocol does not say.
#[async_trait]
pub trait DockerApi: Send + Sync {
    /// The name of the network with this ID; `None` while Docker does not (yet) know it.
    async fn network_name(&self, network_id: &str) -> Result<Option<String>, SourceError>;
    /// The container attached to the network through this endpoint; `None` while Docker does
    /// not (yet) list it.
    async fn endpoint_container(
        &self,
        network_id: &str,
        endpoint_id: &str,
    ) -> Result<Option<ContainerRef>, SourceError>;
}

/// The host side of container interfaces.
#[async_trait]
pub trait HostLinks: Send + Sync {
    /// Creates the veth pair `host_if` / `temp_if` (both up), with `mtu` or the kernel default.
    async fn create_veth(
        &self,
        host_if: &str,
        temp_if: &str,
        mtu: Option<u32>,
    ) -> Result<(), SourceError>;
    /// Routes `addrs` to `host_if`, adds a static neighbour entry for each with `mac`, and sets
    /// the interface's sysctls (proxy ARP and friends).
    async fn plumb(&self, host_if: &str, addrs: &[IpNet], mac: [u8; 6]) -> Result<(), SourceError>;
    /// Removes the routes for `addrs` and the veth `host_if`; absent ones are not an error.
    async fn remove(&self, host_if: &str, addrs: &[IpNet]) -> Result<(), SourceError>;
    /// The IPv6 link-local address of `host_if`, used as the container's IPv6 gateway;
    /// `None` while the interface has none.
    async fn ipv6_link_local(&self, host_if: &str) -> Result<Option<Ipv6Addr>, SourceError>;
}

/// One host port DNATed to a container port.
///
/// `host_ip` `None` means every address of the host in the family of `container_ip`; an
/// address means that one only (it is always of the same family as `container_ip`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublishedPort {
    /// IANA protocol number: 6 (TCP), 17 (UDP) or 132 (SCTP).
    pub protocol: u8,
    /// The host address the port is published on; `None`: all of them.
    pub host_ip: Option<IpAddr>,
    /// The host port (1-65535).
    pub host_port: u16,
    /// The endpoint's own address the traffic goes to.
    pub container_ip: IpAddr,
    /// The container port (1-65535).
    pub container_port: u16,
}

/// The host's published ports (`docker run -p`), one endpoint at a time. The driver decides
/// the bindings (validation, host port choice, conflicts); an implementation only programs
/// them.
#[async_trait]
pub trait PortPublisher: Send + Sync {
    /// Makes `ports` the published ports of the endpoint on host interface `host_if` (an empty list: none).
    async fn publish(&self, host_if: &str, ports: &[PublishedPort]) -> Result<(), SourceError>;
}
