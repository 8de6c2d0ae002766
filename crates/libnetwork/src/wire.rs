//! The JSON of Docker's remote network and IPAM driver protocol (libnetwork `docs/remote.md`,
//! `docs/ipam.md`; field names as go-plugins-helpers spells them).
//!
//! Requests are read leniently: unknown fields are ignored, and `null` or a missing map, list,
//! string or flag reads as empty. Only the IDs a call acts on are required, and they must look
//! like Docker IDs ([`DockerId`]). Responses carry exactly the fields Docker reads.

use std::collections::BTreeMap;

use calico_model::endpoint_naming::DockerId;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// `Content-Type` of every reply (go-plugins-helpers' `sdk/encoder.go`).
pub const CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1.1+json";
/// The address space Docker requests pools from for `local` scope networks.
pub const LOCAL_ADDRESS_SPACE: &str = "CalicoLocalAddressSpace";
/// The address space Docker requests pools from for `global` scope networks.
pub const GLOBAL_ADDRESS_SPACE: &str = "CalicoGlobalAddressSpace";
/// Pool ID of "any Calico IPv4 pool" (a network created without `--subnet`).
pub const POOL_ID_V4: &str = "CalicoPoolIPv4";
/// Pool ID of "any Calico IPv6 pool".
pub const POOL_ID_V6: &str = "CalicoPoolIPv6";
/// Key of the gateway in pool `Data`, and the `RequestAddressType` of a gateway request.
pub const GATEWAY_KEY: &str = "com.docker.network.gateway";
/// The sentinel IPv4 gateway Calico IPAM hands Docker, recognised again at `CreateNetwork`.
pub const SENTINEL_GATEWAY_V4: &str = "0.0.0.0/0";
/// The sentinel IPv6 gateway.
pub const SENTINEL_GATEWAY_V6: &str = "::/0";
/// The `RequestAddress` option that says what the address is for.
pub const REQUEST_ADDRESS_TYPE: &str = "RequestAddressType";

/// `null` or absent reads as the type's default.
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The interface a call belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interface {
    /// `Plugin.*`
    Plugin,
    /// `NetworkDriver.*`
    NetworkDriver,
    /// `IpamDriver.*`
    IpamDriver,
}

/// Every call of the protocol; the request path is `/` + [`Call::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `Plugin.Activate`
    Activate,
    /// `NetworkDriver.GetCapabilities`
    NetworkCapabilities,
    /// `NetworkDriver.CreateNetwork`
    CreateNetwork,
    /// `NetworkDriver.DeleteNetwork`
    DeleteNetwork,
    /// `NetworkDriver.CreateEndpoint`
    CreateEndpoint,
    /// `NetworkDriver.EndpointOperInfo`
    EndpointOperInfo,
    /// `NetworkDriver.DeleteEndpoint`
    DeleteEndpoint,
    /// `NetworkDriver.Join`
    Join,
    /// `NetworkDriver.Leave`
    Leave,
    /// `NetworkDriver.DiscoverNew`
    DiscoverNew,
    /// `NetworkDriver.DiscoverDelete`
    DiscoverDelete,
    /// `NetworkDriver.ProgramExternalConnectivity`
    ProgramExternalConnectivity,
    /// `NetworkDriver.RevokeExternalConnectivity`
    RevokeExternalConnectivity,
    /// `NetworkDriver.AllocateNetwork`
    AllocateNetwork,
    /// `NetworkDriver.FreeNetwork`
    FreeNetwork,
    /// `IpamDriver.GetCapabilities`
    IpamCapabilities,
    /// `IpamDriver.GetDefaultAddressSpaces`
    DefaultAddressSpaces,
    /// `IpamDriver.RequestPool`
    RequestPool,
    /// `IpamDriver.ReleasePool`
    ReleasePool,
    /// `IpamDriver.RequestAddress`
    RequestAddress,
    /// `IpamDriver.ReleaseAddress`
    ReleaseAddress,
}

impl Call {
    /// Every call.
    pub const ALL: [Call; 21] = [
        Call::Activate,
        Call::NetworkCapabilities,
        Call::CreateNetwork,
        Call::DeleteNetwork,
        Call::CreateEndpoint,
        Call::EndpointOperInfo,
        Call::DeleteEndpoint,
        Call::Join,
        Call::Leave,
        Call::DiscoverNew,
        Call::DiscoverDelete,
        Call::ProgramExternalConnectivity,
        Call::RevokeExternalConnectivity,
        Call::AllocateNetwork,
        Call::FreeNetwork,
        Call::IpamCapabilities,
        Call::DefaultAddressSpaces,
        Call::RequestPool,
        Call::ReleasePool,
        Call::RequestAddress,
        Call::ReleaseAddress,
    ];

    /// `<Interface>.<Method>`, as in the request path.
    pub fn name(self) -> &'static str {
        match self {
            Call::Activate => "Plugin.Activate",
            Call::NetworkCapabilities => "NetworkDriver.GetCapabilities",
            Call::CreateNetwork => "NetworkDriver.CreateNetwork",
            Call::DeleteNetwork => "NetworkDriver.DeleteNetwork",
            Call::CreateEndpoint => "NetworkDriver.CreateEndpoint",
            Call::EndpointOperInfo => "NetworkDriver.EndpointOperInfo",
            Call::DeleteEndpoint => "NetworkDriver.DeleteEndpoint",
            Call::Join => "NetworkDriver.Join",
            Call::Leave => "NetworkDriver.Leave",
            Call::DiscoverNew => "NetworkDriver.DiscoverNew",
            Call::DiscoverDelete => "NetworkDriver.DiscoverDelete",
            Call::ProgramExternalConnectivity => "NetworkDriver.ProgramExternalConnectivity",
            Call::RevokeExternalConnectivity => "NetworkDriver.RevokeExternalConnectivity",
            Call::AllocateNetwork => "NetworkDriver.AllocateNetwork",
            Call::FreeNetwork => "NetworkDriver.FreeNetwork",
            Call::IpamCapabilities => "IpamDriver.GetCapabilities",
            Call::DefaultAddressSpaces => "IpamDriver.GetDefaultAddressSpaces",
            Call::RequestPool => "IpamDriver.RequestPool",
            Call::ReleasePool => "IpamDriver.ReleasePool",
            Call::RequestAddress => "IpamDriver.RequestAddress",
            Call::ReleaseAddress => "IpamDriver.ReleaseAddress",
        }
    }

    /// The call a request path (`/NetworkDriver.Join`) names, if any.
    pub fn from_path(path: &str) -> Option<Call> {
        let name = path.strip_prefix('/')?;
        Call::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The interface the call belongs to.
    pub fn interface(self) -> Interface {
        match self.name().split_once('.').map(|(i, _)| i) {
            Some("Plugin") => Interface::Plugin,
            Some("NetworkDriver") => Interface::NetworkDriver,
            _ => Interface::IpamDriver,
        }
    }
}

/// `{}`: the reply of calls that return nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// `Plugin.Activate` reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivateResponse {
    /// `NetworkDriver` and/or `IpamDriver`.
    #[serde(rename = "Implements")]
    pub implements: Vec<String>,
}

/// `NetworkDriver.GetCapabilities` reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilitiesResponse {
    /// Data scope: `local` or `global`.
    #[serde(rename = "Scope")]
    pub scope: String,
    /// Connectivity scope: `local` or `global`.
    #[serde(rename = "ConnectivityScope")]
    pub connectivity_scope: String,
}

/// One IPAM pool of a network, as Docker passes it to `CreateNetwork`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamData {
    /// The address space the pool came from.
    #[serde(rename = "AddressSpace", default, deserialize_with = "nullable")]
    pub address_space: String,
    /// The pool CIDR.
    #[serde(rename = "Pool", default, deserialize_with = "nullable")]
    pub pool: String,
    /// The gateway CIDR (Calico IPAM: the sentinel `0.0.0.0/0`).
    #[serde(rename = "Gateway", default, deserialize_with = "nullable")]
    pub gateway: String,
    /// Reserved auxiliary addresses.
    #[serde(rename = "AuxAddresses", default, deserialize_with = "nullable")]
    pub aux_addresses: BTreeMap<String, String>,
}

/// `NetworkDriver.CreateNetwork` request. The network's name is not part of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateNetworkRequest {
    /// The new network's ID.
    #[serde(rename = "NetworkID")]
    pub network_id: DockerId,
    /// Generic options: `com.docker.network.*` flags and the `--opt` map.
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    pub options: Map<String, Value>,
    /// IPv4 pools.
    #[serde(rename = "IPv4Data", default, deserialize_with = "nullable")]
    pub ipv4_data: Vec<IpamData>,
    /// IPv6 pools.
    #[serde(rename = "IPv6Data", default, deserialize_with = "nullable")]
    pub ipv6_data: Vec<IpamData>,
}

/// A request naming only a network: `DeleteNetwork`, `FreeNetwork`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRequest {
    /// The network.
    #[serde(rename = "NetworkID")]
    pub network_id: DockerId,
}

/// The addresses Docker's IPAM gave an endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointInterface {
    /// IPv4 address with prefix, e.g. `192.168.1.1/32`.
    #[serde(rename = "Address", default, deserialize_with = "nullable")]
    pub address: String,
    /// IPv6 address with prefix.
    #[serde(rename = "AddressIPv6", default, deserialize_with = "nullable")]
    pub address_ipv6: String,
    /// MAC address the user asked for (`--mac-address`), empty if none.
    #[serde(rename = "MacAddress", default, deserialize_with = "nullable")]
    pub mac_address: String,
}

/// `NetworkDriver.CreateEndpoint` request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateEndpointRequest {
    /// The network.
    #[serde(rename = "NetworkID")]
    pub network_id: DockerId,
    /// The new endpoint's ID.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: DockerId,
    /// Addresses and MAC.
    #[serde(rename = "Interface", default, deserialize_with = "nullable")]
    pub interface: EndpointInterface,
    /// Endpoint options (exposed ports, port map, DNS servers, ...).
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    pub options: Map<String, Value>,
}

/// `NetworkDriver.CreateEndpoint` reply.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateEndpointResponse {
    /// What the driver chose for the interface; absent when it chose nothing.
    #[serde(rename = "Interface", default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<EndpointInterfaceReply>,
}

/// The interface settings a driver hands back (only ever the MAC, for Calico).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointInterfaceReply {
    /// The MAC the container interface gets.
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
}

/// A request naming a network and an endpoint: `EndpointOperInfo`, `DeleteEndpoint`, `Leave`,
/// `RevokeExternalConnectivity`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRequest {
    /// The network.
    #[serde(rename = "NetworkID")]
    pub network_id: DockerId,
    /// The endpoint.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: DockerId,
}

/// `NetworkDriver.EndpointOperInfo` reply (moby's remote `EndpointInfoResponse`,
/// `{"Value": map[string]interface{}}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointOperInfoResponse {
    /// The endpoint's operational data, keyed as moby's bridge driver keys it.
    #[serde(rename = "Value")]
    pub value: EndpointOperInfo,
}

/// The operational data of an endpoint: what moby's bridge driver returns from
/// `EndpointOperInfo` (`netlabel.PortMap`, `netlabel.ExposedPorts`), each left out while
/// empty (as the recorded replies of dockerd 20.10 and 28 had them for containers without
/// ports).
///
/// dockerd 20.10 and 28 fill a container's `NetworkSettings.Ports` (`docker port`) from this
/// only when the values are Go `[]types.PortBinding` and `[]types.TransportPort`, which only
/// in-process drivers can return: through the remote protocol they arrive as generic JSON and
/// dockerd skips them. The reply is still the bridge's, for whoever reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointOperInfo {
    /// The bindings made, with the host ports chosen.
    #[serde(
        rename = "com.docker.network.portmap",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub port_map: Vec<PortBinding>,
    /// The exposed ports, as Docker listed them.
    #[serde(
        rename = "com.docker.network.endpoint.exposedports",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exposed_ports: Vec<TransportPort>,
}

/// `NetworkDriver.Join` request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The network.
    #[serde(rename = "NetworkID")]
    pub network_id: DockerId,
    /// The endpoint.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: DockerId,
    /// Path of the container's network namespace, in dockerd's mount namespace.
    #[serde(rename = "SandboxKey", default, deserialize_with = "nullable")]
    pub sandbox_key: String,
    /// Join options.
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    pub options: Map<String, Value>,
}

/// `NetworkDriver.Join` reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinResponse {
    /// The interface Docker moves into the container, and its name prefix there.
    #[serde(rename = "InterfaceName")]
    pub interface_name: InterfaceName,
    /// IPv4 default gateway of the container.
    #[serde(rename = "Gateway")]
    pub gateway: String,
    /// IPv6 default gateway; omitted when there is none.
    #[serde(
        rename = "GatewayIPv6",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub gateway_ipv6: String,
    /// Routes to add in the container.
    #[serde(rename = "StaticRoutes")]
    pub static_routes: Vec<StaticRoute>,
    /// Keeps Docker from adding the `docker_gwbridge` interface.
    #[serde(rename = "DisableGatewayService")]
    pub disable_gateway_service: bool,
}

/// Source and destination names of the container interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceName {
    /// The interface's name on the host before Docker moves it.
    #[serde(rename = "SrcName")]
    pub src_name: String,
    /// The prefix of its name in the container (Docker appends an index).
    #[serde(rename = "DstPrefix")]
    pub dst_prefix: String,
}

/// A route for the container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticRoute {
    /// Destination CIDR.
    #[serde(rename = "Destination")]
    pub destination: String,
    /// [`ROUTE_CONNECTED`] or [`ROUTE_NEXT_HOP`].
    #[serde(rename = "RouteType")]
    pub route_type: u8,
    /// Next hop for [`ROUTE_NEXT_HOP`] routes, empty otherwise.
    #[serde(rename = "NextHop")]
    pub next_hop: String,
}

/// A route through a next hop.
pub const ROUTE_NEXT_HOP: u8 = 0;
/// A route straight out of the interface (no next hop).
pub const ROUTE_CONNECTED: u8 = 1;

/// `NetworkDriver.DiscoverNew` / `DiscoverDelete` request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryNotification {
    /// 1 = node discovery.
    #[serde(rename = "DiscoveryType", default, deserialize_with = "nullable")]
    pub discovery_type: i64,
    /// Type-specific data, e.g. `{"Address", "BindAddress", "Self"}`.
    #[serde(rename = "DiscoveryData", default, deserialize_with = "nullable")]
    pub discovery_data: Value,
}

/// `NetworkDriver.ProgramExternalConnectivity` request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProgramExternalConnectivityRequest {
    /// The network.
    #[serde(rename = "NetworkID")]
    pub network_id: DockerId,
    /// The endpoint.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: DockerId,
    /// Exposed ports and port map.
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    pub options: Map<String, Value>,
}

/// The `ProgramExternalConnectivity` option listing the port bindings asked for (`-p`, `-P`).
pub const PORT_MAP_OPTION: &str = "com.docker.network.portmap";
/// The `ProgramExternalConnectivity` option listing the exposed ports (`--expose`, the image's
/// `EXPOSE`, and every published port).
pub const EXPOSED_PORTS_OPTION: &str = "com.docker.network.endpoint.exposedports";

/// One port binding, libnetwork's `types.PortBinding`. In a request: `HostPort` 0 (and
/// `HostPortEnd` 0) asks for any free port (`-P`, `-p 80`), `HostPort`..`HostPortEnd` for the
/// first free one of a range (`-p 8000-8010:80`), and `HostIP` "" for every host address. In
/// a reply: `IP` is the container's address and `HostPortEnd` equals the chosen `HostPort`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    /// IANA protocol number: 6 TCP, 17 UDP, 132 SCTP.
    #[serde(rename = "Proto", default, deserialize_with = "nullable")]
    pub proto: u8,
    /// The container's address (empty in requests).
    #[serde(rename = "IP", default, deserialize_with = "nullable")]
    pub ip: String,
    /// The container port.
    #[serde(rename = "Port", default, deserialize_with = "nullable")]
    pub port: u16,
    /// The host address; empty for all of them.
    #[serde(rename = "HostIP", default, deserialize_with = "nullable")]
    pub host_ip: String,
    /// The host port, or the first of a range; 0 for any.
    #[serde(rename = "HostPort", default, deserialize_with = "nullable")]
    pub host_port: u16,
    /// The last host port of the range; 0 for "the same as `HostPort`".
    #[serde(rename = "HostPortEnd", default, deserialize_with = "nullable")]
    pub host_port_end: u16,
}

/// An exposed port, libnetwork's `types.TransportPort`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportPort {
    /// IANA protocol number.
    #[serde(rename = "Proto", default, deserialize_with = "nullable")]
    pub proto: u8,
    /// The container port.
    #[serde(rename = "Port", default, deserialize_with = "nullable")]
    pub port: u16,
}

/// The port options of a `ProgramExternalConnectivity` request; absent or `null` options
/// read as empty lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortOptions {
    /// [`PORT_MAP_OPTION`].
    pub port_map: Vec<PortBinding>,
    /// [`EXPOSED_PORTS_OPTION`].
    pub exposed_ports: Vec<TransportPort>,
}

/// A port option that is not what Docker sends.
#[derive(Debug, thiserror::Error)]
#[error("option {option} is not {expected}: {source}")]
pub struct PortOptionError {
    /// The option's key.
    pub option: &'static str,
    /// What it should be.
    pub expected: &'static str,
    /// Why it is not.
    #[source]
    pub source: serde_json::Error,
}

impl PortOptions {
    /// Reads [`PORT_MAP_OPTION`] and [`EXPOSED_PORTS_OPTION`] from `options`, ignoring every
    /// other option.
    pub fn from_options(options: &Map<String, Value>) -> Result<Self, PortOptionError> {
        Ok(PortOptions {
            port_map: list_option(
                options,
                PORT_MAP_OPTION,
                "a list of port bindings {Proto, IP, Port, HostIP, HostPort, HostPortEnd}",
            )?,
            exposed_ports: list_option(
                options,
                EXPOSED_PORTS_OPTION,
                "a list of ports {Proto, Port}",
            )?,
        })
    }
}

fn list_option<T: serde::de::DeserializeOwned>(
    options: &Map<String, Value>,
    option: &'static str,
    expected: &'static str,
) -> Result<Vec<T>, PortOptionError> {
    match options.get(option) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(value) => Vec::<T>::deserialize(value).map_err(|source| PortOptionError {
            option,
            expected,
            source,
        }),
    }
}

/// `NetworkDriver.AllocateNetwork` request (swarm mode).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AllocateNetworkRequest {
    /// The network.
    #[serde(rename = "NetworkID")]
    pub network_id: DockerId,
    /// Network options.
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    pub options: Map<String, Value>,
    /// IPv4 pools.
    #[serde(rename = "IPv4Data", default, deserialize_with = "nullable")]
    pub ipv4_data: Vec<IpamData>,
    /// IPv6 pools.
    #[serde(rename = "IPv6Data", default, deserialize_with = "nullable")]
    pub ipv6_data: Vec<IpamData>,
}

/// `IpamDriver.GetCapabilities` reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamCapabilitiesResponse {
    /// Whether `RequestAddress` needs the endpoint's MAC.
    #[serde(rename = "RequiresMACAddress")]
    pub requires_mac_address: bool,
}

/// `IpamDriver.GetDefaultAddressSpaces` reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressSpacesResponse {
    /// Address space of `local` scope networks.
    #[serde(rename = "LocalDefaultAddressSpace")]
    pub local_default_address_space: String,
    /// Address space of `global` scope networks.
    #[serde(rename = "GlobalDefaultAddressSpace")]
    pub global_default_address_space: String,
}

/// `IpamDriver.RequestPool` request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPoolRequest {
    /// The address space.
    #[serde(rename = "AddressSpace", default, deserialize_with = "nullable")]
    pub address_space: String,
    /// `--subnet`, empty if not given.
    #[serde(rename = "Pool", default, deserialize_with = "nullable")]
    pub pool: String,
    /// `--ip-range`, empty if not given.
    #[serde(rename = "SubPool", default, deserialize_with = "nullable")]
    pub sub_pool: String,
    /// `--ipam-opt` options.
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    pub options: BTreeMap<String, String>,
    /// Whether an IPv6 pool is wanted.
    #[serde(rename = "V6", default, deserialize_with = "nullable")]
    pub v6: bool,
}

/// `IpamDriver.RequestPool` reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPoolResponse {
    /// ID Docker quotes in later calls.
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    /// The pool CIDR.
    #[serde(rename = "Pool")]
    pub pool: String,
    /// Pool metadata; Calico puts its sentinel gateway here.
    #[serde(rename = "Data")]
    pub data: BTreeMap<String, String>,
}

/// `IpamDriver.ReleasePool` request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasePoolRequest {
    /// The pool.
    #[serde(rename = "PoolID", default, deserialize_with = "nullable")]
    pub pool_id: String,
}

/// `IpamDriver.RequestAddress` request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestAddressRequest {
    /// The pool ([`POOL_ID_V4`], [`POOL_ID_V6`] or a pool CIDR).
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    /// `--ip`, empty for "any address".
    #[serde(rename = "Address", default, deserialize_with = "nullable")]
    pub address: String,
    /// Request options, e.g. [`REQUEST_ADDRESS_TYPE`].
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    pub options: BTreeMap<String, String>,
}

/// `IpamDriver.RequestAddress` reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestAddressResponse {
    /// The address with prefix, `a.b.c.d/32` or `x::y/128`.
    #[serde(rename = "Address")]
    pub address: String,
    /// Address metadata (none for Calico).
    #[serde(rename = "Data")]
    pub data: BTreeMap<String, String>,
}

/// `IpamDriver.ReleaseAddress` request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseAddressRequest {
    /// The pool.
    #[serde(rename = "PoolID", default, deserialize_with = "nullable")]
    pub pool_id: String,
    /// The address, without prefix length.
    #[serde(rename = "Address")]
    pub address: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_round_trips_through_its_path() {
        for call in Call::ALL {
            assert_eq!(Call::from_path(&format!("/{}", call.name())), Some(call));
        }
        assert_eq!(Call::from_path("NetworkDriver.Join"), None);
        assert_eq!(Call::from_path("/NetworkDriver.Nope"), None);
        assert_eq!(Call::Activate.interface(), Interface::Plugin);
        assert_eq!(Call::Join.interface(), Interface::NetworkDriver);
        assert_eq!(Call::ReleasePool.interface(), Interface::IpamDriver);
    }

    #[test]
    fn nulls_and_unknown_fields_are_tolerated() {
        let req: CreateEndpointRequest = serde_json::from_str(
            r#"{"NetworkID":"n1","EndpointID":"e1","Interface":null,"Options":null,"Future":[1]}"#,
        )
        .expect("lenient");
        assert_eq!(req.interface, EndpointInterface::default());
        assert!(req.options.is_empty());
        let req: CreateNetworkRequest = serde_json::from_str(
            r#"{"NetworkID":"n1","IPv4Data":null,"IPv6Data":[{"Pool":null}]}"#,
        )
        .expect("lenient");
        assert!(req.ipv4_data.is_empty());
        assert_eq!(req.ipv6_data, vec![IpamData::default()]);
    }

    #[test]
    fn replies_have_docker_field_names() {
        let join = JoinResponse {
            interface_name: InterfaceName {
                src_name: "temp0a930a258ae".into(),
                dst_prefix: "cali".into(),
            },
            gateway: "169.254.1.1".into(),
            gateway_ipv6: String::new(),
            static_routes: vec![StaticRoute {
                destination: "169.254.1.1/32".into(),
                route_type: ROUTE_CONNECTED,
                next_hop: String::new(),
            }],
            disable_gateway_service: false,
        };
        assert_eq!(
            serde_json::to_value(&join).expect("json"),
            serde_json::json!({
                "InterfaceName": {"SrcName": "temp0a930a258ae", "DstPrefix": "cali"},
                "Gateway": "169.254.1.1",
                "StaticRoutes": [{"Destination": "169.254.1.1/32", "RouteType": 1, "NextHop": ""}],
                "DisableGatewayService": false
            })
        );
        assert_eq!(
            serde_json::to_string(&CreateEndpointResponse::default()).expect("json"),
            "{}"
        );
    }
}
