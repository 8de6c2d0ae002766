//! `node` (`lib/api/node.go`): a Calico node and its BGP settings.

use serde::{Deserialize, Serialize};

use crate::serde_util::nullable;
use crate::values::{AsNumber, Cidr};

/// A Calico node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node {
    /// Identity.
    pub metadata: NodeMetadata,
    /// BGP settings and orchestrator references.
    pub spec: NodeSpec,
}

/// Node metadata.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeMetadata {
    /// Node name (usually the hostname).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
}

/// Node specification.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// BGP settings; absent means policy-only mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<NodeBgpSpec>,
    /// The node's names in other orchestrators.
    #[serde(
        rename = "orchRefs",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub orch_refs: Vec<OrchRef>,
}

/// A node's BGP settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeBgpSpec {
    /// AS number; absent means the global default.
    #[serde(rename = "asNumber", default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<AsNumber>,
    /// IPv4 address and subnet, e.g. `10.0.0.1/24`.
    #[serde(
        rename = "ipv4Address",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_address: Option<Cidr>,
    /// IPv6 address and subnet.
    #[serde(
        rename = "ipv6Address",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_address: Option<Cidr>,
}

/// The node's name in an orchestrator.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrchRef {
    /// Name of the node in that orchestrator.
    #[serde(
        rename = "nodeName",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub node_name: String,
    /// The orchestrator.
    #[serde(default, deserialize_with = "nullable")]
    pub orchestrator: String,
}
