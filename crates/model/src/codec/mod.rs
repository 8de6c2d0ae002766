//! Reading and writing resource files the way calicoctl does.

mod decode;
mod json;
mod yaml;

pub use decode::{decode, from_json, DecodeError, InvalidResource};

use crate::resources::Resource;

/// Prints resources as a YAML list, like `calicoctl get -o yaml`: keys sorted at every level,
/// sequences not indented under their key, strings quoted only when needed.
pub fn to_yaml(resources: &[Resource]) -> String {
    yaml::emit(&to_value(resources))
}

/// Prints resources as a JSON list indented by two spaces, like `calicoctl get -o json`
/// (fields in Calico's order: `kind`, `apiVersion`, `metadata`, `spec`).
pub fn to_json(resources: &[Resource]) -> String {
    let mut out = json::pretty(resources);
    out.push('\n');
    out
}

fn to_value(resources: &[Resource]) -> serde_json::Value {
    // As above, this conversion cannot fail for resource types.
    serde_json::to_value(resources).unwrap_or_default()
}
