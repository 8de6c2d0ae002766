//! [`DriverError`]: why a call failed, worded as Calico's Go plugin words it where it has a
//! text (Docker shows these to the user as `Error response from daemon: ...`).

use calico_store::resources::ResourceError;

use crate::traits::SourceError;

/// A refused or failed plugin call. Docker receives the message as `{"Err": ...}`.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A call that would create something, made by a Docker Engine calico-docker does not
    /// support.
    #[error("{0}")]
    UnsupportedEngine(calico_docker::engine::Unsupported),
    /// `CreateNetwork` with a flag or `--opt` Calico does not implement; the payload is
    /// `flag --internal`, `flag foo`, `flags a, b` or `flag <key> (<value>)`.
    #[error("Calico driver does not support the {0}.")]
    UnsupportedOption(String),
    /// `CreateNetwork` of an IPv4 network whose gateway is not Calico IPAM's sentinel.
    #[error("Non-Calico IPAM driver is used. Note: Docker before 1.12.3 is unsupported")]
    NonCalicoIpamV4,
    /// `CreateNetwork` of an IPv6 network from an address space that is not Calico's.
    #[error("Non-Calico IPAM driver is used")]
    NonCalicoIpamV6,
    /// `CreateEndpoint` without any address.
    #[error("No address assigned for endpoint")]
    NoAddress,
    /// `CreateEndpoint` with an address that is not an IP address of the right version.
    #[error("Parsing {address} as CIDR failed: {reason}")]
    BadAddress {
        /// The address as Docker sent it.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `CreateEndpoint` with a MAC address that is not a 6-byte MAC.
    #[error("Error parsing MAC address: {0}")]
    BadMac(String),
    /// Docker could not tell the network's name.
    #[error("Network {network_id} inspection error: {source}")]
    NetworkInspect {
        /// The network ID.
        network_id: String,
        /// What went wrong.
        #[source]
        source: SourceError,
    },
    /// `Join` or `ProgramExternalConnectivity` of an endpoint this process saw no
    /// `CreateEndpoint` for.
    #[error(
        "Endpoint {endpoint_id} was not created through this plugin process: \
         CreateEndpoint must come before {call}"
    )]
    EndpointNotCreated {
        /// The endpoint ID.
        endpoint_id: String,
        /// The call: `Join` or `ProgramExternalConnectivity`.
        call: &'static str,
    },
    /// `ProgramExternalConnectivity` with a port option that is not what Docker sends.
    #[error("ProgramExternalConnectivity: {0}")]
    PortOptions(#[source] crate::wire::PortOptionError),
    /// `ProgramExternalConnectivity` asking for bindings that cannot be made (moby's text for
    /// a port in use).
    #[error("{0}")]
    Ports(#[source] super::PortError),
    /// The published ports could not be programmed (or removed).
    #[error("Port publishing error, hostInterfaceName={host_if}: {source}")]
    Publish {
        /// Host-side name of the endpoint's interface.
        host_if: String,
        /// What went wrong.
        #[source]
        source: SourceError,
    },
    /// `Leave` or `DeleteEndpoint` of an endpoint neither this process nor the datastore knows.
    #[error(
        "Endpoint {endpoint_id} is unknown on node {node}: no CreateEndpoint for it was seen \
         and no workload endpoint for it is stored"
    )]
    UnknownEndpoint {
        /// The endpoint ID.
        endpoint_id: String,
        /// This node.
        node: String,
    },
    /// `Join` could not create the veth pair.
    #[error(
        "Veth creation error, hostInterfaceName={host_if}, tempInterfaceName={temp_if}, \
         vethMTU={mtu}: {source}"
    )]
    VethCreate {
        /// Host-side name.
        host_if: String,
        /// Temporary container-side name.
        temp_if: String,
        /// The MTU asked for (0 = kernel default).
        mtu: u32,
        /// What went wrong.
        #[source]
        source: SourceError,
    },
    /// `Join` could not route the endpoint's addresses to its host interface.
    #[error("Host interface {host_if} configuration error: {source}")]
    Plumb {
        /// Host-side name.
        host_if: String,
        /// What went wrong.
        #[source]
        source: SourceError,
    },
    /// `Leave` could not remove the host interface.
    #[error("Veth removal error, hostInterfaceName={host_if}: {source}")]
    VethRemove {
        /// Host-side name.
        host_if: String,
        /// What went wrong.
        #[source]
        source: SourceError,
    },
    /// The Calico datastore failed.
    #[error("{action}: {source}")]
    Store {
        /// What the driver was doing, e.g. `Profile net1 creation error`.
        action: String,
        /// The datastore's error (boxed: it is large and rare).
        #[source]
        source: Box<ResourceError>,
    },
    /// `RequestPool` with `--ip-range`.
    #[error(
        "Calico IPAM does not support sub pool configuration on 'docker create network'. \
         Calico IP Pools should be configured first and IP assignment is from those \
         pre-configured pools."
    )]
    SubPool,
    /// `RequestPool` with `--ipam-opt`.
    #[error("Arbitrary options are not supported")]
    PoolOptions,
    /// `RequestPool` with a `--subnet` that is not a CIDR.
    #[error("Invalid CIDR")]
    InvalidSubnet,
    /// `RequestPool` with a `--subnet` that is not exactly a Calico pool.
    #[error("The requested subnet must match the CIDR of a configured Calico IP Pool.")]
    NotAPool,
    /// Calico IPAM could not list its pools.
    #[error("Calico IP pools could not be listed: {0}")]
    PoolList(#[source] SourceError),
    /// `RequestAddress` for the gateway (`--gateway`).
    #[error("Calico IPAM does not support specifying a gateway.")]
    GatewayRequest,
    /// `RequestAddress` with a pool ID that is neither Calico's nor a CIDR.
    #[error("Invalid CIDR - {pool_id}: {reason}")]
    InvalidPoolId {
        /// The pool ID as Docker sent it.
        pool_id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `RequestAddress` on a `--subnet` network whose Calico pool is gone.
    #[error(
        "The network references a Calico pool which has been deleted. Please re-instate the \
         Calico pool before using the network."
    )]
    PoolDeleted,
    /// Calico IPAM could not assign an address.
    #[error("IP assignment error: {0}")]
    Assign(#[source] SourceError),
    /// Calico IPAM could not release an address.
    #[error("IP releasing error, ip: {ip}: {source}")]
    Release {
        /// The address as Docker sent it.
        ip: String,
        /// What went wrong.
        #[source]
        source: SourceError,
    },
}
