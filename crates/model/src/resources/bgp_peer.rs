//! `bgpPeer` (`lib/api/bgppeer.go`): a BGP peer of every node (scope `global`) or of one node
//! (scope `node`).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::serde_util::{nullable, opt_ip};
use crate::values::AsNumber;

/// A BGP peer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BgpPeer {
    /// Identity: scope, node and peer address.
    pub metadata: BgpPeerMetadata,
    /// AS number.
    pub spec: BgpPeerSpec,
}

/// BGP peer metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpPeerMetadata {
    /// `global` or `node`.
    #[serde(default, deserialize_with = "nullable")]
    pub scope: String,
    /// The peering node; only (and always) with scope `node`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub node: String,
    /// The peer's address.
    #[serde(
        rename = "peerIP",
        default,
        with = "opt_ip",
        skip_serializing_if = "Option::is_none"
    )]
    pub peer_ip: Option<IpAddr>,
}

/// BGP peer specification.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpPeerSpec {
    /// The peer's AS number.
    #[serde(rename = "asNumber", default, deserialize_with = "nullable")]
    pub as_number: AsNumber,
}
