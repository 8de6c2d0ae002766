//! Policy and profile rules (`lib/api/rule.go`): match criteria plus an action.

use serde::{Deserialize, Serialize};

use crate::serde_util::{is_default, nullable};
use crate::values::{Cidr, Port, Protocol};

/// One ingress or egress rule: every criterion present must match for the action to apply.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// `allow`, `deny`, `log` or `pass`.
    #[serde(default, deserialize_with = "nullable")]
    pub action: String,
    /// Restricts the rule to IPv4 (`4`) or IPv6 (`6`) traffic.
    #[serde(rename = "ipVersion", default, skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<i64>,
    /// Positive protocol match; required (tcp or udp) when any ports are given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// ICMP type/code match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpFields>,
    /// Negative protocol match.
    #[serde(
        rename = "notProtocol",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub not_protocol: Option<Protocol>,
    /// Negative ICMP type/code match.
    #[serde(rename = "notICMP", default, skip_serializing_if = "Option::is_none")]
    pub not_icmp: Option<IcmpFields>,
    /// Criteria on the source endpoint and traffic.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_default"
    )]
    pub source: EntityRule,
    /// Criteria on the destination endpoint and traffic.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_default"
    )]
    pub destination: EntityRule,
}

/// An ICMP type and optional code (a code needs a type).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IcmpFields {
    /// ICMP type, 0-254.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<i64>,
    /// ICMP code, 0-255.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
}

/// Match criteria on one end (source or destination) of the traffic; empty fields match all.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityRule {
    /// Endpoints whose profiles carry this tag.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub tag: String,
    /// Deprecated single network; use `nets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<Cidr>,
    /// Addresses in any of these networks.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub nets: Vec<Cidr>,
    /// Endpoints matching this selector expression.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub selector: String,
    /// Ports or port ranges.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<Port>,
    /// Negated `tag`.
    #[serde(
        rename = "notTag",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub not_tag: String,
    /// Deprecated negated single network; use `notNets`.
    #[serde(rename = "notNet", default, skip_serializing_if = "Option::is_none")]
    pub not_net: Option<Cidr>,
    /// Addresses in none of these networks.
    #[serde(
        rename = "notNets",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub not_nets: Vec<Cidr>,
    /// Negated `selector` (also matches non-Calico traffic).
    #[serde(
        rename = "notSelector",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub not_selector: String,
    /// Negated `ports`.
    #[serde(
        rename = "notPorts",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub not_ports: Vec<Port>,
}

impl EntityRule {
    /// `nets` followed by the deprecated `net`, as Calico combines them.
    pub fn all_nets(&self) -> Vec<Cidr> {
        combine_nets(self.net, &self.nets)
    }

    /// `notNets` followed by the deprecated `notNet`.
    pub fn all_not_nets(&self) -> Vec<Cidr> {
        combine_nets(self.not_net, &self.not_nets)
    }
}

pub(crate) fn combine_nets(net: Option<Cidr>, nets: &[Cidr]) -> Vec<Cidr> {
    nets.iter().copied().chain(net).collect()
}
