//! The datastore ("backend") form of a rule (`lib/backend/model/rule.go`), as stored in the
//! `inbound_rules` / `outbound_rules` lists of a profile or policy, and its conversion to and
//! from the API [`Rule`] (`lib/converter/rule.go`).
//!
//! Unknown keys are ignored when reading, so rules written by other Calico versions load.

use serde::{Deserialize, Serialize};

use crate::rule::{combine_nets, EntityRule, IcmpFields, Rule};
use crate::serde_util::nullable;
use crate::values::{Cidr, Port, Protocol};

/// A rule in the datastore's flat `src_*` / `dst_*` form.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BackendRule {
    /// `allow`, `deny`, `log` or `next-tier`; empty means `allow`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub action: String,
    /// 4 or 6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<i64>,
    /// Positive protocol match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// Negative protocol match.
    #[serde(rename = "!protocol", default, skip_serializing_if = "Option::is_none")]
    pub not_protocol: Option<Protocol>,
    /// ICMP type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<i64>,
    /// ICMP code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_code: Option<i64>,
    /// Negated ICMP type.
    #[serde(
        rename = "!icmp_type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub not_icmp_type: Option<i64>,
    /// Negated ICMP code.
    #[serde(
        rename = "!icmp_code",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub not_icmp_code: Option<i64>,
    /// Source tag.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub src_tag: String,
    /// Source network (deprecated single form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_net: Option<Cidr>,
    /// Source networks.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub src_nets: Vec<Cidr>,
    /// Source selector.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub src_selector: String,
    /// Source ports.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub src_ports: Vec<Port>,
    /// Destination tag.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub dst_tag: String,
    /// Destination selector.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub dst_selector: String,
    /// Destination network (deprecated single form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_net: Option<Cidr>,
    /// Destination networks.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub dst_nets: Vec<Cidr>,
    /// Destination ports.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub dst_ports: Vec<Port>,
    /// Negated source tag.
    #[serde(
        rename = "!src_tag",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub not_src_tag: String,
    /// Negated source network.
    #[serde(rename = "!src_net", default, skip_serializing_if = "Option::is_none")]
    pub not_src_net: Option<Cidr>,
    /// Negated source networks.
    #[serde(
        rename = "!src_nets",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub not_src_nets: Vec<Cidr>,
    /// Negated source selector.
    #[serde(
        rename = "!src_selector",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub not_src_selector: String,
    /// Negated source ports.
    #[serde(
        rename = "!src_ports",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub not_src_ports: Vec<Port>,
    /// Negated destination tag.
    #[serde(
        rename = "!dst_tag",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub not_dst_tag: String,
    /// Negated destination selector.
    #[serde(
        rename = "!dst_selector",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub not_dst_selector: String,
    /// Negated destination network.
    #[serde(rename = "!dst_net", default, skip_serializing_if = "Option::is_none")]
    pub not_dst_net: Option<Cidr>,
    /// Negated destination networks.
    #[serde(
        rename = "!dst_nets",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub not_dst_nets: Vec<Cidr>,
    /// Negated destination ports.
    #[serde(
        rename = "!dst_ports",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub not_dst_ports: Vec<Port>,
    /// Prefix for `log` actions.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub log_prefix: String,
}

impl From<&Rule> for BackendRule {
    /// API → datastore: `pass` becomes `next-tier`; destination networks are stored as masked
    /// network addresses, source networks as written.
    fn from(rule: &Rule) -> Self {
        let masked = |nets: &[Cidr]| nets.iter().map(Cidr::network).collect();
        let (src, dst) = (&rule.source, &rule.destination);
        BackendRule {
            action: match rule.action.as_str() {
                "pass" => "next-tier".to_owned(),
                other => other.to_owned(),
            },
            ip_version: rule.ip_version,
            protocol: rule.protocol.clone(),
            not_protocol: rule.not_protocol.clone(),
            icmp_type: rule.icmp.and_then(|i| i.icmp_type),
            icmp_code: rule.icmp.and_then(|i| i.code),
            not_icmp_type: rule.not_icmp.and_then(|i| i.icmp_type),
            not_icmp_code: rule.not_icmp.and_then(|i| i.code),
            src_tag: src.tag.clone(),
            src_net: src.net,
            src_nets: src.nets.clone(),
            src_selector: src.selector.clone(),
            src_ports: src.ports.clone(),
            dst_tag: dst.tag.clone(),
            dst_selector: dst.selector.clone(),
            dst_net: dst.net.map(|n| n.network()),
            dst_nets: masked(&dst.nets),
            dst_ports: dst.ports.clone(),
            not_src_tag: src.not_tag.clone(),
            not_src_net: src.not_net,
            not_src_nets: src.not_nets.clone(),
            not_src_selector: src.not_selector.clone(),
            not_src_ports: src.not_ports.clone(),
            not_dst_tag: dst.not_tag.clone(),
            not_dst_selector: dst.not_selector.clone(),
            not_dst_net: dst.not_net.map(|n| n.network()),
            not_dst_nets: masked(&dst.not_nets),
            not_dst_ports: dst.not_ports.clone(),
            log_prefix: String::new(),
        }
    }
}

impl From<&BackendRule> for Rule {
    /// Datastore → API: empty action becomes `allow`, `next-tier` becomes `pass`; the single
    /// and list network fields merge into `nets` / `notNets`; `log_prefix` has no API field.
    fn from(rule: &BackendRule) -> Self {
        let icmp = |icmp_type: Option<i64>, code: Option<i64>| {
            (icmp_type.is_some() || code.is_some()).then_some(IcmpFields { icmp_type, code })
        };
        Rule {
            action: match rule.action.as_str() {
                "" => "allow".to_owned(),
                "next-tier" => "pass".to_owned(),
                other => other.to_owned(),
            },
            ip_version: rule.ip_version,
            protocol: rule.protocol.clone(),
            icmp: icmp(rule.icmp_type, rule.icmp_code),
            not_protocol: rule.not_protocol.clone(),
            not_icmp: icmp(rule.not_icmp_type, rule.not_icmp_code),
            source: EntityRule {
                tag: rule.src_tag.clone(),
                net: None,
                nets: combine_nets(rule.src_net, &rule.src_nets),
                selector: rule.src_selector.clone(),
                ports: rule.src_ports.clone(),
                not_tag: rule.not_src_tag.clone(),
                not_net: None,
                not_nets: combine_nets(rule.not_src_net, &rule.not_src_nets),
                not_selector: rule.not_src_selector.clone(),
                not_ports: rule.not_src_ports.clone(),
            },
            destination: EntityRule {
                tag: rule.dst_tag.clone(),
                net: None,
                nets: combine_nets(rule.dst_net, &rule.dst_nets),
                selector: rule.dst_selector.clone(),
                ports: rule.dst_ports.clone(),
                not_tag: rule.not_dst_tag.clone(),
                not_net: None,
                not_nets: combine_nets(rule.not_dst_net, &rule.not_dst_nets),
                not_selector: rule.not_dst_selector.clone(),
                not_ports: rule.not_dst_ports.clone(),
            },
        }
    }
}
