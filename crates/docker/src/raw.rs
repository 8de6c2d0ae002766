//! The Engine API's JSON shapes (API 1.41), decoded leniently: unknown fields are ignored and
//! `null` or missing maps, lists and strings read as empty. Converted into [`crate::types`].

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::engine::Engine;
use crate::types::{
    ContainerInfo, ContainerNetwork, ContainerPorts, ContainerSummary, HostBinding, IpamPool,
    NetworkContainer, NetworkInfo,
};

/// `null` or absent reads as the type's default.
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `""`, `null` or absent reads as `None`; anything else must parse.
fn opt_parsed<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|e| D::Error::custom(format!("'{s}': {e}"))),
    }
}

fn strip_slash(name: String) -> String {
    match name.strip_prefix('/') {
        Some(rest) => rest.to_owned(),
        None => name,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Network {
    #[serde(default, deserialize_with = "nullable")]
    id: String,
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    driver: String,
    #[serde(default, deserialize_with = "nullable")]
    scope: String,
    #[serde(rename = "IPAM", default, deserialize_with = "nullable")]
    ipam: Ipam,
    #[serde(default, deserialize_with = "nullable")]
    options: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    containers: BTreeMap<String, Endpoint>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Ipam {
    #[serde(default, deserialize_with = "nullable")]
    driver: String,
    #[serde(default, deserialize_with = "nullable")]
    options: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    config: Vec<IpamConfig>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IpamConfig {
    #[serde(default, deserialize_with = "nullable")]
    subnet: String,
    #[serde(default, deserialize_with = "nullable")]
    gateway: String,
    #[serde(rename = "IPRange", default, deserialize_with = "nullable")]
    ip_range: String,
}

#[derive(Deserialize)]
struct Endpoint {
    #[serde(rename = "Name", default, deserialize_with = "nullable")]
    name: String,
    #[serde(rename = "EndpointID", default, deserialize_with = "nullable")]
    endpoint_id: String,
    #[serde(rename = "MacAddress", default, deserialize_with = "nullable")]
    mac_address: String,
    #[serde(rename = "IPv4Address", default, deserialize_with = "opt_parsed")]
    ipv4_address: Option<IpNet>,
    #[serde(rename = "IPv6Address", default, deserialize_with = "opt_parsed")]
    ipv6_address: Option<IpNet>,
}

impl From<Network> for NetworkInfo {
    fn from(n: Network) -> Self {
        NetworkInfo {
            id: n.id,
            name: n.name,
            driver: n.driver,
            scope: n.scope,
            ipam_driver: n.ipam.driver,
            ipam_options: n.ipam.options,
            ipam_pools: n
                .ipam
                .config
                .into_iter()
                .map(|c| IpamPool {
                    subnet: c.subnet,
                    gateway: c.gateway,
                    ip_range: c.ip_range,
                })
                .collect(),
            options: n.options,
            labels: n.labels,
            containers: n
                .containers
                .into_iter()
                .map(|(id, e)| {
                    let container = NetworkContainer {
                        name: strip_slash(e.name),
                        endpoint_id: e.endpoint_id,
                        mac_address: e.mac_address,
                        ipv4_address: e.ipv4_address,
                        ipv6_address: e.ipv6_address,
                    };
                    (id, container)
                })
                .collect(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Container {
    #[serde(default, deserialize_with = "nullable")]
    id: String,
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    state: ContainerState,
    #[serde(default, deserialize_with = "nullable")]
    config: ContainerConfig,
    #[serde(default, deserialize_with = "nullable")]
    host_config: HostConfig,
    #[serde(default, deserialize_with = "nullable")]
    network_settings: NetworkSettings,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HostConfig {
    #[serde(default, deserialize_with = "nullable")]
    port_bindings: BTreeMap<String, Option<Vec<PortBindingEntry>>>,
    #[serde(default, deserialize_with = "nullable")]
    publish_all_ports: bool,
}

#[derive(Deserialize)]
struct PortBindingEntry {
    #[serde(rename = "HostIp", default, deserialize_with = "nullable")]
    host_ip: String,
    #[serde(rename = "HostPort", default, deserialize_with = "nullable")]
    host_port: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerState {
    #[serde(default, deserialize_with = "nullable")]
    running: bool,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerConfig {
    #[serde(default, deserialize_with = "nullable")]
    image: String,
    #[serde(default, deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    exposed_ports: BTreeMap<String, serde::de::IgnoredAny>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkSettings {
    #[serde(default, deserialize_with = "nullable")]
    networks: BTreeMap<String, Attachment>,
}

#[derive(Deserialize)]
struct Attachment {
    #[serde(rename = "NetworkID", default, deserialize_with = "nullable")]
    network_id: String,
    #[serde(rename = "EndpointID", default, deserialize_with = "nullable")]
    endpoint_id: String,
    #[serde(rename = "IPAddress", default, deserialize_with = "opt_parsed")]
    ip_address: Option<IpAddr>,
    #[serde(rename = "GlobalIPv6Address", default, deserialize_with = "opt_parsed")]
    global_ipv6_address: Option<IpAddr>,
    #[serde(rename = "MacAddress", default, deserialize_with = "nullable")]
    mac_address: String,
}

impl From<Container> for ContainerInfo {
    fn from(c: Container) -> Self {
        ContainerInfo {
            id: c.id,
            name: strip_slash(c.name),
            image: c.config.image,
            labels: c.config.labels,
            running: c.state.running,
            networks: c
                .network_settings
                .networks
                .into_iter()
                .map(|(name, a)| {
                    let attachment = ContainerNetwork {
                        network_id: a.network_id,
                        endpoint_id: a.endpoint_id,
                        ip: a.ip_address,
                        ipv6: a.global_ipv6_address,
                        mac_address: a.mac_address,
                    };
                    (name, attachment)
                })
                .collect(),
            ports: ContainerPorts {
                bindings: c
                    .host_config
                    .port_bindings
                    .into_iter()
                    .map(|(port, entries)| {
                        let entries = entries
                            .unwrap_or_default()
                            .into_iter()
                            .map(|e| HostBinding {
                                host_ip: e.host_ip,
                                host_port: e.host_port,
                            })
                            .collect();
                        (port, entries)
                    })
                    .collect(),
                publish_all: c.host_config.publish_all_ports,
                exposed: c.config.exposed_ports.into_keys().collect(),
            },
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ContainerListEntry {
    #[serde(default, deserialize_with = "nullable")]
    id: String,
    #[serde(default, deserialize_with = "nullable")]
    names: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    image: String,
    #[serde(default, deserialize_with = "nullable")]
    state: String,
    #[serde(default, deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
}

impl From<ContainerListEntry> for ContainerSummary {
    fn from(c: ContainerListEntry) -> Self {
        ContainerSummary {
            id: c.id,
            names: c.names.into_iter().map(strip_slash).collect(),
            image: c.image,
            state: c.state,
            labels: c.labels,
        }
    }
}

/// Body of `POST /networks/create`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NetworkCreate<'a> {
    pub name: &'a str,
    pub check_duplicate: bool,
    pub driver: &'a str,
    #[serde(rename = "IPAM")]
    pub ipam: NetworkCreateIpam<'a>,
    pub labels: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NetworkCreateIpam<'a> {
    pub driver: &'a str,
    pub config: Vec<NetworkCreatePool>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NetworkCreatePool {
    pub subnet: String,
}

/// Reply of `POST /networks/create`.
#[derive(Deserialize)]
pub(crate) struct Created {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Warning", default, deserialize_with = "nullable")]
    pub warning: String,
}

/// Docker's error body.
#[derive(Deserialize)]
pub(crate) struct ErrorBody {
    pub message: String,
}

/// `GET /version`.
#[derive(Deserialize)]
pub(crate) struct Version {
    #[serde(rename = "Version", default, deserialize_with = "nullable")]
    version: String,
    #[serde(rename = "ApiVersion", default, deserialize_with = "nullable")]
    api_version: String,
    #[serde(rename = "MinAPIVersion", default, deserialize_with = "nullable")]
    min_api_version: String,
}

impl From<Version> for Engine {
    fn from(v: Version) -> Self {
        Engine {
            version: v.version,
            api_version: v.api_version,
            min_api_version: v.min_api_version,
        }
    }
}
