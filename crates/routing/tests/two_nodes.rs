//! Two real BIRDs, one in each of two fresh network namespaces joined by a veth pair, peered
//! over the node-to-node mesh with rendered configurations: the sessions come up, each node's
//! block reaches the other's kernel, a killed BIRD comes back, and a stopped one (a graceful
//! restart) leaves its routes in its kernel while its peer keeps the routes learned from it. Each node runs on its own thread that entered its namespace (`setns` acts on the
//! calling thread, and the BIRD it spawns inherits it). Needs root, `ip` and BIRD 2.

use std::fs::File;
use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use calico_routing::bird::{Bird, CONFIG_FILE};
use calico_routing::bird_conf::{render, BirdInputs, MeshPeer};
use calico_routing::status::render_node_status;
use calico_routing::Error;
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const BLOCK_A: &str = "192.168.1.0/26";
const BLOCK_B: &str = "192.168.2.0/26";
const WAIT: Duration = Duration::from_secs(10);

/// A named network namespace, deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn create(name: String) -> Netns {
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// Runs `body` on the calling thread after moving it into this namespace.
    fn enter<F, Fut>(&self, body: F) -> Fut::Output
    where
        F: FnOnce() -> Fut,
        Fut: Future,
    {
        let file = File::open(format!("/run/netns/{}", self.name)).unwrap();
        setns(&file, CloneFlags::CLONE_NEWNET).unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(body())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn inputs(node: &str, me: &str, peer_node: &str, peer: &str, blocks: &[&str]) -> BirdInputs {
    BirdInputs {
        node: node.into(),
        address: format!("{me}/24").parse().unwrap(),
        local_as: 64512,
        mesh: true,
        mesh_peers: vec![MeshPeer {
            node: peer_node.into(),
            ip: peer.parse().unwrap(),
            as_number: 64512,
        }],
        global_peers: vec![],
        node_peers: vec![],
        own_blocks: blocks.iter().map(|b| b.parse().unwrap()).collect(),
        pools: vec!["192.168.0.0/16".parse().unwrap()],
    }
}

/// Polls `check` every 50 ms until it returns `Some`, for at most [`WAIT`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn established(bird: &Bird) {
    eventually("the BGP session to be Established", || async {
        let peers = bird.protocols().await.ok()?;
        (peers.len() == 1 && peers[0].state == "up" && peers[0].info == "Established").then_some(())
    })
    .await;
}

/// Waits until `ns` routes `block` via `peer`, installed by BIRD.
async fn route_via(ns: &str, block: &str, peer: &str) {
    eventually(&format!("{block} via {peer} in {ns}"), || async {
        let route = ip(&["-n", ns, "route", "show", block]);
        (route.contains(&format!("via {peer}")) && route.contains("proto bird")).then_some(())
    })
    .await;
}

/// Waits until the BIRD on `socket` has finished its graceful restart recovery (a BIRD that
/// restarts again before that makes its peer drop the routes it kept for it).
async fn recovered(socket: &Path) {
    eventually("the graceful restart recovery to end", || async {
        let out = Command::new("birdc")
            .arg("-s")
            .arg(socket)
            .args(["show", "status"])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        (out.status.success() && !text.contains("Graceful restart recovery")).then_some(())
    })
    .await;
}

/// Tells the other node this one is done and waits (bounded) for it to be done too; a node
/// that panicked drops its sender, which ends the wait at once.
fn rendezvous(done: mpsc::Sender<()>, other: mpsc::Receiver<()>) {
    let _ = done.send(());
    let _ = other.recv_timeout(Duration::from_secs(30));
}

#[test]
fn two_nodes_peer_exchange_blocks_and_survive_a_killed_bird() {
    let started = Instant::now();
    let id = std::process::id();
    let a = Netns::create(format!("calico-routing-{id}-a"));
    let b = Netns::create(format!("calico-routing-{id}-b"));
    ip(&[
        "link", "add", "eth0", "netns", &a.name, "type", "veth", "peer", "name", "eth0", "netns",
        &b.name,
    ]);
    for (ns, addr) in [(&a, "10.231.0.1/24"), (&b, "10.231.0.2/24")] {
        ip(&["-n", &ns.name, "addr", "add", addr, "dev", "eth0"]);
        ip(&["-n", &ns.name, "link", "set", "eth0", "up"]);
    }
    let dir = tempfile::tempdir().unwrap();
    let (done_a, wait_b) = mpsc::channel();
    let (done_b, wait_a) = mpsc::channel();

    thread::scope(|s| {
        let node_a = s.spawn(|| {
            a.enter(|| async {
                let config = render(&inputs("a", "10.231.0.1", "b", "10.231.0.2", &[BLOCK_A]));
                let home = dir.path().join("a");
                let bird = Bird::start(&home, &home.join("bird.ctl"), &config)
                    .await
                    .unwrap();
                established(&bird).await;
                route_via(&a.name, BLOCK_B, "10.231.0.2").await;
                let own = ip(&["-n", &a.name, "route", "show", BLOCK_A]);
                assert!(
                    own.contains("blackhole") && own.contains("proto bird"),
                    "{own}"
                );

                let status = render_node_status(true, Some(&bird.protocols().await.unwrap()));
                eprintln!("{status}");
                assert!(
                    status.contains("| 10.231.0.2   | node-to-node mesh | up    |"),
                    "{status}"
                );

                let old = bird.pid().unwrap();
                kill(Pid::from_raw(old as i32), Signal::SIGKILL).unwrap();
                eventually("a new BIRD", || async {
                    bird.pid().filter(|p| *p != old).map(|_| ())
                })
                .await;
                established(&bird).await;
                route_via(&a.name, BLOCK_B, "10.231.0.2").await;
                recovered(&home.join("bird.ctl")).await;

                bird.stop().await;
                let kept = ip(&["-n", &a.name, "route", "show", BLOCK_B]);
                assert!(kept.contains("via 10.231.0.2"), "{kept}");
                rendezvous(done_a, wait_a);
            })
        });
        let node_b = s.spawn(|| {
            b.enter(|| async {
                let home = dir.path().join("b");
                let empty = render(&inputs("b", "10.231.0.2", "a", "10.231.0.1", &[]));
                let bird = Bird::start(&home, &home.join("bird.ctl"), &empty)
                    .await
                    .unwrap();
                assert!(!bird.reload(&empty).await.unwrap());
                let refused = bird.reload("protocol nonsense {").await;
                assert!(matches!(refused, Err(Error::Config(_))), "{refused:?}");
                let file = std::fs::read_to_string(home.join(CONFIG_FILE)).unwrap();
                assert_eq!(file, empty);

                let with_block = render(&inputs("b", "10.231.0.2", "a", "10.231.0.1", &[BLOCK_B]));
                assert!(bird.reload(&with_block).await.unwrap());
                assert!(!bird.reload(&with_block).await.unwrap());
                established(&bird).await;
                route_via(&b.name, BLOCK_A, "10.231.0.1").await;

                // A stops first: B keeps A's block while A restarts.
                rendezvous(done_b, wait_b);
                let kept = ip(&["-n", &b.name, "route", "show", BLOCK_A]);
                assert!(kept.contains("via 10.231.0.1"), "{kept}");
                bird.stop().await;
                let own = ip(&["-n", &b.name, "route", "show", BLOCK_B]);
                assert!(own.contains("blackhole"), "{own}");
                assert!(Path::new(&home.join(CONFIG_FILE)).exists());
            })
        });
        for node in [node_a, node_b] {
            if let Err(panic) = node.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
    eprintln!("two BIRDs: {:?}", started.elapsed());
}
