//! Reading this node's [`BirdInputs`] from the datastore.
//!
//! | input | source |
//! | --- | --- |
//! | router id, subnet, AS | this node's `node` resource: `spec.bgp.ipv4Address`, `spec.bgp.asNumber` |
//! | default AS | [`GLOBAL_AS_NUMBER`] (a decimal or dotted string), else [`DEFAULT_AS_NUMBER`] |
//! | mesh on/off | [`NODE_MESH`](calico_store::keys::NODE_MESH) (`{"enabled": true\|false}`), absent means on |
//! | mesh peers | every other `node` with an IPv4 BGP address |
//! | global / node peers | `bgpPeer` resources of scope `global`, and of scope `node` for this node (IPv4 only) |
//! | own blocks | [`Ipam::affine_blocks`] (IPv4 only) |
//! | pools | enabled IPv4 `ipPool` resources |
//!
//! The same listing of the pools gives [`Inputs::ipip_pools`], the enabled IPv4 pools whose
//! `ipip` is enabled, for [`crate::ipip`].
//!
//! As everywhere in the agent, a stored value that cannot be read is logged and treated as
//! absent rather than stopping routing.

use std::net::IpAddr;

use calico_ipam::Ipam;
use calico_model::{AsNumber, Kind, Resource};
use calico_store::keys::{kind_prefix, GLOBAL_AS_NUMBER, NODE_MESH};
use calico_store::resources::{decode, ResourceStore};
use calico_store::Datastore;
use ipnet::{IpNet, Ipv4Net};
use serde::Deserialize;
use tracing::warn;

use crate::bird_conf::{BirdInputs, MeshPeer, Peer};
use crate::Result;

/// The AS number of nodes that set none, when [`GLOBAL_AS_NUMBER`] is absent.
pub const DEFAULT_AS_NUMBER: u32 = 64512;

/// The value of [`NODE_MESH`] for `enabled`, as Calico writes it.
pub fn encode_node_mesh(enabled: bool) -> String {
    format!("{{\"enabled\": {enabled}}}")
}

/// The setting in a [`NODE_MESH`] value, or `None` if the value is not one.
pub fn decode_node_mesh(value: &[u8]) -> Option<bool> {
    #[derive(Deserialize)]
    struct NodeMesh {
        enabled: bool,
    }
    serde_json::from_slice::<NodeMesh>(value)
        .ok()
        .map(|m| m.enabled)
}

/// What one routing pass reads from the datastore, the pools listed once for both parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inputs {
    /// This node's BIRD inputs, or `None` when the node has no IPv4 BGP address (or no `node`
    /// resource): then it does not route.
    pub bird: Option<BirdInputs>,
    /// The enabled IPv4 pools with `ipip` enabled, sorted (host bits cleared): the pools whose
    /// routes BIRD announces, and that IPIP would encapsulate.
    pub ipip_pools: Vec<Ipv4Net>,
}

/// This node's routing inputs and the pools with `ipip` enabled. Lists are sorted, so equal
/// datastore contents always render the same configuration.
pub async fn read_inputs(store: &ResourceStore, ipam: &Ipam, node: &str) -> Result<Inputs> {
    let ds = store.datastore().as_ref();
    let pools = list(ds, Kind::IpPool).await?;
    Ok(Inputs {
        bird: bird_inputs(ds, ipam, node, &pools).await?,
        ipip_pools: ipip_pools(&pools),
    })
}

/// This node's BIRD inputs, with the `pools` listed.
async fn bird_inputs(
    ds: &dyn Datastore,
    ipam: &Ipam,
    node: &str,
    pools: &[Resource],
) -> Result<Option<BirdInputs>> {
    let global_as = global_as_number(ds).await?;

    let mut address = None;
    let mut local_as = global_as;
    let mut mesh_peers = Vec::new();
    for resource in list(ds, Kind::Node).await? {
        let Resource::Node(n) = resource else {
            continue;
        };
        let Some(bgp) = n.spec.bgp else { continue };
        let Some(IpNet::V4(ipv4)) = bgp.ipv4_address.map(|c| c.ip_net()) else {
            continue;
        };
        let as_number = bgp.as_number.map_or(global_as, |a| a.0);
        if n.metadata.name == node {
            address = Some(ipv4);
            local_as = as_number;
        } else {
            mesh_peers.push(MeshPeer {
                node: n.metadata.name,
                ip: ipv4.addr(),
                as_number,
            });
        }
    }
    let Some(address) = address else {
        return Ok(None);
    };

    let mut global_peers = Vec::new();
    let mut node_peers = Vec::new();
    for resource in list(ds, Kind::BgpPeer).await? {
        let Resource::BgpPeer(p) = resource else {
            continue;
        };
        let Some(IpAddr::V4(ip)) = p.metadata.peer_ip else {
            continue;
        };
        let peer = Peer {
            ip,
            as_number: p.spec.as_number.0,
        };
        match p.metadata.scope.as_str() {
            "global" => global_peers.push(peer),
            "node" if p.metadata.node == node => node_peers.push(peer),
            _ => {}
        }
    }

    let mut enabled_pools = Vec::new();
    for resource in pools {
        let Resource::IpPool(p) = resource else {
            continue;
        };
        if let (false, Some(IpNet::V4(net))) =
            (p.spec.disabled, p.metadata.cidr.map(|c| c.ip_net()))
        {
            enabled_pools.push(net.trunc());
        }
    }

    let mut own_blocks: Vec<Ipv4Net> = ipam
        .affine_blocks(node)
        .await?
        .into_iter()
        .filter_map(|c| match c.ip_net() {
            IpNet::V4(net) => Some(net),
            IpNet::V6(_) => None,
        })
        .collect();

    mesh_peers.sort_by_key(|p| p.ip);
    global_peers.sort();
    node_peers.sort();
    own_blocks.sort();
    enabled_pools.sort();
    Ok(Some(BirdInputs {
        node: node.to_string(),
        address,
        local_as,
        mesh: node_mesh_enabled(ds).await?,
        mesh_peers,
        global_peers,
        node_peers,
        own_blocks,
        pools: enabled_pools,
    }))
}

/// The enabled IPv4 pools of `pools` with `ipip` enabled, sorted, without repeats.
fn ipip_pools(pools: &[Resource]) -> Vec<Ipv4Net> {
    let mut ipip: Vec<Ipv4Net> = pools
        .iter()
        .filter_map(|resource| match resource {
            Resource::IpPool(p)
                if !p.spec.disabled && p.spec.ipip.as_ref().is_some_and(|i| i.enabled) =>
            {
                match p.metadata.cidr.map(|c| c.ip_net()) {
                    Some(IpNet::V4(net)) => Some(net.trunc()),
                    _ => None,
                }
            }
            _ => None,
        })
        .collect();
    ipip.sort();
    ipip.dedup();
    ipip
}

/// Every readable resource of `kind`; unreadable ones are logged and skipped.
async fn list(ds: &dyn Datastore, kind: Kind) -> Result<Vec<Resource>> {
    let listing = ds.list(&kind_prefix(kind)).await?;
    Ok(listing
        .items
        .iter()
        .filter_map(|kv| match decode(kind, kv) {
            Ok(stored) => Some(stored.resource),
            Err(e) => {
                warn!(error = %e, "ignoring an unreadable resource");
                None
            }
        })
        .collect())
}

async fn global_as_number(ds: &dyn Datastore) -> Result<u32> {
    let Some(kv) = ds.get(GLOBAL_AS_NUMBER).await? else {
        return Ok(DEFAULT_AS_NUMBER);
    };
    let text = String::from_utf8_lossy(&kv.value);
    match text.trim().parse::<AsNumber>() {
        Ok(a) => Ok(a.0),
        Err(e) => {
            warn!(key = GLOBAL_AS_NUMBER, error = %e, "unreadable; using {DEFAULT_AS_NUMBER}");
            Ok(DEFAULT_AS_NUMBER)
        }
    }
}

async fn node_mesh_enabled(ds: &dyn Datastore) -> Result<bool> {
    let Some(kv) = ds.get(NODE_MESH).await? else {
        return Ok(true);
    };
    Ok(decode_node_mesh(&kv.value).unwrap_or_else(|| {
        warn!(
            key = NODE_MESH,
            "unreadable; the node-to-node mesh stays on"
        );
        true
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use calico_model::{
        BgpPeer, BgpPeerMetadata, BgpPeerSpec, Cidr, IpPool, IpPoolMetadata, IpPoolSpec,
        IpipConfiguration, Node, NodeBgpSpec, NodeMetadata, NodeSpec,
    };
    use calico_store::SqliteStore;

    use super::*;

    struct Env {
        store: ResourceStore,
        ipam: Ipam,
        _dir: tempfile::TempDir,
    }

    fn env() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let ds: Arc<dyn Datastore> =
            Arc::new(SqliteStore::open(dir.path().join("calico.db")).unwrap());
        let store = ResourceStore::new(ds);
        Env {
            ipam: Ipam::new(store.clone()),
            store,
            _dir: dir,
        }
    }

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    /// A node with a BGP address (IPv4 or IPv6, by its form), or policy-only without one.
    fn node(name: &str, address: Option<&str>, as_number: Option<u32>) -> Resource {
        let address = address.map(cidr);
        let of_version = |v| address.filter(|a| a.version() == v);
        Resource::Node(Node {
            metadata: NodeMetadata { name: name.into() },
            spec: NodeSpec {
                bgp: address.map(|_| NodeBgpSpec {
                    as_number: as_number.map(AsNumber),
                    ipv4_address: of_version(4),
                    ipv6_address: of_version(6),
                }),
                orch_refs: vec![],
            },
        })
    }

    fn bgp_peer(scope: &str, node: &str, ip: &str, as_number: u32) -> Resource {
        Resource::BgpPeer(BgpPeer {
            metadata: BgpPeerMetadata {
                scope: scope.into(),
                node: node.into(),
                peer_ip: Some(ip.parse().unwrap()),
            },
            spec: BgpPeerSpec {
                as_number: AsNumber(as_number),
            },
        })
    }

    fn pool(cidr_text: &str, disabled: bool) -> Resource {
        ipip_pool(cidr_text, disabled, None)
    }

    fn ipip_pool(cidr_text: &str, disabled: bool, ipip: Option<(bool, &str)>) -> Resource {
        Resource::IpPool(IpPool {
            metadata: IpPoolMetadata {
                cidr: Some(cidr(cidr_text)),
            },
            spec: IpPoolSpec {
                disabled,
                ipip: ipip.map(|(enabled, mode)| IpipConfiguration {
                    enabled,
                    mode: mode.into(),
                }),
                ..Default::default()
            },
        })
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn reads_everything_that_shapes_routing() {
        let env = env();
        let s = &env.store;
        for r in [
            node("calico-01", Some("10.10.0.11/24"), None),
            node("calico-03", Some("10.10.0.13/24"), Some(65003)),
            node("calico-02", Some("10.10.0.12/24"), None),
            node("v6-only", Some("fd00::1/64"), None),
            node("policy-only", None, None),
            bgp_peer("global", "", "172.16.0.1", 65001),
            bgp_peer("global", "", "fd00::9", 65001),
            bgp_peer("node", "calico-01", "10.10.0.1", 64512),
            bgp_peer("node", "calico-02", "10.10.0.2", 64512),
            pool("192.168.0.0/16", false),
            pool("10.99.0.0/16", true),
            pool("fd80::/64", false),
        ] {
            s.create(&r).await.unwrap();
        }
        env.ipam.auto_assign("calico-01", 4, None).await.unwrap();
        env.ipam.auto_assign("calico-02", 4, None).await.unwrap();
        let own = env.ipam.affine_blocks("calico-01").await.unwrap();

        let inputs = read_inputs(s, &env.ipam, "calico-01")
            .await
            .unwrap()
            .bird
            .unwrap();
        assert_eq!(
            inputs,
            BirdInputs {
                node: "calico-01".into(),
                address: net("10.10.0.11/24"),
                local_as: 64512,
                mesh: true,
                mesh_peers: vec![
                    MeshPeer {
                        node: "calico-02".into(),
                        ip: "10.10.0.12".parse().unwrap(),
                        as_number: 64512
                    },
                    MeshPeer {
                        node: "calico-03".into(),
                        ip: "10.10.0.13".parse().unwrap(),
                        as_number: 65003
                    },
                ],
                global_peers: vec![Peer {
                    ip: "172.16.0.1".parse().unwrap(),
                    as_number: 65001
                }],
                node_peers: vec![Peer {
                    ip: "10.10.0.1".parse().unwrap(),
                    as_number: 64512
                }],
                own_blocks: own
                    .iter()
                    .map(|c| match c.ip_net() {
                        IpNet::V4(n) => n,
                        IpNet::V6(_) => unreachable!(),
                    })
                    .collect(),
                pools: vec![net("192.168.0.0/16")],
            }
        );
        assert_eq!(inputs.own_blocks.len(), 1);

        let ds = s.datastore();
        ds.create(GLOBAL_AS_NUMBER, b"1.10").await.unwrap();
        ds.create(NODE_MESH, encode_node_mesh(false).as_bytes())
            .await
            .unwrap();
        let inputs = read_inputs(s, &env.ipam, "calico-02")
            .await
            .unwrap()
            .bird
            .unwrap();
        assert_eq!(inputs.local_as, 65546);
        assert!(!inputs.mesh);
        assert_eq!(inputs.mesh_peers[0].as_number, 65546);
        assert_eq!(inputs.node_peers[0].ip.to_string(), "10.10.0.2");
    }

    #[tokio::test]
    async fn no_ipv4_address_means_no_routing() {
        let env = env();
        let s = &env.store;
        for r in [
            node("v6-only", Some("fd00::1/64"), None),
            node("policy-only", None, None),
        ] {
            s.create(&r).await.unwrap();
        }
        for name in ["v6-only", "policy-only", "missing"] {
            assert_eq!(read_inputs(s, &env.ipam, name).await.unwrap().bird, None);
        }
    }

    #[tokio::test]
    async fn unreadable_settings_and_resources_fall_back() {
        let env = env();
        let s = &env.store;
        s.create(&node("calico-01", Some("10.10.0.11/24"), None))
            .await
            .unwrap();
        let ds = s.datastore();
        ds.create(GLOBAL_AS_NUMBER, b"lots").await.unwrap();
        ds.create(NODE_MESH, b"on").await.unwrap();
        ds.create(&format!("{}broken", kind_prefix(Kind::Node)), b"{")
            .await
            .unwrap();
        let inputs = read_inputs(s, &env.ipam, "calico-01")
            .await
            .unwrap()
            .bird
            .unwrap();
        assert_eq!(inputs.local_as, DEFAULT_AS_NUMBER);
        assert!(inputs.mesh);
        assert!(inputs.mesh_peers.is_empty());
    }

    #[tokio::test]
    async fn ipip_pools_are_the_enabled_ipv4_pools_with_ipip_on() {
        let env = env();
        let s = &env.store;
        let ipip = || async { read_inputs(s, &env.ipam, "calico-01").await.unwrap() };
        assert_eq!(ipip().await.ipip_pools, vec![]);
        for r in [
            pool("10.1.0.0/16", false),
            ipip_pool("192.168.0.0/16", false, Some((true, ""))),
            ipip_pool("10.2.0.0/16", false, Some((true, "cross-subnet"))),
            ipip_pool("10.3.0.0/16", false, Some((false, "always"))),
            ipip_pool("10.4.0.0/16", true, Some((true, "always"))),
            ipip_pool("fd80::/64", false, None),
        ] {
            s.create(&r).await.unwrap();
        }
        let expected = vec![net("10.2.0.0/16"), net("192.168.0.0/16")];
        let policy_only = ipip().await;
        assert_eq!(policy_only.bird, None);
        assert_eq!(
            policy_only.ipip_pools, expected,
            "a node that does not route too"
        );
        s.create(&node("calico-01", Some("10.10.0.11/24"), None))
            .await
            .unwrap();
        let routing = ipip().await;
        assert_eq!(routing.ipip_pools, expected);
        assert_eq!(
            routing.bird.unwrap().pools,
            vec![
                net("10.1.0.0/16"),
                net("10.2.0.0/16"),
                net("10.3.0.0/16"),
                net("192.168.0.0/16")
            ],
            "the same listing gives the routed pools"
        );
    }

    #[test]
    fn node_mesh_values() {
        assert_eq!(encode_node_mesh(true), r#"{"enabled": true}"#);
        assert_eq!(decode_node_mesh(br#"{"enabled": false}"#), Some(false));
        assert_eq!(
            decode_node_mesh(encode_node_mesh(true).as_bytes()),
            Some(true)
        );
        assert_eq!(decode_node_mesh(b"true"), None);
        assert_eq!(decode_node_mesh(b""), None);
    }
}
