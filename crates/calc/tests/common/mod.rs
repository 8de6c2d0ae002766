//! Builders shared by the integration tests.

#![allow(dead_code)]

use std::collections::BTreeMap;

use calico_model::{
    Policy, PolicyMetadata, PolicySpec, Profile, ProfileMetadata, ProfileSpec, Resource,
    ResourceKey, Rule, WorkloadEndpoint, WorkloadEndpointMetadata, WorkloadEndpointSpec,
};

/// This host.
pub const NODE: &str = "host1";
/// Another host.
pub const REMOTE: &str = "host2";

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// The IP set ID of a selector.
pub fn uid(selector: &str) -> String {
    calico_selector::parse(selector).unwrap().uid().to_owned()
}

/// A workload endpoint; its workload and orchestrator are fixed.
pub fn endpoint(
    node: &str,
    name: &str,
    interface: &str,
    ips: &[&str],
    own: &[(&str, &str)],
    profiles: &[&str],
) -> Resource {
    Resource::WorkloadEndpoint(WorkloadEndpoint {
        metadata: WorkloadEndpointMetadata {
            name: name.to_owned(),
            workload: "w".to_owned(),
            orchestrator: "libnetwork".to_owned(),
            node: node.to_owned(),
            labels: labels(own),
            ..WorkloadEndpointMetadata::default()
        },
        spec: WorkloadEndpointSpec {
            ip_networks: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
            profiles: strings(profiles),
            interface_name: interface.to_owned(),
            ..WorkloadEndpointSpec::default()
        },
    })
}

pub fn endpoint_key(node: &str, name: &str) -> ResourceKey {
    ResourceKey::WorkloadEndpoint {
        node: node.to_owned(),
        orchestrator: "libnetwork".to_owned(),
        workload: "w".to_owned(),
        name: name.to_owned(),
    }
}

pub fn policy(
    name: &str,
    selector: &str,
    order: Option<f64>,
    types: &[&str],
    ingress: Vec<Rule>,
    egress: Vec<Rule>,
) -> Resource {
    Resource::Policy(Policy {
        metadata: PolicyMetadata {
            name: name.to_owned(),
            ..PolicyMetadata::default()
        },
        spec: PolicySpec {
            order,
            ingress,
            egress,
            selector: selector.to_owned(),
            types: strings(types),
            ..PolicySpec::default()
        },
    })
}

pub fn policy_key(name: &str) -> ResourceKey {
    ResourceKey::Policy {
        name: name.to_owned(),
    }
}

pub fn profile(
    name: &str,
    own: &[(&str, &str)],
    tags: &[&str],
    ingress: Vec<Rule>,
    egress: Vec<Rule>,
) -> Resource {
    Resource::Profile(Profile {
        metadata: ProfileMetadata {
            name: name.to_owned(),
            tags: strings(tags),
            labels: labels(own),
        },
        spec: ProfileSpec { ingress, egress },
    })
}

pub fn profile_key(name: &str) -> ResourceKey {
    ResourceKey::Profile {
        name: name.to_owned(),
    }
}

pub fn action(action: &str) -> Rule {
    Rule {
        action: action.to_owned(),
        ..Rule::default()
    }
}

/// `allow` from endpoints matching `selector`.
pub fn allow_from(selector: &str) -> Rule {
    let mut rule = action("allow");
    rule.source.selector = selector.to_owned();
    rule
}

/// `allow` from endpoints carrying `tag`.
pub fn allow_from_tag(tag: &str) -> Rule {
    let mut rule = action("allow");
    rule.source.tag = tag.to_owned();
    rule
}

/// A host endpoint: `interface` (may be empty), its expected IPs, labels and profiles.
pub fn host_endpoint(
    node: &str,
    name: &str,
    interface: &str,
    expected: &[&str],
    own: &[(&str, &str)],
    profiles: &[&str],
) -> Resource {
    Resource::HostEndpoint(calico_model::HostEndpoint {
        metadata: calico_model::HostEndpointMetadata {
            name: name.to_owned(),
            node: node.to_owned(),
            labels: labels(own),
        },
        spec: calico_model::HostEndpointSpec {
            interface_name: interface.to_owned(),
            expected_ips: expected.iter().map(|ip| ip.parse().unwrap()).collect(),
            profiles: strings(profiles),
        },
    })
}

pub fn host_endpoint_key(node: &str, name: &str) -> ResourceKey {
    ResourceKey::HostEndpoint {
        node: node.to_owned(),
        name: name.to_owned(),
    }
}
