//! The seven v1 resource kinds and the [`Resource`] enum over them.
//!
//! Every resource is `{apiVersion: v1, kind, metadata, spec}`; the typed structs hold
//! `metadata` and `spec`, and [`Resource`] adds the envelope when serialized.

mod bgp_peer;
mod host_endpoint;
mod ip_pool;
mod node;
mod policy;
mod profile;
mod workload_endpoint;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

pub use bgp_peer::{BgpPeer, BgpPeerMetadata, BgpPeerSpec};
pub use host_endpoint::{HostEndpoint, HostEndpointMetadata, HostEndpointSpec};
pub use ip_pool::{IpPool, IpPoolMetadata, IpPoolSpec, IpipConfiguration};
pub use node::{Node, NodeBgpSpec, NodeMetadata, NodeSpec, OrchRef};
pub use policy::{Policy, PolicyMetadata, PolicySpec};
pub use profile::{Profile, ProfileMetadata, ProfileSpec};
pub use workload_endpoint::{
    IpNat, WorkloadEndpoint, WorkloadEndpointMetadata, WorkloadEndpointSpec,
};

use crate::kind::Kind;

/// The `apiVersion` of every resource this crate handles.
pub const API_VERSION: &str = "v1";

/// A resource of any kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Resource {
    /// A `node`.
    Node(Node),
    /// A `bgpPeer`.
    BgpPeer(BgpPeer),
    /// A `hostEndpoint`.
    HostEndpoint(HostEndpoint),
    /// A `workloadEndpoint`.
    WorkloadEndpoint(WorkloadEndpoint),
    /// An `ipPool`.
    IpPool(IpPool),
    /// A `policy`.
    Policy(Policy),
    /// A `profile`.
    Profile(Profile),
}

impl Resource {
    /// The resource's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Resource::Node(_) => Kind::Node,
            Resource::BgpPeer(_) => Kind::BgpPeer,
            Resource::HostEndpoint(_) => Kind::HostEndpoint,
            Resource::WorkloadEndpoint(_) => Kind::WorkloadEndpoint,
            Resource::IpPool(_) => Kind::IpPool,
            Resource::Policy(_) => Kind::Policy,
            Resource::Profile(_) => Kind::Profile,
        }
    }

    /// A short human name: the name, the pool CIDR or the peer IP (empty when missing).
    pub(crate) fn display_name(&self) -> String {
        let name = match self {
            Resource::Node(r) => &r.metadata.name,
            Resource::HostEndpoint(r) => &r.metadata.name,
            Resource::WorkloadEndpoint(r) => &r.metadata.name,
            Resource::Policy(r) => &r.metadata.name,
            Resource::Profile(r) => &r.metadata.name,
            Resource::IpPool(r) => {
                return r.metadata.cidr.map(|c| c.to_string()).unwrap_or_default()
            }
            Resource::BgpPeer(r) => {
                return r
                    .metadata
                    .peer_ip
                    .map(|ip| ip.to_string())
                    .unwrap_or_default()
            }
        };
        name.clone()
    }
}

impl Serialize for Resource {
    /// Writes `kind`, `apiVersion`, `metadata`, `spec` (Calico's JSON field order).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        fn envelope<S: Serializer, M: Serialize, P: Serialize>(
            serializer: S,
            kind: Kind,
            metadata: &M,
            spec: &P,
        ) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(Some(4))?;
            map.serialize_entry("kind", kind.name())?;
            map.serialize_entry("apiVersion", API_VERSION)?;
            map.serialize_entry("metadata", metadata)?;
            map.serialize_entry("spec", spec)?;
            map.end()
        }
        let kind = self.kind();
        match self {
            Resource::Node(r) => envelope(serializer, kind, &r.metadata, &r.spec),
            Resource::BgpPeer(r) => envelope(serializer, kind, &r.metadata, &r.spec),
            Resource::HostEndpoint(r) => envelope(serializer, kind, &r.metadata, &r.spec),
            Resource::WorkloadEndpoint(r) => envelope(serializer, kind, &r.metadata, &r.spec),
            Resource::IpPool(r) => envelope(serializer, kind, &r.metadata, &r.spec),
            Resource::Policy(r) => envelope(serializer, kind, &r.metadata, &r.spec),
            Resource::Profile(r) => envelope(serializer, kind, &r.metadata, &r.spec),
        }
    }
}

macro_rules! from_kind {
    ($($variant:ident),*) => {$(
        impl From<$variant> for Resource {
            fn from(resource: $variant) -> Self {
                Resource::$variant(resource)
            }
        }
    )*};
}

from_kind!(
    Node,
    BgpPeer,
    HostEndpoint,
    WorkloadEndpoint,
    IpPool,
    Policy,
    Profile
);
