//! `hostEndpoint` (`lib/api/hostendpoint.go`): a host interface that policy applies to.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::serde_util::{ip_list, nullable};

/// A host endpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostEndpoint {
    /// Identity (node/name) and labels.
    pub metadata: HostEndpointMetadata,
    /// Interface, addresses and profiles.
    pub spec: HostEndpointSpec,
}

/// Host endpoint metadata.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostEndpointMetadata {
    /// Endpoint name.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// Name of the node the interface belongs to.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub node: String,
    /// Endpoint labels.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
}

/// Host endpoint specification; needs an interface name or expected IPs (or both).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostEndpointSpec {
    /// Interface to police, e.g. `eth0`.
    #[serde(
        rename = "interfaceName",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub interface_name: String,
    /// The interface's addresses (used for selector/tag matching).
    #[serde(
        rename = "expectedIPs",
        default,
        with = "ip_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub expected_ips: Vec<IpAddr>,
    /// Profiles applied after policy, in order.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub profiles: Vec<String>,
}
