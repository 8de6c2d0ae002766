//! The nftables policy table against the real kernel. Like `kernel.rs`, each test runs on its own
//! thread that first moves into a fresh network namespace, so `nft`, `iptables` and `ip` only
//! ever see that namespace. Workloads live in further namespaces held by `unshare -n sleep`
//! children, entered with `nsenter` and killed (by pid) when the test ends, which removes their
//! namespaces and veths. Needs root.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use std::{fs, thread};

use calico_calc::desired::{
    Action, Changes, Desired, DirectionPlan, HostEndpointPlan, IcmpMatch, LocalEndpoint, Pool,
    PortRange, PublishedPort, Rule, Rules,
};
use calico_dataplane::endpoint::{self, WorkloadPlumbing};
use calico_dataplane::netlink::Netlink;
use calico_dataplane::nft::{self, Nft};
use calico_dataplane::sysctl;
use ipnet::IpNet;
use nix::sched::{unshare, CloneFlags};

/// Runs `body` in a fresh network namespace with `lo` up, on a dedicated thread.
fn in_netns<F, Fut>(body: F)
where
    F: FnOnce(Netlink) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let worker = thread::spawn(move || {
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET) needs root");
        let conf: BTreeSet<String> = fs::read_dir("/proc/sys/net/ipv4/conf")
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(conf.len(), 3, "not a fresh namespace: {conf:?}");
        run("ip", &["link", "set", "lo", "up"]);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move { body(Netlink::connect().unwrap()).await });
    });
    if let Err(panic) = worker.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Runs a command (in the calling thread's namespace) that must succeed; returns its stdout.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Applies `text` with `nft -f -`.
fn nft_apply(text: &str) {
    let mut child = Command::new(nft::NFT_PROGRAM)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "nft -f: {text}");
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn from_nets(action: Action, nets: &[&str]) -> Rule {
    let mut r = Rule::new(action);
    r.source.nets = nets.iter().map(|n| net(n)).collect();
    r
}

fn from_set(action: Action, set: &str) -> Rule {
    let mut r = Rule::new(action);
    r.source.in_sets = vec![set.to_string()];
    r
}

fn ports(list: &[(u16, u16)]) -> Vec<PortRange> {
    list.iter()
        .map(|&(first, last)| PortRange { first, last })
        .collect()
}

fn plan(policies: &[&str], profiles: &[&str]) -> DirectionPlan {
    DirectionPlan {
        policies: policies.iter().map(|s| s.to_string()).collect(),
        profiles: profiles.iter().map(|s| s.to_string()).collect(),
    }
}

fn endpoint(
    iface: &str,
    addrs: &[&str],
    ingress: DirectionPlan,
    egress: DirectionPlan,
) -> LocalEndpoint {
    LocalEndpoint {
        interface: iface.to_string(),
        addrs: addrs.iter().map(|a| net(a)).collect(),
        ingress,
        egress,
    }
}

/// Rules using every kind of match, in every action.
fn every_match_kind() -> Rules {
    let mut rules = Vec::new();
    for action in [Action::Log, Action::Deny, Action::Pass, Action::Allow] {
        let mut r = Rule::new(action);
        r.protocol = Some(6);
        r.source.nets = vec![net("10.0.0.0/8"), net("10.1.0.0/16"), net("fd00::/8")];
        r.source.not_nets = vec![net("10.9.0.0/16"), net("fd00:9::/32")];
        r.source.ports = ports(&[(1024, 65535)]);
        r.source.not_ports = ports(&[(2000, 2000), (3000, 3100)]);
        r.destination.ports = ports(&[(80, 80), (443, 443), (8000, 8999)]);
        r.destination.not_ports = ports(&[(8080, 8080)]);
        r.destination.in_sets = vec!["s:web/app".into(), "tag-db".into()];
        r.destination.not_in_sets = vec!["s:quarantine".into()];
        rules.push(r);
    }
    let icmp = |icmp_type, code| Some(IcmpMatch { icmp_type, code });
    rules.push(Rule {
        protocol: Some(1),
        icmp: icmp(8, Some(0)),
        ..Rule::new(Action::Allow)
    });
    rules.push(Rule {
        protocol: Some(58),
        icmp: icmp(128, None),
        not_icmp: icmp(129, Some(0)),
        ..Rule::new(Action::Allow)
    });
    rules.push(Rule {
        not_icmp: icmp(3, None),
        ip_version: Some(4),
        ..Rule::new(Action::Deny)
    });
    rules.push(Rule {
        ip_version: Some(6),
        protocol: Some(17),
        not_protocol: Some(6),
        ..Rule::new(Action::Allow)
    });
    let mut r = Rule::new(Action::Allow);
    r.destination.ports = ports(&[(53, 53)]);
    r.destination.not_nets = vec![net("0.0.0.0/0"), net("::/0")];
    rules.push(r);
    Rules {
        ingress: rules.clone(),
        egress: rules,
    }
}

/// A state using every feature: the rule matrix, placeholders, several endpoints.
fn rich() -> Desired {
    let mut d = Desired::default();
    d.policies
        .insert("default.matrix".into(), every_match_kind());
    d.policies.insert(
        "pass-first".into(),
        Rules {
            ingress: vec![from_nets(Action::Pass, &["10.65.0.0/26"])],
            egress: vec![],
        },
    );
    d.profiles.insert(
        "net1".into(),
        Rules {
            ingress: vec![from_set(Action::Allow, "net1")],
            egress: vec![Rule::new(Action::Allow)],
        },
    );
    d.endpoints.insert(
        "cali0123456789a".into(),
        endpoint(
            "cali0123456789a",
            &["10.65.0.1/32", "fd00::1/128"],
            plan(&["pass-first", "default.matrix"], &["net1"]),
            plan(&["default.matrix"], &["net1", "missing-profile"]),
        ),
    );
    d.endpoints.insert(
        "calib".into(),
        endpoint(
            "calib",
            &[],
            plan(&["missing-policy"], &[]),
            plan(&[], &["net1"]),
        ),
    );
    d.ip_sets
        .insert("net1".into(), [ip("10.65.0.1"), ip("fd00::1")].into());
    d.ip_sets
        .insert("s:web/app".into(), [ip("10.65.0.1")].into());
    d.ip_sets.insert("tag-db".into(), BTreeSet::new());
    d.pools
        .insert(net("10.65.0.0/16"), Pool { nat_outgoing: true });
    d.pools.insert(
        net("10.65.1.0/24"),
        Pool {
            nat_outgoing: false,
        },
    );
    d.pools
        .insert(net("fd00::/64"), Pool { nat_outgoing: true });
    d.published.insert(
        "cali0123456789a".into(),
        vec![
            published(None, 8080, "10.65.0.1"),
            published(None, 8080, "fd00::1"),
            published(Some("10.10.0.11"), 53, "10.65.0.1"),
        ],
    );
    let untracked = Rules {
        ingress: vec![from_nets(Action::AllowUntracked, &["10.10.0.0/24"])],
        egress: vec![from_set(Action::AllowUntracked, "net1")],
    };
    d.policies.insert("untracked".into(), untracked);
    d.policies.insert(
        "pre-dnat".into(),
        Rules {
            ingress: vec![
                from_nets(Action::Deny, &["10.10.0.254/32"]),
                from_set(Action::AllowPreDnat, "net1"),
            ],
            egress: vec![],
        },
    );
    d.host_endpoints.insert(
        "eth0".into(),
        HostEndpointPlan {
            ingress: plan(&["pass-first"], &["net1"]),
            egress: plan(&[], &["missing-profile"]),
            untracked_ingress: vec!["untracked".into()],
            untracked_egress: vec!["untracked".into()],
            pre_dnat_ingress: vec!["pre-dnat".into(), "missing-policy".into()],
        },
    );
    d.host_endpoints
        .insert("not-yet-there".into(), HostEndpointPlan::default());
    d
}

fn published(host_ip: Option<&str>, host_port: u16, endpoint_ip: &str) -> PublishedPort {
    PublishedPort {
        protocol: 6,
        host_ip: host_ip.map(ip),
        host_port,
        endpoint_ip: ip(endpoint_ip),
        endpoint_port: 80,
    }
}

/// `rich()` after a change touching every kind of object, with its change report.
fn rich_changed() -> (Desired, Changes) {
    let mut d = rich();
    d.endpoints.remove("calib");
    d.endpoints.insert(
        "calic".into(),
        endpoint(
            "calic",
            &["10.65.0.3/32"],
            plan(&[], &["net1"]),
            plan(&[], &["net1"]),
        ),
    );
    d.policies.remove("pass-first");
    d.endpoints.get_mut("cali0123456789a").unwrap().ingress = plan(&["default.matrix"], &["net1"]);
    d.policies.get_mut("default.matrix").unwrap().ingress.pop();
    d.ip_sets.remove("tag-db");
    d.policies
        .get_mut("default.matrix")
        .unwrap()
        .egress
        .iter_mut()
        .for_each(|r| r.destination.in_sets.retain(|s| s != "tag-db"));
    d.policies
        .get_mut("default.matrix")
        .unwrap()
        .ingress
        .iter_mut()
        .for_each(|r| r.destination.in_sets.retain(|s| s != "tag-db"));
    d.ip_sets
        .insert("s:new".into(), [ip("10.65.0.3"), ip("fd00::3")].into());
    let net1 = d.ip_sets.get_mut("net1").unwrap();
    net1.remove(&ip("fd00::1"));
    net1.insert(ip("10.65.0.3"));
    d.pools.remove(&net("fd00::/64"));
    d.pools.insert(
        net("10.66.0.0/32"),
        Pool {
            nat_outgoing: false,
        },
    );
    d.published
        .insert("calic".into(), vec![published(None, 9090, "10.65.0.3")]);
    d.host_endpoints.remove("not-yet-there");
    d.host_endpoints.get_mut("eth0").unwrap().pre_dnat_ingress = vec!["pre-dnat".into()];
    d.host_endpoints
        .insert("eth1".into(), d.host_endpoints["eth0"].clone());
    let changes = Changes {
        sets_created: ["s:new".into()].into(),
        sets_deleted: ["tag-db".into()].into(),
        members_added: BTreeMap::from([
            ("s:new".into(), [ip("10.65.0.3"), ip("fd00::3")].into()),
            ("net1".into(), [ip("10.65.0.3")].into()),
        ]),
        members_removed: BTreeMap::from([("net1".into(), [ip("fd00::1")].into())]),
        policies_changed: ["default.matrix".into()].into(),
        // Also the placeholder calib used: the calculation graph reports what stops being used.
        policies_removed: ["pass-first".into(), "missing-policy".into()].into(),
        endpoints_changed: ["cali0123456789a".into(), "calic".into()].into(),
        endpoints_removed: ["calib".into()].into(),
        host_endpoints_changed: ["eth0".into(), "eth1".into()].into(),
        host_endpoints_removed: ["not-yet-there".into()].into(),
        pools_changed: true,
        published_changed: true,
        ..Changes::default()
    };
    (d, changes)
}

#[test]
fn full_and_incremental_transactions_apply_and_read_back() {
    in_netns(|_nl| async move {
        let mut nft = Nft::new();
        assert_eq!(nft.read_back().unwrap(), None);
        let before = rich();
        nft.check(&nft::render_full(&before)).unwrap();
        nft.apply_full(&before).unwrap();
        assert!(nft.in_sync(&before).unwrap());
        let listing = run(nft::NFT_PROGRAM, &["list", "table", "inet", "calico"]);
        for expected in [
            "chain forward-from-wl {",
            "type filter hook forward priority -20; policy accept;",
            "\"cali0123456789a\" : goto fw-cali0123456789a",
            "log prefix \"calico-packet\"",
            "chain pro-missing-profile {",
            "chain pi-missing-policy {",
        ] {
            assert!(listing.contains(expected), "{expected}:\n{listing}");
        }

        // Restart: nothing is written when the table is already right.
        assert_eq!(nft.resync(&before).unwrap(), None);
        assert_eq!(nft.stats().full, 1);

        let (after, changes) = rich_changed();
        let text = nft::render_changes(&after, &changes);
        nft.check(&text).unwrap();
        let size = nft.apply_changes(&after, &changes).unwrap();
        assert_eq!(size.lines, text.lines().count());
        let live = nft.read_back().unwrap().unwrap();
        let want = nft::fingerprint(&after);
        assert_eq!(live.differences(&want), Vec::<String>::new());
        assert!(!nft.in_sync(&before).unwrap());

        // Applying the same report again is harmless.
        nft.apply_changes(&after, &changes).unwrap();
        assert!(nft.in_sync(&after).unwrap());
        let stats = nft.stats();
        assert_eq!((stats.full, stats.incremental), (1, 2));
        assert_eq!(stats.last.bytes, text.len());

        // A full render replaces whatever is there.
        nft.apply_full(&Desired::default()).unwrap();
        assert!(nft.in_sync(&Desired::default()).unwrap());
        let listing = run(nft::NFT_PROGRAM, &["list", "table", "inet", "calico"]);
        assert!(!listing.contains("fw-"), "{listing}");
    });
}

#[test]
fn drift_is_detected_and_repaired() {
    in_netns(|_nl| async move {
        let mut nft = Nft::new();
        let desired = rich();
        nft.apply_full(&desired).unwrap();
        nft_apply(
            "add rule inet calico tw-calib accept\n\
             delete element inet calico s4-net1 { 10.65.0.1 }\n\
             add chain inet calico stray\n",
        );
        let live = nft.read_back().unwrap().unwrap();
        assert_eq!(
            live.differences(&nft::fingerprint(&desired)),
            ["chain stray", "chain tw-calib", "set s4-net1"]
        );
        assert!(nft.resync(&desired).unwrap().is_some());
        assert!(nft.in_sync(&desired).unwrap());
        assert_eq!(nft.resync(&desired).unwrap(), None);
    });
}

#[test]
fn rejected_transactions_name_the_line() {
    in_netns(|_nl| async move {
        let nft = Nft::new();
        let err = nft
            .check("add table inet calico\nadd rule inet calico nosuch drop\n")
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("(line 2: add rule inet calico nosuch drop)"),
            "{msg}"
        );
    });
}

#[test]
fn docker_user_accept_rules_are_idempotent() {
    in_netns(|_nl| async move {
        assert_eq!(nft::ensure_docker_user_accept().unwrap(), 0);
        run("iptables", &["-w", "-N", "DOCKER-USER"]);
        run("iptables", &["-w", "-A", "DOCKER-USER", "-j", "RETURN"]);
        assert_eq!(nft::ensure_docker_user_accept().unwrap(), 2);
        assert_eq!(nft::ensure_docker_user_accept().unwrap(), 0);
        let rules = run("iptables", &["-w", "-S", "DOCKER-USER"]);
        let lines: Vec<&str> = rules.lines().collect();
        assert_eq!(lines.len(), 4, "{rules}");
        assert!(lines[1].starts_with("-A DOCKER-USER -o cali+ "), "{rules}");
        assert!(lines[2].starts_with("-A DOCKER-USER -i cali+ "), "{rules}");
        assert!(lines[1].ends_with("-j ACCEPT"), "{rules}");
        assert_eq!(lines[3], "-A DOCKER-USER -j RETURN");
    });
}

/// A workload: a network namespace held by a `sleep` child, with `eth0` (the veth peer of
/// `iface`) configured as Calico does (a /32, a default route via 169.254.1.1).
struct Workload {
    child: Child,
    iface: String,
    addr: &'static str,
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Workload {
    /// Creates workload `n` (interface `caliwl<n>`, MAC `ee:ee:ee:00:00:0<n>`) at `addr`.
    async fn new(nl: &Netlink, n: u8, addr: &'static str) -> Workload {
        let child = Command::new("unshare")
            .args(["-n", "sleep", "60"])
            .spawn()
            .unwrap();
        let workload = Workload {
            child,
            iface: format!("caliwl{n}"),
            addr,
        };
        workload.wait_for_namespace();
        let (iface, temp) = (workload.iface.clone(), format!("tmpwl{n}"));
        let mac = [0xee, 0xee, 0xee, 0, 0, n];
        workload.veth(&temp, &["address", &format!("ee:ee:ee:00:00:{n:02x}")]);
        workload.sh(&format!(
            "ip link set lo up && ip link set {temp} name eth0 && ip addr add {addr}/32 dev eth0 \
             && ip link set eth0 up && ip route add 169.254.1.1 dev eth0 \
             && ip route add default via 169.254.1.1 dev eth0"
        ));
        run("ip", &["link", "set", &iface, "up"]);
        let plumbing = WorkloadPlumbing {
            iface,
            addrs: vec![net(&format!("{addr}/32"))],
            mac,
        };
        endpoint::plumb(nl, &plumbing).await.unwrap();
        workload
    }

    /// Creates neighbour `n`: a namespace on host interface `hepn<n>` (address `host_addr`/24)
    /// with `eth0` at `addr`/24 and a default route via the host, as a machine on a LAN the
    /// host routes between.
    fn neighbour(n: u8, addr: &'static str, host_addr: &str) -> Workload {
        let child = Command::new("unshare")
            .args(["-n", "sleep", "60"])
            .spawn()
            .unwrap();
        let neighbour = Workload {
            child,
            iface: format!("hepn{n}"),
            addr,
        };
        neighbour.wait_for_namespace();
        let temp = format!("tmphep{n}");
        neighbour.veth(&temp, &[]);
        neighbour.sh(&format!(
            "ip link set lo up && ip link set {temp} name eth0 && ip addr add {addr}/24 dev eth0 \
             && ip link set eth0 up && ip route add default via {host_addr}"
        ));
        let host_net = format!("{host_addr}/24");
        run("ip", &["addr", "add", &host_net, "dev", &neighbour.iface]);
        run("ip", &["link", "set", &neighbour.iface, "up"]);
        neighbour
    }

    /// Creates the veth `iface` here with its peer `temp` (given `peer_options`, e.g. its
    /// MAC) in the namespace, still named `temp`.
    fn veth(&self, temp: &str, peer_options: &[&str]) {
        let mut args = vec![
            "link",
            "add",
            &self.iface,
            "type",
            "veth",
            "peer",
            "name",
            temp,
        ];
        args.extend(peer_options);
        run("ip", &args);
        let pid = self.child.id().to_string();
        run("ip", &["link", "set", temp, "netns", &pid]);
    }

    /// Waits until the `unshare` child runs in a namespace of its own.
    fn wait_for_namespace(&self) {
        let ours = fs::read_link("/proc/thread-self/ns/net").unwrap();
        let theirs = format!("/proc/{}/ns/net", self.child.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        while fs::read_link(&theirs).ok().is_none_or(|ns| ns == ours) {
            assert!(Instant::now() < deadline, "unshare did not start");
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// A command running in the workload's namespace.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.child.id().to_string(), "-n", "--"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    /// Runs a shell command in the workload's namespace; it must succeed.
    fn sh(&self, script: &str) {
        let status = self.command(&["sh", "-c", script]).status().unwrap();
        assert!(status.success(), "{script}");
    }
}

/// One connectivity check.
struct Probe<'a> {
    from: &'a Workload,
    args: Vec<String>,
    label: String,
    expect: bool,
}

fn ping<'a>(from: &'a Workload, src: Option<&str>, to: &str, expect: bool) -> Probe<'a> {
    let mut args = vec!["busybox", "ping", "-c", "1", "-W", "1"];
    if let Some(src) = src {
        args.extend(["-I", src]);
    }
    args.push(to);
    Probe {
        from,
        args: args.into_iter().map(String::from).collect(),
        label: format!("ping {} -> {to}", src.unwrap_or(from.addr)),
        expect,
    }
}

fn tcp<'a>(from: &'a Workload, to: &str, port: u16, expect: bool) -> Probe<'a> {
    let port = port.to_string();
    Probe {
        from,
        args: ["busybox", "nc", "-w", "1", to, &port]
            .into_iter()
            .map(String::from)
            .collect(),
        label: format!("tcp {} -> {to}:{port}", from.addr),
        expect,
    }
}

/// Runs all probes at once (a dropped probe costs its whole 1 s timeout); a probe expected to
/// pass gets two more tries, so a slow first ARP cannot fail the test. Panics with a table of
/// expected against actual results on any mismatch.
fn check(probes: &[Probe]) {
    let attempt = |probe: &Probe| {
        let args: Vec<&str> = probe.args.iter().map(String::as_str).collect();
        probe.from.command(&args).spawn().unwrap()
    };
    let mut children: Vec<Child> = probes.iter().map(attempt).collect();
    let mut results: Vec<bool> = children
        .iter_mut()
        .map(|c| c.wait().unwrap().success())
        .collect();
    for (probe, result) in probes.iter().zip(&mut results) {
        for _ in 0..2 {
            if probe.expect && !*result {
                *result = attempt(probe).wait().unwrap().success();
            }
        }
    }
    let table: Vec<String> = probes
        .iter()
        .zip(&results)
        .map(|(p, got)| {
            let mark = if p.expect == *got { "  " } else { "!!" };
            format!("{mark} {:<36} expected {:<5} got {got}", p.label, p.expect)
        })
        .collect();
    assert!(
        probes.iter().zip(&results).all(|(p, got)| p.expect == *got),
        "connectivity:\n{}",
        table.join("\n")
    );
}

const A: &str = "10.65.0.1";
const B: &str = "10.65.0.2";
const C: &str = "10.65.0.3";
const SPOOF: &str = "10.65.0.7";
const X: &str = "10.65.0.9";
const HOST: &str = "10.99.0.1";

#[test]
fn packets_follow_policy() {
    in_netns(|nl| async move {
        sysctl::enable_forwarding().unwrap();
        // proxy ARP only answers for 169.254.1.1 when the host routes it elsewhere.
        run(
            "ip",
            &[
                "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink1",
            ],
        );
        run(
            "ip",
            &["addr", "add", &format!("{HOST}/24"), "dev", "uplink0"],
        );
        run("ip", &["link", "set", "uplink1", "up"]);
        run("ip", &["link", "set", "uplink0", "up"]);
        run("ip", &["route", "add", "default", "dev", "uplink0"]);
        let a = Workload::new(&nl, 1, A).await;
        let b = Workload::new(&nl, 2, B).await;
        let c = Workload::new(&nl, 3, C).await;
        let x = Workload::new(&nl, 9, X).await;
        // A also holds SPOOF, which is routed to it but not (yet) one of its endpoint addresses.
        a.sh(&format!("ip addr add {SPOOF}/32 dev eth0"));
        run(
            "ip",
            &["route", "add", &format!("{SPOOF}/32"), "dev", &a.iface],
        );

        let net1_profile = Rules {
            ingress: vec![from_set(Action::Allow, "net1")],
            egress: vec![Rule::new(Action::Allow)],
        };
        let ep = |w: &Workload| {
            endpoint(
                &w.iface,
                &[&format!("{}/32", w.addr)],
                plan(&[], &["net1"]),
                plan(&[], &["net1"]),
            )
        };
        let mut desired = Desired::default();
        desired.profiles.insert("net1".into(), net1_profile);
        for w in [&a, &b, &c] {
            desired.endpoints.insert(w.iface.clone(), ep(w));
        }
        desired
            .ip_sets
            .insert("net1".into(), [ip(A), ip(B), ip(SPOOF)].into());
        let mut nft = Nft::new();
        let started = Instant::now();
        nft.apply_full(&desired).unwrap();

        check(&[
            ping(&a, None, B, true),
            ping(&b, None, A, true),
            ping(&c, None, B, false),
            ping(&b, None, C, true),
            ping(&x, None, B, false),
            ping(&a, None, X, false),
            ping(&a, None, HOST, true),
            ping(&x, None, HOST, false),
            ping(&a, Some(SPOOF), B, false),
        ]);

        // B gets two policies: p1 logs everything, passes A and denies ICMP from C; p2 allows
        // A and C. B's profile now also allows TCP 8080, and A leaves set net1, A may send
        // from SPOOF.
        let mut p1_deny_c = from_nets(Action::Deny, &[&format!("{C}/32")]);
        p1_deny_c.protocol = Some(1);
        desired.policies.insert(
            "p1".into(),
            Rules {
                ingress: vec![
                    Rule::new(Action::Log),
                    from_nets(Action::Pass, &[&format!("{A}/32")]),
                    p1_deny_c,
                ],
                egress: vec![],
            },
        );
        desired.policies.insert(
            "p2".into(),
            Rules {
                ingress: vec![from_nets(
                    Action::Allow,
                    &[&format!("{A}/32"), &format!("{C}/32")],
                )],
                egress: vec![],
            },
        );
        let mut port_8080 = Rule::new(Action::Allow);
        port_8080.protocol = Some(6);
        port_8080.destination.ports = ports(&[(8080, 8080)]);
        desired
            .profiles
            .get_mut("net1")
            .unwrap()
            .ingress
            .push(port_8080);
        desired.endpoints.get_mut(&b.iface).unwrap().ingress = plan(&["p1", "p2"], &["net1"]);
        desired
            .endpoints
            .get_mut(&a.iface)
            .unwrap()
            .addrs
            .push(net(&format!("{SPOOF}/32")));
        desired.ip_sets.get_mut("net1").unwrap().remove(&ip(A));
        let changes = Changes {
            members_removed: BTreeMap::from([("net1".into(), [ip(A)].into())]),
            policies_changed: ["p1".into(), "p2".into()].into(),
            profiles_changed: ["net1".into()].into(),
            endpoints_changed: [a.iface.clone(), b.iface.clone()].into(),
            ..Changes::default()
        };
        nft.apply_changes(&desired, &changes).unwrap();
        assert!(nft.in_sync(&desired).unwrap());
        let listener = b
            .command(&["busybox", "nc", "-ll", "-p", "8080", "-e", "/bin/true"])
            .spawn();
        let mut listener = listener.unwrap();

        check(&[
            // pass skips p2 (which would allow A); the profile no longer allows A's ping...
            ping(&a, None, B, false),
            // ...but does allow TCP 8080.
            tcp(&a, B, 8080, true),
            // p1's deny comes before p2's allow; TCP is not denied by p1, so p2 allows it.
            ping(&c, None, B, false),
            tcp(&c, B, 8080, true),
            // With policies, a packet none of them allows or passes is dropped, even though
            // the profile would allow SPOOF (still in net1).
            ping(&a, Some(SPOOF), B, false),
            // SPOOF is now one of A's addresses: C's profile lets it in.
            ping(&a, Some(SPOOF), C, true),
            ping(&b, None, A, true),
        ]);
        let _ = listener.kill();
        let _ = listener.wait();
        // The rule counters saw those probes: p1 logged every one, denied C's pings and
        // passed A's; p2 allowed C's connection; what neither allowed met B's policies drop.
        let counts = nft.rule_counters(&nft::counted_rules(&desired)).unwrap();
        let packets = |kind: nft::CountedKind, name: &str, rule: &str| {
            counts
                .iter()
                .find(|c| {
                    c.rule.kind == kind
                        && c.rule.name == name
                        && c.rule.direction == nft::Direction::Ingress
                        && c.rule.rule == rule
                })
                .map(|c| (c.packets, c.rule.action))
        };
        let policy = nft::CountedKind::Policy;
        let at_least = |found: Option<(u64, &str)>, n: u64, action: &str, what: &str| {
            let (count, act) = found.unwrap_or_else(|| panic!("{what} not counted: {counts:?}"));
            assert!(count >= n && act == action, "{what}: {count} {act}");
        };
        at_least(
            packets(policy, "p1", "0"),
            5,
            "log",
            "p1 log of the five probes to B",
        );
        at_least(packets(policy, "p1", "1"), 2, "pass", "p1 pass of A");
        at_least(packets(policy, "p1", "2"), 1, "deny", "p1 deny of C's ping");
        at_least(packets(policy, "p2", "0"), 1, "allow", "p2 allow of C");
        let b_drop = packets(
            nft::CountedKind::WorkloadEndpoint,
            &b.iface,
            nft::NO_POLICY_ALLOWED,
        );
        at_least(b_drop, 1, "deny", "B's policies drop");
        println!("packet checks took {:?}", started.elapsed());
    });
}

/// A rule with `action` for tcp to `port`.
fn tcp_to(port: u16, action: Action) -> Rule {
    let mut rule = Rule::new(action);
    rule.protocol = Some(6);
    rule.destination.ports = ports(&[(port, port)]);
    rule
}

/// Host endpoints on a host routing between two LANs (neighbours N1 on `hepn1`, N2 on
/// `hepn2`): normal policy on traffic to the host, from it and forwarded through it (both
/// endpoints' policy), the failsafe ports whatever the policy, `preDNAT` before DNAT.
#[test]
fn host_endpoints_police_the_host_and_forwarded_traffic() {
    in_netns(|_nl| async move {
        sysctl::enable_forwarding().unwrap();
        let n1 = Workload::neighbour(1, "10.71.0.2", "10.71.0.1");
        let n2 = Workload::neighbour(2, "10.72.0.2", "10.72.0.1");
        let mut listeners: Vec<Child> = Vec::new();
        for (ns, port) in [(&n2, 8000), (&n2, 8001), (&n1, 8000)] {
            let port = port.to_string();
            let nc = ["busybox", "nc", "-ll", "-p", &port, "-e", "/bin/true"];
            listeners.push(ns.command(&nc).spawn().unwrap());
        }
        for port in ["22", "7000"] {
            let nc = ["busybox", "nc", "-ll", "-p", port, "-e", "/bin/true"];
            listeners.push(Command::new(nc[0]).args(&nc[1..]).spawn().unwrap());
        }
        let mut nft = Nft::new();
        let mut desired = Desired::default();
        nft.apply_full(&desired).unwrap();
        check(&[
            tcp(&n1, "10.72.0.2", 8000, true),
            tcp(&n1, "10.71.0.1", 7000, true),
        ]);

        // N1's side is a host endpoint with no policy: only the failsafe ports reach the host,
        // nothing is forwarded in or out through it
        desired
            .host_endpoints
            .insert("hepn1".into(), HostEndpointPlan::default());
        nft.apply_full(&desired).unwrap();
        check(&[
            tcp(&n1, "10.71.0.1", 22, true),
            tcp(&n1, "10.71.0.1", 7000, false),
            tcp(&n1, "10.72.0.2", 8000, false),
            tcp(&n2, "10.71.0.2", 8000, false),
        ]);

        // a policy admits tcp/8000 arriving on hepn1 and leaving by hepn2; hepn2 is a host
        // endpoint too: forwarded traffic needs both endpoints' policy
        desired.policies.insert(
            "to-8000".into(),
            Rules {
                ingress: vec![tcp_to(8000, Action::Allow)],
                egress: vec![tcp_to(8000, Action::Allow)],
            },
        );
        desired.host_endpoints.insert(
            "hepn1".into(),
            HostEndpointPlan {
                ingress: plan(&["to-8000"], &[]),
                ..HostEndpointPlan::default()
            },
        );
        desired.host_endpoints.insert(
            "hepn2".into(),
            HostEndpointPlan {
                egress: plan(&["to-8000"], &[]),
                ..HostEndpointPlan::default()
            },
        );
        nft.apply_full(&desired).unwrap();
        check(&[
            tcp(&n1, "10.72.0.2", 8000, true),
            tcp(&n1, "10.72.0.2", 8001, false),
            tcp(&n1, "10.71.0.1", 7000, false),
        ]);

        // a preDNAT deny of N1 on hepn1 comes before the normal policy; a preDNAT allow of
        // tcp/7000 lets N1 reach the host past it
        desired.policies.insert(
            "pre".into(),
            Rules {
                ingress: vec![
                    tcp_to(8000, Action::Deny),
                    tcp_to(7000, Action::AllowPreDnat),
                ],
                egress: vec![],
            },
        );
        desired
            .host_endpoints
            .get_mut("hepn1")
            .unwrap()
            .pre_dnat_ingress = vec!["pre".into()];
        nft.apply_full(&desired).unwrap();
        assert!(nft.in_sync(&desired).unwrap());
        check(&[
            tcp(&n1, "10.72.0.2", 8000, false),
            tcp(&n1, "10.71.0.1", 7000, true),
            tcp(&n1, "10.71.0.1", 22, true),
        ]);
        for mut listener in listeners {
            let _ = listener.kill();
            let _ = listener.wait();
        }
    });
}
