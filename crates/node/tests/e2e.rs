//! calico-node end to end on one simulated Docker host: a real dockerd in its own namespaces,
//! the real kernel, and the commands of Calico's Docker tutorials verbatim.
//! Runs in the `e2e` nextest group (one at a time); see docs/harness.md.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use calico_testkit::cluster::{wait_until, Cluster, Datastore, Host};
use calico_testkit::steps::{
    calicoctl_beside, create_network, ip_in, network_create_args, run_busybox,
};
use calico_testkit::tutorial::NET1_PROFILE;

mod common;

/// A one-host cluster on the embedded SQLite datastore, running this crate's calico-node.
fn one_host() -> Cluster {
    common::cluster(1, Datastore::Sqlite)
}

/// Runs `each` for every one of `names`, ten at a time, each on its own thread with its own
/// handle on host 1.
fn ten_at_a_time(cluster: &Cluster, names: &[String], each: impl Fn(Host<'_>, &str) + Sync) {
    let each = &each;
    for batch in names.chunks(10) {
        std::thread::scope(|s| {
            for name in batch {
                let h = cluster.host(1);
                s.spawn(move || each(h, name));
            }
        });
    }
}

/// The host's workload interfaces and the routes through them.
fn workload_links_and_routes(host: &Host) -> (Vec<String>, Vec<String>) {
    let links = String::from_utf8_lossy(&host.exec(&["ip", "-o", "link", "show"]).stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_string())
        .filter(|name| name.starts_with("cali"))
        .collect();
    let routes = String::from_utf8_lossy(&host.exec(&["ip", "route", "show"]).stdout)
        .lines()
        .filter(|l| l.contains(" dev cali"))
        .map(str::to_string)
        .collect();
    (links, routes)
}

/// `calicoctl ipam show` for one address says it is assigned.
fn assigned(cluster: &Cluster, ip: &str) -> bool {
    let out = cluster.calicoctl_ok(&["ipam", "show", "--ip", ip], None);
    out.contains("is assigned")
}

#[test]
fn e2e_security_using_calico_profiles_single_host() {
    let cluster = one_host();
    let h = cluster.host(1);
    for net in ["net1", "net2", "net3"] {
        create_network(&h, net, &[]);
    }
    let mut profile = String::new();
    let mut net1_profile = || {
        profile = cluster.calicoctl_ok(&["get", "profile", "net1", "-o", "yaml"], None);
        profile != "[]"
    };
    wait_until(
        Duration::from_secs(10),
        "the net1 profile",
        &mut net1_profile,
    );
    assert_eq!(profile, NET1_PROFILE.trim_end());

    run_busybox(&h, "workload-A", "net1");
    run_busybox(&h, "workload-B", "net2");
    run_busybox(&h, "workload-C", "net1");
    h.docker_ok(&["exec", "workload-A", "ping", "-c", "4", "workload-C.net1"]);

    let addr = h.docker_ok(&[
        "exec",
        "workload-A",
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "cali0",
    ]);
    let a_ip = ip_in(&h, "workload-A", "net1");
    assert!(addr.contains(&format!("inet {a_ip}/32")), "{addr}");
    let link = h.docker_ok(&["exec", "workload-A", "ip", "link", "show", "cali0"]);
    assert!(link.contains("link/ether ee:ee:ee:ee:ee:ee"), "{link}");
    let routes = h.docker_ok(&["exec", "workload-A", "ip", "route"]);
    assert!(
        routes.contains("default via 169.254.1.1 dev cali0"),
        "{routes}"
    );
    assert!(routes.contains("169.254.1.1 dev cali0"), "{routes}");

    wait_until(Duration::from_secs(10), "three workload endpoints", || {
        let wide = cluster.calicoctl_ok(&["get", "workloadEndpoints", "-o", "wide"], None);
        ["workload-A", "workload-B", "workload-C"]
            .iter()
            .all(|c| wide.contains(c))
    });
    let wide = cluster.calicoctl_ok(&["get", "workloadEndpoints", "-o", "wide"], None);
    let row = wide
        .lines()
        .find(|l| l.contains("workload-A"))
        .expect("a row for workload-A");
    for expected in [
        "calico-01",
        "libnetwork",
        &format!("{a_ip}/32"),
        "net1",
        "cali",
    ] {
        assert!(row.contains(expected), "{expected} missing from {row:?}");
    }
    assert!(assigned(&cluster, &a_ip));
}

#[test]
fn e2e_ipam_driver_names_subnets_and_fixed_addresses() {
    let cluster = one_host();
    let h = cluster.host(1);
    // The older tutorials' spelling of the IPAM driver.
    create_network(&h, "old", &["--ipam-driver", "calico"]);
    run_busybox(&h, "old-1", "old");
    assert!(ip_in(&h, "old-1", "old").starts_with("192.168."));

    create_network(&h, "pool", &["--subnet", "192.168.0.0/16"]);
    let refused = h.docker(&network_create_args(
        "nopool",
        &["--subnet", "10.77.0.0/16"],
    ));
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("The requested subnet must match the CIDR of a configured Calico IP Pool."),
        "{stderr}"
    );
    h.docker_ok(&[
        "run",
        "--net",
        "pool",
        "--ip",
        "192.168.250.250",
        "--name",
        "fixed",
        "-tid",
        "busybox",
    ]);
    assert_eq!(ip_in(&h, "fixed", "pool"), "192.168.250.250");
    run_busybox(&h, "pool-peer", "pool");
    h.docker_ok(&[
        "exec",
        "pool-peer",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "192.168.250.250",
    ]);

    // A profile applied before its network exists is kept as it is.
    let custom = "- apiVersion: v1\n  kind: profile\n  metadata:\n    name: later\n    labels:\n      role: custom\n";
    cluster.calicoctl_ok(&["apply", "-f", "-"], Some(custom));
    create_network(&h, "later", &[]);
    run_busybox(&h, "later-1", "later");
    wait_until(Duration::from_secs(10), "later-1's endpoint", || {
        cluster
            .calicoctl_ok(&["get", "wep", "-o", "wide"], None)
            .contains("later-1")
    });
    assert_eq!(
        cluster.calicoctl_ok(&["get", "profile", "later", "-o", "yaml"], None),
        "- apiVersion: v1\n  kind: profile\n  metadata:\n    labels:\n      role: custom\n    name: later\n  spec: {}"
    );
}

#[test]
fn e2e_hundred_containers_leave_nothing_behind() {
    let cluster = one_host();
    let h = cluster.host(1);
    create_network(&h, "churn", &[]);
    let names: Vec<String> = (0..100).map(|i| format!("churn-{i:03}")).collect();
    ten_at_a_time(&cluster, &names, |h, name| {
        h.docker_ok(&[
            "run", "-d", "--net", "churn", "--name", name, "busybox", "sleep", "600",
        ]);
    });
    let ips: Vec<String> = names.iter().map(|n| ip_in(&h, n, "churn")).collect();
    let distinct: HashSet<&String> = ips.iter().collect();
    assert_eq!(distinct.len(), 100, "an address was given twice: {ips:?}");

    ten_at_a_time(&cluster, &names, |h, name| {
        h.docker_ok(&["rm", "-f", name]);
    });
    wait_until(Duration::from_secs(30), "all links and routes gone", || {
        workload_links_and_routes(&h) == (vec![], vec![])
    });
    let left: Vec<&String> = ips.iter().filter(|ip| assigned(&cluster, ip)).collect();
    assert!(left.is_empty(), "addresses still allocated: {left:?}");
    assert_eq!(
        cluster.calicoctl_ok(&["get", "wep"], None),
        "NODE   ORCHESTRATOR   WORKLOAD   NAME   "
    );
}

#[test]
fn e2e_kill_and_restart_keeps_traffic_and_cleans_up_after_itself() {
    let cluster = one_host();
    let h = cluster.host(1);
    create_network(&h, "net1", &[]);
    for name in ["workload-A", "workload-B", "workload-C"] {
        run_busybox(&h, name, "net1");
    }
    let c_ip = ip_in(&h, "workload-C", "net1");
    let b_ip = ip_in(&h, "workload-B", "net1");
    wait_until(Duration::from_secs(10), "three endpoints", || {
        cluster.calicoctl_ok(&["get", "wep"], None).lines().count() == 4
    });

    h.node_kill();
    h.docker_ok(&["exec", "workload-A", "ping", "-c", "2", "-W", "2", &c_ip]);
    // Docker cannot reach the plugin while it is down; the container goes anyway.
    h.docker(&["rm", "-f", "workload-B"]);
    h.node_start();

    h.docker_ok(&["exec", "workload-A", "ping", "-c", "2", "-W", "2", &c_ip]);
    run_busybox(&h, "workload-D", "net1");
    h.docker_ok(&["exec", "workload-D", "ping", "-c", "2", "-W", "2", &c_ip]);
    let d_ip = ip_in(&h, "workload-D", "net1");
    assert_ne!(d_ip, c_ip);

    wait_until(
        Duration::from_secs(90),
        "workload-B's endpoint forgotten",
        || {
            !cluster
                .calicoctl_ok(&["get", "wep", "-o", "wide"], None)
                .contains("workload-B")
        },
    );
    wait_until(
        Duration::from_secs(30),
        "workload-B's address released",
        || b_ip == d_ip || !assigned(&cluster, &b_ip),
    );
    let (links, _) = workload_links_and_routes(&h);
    assert_eq!(links.len(), 3, "one link per live container: {links:?}");
    let endpoints = cluster.calicoctl_ok(&["get", "wep"], None);
    assert_eq!(endpoints.lines().count(), 4, "A, C and D: {endpoints}");
}

/// Sends one raw plugin request over the host's `calico.sock`; returns the status line and body.
fn plugin_call(socket: &Path, call: &str, body: &str) -> (String, String) {
    let mut stream = UnixStream::connect(socket).expect("connect to the plugin socket");
    // One write: the plugin may answer (a 404) and close before it reads a body sent later.
    let request = format!(
        "POST /{call} HTTP/1.1\r\nHost: plugin\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the reply");
    let status = response.lines().next().unwrap_or_default().to_string();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn e2e_malformed_plugin_requests_get_errors_and_change_nothing() {
    let cluster = one_host();
    let h = cluster.host(1);
    create_network(&h, "net1", &[]);
    run_busybox(&h, "web", "net1");
    let socket = h.plugins_dir().join("calico.sock");
    let before = (
        cluster.calicoctl_ok(&["get", "profile", "-o", "yaml"], None),
        cluster.calicoctl_ok(&["get", "wep", "-o", "yaml"], None),
        workload_links_and_routes(&h),
    );
    let cases = [
        ("NetworkDriver.CreateEndpoint", "{not json"),
        ("NetworkDriver.Join", r#"{"NetworkID": 5}"#),
        (
            "NetworkDriver.Join",
            r#"{"NetworkID":"0123456789abcdef","EndpointID":"fedcba9876543210fedcba","SandboxKey":"/x"}"#,
        ),
        (
            "NetworkDriver.Leave",
            r#"{"NetworkID":"n","EndpointID":"e"}"#,
        ),
        (
            "IpamDriver.RequestPool",
            r#"{"Pool":"10.99.0.0/16","V6":false}"#,
        ),
        (
            "IpamDriver.RequestAddress",
            r#"{"PoolID":"10.99.0.0/16","Address":""}"#,
        ),
        ("IpamDriver.RequestPool", r#"{"Pool":"not a cidr"}"#),
        ("NetworkDriver.NoSuchCall", "{}"),
    ];
    for (call, body) in cases {
        let (status, reply) = plugin_call(&socket, call, body);
        assert!(
            !status.contains(" 200 "),
            "{call} {body} should fail, got {status}"
        );
        let json: serde_json::Value = serde_json::from_str(&reply)
            .unwrap_or_else(|e| panic!("{call}: reply {reply:?} is not JSON: {e}"));
        assert!(
            json["Err"].as_str().is_some_and(|e| !e.is_empty()),
            "{call}: {reply}"
        );
    }
    let after = (
        cluster.calicoctl_ok(&["get", "profile", "-o", "yaml"], None),
        cluster.calicoctl_ok(&["get", "wep", "-o", "yaml"], None),
        workload_links_and_routes(&h),
    );
    assert_eq!(before, after);
}

#[test]
fn e2e_calicoctl_node_run_and_status() {
    let cluster = one_host();
    let h = cluster.host(1);
    h.node_stop();
    let calicoctl = calicoctl_beside(common::CALICO_NODE);
    let dir = h.dir();
    let env = [
        "DATASTORE_TYPE=sqlite".to_string(),
        format!(
            "SQLITE_PATH={}",
            cluster.sqlite_path().expect("a sqlite cluster").display()
        ),
        format!("DOCKER_HOST={}", h.docker_host()),
        format!("CALICO_RUN_DIR={}", dir.join("run").display()),
    ];
    let log_dir = dir.join("node-run-logs");
    let ctl = |args: &[&str]| {
        let mut argv: Vec<&str> = vec!["env"];
        argv.extend(env.iter().map(String::as_str));
        argv.push(&calicoctl);
        argv.extend(args);
        h.exec(&argv)
    };

    let stopped = ctl(&["node", "status"]);
    assert!(!stopped.status.success());
    assert_eq!(
        String::from_utf8_lossy(&stopped.stderr),
        "Calico process is not running.\n"
    );
    let run = ctl(&[
        "node",
        "run",
        "--name",
        "calico-01",
        "--log-dir",
        log_dir.to_str().expect("a UTF-8 path"),
    ]);
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.contains("Calico node started successfully"), "{out}");
    assert!(log_dir.join("calico-node.log").is_file());
    // calico-node tells which Engine it serves once Docker answers
    let engine = format!("Docker Engine: {} (API 1.", cluster.docker_version());
    let mut status = String::new();
    wait_until(
        Duration::from_secs(10),
        "node status to name the Docker Engine",
        || {
            status = String::from_utf8_lossy(&ctl(&["node", "status"]).stdout).into_owned();
            status.contains(&engine)
        },
    );
    assert!(
        status.starts_with("Calico process is running.\n\nIPv4 BGP status\n"),
        "{status}"
    );
    assert!(
        status
            .lines()
            .any(|line| line.starts_with("Docker Engine: ") && line.ends_with(')')),
        "{status}"
    );
    assert!(
        status
            .lines()
            .last()
            .is_some_and(|line| line.starts_with("Liveness: ")),
        "{status}"
    );
    let version = String::from_utf8_lossy(&ctl(&["version"]).stdout).into_owned();
    assert!(
        version.contains(&format!(
            "Docker Engine:     {} (API 1.",
            cluster.docker_version()
        )),
        "{version}"
    );
    create_network(&h, "net1", &[]);
    run_busybox(&h, "workload-A", "net1");
    assert!(ip_in(&h, "workload-A", "net1").starts_with("192.168."));
}
