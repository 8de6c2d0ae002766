//! Where each resource lives in the key space: one key per resource, one prefix per kind.
//!
//! ```text
//! /calico/resources/v1/profile/<name>
//! /calico/resources/v1/policy/<name>
//! /calico/resources/v1/ippool/<cidr, "/" written as "-">
//! /calico/resources/v1/node/<name>
//! /calico/resources/v1/bgppeer/global/<ip>
//! /calico/resources/v1/bgppeer/node/<node>/<ip>
//! /calico/resources/v1/hostendpoint/<node>/<name>
//! /calico/resources/v1/workloadendpoint/<node>/<orchestrator>/<workload>/<name>
//! ```
//!
//! Cluster-wide settings live beside them under `/calico/v1/config/` and `/calico/bgp/v1/global/`;
//! IPAM under [`IPAM_PREFIX`] (laid out by `calico_ipam`'s keys module); the Docker networks
//! calico-node shares between hosts under [`DOCKER_NETWORKS_PREFIX`] and [`DOCKER_HOSTS_PREFIX`].
//! This module is the map of the whole key space: a new root is added here.
//!
//! Path segments escape `%` as `%25` and `/` as `%2f`, as Calico does, so any name is one segment.

use calico_model::{Kind, ResourceKey};

/// The cluster's Calico version, written by calico-node (shown by `calicoctl version`).
pub const CLUSTER_VERSION: &str = "/calico/v1/config/CalicoVersion";

/// The cluster type, written by calico-node (shown by `calicoctl version`).
pub const CLUSTER_TYPE: &str = "/calico/v1/config/ClusterType";

/// Cluster-wide BGP settings ([`GLOBAL_AS_NUMBER`], [`NODE_MESH`]).
pub const BGP_GLOBAL_PREFIX: &str = "/calico/bgp/v1/global/";

/// The global default BGP AS number, a decimal string.
pub const GLOBAL_AS_NUMBER: &str = "/calico/bgp/v1/global/as_num";

/// Whether the node-to-node mesh is on: `{"enabled": true}` or `{"enabled": false}`; absent
/// means on. Written by `calicoctl config set nodeToNodeMesh on|off`.
pub const NODE_MESH: &str = "/calico/bgp/v1/global/node_mesh";

/// The root of Calico IPAM's blocks and affinities.
pub const IPAM_PREFIX: &str = "/calico/ipam/v2/";

/// Each Calico Docker network, `<prefix><name>`, so that every host can create it.
pub const DOCKER_NETWORKS_PREFIX: &str = "/calico/docker/v1/network/";

/// The networks each host has had, `<prefix><node>/network/<name>`.
pub const DOCKER_HOSTS_PREFIX: &str = "/calico/docker/v1/host/";

/// The root of every resource key.
pub const RESOURCES_PREFIX: &str = "/calico/resources/v1/";

/// The prefix under which every resource of `kind` is stored.
pub fn kind_prefix(kind: Kind) -> String {
    format!("{RESOURCES_PREFIX}{}/", segment_of(kind))
}

/// The key of one resource.
pub fn key_path(key: &ResourceKey) -> String {
    let rest = match key {
        ResourceKey::Profile { name }
        | ResourceKey::Policy { name }
        | ResourceKey::Node { name } => escape(name),
        ResourceKey::IpPool { cidr } => cidr.to_string().replacen('/', "-", 1),
        ResourceKey::GlobalBgpPeer { ip } => format!("global/{ip}"),
        ResourceKey::NodeBgpPeer { node, ip } => format!("node/{}/{ip}", escape(node)),
        ResourceKey::HostEndpoint { node, name } => format!("{}/{}", escape(node), escape(name)),
        ResourceKey::WorkloadEndpoint {
            node,
            orchestrator,
            workload,
            name,
        } => format!(
            "{}/{}/{}/{}",
            escape(node),
            escape(orchestrator),
            escape(workload),
            escape(name)
        ),
    };
    format!("{}{rest}", kind_prefix(key.kind()))
}

/// The kind whose prefix `path` lies under, if any.
pub fn kind_of_path(path: &str) -> Option<Kind> {
    let rest = path.strip_prefix(RESOURCES_PREFIX)?;
    let segment = rest.split('/').next()?;
    Kind::ALL.into_iter().find(|k| segment_of(*k) == segment)
}

fn segment_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Node => "node",
        Kind::BgpPeer => "bgppeer",
        Kind::HostEndpoint => "hostendpoint",
        Kind::WorkloadEndpoint => "workloadendpoint",
        Kind::IpPool => "ippool",
        Kind::Policy => "policy",
        Kind::Profile => "profile",
    }
}

/// Makes any name a single path segment.
pub fn escape(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2f")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_prefix() {
        let wep = ResourceKey::WorkloadEndpoint {
            node: "calico-01".into(),
            orchestrator: "libnetwork".into(),
            workload: "libnetwork".into(),
            name: "0a93".into(),
        };
        let path = key_path(&wep);
        assert_eq!(
            path,
            "/calico/resources/v1/workloadendpoint/calico-01/libnetwork/libnetwork/0a93"
        );
        assert_eq!(kind_of_path(&path), Some(Kind::WorkloadEndpoint));
        let pool = ResourceKey::IpPool {
            cidr: "192.168.0.0/16".parse().unwrap(),
        };
        assert_eq!(
            key_path(&pool),
            "/calico/resources/v1/ippool/192.168.0.0-16"
        );
        assert_eq!(kind_of_path("/calico/ipam/v2/block/x"), None);
    }

    #[test]
    fn the_roots_are_disjoint_and_settings_sit_under_theirs() {
        let roots = [
            "/calico/v1/config/",
            BGP_GLOBAL_PREFIX,
            RESOURCES_PREFIX,
            IPAM_PREFIX,
            DOCKER_NETWORKS_PREFIX,
            DOCKER_HOSTS_PREFIX,
        ];
        for a in roots {
            for b in roots {
                assert!(a == b || !a.starts_with(b), "{a} is under {b}");
            }
        }
        assert!(CLUSTER_VERSION.starts_with(roots[0]) && CLUSTER_TYPE.starts_with(roots[0]));
        assert!(GLOBAL_AS_NUMBER.starts_with(BGP_GLOBAL_PREFIX));
        assert!(NODE_MESH.starts_with(BGP_GLOBAL_PREFIX));
    }

    #[test]
    fn names_are_escaped_into_one_segment() {
        let key = ResourceKey::Profile {
            name: "a/b%c".into(),
        };
        assert_eq!(key_path(&key), "/calico/resources/v1/profile/a%2fb%25c");
    }
}
