//! `policy` (`lib/api/policy.go`): ordered, selector-based rules in the implicit `default` tier.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::rule::Rule;
use crate::serde_util::{nullable, order};

/// A selector-based security policy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policy {
    /// Identity and annotations.
    pub metadata: PolicyMetadata,
    /// Selector, order and rules.
    pub spec: PolicySpec,
}

/// Policy metadata.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyMetadata {
    /// Policy name.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// Free-form information for clients (not validated).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
}

/// Policy specification.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Lower orders apply first; no order means last.
    #[serde(
        default,
        serialize_with = "order",
        skip_serializing_if = "Option::is_none"
    )]
    pub order: Option<f64>,
    /// Ingress rules, in order.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ingress: Vec<Rule>,
    /// Egress rules, in order.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub egress: Vec<Rule>,
    /// Endpoints the policy applies to; empty means `all()`.
    #[serde(default, deserialize_with = "nullable")]
    pub selector: String,
    /// Apply before connection tracking and leave allowed packets untracked.
    #[serde(
        rename = "doNotTrack",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub do_not_track: bool,
    /// Apply before DNAT.
    #[serde(
        rename = "preDNAT",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub pre_dnat: bool,
    /// `ingress` and/or `egress`; see [`PolicySpec::fill_default_types`].
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub types: Vec<String>,
}

impl PolicySpec {
    /// Sets `types` when it is empty, as Calico does on write: `[egress]` when there are only
    /// egress rules, `[ingress, egress]` when there are both, otherwise `[ingress]`.
    pub fn fill_default_types(&mut self) {
        if !self.types.is_empty() {
            return;
        }
        let types: &[&str] = match (self.ingress.is_empty(), self.egress.is_empty()) {
            (true, false) => &["egress"],
            (false, false) => &["ingress", "egress"],
            _ => &["ingress"],
        };
        self.types = types.iter().map(|t| (*t).to_owned()).collect();
    }
}
