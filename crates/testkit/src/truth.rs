//! Truth tables over a running [`Cluster`]: real probes between containers, compared with the
//! expected [`Verdict`]s (typically from [`crate::verdict::World::table`]).
//!
//! ```no_run
//! use calico_testkit::cluster::{Cluster, Options};
//! use calico_testkit::truth;
//! use calico_testkit::verdict::{Probe, Verdict};
//!
//! let cluster = Cluster::up(Options { hosts: 1, ..Options::default() });
//! // ... networks, and containers wa and wb on host 1 ...
//! let containers = [("wa", 1), ("wb", 1)];
//! let _listeners = truth::start_listeners(&cluster, &containers, &[80], &[53]);
//! truth::check(&cluster, &containers, &[
//!     (Probe::icmp("wa", "wb"), Verdict::Allow),
//!     (Probe::tcp("wa", "wb", 80), Verdict::Allow),
//!     (Probe::udp("wb", "wa", 53), Verdict::Deny),
//! ]);
//! ```
//!
//! How each probe runs (every one is bounded to about a second):
//!
//! - ICMP: `docker exec FROM ping -c 1 -W 1 IP`; allowed when it exits 0.
//! - TCP: the listener is busybox `nc -ll -p PORT -e echo ok` (started with `docker exec -d`),
//!   the probe `docker exec FROM timeout 5 nc -w 1 IP PORT`; allowed when it prints `ok`, which
//!   proves the connection and data in both directions. A refused or dropped connection fails.
//! - UDP: busybox's `nc` has no UDP mode (Debian's busybox-static 1.35 is built without it) and
//!   no other applet answers UDP, so both ends run in this process, on a thread that has entered
//!   the container's network namespace (`setns`): the listener echoes every datagram back, the
//!   probe sends a unique payload from a fresh socket and is allowed when the same payload
//!   comes back within a second. Network policy sees exactly what it would see from a process
//!   inside the container; only the mount namespace differs.
//!
//! A container's address is its first one in `docker inspect` (IPv4).

use std::fmt::Write as _;
use std::fs::File;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use calico_model::codec;

use crate::cluster::{wait_until, Cluster};
use crate::verdict::{Probe, Proto, Verdict, World};

/// How long [`check`] keeps retrying a table that does not match yet.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many probes run at the same time.
const PARALLEL_PROBES: usize = 16;
/// How long a UDP probe waits for its answer.
const UDP_WAIT: Duration = Duration::from_secs(1);
/// How often a UDP listener looks at its stop flag.
const UDP_POLL: Duration = Duration::from_millis(100);

/// The cluster's profiles, policies and workload endpoints as calicoctl reads them back
/// (`calicoctl get KIND -o yaml`): the evaluator's world, for the expected side of a table.
pub fn world(cluster: &Cluster) -> World {
    let mut resources = Vec::new();
    for kind in ["profile", "policy", "wep"] {
        let yaml = cluster.calicoctl_ok(&["get", kind, "-o", "yaml"], None);
        resources.extend(codec::decode(&yaml).expect("calicoctl output decodes"));
    }
    World::from_resources(&resources)
}

/// The UDP listeners started by [`start_listeners`]; dropping it stops them. (The TCP
/// listeners are processes in the containers and go away with them.)
pub struct Listeners {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for Listeners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Starts a TCP listener on every port of `tcp_ports` and a UDP echo listener on every port of
/// `udp_ports` in each container (`(name, host index from 1)`), and returns once all of them
/// listen. Keep the returned [`Listeners`] alive while probing.
pub fn start_listeners(
    cluster: &Cluster,
    containers: &[(&str, usize)],
    tcp_ports: &[u16],
    udp_ports: &[u16],
) -> Listeners {
    let mut listeners = Listeners {
        stop: Arc::new(AtomicBool::new(false)),
        threads: Vec::new(),
    };
    for &(name, host) in containers {
        let host = cluster.host(host);
        for port in tcp_ports {
            let port = port.to_string();
            host.docker_ok(&[
                "exec", "-d", name, "nc", "-ll", "-p", &port, "-e", "echo", "ok",
            ]);
        }
        if !tcp_ports.is_empty() {
            wait_until(
                Duration::from_secs(10),
                &format!("{name}'s TCP listeners on {tcp_ports:?}"),
                || {
                    let listening = host.docker_ok(&["exec", name, "netstat", "-ltn"]);
                    tcp_ports
                        .iter()
                        .all(|p| listening.contains(&format!(":{p} ")))
                },
            );
        }
        let pid = container_pid(cluster, host.index(), name);
        for &port in udp_ports {
            let netns = netns_of(pid);
            let stop = Arc::clone(&listeners.stop);
            let (bound_tx, bound_rx) = std::sync::mpsc::channel();
            listeners.threads.push(std::thread::spawn(move || {
                enter(&netns);
                let socket = UdpSocket::bind(("0.0.0.0", port))
                    .and_then(|s| s.set_read_timeout(Some(UDP_POLL)).map(|()| s));
                let socket = match socket {
                    Ok(socket) => {
                        let _ = bound_tx.send(Ok(()));
                        socket
                    }
                    Err(e) => {
                        let _ = bound_tx.send(Err(e));
                        return;
                    }
                };
                echo(&socket, &stop);
            }));
            bound_rx
                .recv()
                .expect("the UDP listener thread")
                .unwrap_or_else(|e| panic!("UDP listener on {name}:{port}: {e}"));
        }
    }
    listeners
}

/// [`check_within`] with [`DEFAULT_TIMEOUT`].
pub fn check(cluster: &Cluster, containers: &[(&str, usize)], table: &[(Probe, Verdict)]) {
    check_within(cluster, containers, table, DEFAULT_TIMEOUT);
}

/// Runs every probe of `table` between `containers` (`(name, host index from 1)`), a few at a
/// time, and compares the results with the expected verdicts. A table that does not match is
/// run again, with a growing pause, until it matches or `timeout` has passed (at least two
/// attempts). Once everything matches, the probes expected to be denied run once more, so that
/// a denial is only believed while the allowed probes work. On failure, panics with expected
/// and actual side by side, the wrong lines marked `<---- WRONG`.
pub fn check_within(
    cluster: &Cluster,
    containers: &[(&str, usize)],
    table: &[(Probe, Verdict)],
    timeout: Duration,
) {
    let targets = Targets::resolve(cluster, containers, table);
    let started = Instant::now();
    let mut pause = Duration::from_millis(100);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut actual = run_probes(&targets, &table.iter().map(|(p, _)| p).collect::<Vec<_>>());
        if matches(table, &actual) {
            let denied: Vec<usize> = (0..table.len())
                .filter(|&i| table[i].1 == Verdict::Deny)
                .collect();
            let again = run_probes(
                &targets,
                &denied.iter().map(|&i| &table[i].0).collect::<Vec<_>>(),
            );
            for (&i, verdict) in denied.iter().zip(again) {
                actual[i] = verdict;
            }
            if matches(table, &actual) {
                return;
            }
        }
        if attempts >= 2 && started.elapsed() >= timeout {
            panic!("{}", report(table, &actual, attempts, started.elapsed()));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

fn matches(table: &[(Probe, Verdict)], actual: &[Verdict]) -> bool {
    table.iter().zip(actual).all(|((_, want), got)| want == got)
}

fn report(
    table: &[(Probe, Verdict)],
    actual: &[Verdict],
    attempts: usize,
    elapsed: Duration,
) -> String {
    let width = table
        .iter()
        .map(|(p, _)| p.to_string().len())
        .max()
        .unwrap_or(0);
    let mut out = format!(
        "truth table does not match after {attempts} attempts in {:.1} s:\n  {:width$}  expected  actual\n",
        elapsed.as_secs_f64(),
        "probe"
    );
    for ((probe, want), got) in table.iter().zip(actual) {
        let mark = if want == got { "" } else { "<---- WRONG" };
        let line = format!(
            "  {:width$}  {:8}  {:6}  {mark}",
            probe.to_string(),
            want.to_string(),
            got.to_string()
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// The containers a table uses: where each runs, its address and its process.
struct Targets<'c> {
    cluster: &'c Cluster,
    containers: Vec<Target>,
}

struct Target {
    name: String,
    host: usize,
    ip: IpAddr,
    pid: u32,
}

impl<'c> Targets<'c> {
    fn resolve(
        cluster: &'c Cluster,
        containers: &[(&str, usize)],
        table: &[(Probe, Verdict)],
    ) -> Targets<'c> {
        let mut targets = Targets {
            cluster,
            containers: Vec::new(),
        };
        for (probe, _) in table {
            for name in [&probe.from, &probe.to] {
                if targets.containers.iter().any(|t| &t.name == name) {
                    continue;
                }
                let &(_, host) = containers
                    .iter()
                    .find(|(c, _)| c == name)
                    .unwrap_or_else(|| panic!("probe {probe}: {name} is not in {containers:?}"));
                let addresses = cluster.host(host).docker_ok(&[
                    "inspect",
                    "-f",
                    "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                    name,
                ]);
                let ip = addresses
                    .split_whitespace()
                    .next()
                    .and_then(|a| a.parse().ok())
                    .unwrap_or_else(|| panic!("{name} has no address: {addresses:?}"));
                targets.containers.push(Target {
                    name: name.clone(),
                    host,
                    ip,
                    pid: container_pid(cluster, host, name),
                });
            }
        }
        targets
    }

    fn get(&self, name: &str) -> &Target {
        self.containers
            .iter()
            .find(|t| t.name == name)
            .expect("resolved")
    }
}

/// Runs `probes`, [`PARALLEL_PROBES`] at a time; the results in the same order.
fn run_probes(targets: &Targets, probes: &[&Probe]) -> Vec<Verdict> {
    let results = Mutex::new(vec![Verdict::Deny; probes.len()]);
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_PROBES.min(probes.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(probe) = probes.get(i) else { break };
                let verdict = run_probe(targets, probe);
                results.lock().expect("results")[i] = verdict;
            });
        }
    });
    results.into_inner().expect("results")
}

/// One real probe.
fn run_probe(targets: &Targets, probe: &Probe) -> Verdict {
    let from = targets.get(&probe.from);
    let to = targets.get(&probe.to);
    let host = targets.cluster.host(from.host);
    let ip = to.ip.to_string();
    let allowed = match probe.proto {
        Proto::Icmp => host
            .docker(&["exec", &from.name, "ping", "-c", "1", "-W", "1", &ip])
            .status
            .success(),
        Proto::Tcp(port) => {
            let out = host.docker(&[
                "exec",
                &from.name,
                "timeout",
                "5",
                "nc",
                "-w",
                "1",
                &ip,
                &port.to_string(),
            ]);
            String::from_utf8_lossy(&out.stdout).trim() == "ok"
        }
        Proto::Udp(port) => udp_exchange(from.pid, SocketAddr::new(to.ip, port)),
    };
    if allowed {
        Verdict::Allow
    } else {
        Verdict::Deny
    }
}

/// Sends a unique datagram to `to` from the network namespace of process `pid`, and says
/// whether the same payload comes back within [`UDP_WAIT`].
fn udp_exchange(pid: u32, to: SocketAddr) -> bool {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let payload = format!(
        "calico-truth {} {}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let netns = netns_of(pid);
    // A thread of its own: entering a namespace is for good, for the thread that does it.
    std::thread::spawn(move || {
        enter(&netns);
        let any: SocketAddr = if to.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let Ok(socket) = UdpSocket::bind(any) else {
            return false;
        };
        let mut buf = [0u8; 512];
        socket.set_read_timeout(Some(UDP_WAIT)).is_ok()
            && socket.connect(to).is_ok()
            && socket.send(payload.as_bytes()).is_ok()
            // an ICMP error (no listener) ends the wait early, as ECONNREFUSED
            && socket
                .recv(&mut buf)
                .is_ok_and(|n| &buf[..n] == payload.as_bytes())
    })
    .join()
    .expect("the UDP probe thread")
}

/// Answers every datagram with itself until `stop` is set.
fn echo(socket: &UdpSocket, stop: &AtomicBool) {
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        // Errors are the read timeout (time to look at `stop`) or an ICMP error left over
        // from an earlier answer: keep listening.
        if let Ok((n, peer)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..n], peer);
        }
    }
}

fn container_pid(cluster: &Cluster, host: usize, name: &str) -> u32 {
    let pid = cluster
        .host(host)
        .docker_ok(&["inspect", "-f", "{{.State.Pid}}", name]);
    pid.trim()
        .parse()
        .ok()
        .filter(|&pid| pid != 0)
        .unwrap_or_else(|| panic!("{name} is not running (pid {pid:?})"))
}

fn netns_of(pid: u32) -> File {
    let path = format!("/proc/{pid}/ns/net");
    File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Moves the calling thread into the network namespace `netns`.
fn enter(netns: &File) {
    // SAFETY: setns only reads the descriptor, which `netns` keeps open for the call.
    let rc = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) };
    assert!(
        rc == 0,
        "setns(CLONE_NEWNET): {}",
        std::io::Error::last_os_error()
    );
}
