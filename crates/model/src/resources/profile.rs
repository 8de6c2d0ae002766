//! `profile` (`lib/api/profile.go`): tags, labels and rules applied to the endpoints that
//! reference the profile.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::rule::Rule;
use crate::serde_util::nullable;

/// A security profile.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    /// Identity, tags and labels.
    pub metadata: ProfileMetadata,
    /// Rules.
    pub spec: ProfileSpec,
}

/// Profile metadata.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileMetadata {
    /// Profile name.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// Tags given to every endpoint using this profile.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tags: Vec<String>,
    /// Labels given to every endpoint using this profile.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
}

/// Profile rules.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
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
}
