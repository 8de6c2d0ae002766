//! Every rendered configuration is one BIRD accepts: `bird -p -c <file>` on fixed variants and
//! on random inputs. Needs `bird` (BIRD 2) on PATH.

use std::net::Ipv4Addr;
use std::process::Command;

use calico_routing::bird_conf::{render, BirdInputs, MeshPeer, Peer};
use ipnet::Ipv4Net;
use proptest::prelude::*;

/// Runs `bird -p` on `config`; returns BIRD's complaint if it refuses it.
fn bird_parse(config: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bird.cfg");
    std::fs::write(&path, config).unwrap();
    let out = Command::new("bird")
        .arg("-p")
        .arg("-c")
        .arg(&path)
        .output()
        .expect("bird (BIRD 2) is installed");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn base() -> BirdInputs {
    BirdInputs {
        node: "calico-01".into(),
        address: net("10.10.0.11/24"),
        local_as: 64512,
        mesh: true,
        mesh_peers: vec![
            MeshPeer {
                node: "calico-02".into(),
                ip: ip("10.10.0.12"),
                as_number: 64512,
            },
            MeshPeer {
                node: "far-away".into(),
                ip: ip("10.20.0.5"),
                as_number: 64513,
            },
        ],
        global_peers: vec![Peer {
            ip: ip("172.16.0.1"),
            as_number: 65001,
        }],
        node_peers: vec![Peer {
            ip: ip("10.10.0.1"),
            as_number: 64512,
        }],
        own_blocks: vec![net("192.168.1.0/26"), net("192.168.7.192/26")],
        pools: vec![net("192.168.0.0/16"), net("10.200.0.0/16")],
    }
}

#[test]
fn bird_accepts_every_variant() {
    let variants = [
        ("mesh, global and node peers", base()),
        (
            "mesh off",
            BirdInputs {
                mesh: false,
                ..base()
            },
        ),
        (
            "no peers at all",
            BirdInputs {
                mesh_peers: vec![],
                global_peers: vec![],
                node_peers: vec![],
                ..base()
            },
        ),
        (
            "no blocks",
            BirdInputs {
                own_blocks: vec![],
                ..base()
            },
        ),
        (
            "no pools",
            BirdInputs {
                pools: vec![],
                ..base()
            },
        ),
        (
            "nothing but the node",
            BirdInputs {
                mesh: false,
                mesh_peers: vec![],
                global_peers: vec![],
                node_peers: vec![],
                own_blocks: vec![],
                pools: vec![],
                ..base()
            },
        ),
        (
            "/32 address, everything multihop",
            BirdInputs {
                address: net("10.10.0.11/32"),
                ..base()
            },
        ),
    ];
    for (what, inputs) in variants {
        let config = render(&inputs);
        if let Err(e) = bird_parse(&config) {
            panic!("{what}: bird refused the config: {e}\n{config}");
        }
    }
}

fn arb_net() -> impl Strategy<Value = Ipv4Net> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, len)| Ipv4Net::new(Ipv4Addr::from(a), len).unwrap())
}

fn arb_peer() -> impl Strategy<Value = Peer> {
    (any::<u32>(), any::<u32>()).prop_map(|(a, as_number)| Peer {
        ip: Ipv4Addr::from(a),
        as_number,
    })
}

fn arb_inputs() -> impl Strategy<Value = BirdInputs> {
    (
        ".{0,20}",
        arb_net(),
        prop_oneof![Just(64512u32), any::<u32>()],
        any::<bool>(),
        proptest::collection::vec((".{0,10}", arb_peer()), 0..4),
        proptest::collection::vec(arb_peer(), 0..3),
        proptest::collection::vec(arb_peer(), 0..3),
        proptest::collection::vec(arb_net(), 0..4),
        proptest::collection::vec(arb_net(), 0..3),
    )
        .prop_map(
            |(node, address, local_as, mesh_on, mesh, globals, nodes, blocks, pools)| BirdInputs {
                node,
                address,
                local_as,
                mesh: mesh_on,
                mesh_peers: mesh
                    .into_iter()
                    .map(|(node, p)| MeshPeer {
                        node,
                        ip: p.ip,
                        as_number: p.as_number,
                    })
                    .collect(),
                global_peers: globals,
                node_peers: nodes,
                own_blocks: blocks,
                pools,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn bird_accepts_any_rendered_config(inputs in arb_inputs()) {
        let config = render(&inputs);
        if let Err(e) = bird_parse(&config) {
            prop_assert!(false, "bird refused the config: {}\n{}", e, config);
        }
    }
}

#[tokio::test]
async fn start_refuses_a_config_bird_refuses_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let started = calico_routing::Bird::start(
        dir.path(),
        &dir.path().join("bird.ctl"),
        "protocol nonsense {",
    )
    .await;
    match started {
        Err(calico_routing::Error::Config(message)) => {
            assert!(message.contains("syntax error"), "{message}")
        }
        other => panic!("expected a config error, got {other:?}"),
    }
    assert!(!dir.path().join("bird.cfg").exists());
    assert!(!dir.path().join("bird.ctl").exists());
}
