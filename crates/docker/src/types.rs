//! What the client returns: the parts of Docker's network and container objects Calico uses.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

/// A Docker network (`GET /networks/{id}`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkInfo {
    /// Full network ID (64 hex characters).
    pub id: String,
    /// Network name.
    pub name: String,
    /// Network driver, e.g. `calico`.
    pub driver: String,
    /// `local`, `global` or `swarm`.
    pub scope: String,
    /// IPAM driver name, e.g. `calico-ipam`.
    pub ipam_driver: String,
    /// IPAM driver options (`--ipam-opt`).
    pub ipam_options: BTreeMap<String, String>,
    /// Address pools (`--subnet`, `--gateway`, `--ip-range`).
    pub ipam_pools: Vec<IpamPool>,
    /// Driver options (`--opt`).
    pub options: BTreeMap<String, String>,
    /// User labels (`--label`).
    pub labels: BTreeMap<String, String>,
    /// Attached endpoints by container ID. Endpoints of other hosts (global scope) appear under
    /// `ep-<endpoint id>` keys.
    pub containers: BTreeMap<String, NetworkContainer>,
}

/// One IPAM pool of a network, as Docker reports it (strings are empty when unset).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpamPool {
    /// The pool, e.g. `192.168.1.0/26` (Calico IPAM reports `0.0.0.0/0`).
    pub subnet: String,
    /// The gateway.
    pub gateway: String,
    /// The sub-range addresses are allocated from.
    pub ip_range: String,
}

/// An endpoint attached to a network, as listed in the network.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkContainer {
    /// Container name (no leading `/`).
    pub name: String,
    /// Endpoint ID (the libnetwork `EndpointID`).
    pub endpoint_id: String,
    /// MAC address, empty when unknown.
    pub mac_address: String,
    /// IPv4 address with prefix length.
    pub ipv4_address: Option<IpNet>,
    /// IPv6 address with prefix length.
    pub ipv6_address: Option<IpNet>,
}

/// A container (`GET /containers/{id}/json`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Full container ID.
    pub id: String,
    /// Container name without the leading `/`.
    pub name: String,
    /// Image the container was created from, as the user named it.
    pub image: String,
    /// Container labels.
    pub labels: BTreeMap<String, String>,
    /// Whether the container is running.
    pub running: bool,
    /// Connected networks by network name.
    pub networks: BTreeMap<String, ContainerNetwork>,
    /// The ports the container asked to publish and expose.
    pub ports: ContainerPorts,
}

/// What a container asked for of its ports (`HostConfig.PortBindings`,
/// `HostConfig.PublishAllPorts`, `Config.ExposedPorts`), keyed `<port>/<protocol>` (`80/tcp`).
/// This is the request as the user made it: a range or an empty host port is not resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerPorts {
    /// `-p`: the host bindings of each container port.
    pub bindings: BTreeMap<String, Vec<HostBinding>>,
    /// `-P`: publish every exposed port.
    pub publish_all: bool,
    /// `--expose` and the image's `EXPOSE`.
    pub exposed: BTreeSet<String>,
}

/// One host side of a `-p`, as Docker stores it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostBinding {
    /// The host address; empty for all.
    pub host_ip: String,
    /// `8080`, a range `8000-8010`, or empty for any.
    pub host_port: String,
}

/// A container's attachment to one network.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerNetwork {
    /// Network ID.
    pub network_id: String,
    /// Endpoint ID.
    pub endpoint_id: String,
    /// IPv4 address, if any.
    pub ip: Option<IpAddr>,
    /// IPv6 address, if any.
    pub ipv6: Option<IpAddr>,
    /// MAC address, empty when unknown.
    pub mac_address: String,
}

/// One entry of the container list (`GET /containers/json`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerSummary {
    /// Full container ID.
    pub id: String,
    /// Names without the leading `/`.
    pub names: Vec<String>,
    /// Image name.
    pub image: String,
    /// `created`, `running`, `exited`, ...
    pub state: String,
    /// Container labels.
    pub labels: BTreeMap<String, String>,
}
