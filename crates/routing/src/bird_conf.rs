//! This node's BIRD 2 configuration, rendered from [`BirdInputs`] (pure).
//!
//! The rendered file has, in order:
//!
//! - `router id` (this node's IPv4 address), `log stderr` and `timeformat protocol iso short`
//!   (so `show protocols` prints `12:30:01`, or the date for sessions older than 20 hours);
//! - `protocol device`, and `protocol direct` (every interface but `cali*`), which lets a
//!   `multihop` session resolve its next hop;
//! - `protocol kernel`: `learn` (import the routes other programs put in the kernel, such as the
//!   per-workload `/32`s calico-node writes), `scan time 2`, and export to the kernel of the routes
//!   learned over BGP and of this node's block blackholes; `graceful restart on`, so a BIRD
//!   started with `-R` keeps the routes a previous BIRD installed until its sessions are back;
//! - `protocol static calico_blocks`: `route <block> blackhole` for each block this node owns.
//!   The block is announced as one aggregate; locally the workload `/32`s are more specific and
//!   win, and an unassigned address of the block is dropped instead of following the default
//!   route;
//! - `filter calico_export_to_peers`: what peers are told (see [`render`]);
//! - one `protocol bgp` per peer, named as Calico does (`Mesh_10_10_0_12`, `Global_…`,
//!   `Node_…`), with short connect/retry timers and a 6 s hold time so sessions come up within
//!   about a second and a dead peer is noticed within 6 s; `graceful restart on`, so peers keep
//!   this node's routes (for 120 s) while its BIRD restarts.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::PeerType;

/// Name of the static protocol holding this node's block blackholes.
const BLOCKS_PROTOCOL: &str = "calico_blocks";

/// Name of the filter applied to every route sent to a peer.
const EXPORT_FILTER: &str = "calico_export_to_peers";

/// Another Calico node, peered over the node-to-node mesh.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MeshPeer {
    /// The node's name (shown in a comment only).
    pub node: String,
    /// The node's BGP IPv4 address.
    pub ip: Ipv4Addr,
    /// The node's AS number (its own, or the global default).
    pub as_number: u32,
}

/// A peer configured by a `bgpPeer` resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Peer {
    /// The peer's IPv4 address.
    pub ip: Ipv4Addr,
    /// The peer's AS number.
    pub as_number: u32,
}

/// Everything that shapes one node's BIRD configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BirdInputs {
    /// This node's name.
    pub node: String,
    /// This node's BGP address with its subnet (`bgp.ipv4Address`, e.g. `10.10.0.11/24`): the
    /// router id and the local address of every session; peers inside the subnet are reached
    /// `direct`, the others `multihop`.
    pub address: Ipv4Net,
    /// This node's AS number (its own, or the global default).
    pub local_as: u32,
    /// Whether the node-to-node mesh is on; when off, `mesh_peers` is ignored.
    pub mesh: bool,
    /// The other nodes, for the mesh.
    pub mesh_peers: Vec<MeshPeer>,
    /// Peers of every node (`bgpPeer` scope `global`).
    pub global_peers: Vec<Peer>,
    /// Peers of this node only (`bgpPeer` scope `node`).
    pub node_peers: Vec<Peer>,
    /// The blocks this node owns (IPAM affinity).
    pub own_blocks: Vec<Ipv4Net>,
    /// The enabled IPv4 pools.
    pub pools: Vec<Ipv4Net>,
}

impl BirdInputs {
    /// The BIRD router id: this node's address.
    pub fn router_id(&self) -> Ipv4Addr {
        self.address.addr()
    }
}

/// Renders the BIRD 2 configuration for `inputs`; any input gives a file BIRD accepts.
///
/// Peers are told about routes inside the IP pools only: each own block as its `/26`
/// aggregate (never the workload `/32`s inside it), and anything else in a pool as it is, which
/// in practice is the `/32` of an address this node borrowed from another node's block (and,
/// towards eBGP peers, the blocks learned from the other nodes). With no pool, nothing is
/// announced.
///
/// Peers are rendered mesh first (when the mesh is on), then global, then node-specific. A peer
/// at this node's own address, or at an address an earlier peer already has, is left out: BIRD
/// would refuse two protocols of one name, and two sessions to one neighbour fight over its
/// connections. AS 0 is reserved (RFC 7607) and BIRD refuses it: a peer with AS 0 is left out,
/// and a local AS 0 leaves out every session.
pub fn render(inputs: &BirdInputs) -> String {
    let mut out = String::new();
    let blocks = networks(&inputs.own_blocks);
    let pools = networks(&inputs.pools);
    let router_id = inputs.router_id();

    // `{:?}` quotes the name and escapes anything (a newline) that would end the comment.
    line(
        &mut out,
        format_args!(
            "# BIRD 2 configuration of Calico node {:?}, written by calico-node: do not edit.",
            inputs.node
        ),
    );
    line(&mut out, format_args!("router id {router_id};"));
    out.push_str(concat!(
        "log stderr { info, remote, warning, error, auth, fatal, bug };\n",
        "timeformat protocol iso short;\n",
        "\n",
        "protocol device {\n",
        "  scan time 2;\n",
        "}\n",
        "\n",
        "# Connected routes, for the next hops of multihop sessions.\n",
        "protocol direct {\n",
        "  ipv4;\n",
        "  interface -\"cali*\", \"*\";\n",
        "}\n",
        "\n",
        "# Learn the routes of other programs (the workload /32s); install the routes learned over\n",
        "# BGP and this node's block blackholes.\n",
        "protocol kernel {\n",
        "  learn;\n",
        "  scan time 2;\n",
        "  graceful restart on;\n",
        "  ipv4 {\n",
        "    import all;\n",
    ));
    line(
        &mut out,
        format_args!("    export where source = RTS_BGP || proto = \"{BLOCKS_PROTOCOL}\";"),
    );
    out.push_str("  };\n}\n\n# The blocks this node owns.\n");
    line(
        &mut out,
        format_args!("protocol static {BLOCKS_PROTOCOL} {{"),
    );
    out.push_str("  ipv4;\n");
    for block in &blocks {
        line(&mut out, format_args!("  route {block} blackhole;"));
    }
    out.push_str("}\n\n");

    render_export_filter(&mut out, &blocks, &pools);

    let mesh = inputs.mesh_peers.iter().filter(|_| inputs.mesh);
    let peers = mesh
        .map(|p| (PeerType::Mesh, p.ip, p.as_number, Some(p.node.as_str())))
        .chain(
            inputs
                .global_peers
                .iter()
                .map(|p| (PeerType::Global, p.ip, p.as_number, None)),
        )
        .chain(
            inputs
                .node_peers
                .iter()
                .map(|p| (PeerType::Node, p.ip, p.as_number, None)),
        );
    let mut seen = BTreeSet::from([router_id]);
    for (peer_type, ip, as_number, node) in peers {
        if inputs.local_as == 0 || as_number == 0 || !seen.insert(ip) {
            continue;
        }
        out.push('\n');
        match node {
            Some(node) => line(&mut out, format_args!("# {peer_type} peer: node {node:?}")),
            None => line(&mut out, format_args!("# {peer_type} peer")),
        }
        let connected = if inputs.address.contains(&ip) {
            "direct"
        } else {
            "multihop"
        };
        line(
            &mut out,
            format_args!("protocol bgp {} {{", peer_type.protocol_name(ip)),
        );
        line(
            &mut out,
            format_args!("  local {router_id} as {};", inputs.local_as),
        );
        line(&mut out, format_args!("  neighbor {ip} as {as_number};"));
        line(&mut out, format_args!("  {connected};"));
        out.push_str(concat!(
            "  connect delay time 1;\n",
            "  connect retry time 1;\n",
            "  error wait time 1, 10;\n",
            "  hold time 6;\n",
            "  graceful restart on;\n",
            "  ipv4 {\n",
            "    import all;\n",
        ));
        line(&mut out, format_args!("    export filter {EXPORT_FILTER};"));
        out.push_str("    next hop self;\n  };\n}\n");
    }
    out
}

/// The export filter: pools only; own blocks as aggregates only.
fn render_export_filter(out: &mut String, blocks: &[Ipv4Net], pools: &[Ipv4Net]) {
    line(out, format_args!("filter {EXPORT_FILTER} {{"));
    if pools.is_empty() {
        out.push_str("  # No IP pool: nothing to announce.\n  reject;\n}\n");
        return;
    }
    out.push_str("  # Nothing outside the IP pools.\n");
    line(
        out,
        format_args!("  if net !~ {} then reject;", prefix_set(pools, "+")),
    );
    if !blocks.is_empty() {
        out.push_str("  # This node's blocks: the aggregate, never the workload routes inside.\n");
        line(
            out,
            format_args!("  if net ~ {} then accept;", prefix_set(blocks, "")),
        );
        line(
            out,
            format_args!("  if net ~ {} then reject;", prefix_set(blocks, "+")),
        );
    }
    out.push_str(concat!(
        "  # The rest of the pools: addresses borrowed from other nodes' blocks, routes learned\n",
        "  # from peers.\n",
        "  accept;\n",
        "}\n",
    ));
}

/// Appends one line.
fn line(out: &mut String, args: std::fmt::Arguments<'_>) {
    // Writing to a String cannot fail.
    let _ = out.write_fmt(args);
    out.push('\n');
}

/// The networks with host bits cleared (BIRD refuses them otherwise), sorted, without repeats.
fn networks(nets: &[Ipv4Net]) -> Vec<Ipv4Net> {
    let set: BTreeSet<Ipv4Net> = nets.iter().map(Ipv4Net::trunc).collect();
    set.into_iter().collect()
}

/// A BIRD prefix set: `[ 10.0.0.0/26, 10.0.1.0/26 ]`, each prefix followed by `suffix`.
fn prefix_set(nets: &[Ipv4Net], suffix: &str) -> String {
    let items: Vec<String> = nets.iter().map(|n| format!("{n}{suffix}")).collect();
    format!("[ {} ]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn two_hosts() -> BirdInputs {
        BirdInputs {
            node: "calico-01".into(),
            address: net("10.10.0.11/24"),
            local_as: 64512,
            mesh: true,
            mesh_peers: vec![MeshPeer {
                node: "calico-02".into(),
                ip: ip("10.10.0.12"),
                as_number: 64512,
            }],
            global_peers: vec![],
            node_peers: vec![],
            own_blocks: vec![net("192.168.1.0/26")],
            pools: vec![net("192.168.0.0/16")],
        }
    }

    #[test]
    fn mesh_of_two_hosts() {
        let expected = r#"# BIRD 2 configuration of Calico node "calico-01", written by calico-node: do not edit.
router id 10.10.0.11;
log stderr { info, remote, warning, error, auth, fatal, bug };
timeformat protocol iso short;

protocol device {
  scan time 2;
}

# Connected routes, for the next hops of multihop sessions.
protocol direct {
  ipv4;
  interface -"cali*", "*";
}

# Learn the routes of other programs (the workload /32s); install the routes learned over
# BGP and this node's block blackholes.
protocol kernel {
  learn;
  scan time 2;
  graceful restart on;
  ipv4 {
    import all;
    export where source = RTS_BGP || proto = "calico_blocks";
  };
}

# The blocks this node owns.
protocol static calico_blocks {
  ipv4;
  route 192.168.1.0/26 blackhole;
}

filter calico_export_to_peers {
  # Nothing outside the IP pools.
  if net !~ [ 192.168.0.0/16+ ] then reject;
  # This node's blocks: the aggregate, never the workload routes inside.
  if net ~ [ 192.168.1.0/26 ] then accept;
  if net ~ [ 192.168.1.0/26+ ] then reject;
  # The rest of the pools: addresses borrowed from other nodes' blocks, routes learned
  # from peers.
  accept;
}

# node-to-node mesh peer: node "calico-02"
protocol bgp Mesh_10_10_0_12 {
  local 10.10.0.11 as 64512;
  neighbor 10.10.0.12 as 64512;
  direct;
  connect delay time 1;
  connect retry time 1;
  error wait time 1, 10;
  hold time 6;
  graceful restart on;
  ipv4 {
    import all;
    export filter calico_export_to_peers;
    next hop self;
  };
}
"#;
        assert_eq!(render(&two_hosts()), expected);
    }

    #[test]
    fn no_mesh_global_and_node_peers_no_blocks_no_pools() {
        let inputs = BirdInputs {
            mesh: false,
            global_peers: vec![Peer {
                ip: ip("172.16.0.1"),
                as_number: 65001,
            }],
            node_peers: vec![Peer {
                ip: ip("10.10.0.1"),
                as_number: 64512,
            }],
            own_blocks: vec![],
            pools: vec![],
            ..two_hosts()
        };
        let text = render(&inputs);
        let tail = text.split_once("protocol static").unwrap().1;
        let expected = r#" calico_blocks {
  ipv4;
}

filter calico_export_to_peers {
  # No IP pool: nothing to announce.
  reject;
}

# global peer
protocol bgp Global_172_16_0_1 {
  local 10.10.0.11 as 64512;
  neighbor 172.16.0.1 as 65001;
  multihop;
  connect delay time 1;
  connect retry time 1;
  error wait time 1, 10;
  hold time 6;
  graceful restart on;
  ipv4 {
    import all;
    export filter calico_export_to_peers;
    next hop self;
  };
}

# node specific peer
protocol bgp Node_10_10_0_1 {
  local 10.10.0.11 as 64512;
  neighbor 10.10.0.1 as 64512;
  direct;
  connect delay time 1;
  connect retry time 1;
  error wait time 1, 10;
  hold time 6;
  graceful restart on;
  ipv4 {
    import all;
    export filter calico_export_to_peers;
    next hop self;
  };
}
"#;
        assert_eq!(tail, expected);
        assert!(!text.contains("Mesh_"), "{text}");
    }

    #[test]
    fn blocks_and_pools_are_networks_sorted_once() {
        let inputs = BirdInputs {
            own_blocks: vec![
                net("192.168.1.64/26"),
                net("192.168.1.5/26"),
                net("192.168.1.0/26"),
            ],
            pools: vec![net("10.1.0.0/16"), net("192.168.7.7/16")],
            ..two_hosts()
        };
        let text = render(&inputs);
        assert!(text
            .contains("  route 192.168.1.0/26 blackhole;\n  route 192.168.1.64/26 blackhole;\n}"));
        assert!(text.contains("if net !~ [ 10.1.0.0/16+, 192.168.0.0/16+ ] then reject;"));
        assert!(text.contains("if net ~ [ 192.168.1.0/26, 192.168.1.64/26 ] then accept;"));
        assert!(text.contains("if net ~ [ 192.168.1.0/26+, 192.168.1.64/26+ ] then reject;"));
    }

    #[test]
    fn own_address_and_repeated_peers_are_left_out() {
        let inputs = BirdInputs {
            mesh_peers: vec![
                MeshPeer {
                    node: "me-again".into(),
                    ip: ip("10.10.0.11"),
                    as_number: 64512,
                },
                MeshPeer {
                    node: "calico-02".into(),
                    ip: ip("10.10.0.12"),
                    as_number: 64512,
                },
                MeshPeer {
                    node: "clash".into(),
                    ip: ip("10.10.0.12"),
                    as_number: 64512,
                },
            ],
            global_peers: vec![Peer {
                ip: ip("10.10.0.12"),
                as_number: 65000,
            }],
            node_peers: vec![Peer {
                ip: ip("10.10.0.11"),
                as_number: 65000,
            }],
            ..two_hosts()
        };
        let text = render(&inputs);
        assert_eq!(text.matches("protocol bgp").count(), 1, "{text}");
        assert!(text.contains("# node-to-node mesh peer: node \"calico-02\""));
    }

    #[test]
    fn as_zero_is_left_out() {
        let inputs = BirdInputs {
            global_peers: vec![Peer {
                ip: ip("172.16.0.1"),
                as_number: 0,
            }],
            ..two_hosts()
        };
        let text = render(&inputs);
        assert_eq!(text.matches("protocol bgp").count(), 1, "{text}");
        let inputs = BirdInputs {
            local_as: 0,
            ..inputs
        };
        assert!(!render(&inputs).contains("protocol bgp"));
    }

    #[test]
    fn odd_node_names_stay_inside_comments() {
        let inputs = BirdInputs {
            node: "evil\"\n}\nprotocol".into(),
            mesh_peers: vec![MeshPeer {
                node: "x\ny".into(),
                ip: ip("10.10.0.12"),
                as_number: 1,
            }],
            ..two_hosts()
        };
        let text = render(&inputs);
        assert!(text.starts_with(
            "# BIRD 2 configuration of Calico node \"evil\\\"\\n}\\nprotocol\", written"
        ));
        assert!(text.contains("# node-to-node mesh peer: node \"x\\ny\"\n"));
    }

    #[test]
    fn mesh_off_ignores_mesh_peers() {
        let inputs = BirdInputs {
            mesh: false,
            ..two_hosts()
        };
        assert!(!render(&inputs).contains("protocol bgp"));
    }
}
