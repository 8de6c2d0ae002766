//! `workloadEndpoint` (`lib/api/workloadendpoint.go`): a container's interface as Calico
//! sees it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::serde_util::{ip, nullable, opt_ip};
use crate::values::{Cidr, MacAddr};

/// A workload (container) endpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkloadEndpoint {
    /// Identity (node/orchestrator/workload/name) and labels.
    pub metadata: WorkloadEndpointMetadata,
    /// Addresses, interface and profiles.
    pub spec: WorkloadEndpointSpec,
}

/// Workload endpoint metadata.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadEndpointMetadata {
    /// Endpoint name.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// Workload name.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub workload: String,
    /// Orchestrator name (the docker plugin uses `libnetwork`).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub orchestrator: String,
    /// Name of the node hosting the endpoint.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub node: String,
    /// Identifies the current instance of a re-created workload (not part of the key).
    #[serde(
        rename = "activeInstanceID",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub active_instance_id: String,
    /// Endpoint labels.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
}

/// Workload endpoint specification.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadEndpointSpec {
    /// The endpoint's addresses, each a /32 or /128.
    #[serde(
        rename = "ipNetworks",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ip_networks: Vec<Cidr>,
    /// 1:1 NAT mappings.
    #[serde(
        rename = "ipNATs",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ip_nats: Vec<IpNat>,
    /// IPv4 gateway for the workload.
    #[serde(
        rename = "ipv4Gateway",
        default,
        with = "opt_ip",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_gateway: Option<IpAddr>,
    /// IPv6 gateway for the workload.
    #[serde(
        rename = "ipv6Gateway",
        default,
        with = "opt_ip",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_gateway: Option<IpAddr>,
    /// Profiles applied after policy, in order.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub profiles: Vec<String>,
    /// Host-side interface name.
    #[serde(
        rename = "interfaceName",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub interface_name: String,
    /// MAC address of the workload's interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
}

/// A 1:1 NAT mapping from an external address to one of the endpoint's addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpNat {
    /// The endpoint's own address.
    #[serde(rename = "internalIP", with = "ip")]
    pub internal_ip: IpAddr,
    /// The address mapped to it.
    #[serde(rename = "externalIP", with = "ip")]
    pub external_ip: IpAddr,
}
