//! BGP routing between Calico nodes with BIRD 2.
//!
//! Each node announces the `/26` address blocks it owns (and the addresses it borrowed from
//! other nodes' blocks) to its BGP peers, and installs the routes its peers announce in the
//! kernel. The pieces, from datastore to `calicoctl node status`:
//!
//! - [`inputs::read_inputs`] reads everything that shapes this node's routing from the datastore
//!   into a [`BirdInputs`], and the pools with `ipip` enabled;
//! - [`bird_conf::render`] turns it into a BIRD 2 configuration file (pure);
//! - [`bird::Bird`] runs and supervises BIRD, reloads it when the configuration text changes and
//!   reads its BGP sessions;
//! - [`status::render_node_status`] prints those sessions as `calicoctl node status` does;
//! - [`ipip`] says that pools with `ipip` enabled are routed without encapsulation.
//!
//! See docs/routing.md.

#![warn(missing_docs)]

pub mod bird;
pub mod bird_conf;
pub mod inputs;
pub mod ipip;
pub mod pool_overlap;
pub mod status;

use std::fmt;

use calico_ipam::IpamError;
use calico_store::resources::ResourceError;
use calico_store::StoreError;

pub use bird::Bird;
pub use bird_conf::{render, BirdInputs, MeshPeer, Peer};
pub use inputs::{read_inputs, Inputs};
pub use status::{render_node_status, PeerStatus};

/// Why a routing operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading resources failed.
    #[error(transparent)]
    Resource(#[from] ResourceError),
    /// Reading a datastore key failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading this node's blocks failed.
    #[error(transparent)]
    Ipam(#[from] IpamError),
    /// A file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// BIRD refused a configuration (`bird -p` or `birdc configure`); the text is BIRD's message.
    #[error("BIRD rejected the configuration: {0}")]
    Config(String),
    /// BIRD or its control socket did not answer as expected.
    #[error("BIRD: {0}")]
    Bird(String),
}

/// Result of every routing operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kind of a BGP peer, as Calico names its BIRD protocols and `calicoctl node status` shows
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerType {
    /// Another Calico node, peered because the node-to-node mesh is on (`Mesh_<ip>`).
    Mesh,
    /// A `bgpPeer` of scope `global`: a peer of every node (`Global_<ip>`).
    Global,
    /// A `bgpPeer` of scope `node` for this node (`Node_<ip>`).
    Node,
}

impl PeerType {
    const ALL: [PeerType; 3] = [PeerType::Mesh, PeerType::Global, PeerType::Node];

    /// The BIRD protocol name of a peer of this type: `Mesh_10_10_0_12` for `10.10.0.12`.
    pub fn protocol_name(self, ip: std::net::Ipv4Addr) -> String {
        let [a, b, c, d] = ip.octets();
        format!("{}_{a}_{b}_{c}_{d}", self.prefix())
    }

    /// The peer type and address a protocol name stands for, if it is one of Calico's.
    pub fn parse_protocol_name(name: &str) -> Option<(PeerType, std::net::Ipv4Addr)> {
        PeerType::ALL.into_iter().find_map(|t| {
            let rest = name.strip_prefix(t.prefix())?.strip_prefix('_')?;
            if !rest.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
                return None;
            }
            let ip = rest.replace('_', ".").parse().ok()?;
            Some((t, ip))
        })
    }

    fn prefix(self) -> &'static str {
        match self {
            PeerType::Mesh => "Mesh",
            PeerType::Global => "Global",
            PeerType::Node => "Node",
        }
    }
}

/// The label `calicoctl node status` shows: `node-to-node mesh`, `global` or `node specific`.
impl fmt::Display for PeerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PeerType::Mesh => "node-to-node mesh",
            PeerType::Global => "global",
            PeerType::Node => "node specific",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_round_trip() {
        let ip = "10.10.0.12".parse().unwrap();
        for t in PeerType::ALL {
            let name = t.protocol_name(ip);
            assert_eq!(PeerType::parse_protocol_name(&name), Some((t, ip)));
        }
        assert_eq!(PeerType::Mesh.protocol_name(ip), "Mesh_10_10_0_12");
        assert_eq!(PeerType::Global.protocol_name(ip), "Global_10_10_0_12");
        assert_eq!(PeerType::Node.protocol_name(ip), "Node_10_10_0_12");
    }

    #[test]
    fn other_names_are_not_peers() {
        for name in [
            "kernel1",
            "Mesh",
            "Mesh_",
            "Mesh_10_10_0",
            "Mesh_10_10_0_256",
            "Meshy_10_10_0_12",
            "Peer_10_10_0_12",
            "Mesh_fd80__2",
            "Mesh_10.10.0.12",
        ] {
            assert_eq!(PeerType::parse_protocol_name(name), None, "{name}");
        }
    }
}
