//! Resource identities, printed like Calico's backend keys (`lib/backend/model/*.go`), which
//! is how calicoctl names resources in errors (`resource does not exist: Profile(name=x)`).

use std::fmt;
use std::net::IpAddr;

use crate::kind::Kind;
use crate::resources::Resource;
use crate::values::Cidr;

/// Identifies one resource.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ResourceKey {
    /// `Node(name=n)`
    Node {
        /// Node name.
        name: String,
    },
    /// `BGPPeer(global, ip=1.2.3.4)`
    GlobalBgpPeer {
        /// Peer address.
        ip: IpAddr,
    },
    /// `BGPPeer(node=n, ip=1.2.3.4)`
    NodeBgpPeer {
        /// Peering node.
        node: String,
        /// Peer address.
        ip: IpAddr,
    },
    /// `HostEndpoint(node=h, name=n)`
    HostEndpoint {
        /// Node name.
        node: String,
        /// Endpoint name.
        name: String,
    },
    /// `WorkloadEndpoint(node=h, orchestrator=o, workload=w, name=n)`
    WorkloadEndpoint {
        /// Node name.
        node: String,
        /// Orchestrator.
        orchestrator: String,
        /// Workload.
        workload: String,
        /// Endpoint name.
        name: String,
    },
    /// `IPPool(cidr=192.168.0.0/16)`
    IpPool {
        /// Pool range.
        cidr: Cidr,
    },
    /// `Policy(name=p)`
    Policy {
        /// Policy name.
        name: String,
    },
    /// `Profile(name=p)`
    Profile {
        /// Profile name.
        name: String,
    },
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceKey::Node { name } => write!(f, "Node(name={name})"),
            ResourceKey::GlobalBgpPeer { ip } => write!(f, "BGPPeer(global, ip={ip})"),
            ResourceKey::NodeBgpPeer { node, ip } => write!(f, "BGPPeer(node={node}, ip={ip})"),
            ResourceKey::HostEndpoint { node, name } => {
                write!(f, "HostEndpoint(node={node}, name={name})")
            }
            ResourceKey::WorkloadEndpoint {
                node,
                orchestrator,
                workload,
                name,
            } => write!(
                f,
                "WorkloadEndpoint(node={node}, orchestrator={orchestrator}, workload={workload}, name={name})"
            ),
            ResourceKey::IpPool { cidr } => write!(f, "IPPool(cidr={cidr})"),
            ResourceKey::Policy { name } => write!(f, "Policy(name={name})"),
            ResourceKey::Profile { name } => write!(f, "Profile(name={name})"),
        }
    }
}

impl ResourceKey {
    /// The kind of resource this key identifies.
    pub fn kind(&self) -> Kind {
        match self {
            ResourceKey::Node { .. } => Kind::Node,
            ResourceKey::GlobalBgpPeer { .. } | ResourceKey::NodeBgpPeer { .. } => Kind::BgpPeer,
            ResourceKey::HostEndpoint { .. } => Kind::HostEndpoint,
            ResourceKey::WorkloadEndpoint { .. } => Kind::WorkloadEndpoint,
            ResourceKey::IpPool { .. } => Kind::IpPool,
            ResourceKey::Policy { .. } => Kind::Policy,
            ResourceKey::Profile { .. } => Kind::Profile,
        }
    }
}

/// A resource lacks a field that is part of its identity.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("insufficient identifiers, missing '{0}'")]
pub struct InsufficientIdentifiers(pub &'static str);

impl Resource {
    /// The resource's identity, or the first identifying field that is empty.
    pub fn key(&self) -> Result<ResourceKey, InsufficientIdentifiers> {
        let required = |value: &str, field: &'static str| {
            if value.is_empty() {
                Err(InsufficientIdentifiers(field))
            } else {
                Ok(value.to_owned())
            }
        };
        Ok(match self {
            Resource::Node(r) => ResourceKey::Node {
                name: required(&r.metadata.name, "name")?,
            },
            Resource::BgpPeer(r) => {
                let ip = r
                    .metadata
                    .peer_ip
                    .ok_or(InsufficientIdentifiers("peerIP"))?;
                match r.metadata.scope.as_str() {
                    "global" => ResourceKey::GlobalBgpPeer { ip },
                    "node" => ResourceKey::NodeBgpPeer {
                        node: required(&r.metadata.node, "node")?,
                        ip,
                    },
                    _ => return Err(InsufficientIdentifiers("scope")),
                }
            }
            Resource::HostEndpoint(r) => ResourceKey::HostEndpoint {
                node: required(&r.metadata.node, "node")?,
                name: required(&r.metadata.name, "name")?,
            },
            Resource::WorkloadEndpoint(r) => ResourceKey::WorkloadEndpoint {
                node: required(&r.metadata.node, "node")?,
                orchestrator: required(&r.metadata.orchestrator, "orchestrator")?,
                workload: required(&r.metadata.workload, "workload")?,
                name: required(&r.metadata.name, "name")?,
            },
            Resource::IpPool(r) => ResourceKey::IpPool {
                cidr: r.metadata.cidr.ok_or(InsufficientIdentifiers("cidr"))?,
            },
            Resource::Policy(r) => ResourceKey::Policy {
                name: required(&r.metadata.name, "name")?,
            },
            Resource::Profile(r) => ResourceKey::Profile {
                name: required(&r.metadata.name, "name")?,
            },
        })
    }
}
