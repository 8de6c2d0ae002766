//! `ipPool` (`lib/api/ippool.go`): an address range for Calico IPAM, with IPIP and NAT
//! settings.

use serde::{Deserialize, Serialize};

use crate::serde_util::nullable;
use crate::values::Cidr;

/// An IP pool.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IpPool {
    /// Identity (the CIDR).
    pub metadata: IpPoolMetadata,
    /// IPIP, NAT and enablement.
    pub spec: IpPoolSpec,
}

/// IP pool metadata.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpPoolMetadata {
    /// The pool's range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<Cidr>,
}

/// IP pool specification.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpPoolSpec {
    /// IPIP tunnelling; absent means disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipip: Option<IpipConfiguration>,
    /// Masquerade traffic from the pool to destinations outside all pools.
    #[serde(
        rename = "nat-outgoing",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub nat_outgoing: bool,
    /// Stop IPAM assigning addresses from the pool.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub disabled: bool,
}

/// IPIP settings of a pool.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpipConfiguration {
    /// Tunnel traffic to destinations in the pool.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub enabled: bool,
    /// `always` (default when empty) or `cross-subnet`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub mode: String,
}
