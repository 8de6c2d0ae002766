//! The Calico resources the driver writes: a network's default profile and a joined
//! endpoint's workload endpoint.

use std::collections::BTreeMap;

use calico_model::endpoint_naming::{
    format_mac, host_interface, DockerId, FALLBACK_WORKLOAD, ORCHESTRATOR,
};
use calico_model::{
    Cidr, EntityRule, Profile, ProfileMetadata, ProfileSpec, Resource, Rule, WorkloadEndpoint,
    WorkloadEndpointMetadata, WorkloadEndpointSpec,
};

use super::{DriverConfig, EndpointRecord};
use crate::traits::ContainerRef;

/// Container labels with this prefix become endpoint labels, prefix stripped.
pub(crate) const LABEL_PREFIX: &str = "org.projectcalico.label.";

/// A network's default profile: members may talk to each other, and anywhere outbound.
pub(crate) fn default_profile(network: &str) -> Profile {
    Profile {
        metadata: ProfileMetadata {
            name: network.to_owned(),
            tags: vec![network.to_owned()],
            labels: BTreeMap::new(),
        },
        spec: ProfileSpec {
            ingress: vec![Rule {
                action: "allow".to_owned(),
                source: EntityRule {
                    tag: network.to_owned(),
                    ..EntityRule::default()
                },
                ..Rule::default()
            }],
            egress: vec![Rule {
                action: "allow".to_owned(),
                ..Rule::default()
            }],
        },
    }
}

/// The workload endpoint of a joined endpoint. Parts of `container` Calico would reject
/// (an unusual name, invalid labels) are left out with a warning.
pub(crate) fn workload_endpoint(
    config: &DriverConfig,
    endpoint_id: &DockerId,
    record: &EndpointRecord,
    container: Option<&ContainerRef>,
) -> WorkloadEndpoint {
    let workload = container
        .map(|c| c.name.as_str())
        .filter(|name| {
            let ok = field_ok(probe_workload(name), "metadata.workload");
            if !ok {
                tracing::warn!(container = name, "container name is not a valid Calico workload name; using '{FALLBACK_WORKLOAD}'");
            }
            ok
        })
        .unwrap_or(FALLBACK_WORKLOAD);
    let instance = container
        .map(|c| c.id.as_str())
        .filter(|id| field_ok(probe_instance(id), "metadata.activeInstanceID"))
        .unwrap_or_default();
    let labels = match container {
        Some(c) if config.label_endpoints => endpoint_labels(&c.labels),
        _ => BTreeMap::new(),
    };
    let profiles = match &record.network_name {
        Some(name) if config.create_profiles => vec![name.clone()],
        _ => Vec::new(),
    };
    WorkloadEndpoint {
        metadata: WorkloadEndpointMetadata {
            name: endpoint_id.to_string(),
            workload: workload.to_owned(),
            orchestrator: ORCHESTRATOR.to_owned(),
            node: config.node.clone(),
            active_instance_id: instance.to_owned(),
            labels,
        },
        spec: WorkloadEndpointSpec {
            ip_networks: record.addrs.iter().copied().map(Cidr::new).collect(),
            profiles,
            interface_name: host_interface(endpoint_id),
            mac: format_mac(&record.mac).parse().ok(),
            ..WorkloadEndpointSpec::default()
        },
    }
}

/// The `org.projectcalico.label.*` labels with the prefix stripped, minus those Calico would
/// reject.
fn endpoint_labels(container_labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    container_labels
        .iter()
        .filter_map(|(key, value)| Some((key.strip_prefix(LABEL_PREFIX)?, value)))
        .filter(|(key, value)| {
            let probe = WorkloadEndpoint {
                metadata: WorkloadEndpointMetadata {
                    labels: BTreeMap::from([(key.to_string(), value.to_string())]),
                    ..WorkloadEndpointMetadata::default()
                },
                ..WorkloadEndpoint::default()
            };
            let ok = field_ok(probe, "metadata.labels");
            if !ok {
                tracing::warn!(label = key, value = value.as_str(), "container label is not a valid Calico label; not copied to the workload endpoint");
            }
            ok
        })
        .map(|(key, value)| (key.to_owned(), value.clone()))
        .collect()
}

fn probe_workload(name: &str) -> WorkloadEndpoint {
    let mut probe = WorkloadEndpoint::default();
    probe.metadata.workload = name.to_owned();
    probe
}

fn probe_instance(id: &str) -> WorkloadEndpoint {
    let mut probe = WorkloadEndpoint::default();
    probe.metadata.active_instance_id = id.to_owned();
    probe
}

/// Whether Calico's validation finds nothing wrong at or under `path` of `probe`.
fn field_ok(probe: WorkloadEndpoint, path: &str) -> bool {
    match Resource::WorkloadEndpoint(probe).validate() {
        Ok(()) => true,
        Err(errors) => !errors.errors().iter().any(|e| e.path.starts_with(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> DockerId {
        DockerId::new(s).expect("valid id")
    }

    fn record(network_name: Option<&str>) -> EndpointRecord {
        EndpointRecord {
            network_id: id("net"),
            network_name: network_name.map(str::to_owned),
            addrs: vec!["192.168.1.1/32".parse().expect("net")],
            mac: [0xee; 6],
        }
    }

    #[test]
    fn default_profile_is_calicos() {
        let yaml = calico_model::codec::to_yaml(&[Resource::Profile(default_profile("net1"))]);
        assert_eq!(
            yaml,
            // As `calicoctl get profile net1 -o yaml` shows the Go plugin's profile.
            "- apiVersion: v1\n  kind: profile\n  metadata:\n    name: net1\n    tags:\n    - net1\n  spec:\n    egress:\n    - action: allow\n    ingress:\n    - action: allow\n      source:\n        tag: net1\n"
        );
    }

    #[test]
    fn endpoint_takes_container_name_id_and_network_profile() {
        let container = ContainerRef {
            id: "8f1c0b0b1e3a".into(),
            name: "workload-A".into(),
            labels: BTreeMap::from([("org.projectcalico.label.role".into(), "db".into())]),
        };
        let config = DriverConfig::new("host1");
        let wep = workload_endpoint(
            &config,
            &id("0a930a258ae7"),
            &record(Some("net1")),
            Some(&container),
        );
        assert_eq!(wep.metadata.workload, "workload-A");
        assert_eq!(wep.metadata.active_instance_id, "8f1c0b0b1e3a");
        assert_eq!(wep.metadata.orchestrator, "libnetwork");
        assert_eq!(wep.metadata.node, "host1");
        assert!(
            wep.metadata.labels.is_empty(),
            "labels only with label_endpoints"
        );
        assert_eq!(wep.spec.profiles, vec!["net1".to_owned()]);
        assert_eq!(wep.spec.interface_name, "cali0a930a258ae");
        assert_eq!(
            wep.spec.mac.as_ref().expect("mac").to_string(),
            "ee:ee:ee:ee:ee:ee"
        );
        assert!(Resource::WorkloadEndpoint(wep).validate().is_ok());
    }

    #[test]
    fn unusable_container_details_fall_back() {
        let container = ContainerRef {
            id: "not/an/id".into(),
            name: "x".repeat(200),
            labels: BTreeMap::from([
                ("org.projectcalico.label.role".into(), "db".into()),
                ("org.projectcalico.label.bad key".into(), "v".into()),
                ("org.projectcalico.label.tier".into(), "-bad value-".into()),
                ("unrelated".into(), "x".into()),
            ]),
        };
        let mut config = DriverConfig::new("host1");
        config.label_endpoints = true;
        let wep = workload_endpoint(&config, &id("ep1"), &record(Some("net1")), Some(&container));
        assert_eq!(wep.metadata.workload, FALLBACK_WORKLOAD);
        assert_eq!(wep.metadata.active_instance_id, "");
        assert_eq!(
            wep.metadata.labels,
            BTreeMap::from([("role".to_owned(), "db".to_owned())])
        );
        assert!(Resource::WorkloadEndpoint(wep).validate().is_ok());

        let wep = workload_endpoint(&config, &id("ep1"), &record(None), None);
        assert_eq!(wep.metadata.workload, FALLBACK_WORKLOAD);
        assert!(wep.spec.profiles.is_empty());
    }
}
