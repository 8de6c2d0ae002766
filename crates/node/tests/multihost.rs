//! calico-node end to end on two simulated Docker hosts sharing etcd: BGP between the hosts'
//! BIRDs (node-to-node mesh) carries workload traffic across hosts, and `calicoctl config set
//! nodeToNodeMesh off|on` takes the sessions (and the routes) down and up again.
//! Runs in the `e2e` nextest group (module `e2e_multihost`); see docs/harness.md.

mod e2e_multihost {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use calico_testkit::cluster::{Cluster, Datastore, Host, Options};

    const SESSION_TIMEOUT: Duration = Duration::from_secs(60);

    fn calicoctl() -> String {
        Path::new(env!("CARGO_BIN_EXE_calico-node"))
            .parent()
            .expect("the binaries' directory")
            .join("calicoctl")
            .to_str()
            .expect("a UTF-8 path")
            .to_string()
    }

    /// `calicoctl node status` run inside `host` (BIRD's socket at its default path, which the
    /// harness makes private to each host).
    fn node_status(host: &Host) -> String {
        let ctl = calicoctl();
        let out = host.exec(&[&ctl, "node", "status"]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Whether the status table shows an Established mesh session with `peer`.
    fn established_with(status: &str, peer: &str) -> bool {
        status.lines().any(|l| {
            l.contains(&format!("| {peer} "))
                && l.contains("node-to-node mesh")
                && l.contains("Established")
        })
    }

    fn ip_of(host: &Host, container: &str, network: &str) -> String {
        let format = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
        host.docker_ok(&["inspect", "-f", &format, container])
            .trim()
            .to_string()
    }

    fn has_network(host: &Host, name: &str) -> bool {
        host.docker_ok(&["network", "ls", "--format", "{{.Name}}"])
            .lines()
            .any(|n| n == name)
    }

    fn ping(host: &Host, from: &str, to: &str) -> bool {
        host.docker(&["exec", from, "ping", "-c", "1", "-W", "1", to])
            .status
            .success()
    }

    fn wait_for(cluster: &Cluster, timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
        let started = Instant::now();
        let deadline = started + timeout;
        while !cond() {
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}\n{}",
                    cluster
                        .hosts()
                        .map(|h| format!("{}:\n{}", h.name(), node_status(&h)))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("{what}: {:.1} s", started.elapsed().as_secs_f64());
    }

    #[test]
    fn bgp_mesh_carries_cross_host_traffic_and_follows_the_mesh_setting() {
        let cluster = Cluster::up(Options {
            hosts: 2,
            datastore: Datastore::Etcd,
            calico_node: Some(env!("CARGO_BIN_EXE_calico-node").into()),
            ..Options::default()
        });
        let h1 = cluster.host(1);
        let h2 = cluster.host(2);
        // Created on calico-01 only: calico-node shares it with calico-02.
        h1.docker_ok(&[
            "network",
            "create",
            "--driver",
            "calico",
            "--ipam-driver",
            "calico-ipam",
            "net1",
        ]);
        wait_for(&cluster, SESSION_TIMEOUT, "net1 on calico-02", || {
            has_network(&h2, "net1")
        });
        h1.docker_ok(&[
            "run",
            "--net",
            "net1",
            "--name",
            "workload-A",
            "-tid",
            "busybox",
        ]);
        h2.docker_ok(&[
            "run",
            "--net",
            "net1",
            "--name",
            "workload-E",
            "-tid",
            "busybox",
        ]);
        let e_ip = ip_of(&h2, "workload-E", "net1");
        assert!(e_ip.starts_with("192.168."), "{e_ip}");

        let (ip1, ip2) = (h1.ip().to_string(), h2.ip().to_string());
        let sessions_up = || {
            established_with(&node_status(&h1), &ip2) && established_with(&node_status(&h2), &ip1)
        };
        wait_for(
            &cluster,
            SESSION_TIMEOUT,
            "mesh sessions Established",
            sessions_up,
        );
        wait_for(&cluster, SESSION_TIMEOUT, "A pings E across hosts", || {
            ping(&h1, "workload-A", &e_ip)
        });
        let bird_routes = |h: &Host| h.exec_ok(&["ip", "route", "show", "proto", "bird"]);
        assert!(
            bird_routes(&h1).contains(&format!("via {ip2}")),
            "calico-01 has no BGP route via calico-02:\n{}",
            bird_routes(&h1)
        );
        let a_ip = ip_of(&h1, "workload-A", "net1");
        assert!(ping(&h2, "workload-E", &a_ip), "E cannot ping A back");

        cluster.calicoctl_ok(&["config", "set", "nodeToNodeMesh", "off"], None);
        assert_eq!(
            cluster.calicoctl_ok(&["config", "get", "nodeToNodeMesh"], None),
            "off"
        );
        wait_for(&cluster, SESSION_TIMEOUT, "mesh sessions gone", || {
            let (s1, s2) = (node_status(&h1), node_status(&h2));
            !s1.contains(&ip2) && !s2.contains(&ip1) && s1.contains("No IPv4 peers found.")
        });
        wait_for(&cluster, SESSION_TIMEOUT, "cross-host ping failing", || {
            !ping(&h1, "workload-A", &e_ip)
        });
        assert!(
            !bird_routes(&h1).contains(&format!("via {ip2}")),
            "calico-01 kept a BGP route via calico-02:\n{}",
            bird_routes(&h1)
        );

        cluster.calicoctl_ok(&["config", "set", "nodeToNodeMesh", "on"], None);
        wait_for(&cluster, SESSION_TIMEOUT, "mesh sessions back", sessions_up);
        wait_for(&cluster, SESSION_TIMEOUT, "A pings E again", || {
            ping(&h1, "workload-A", &e_ip)
        });
        cluster.down();
    }

    /// "Security using Calico Profiles" across two hosts: the networks are created on
    /// calico-01 only; A, B, C run on calico-01, D and E on calico-02.
    #[test]
    fn security_using_calico_profiles_across_hosts() {
        let cluster = Cluster::up(Options {
            hosts: 2,
            datastore: Datastore::Etcd,
            calico_node: Some(env!("CARGO_BIN_EXE_calico-node").into()),
            ..Options::default()
        });
        let h1 = cluster.host(1);
        let h2 = cluster.host(2);
        for net in ["net1", "net2", "net3"] {
            h1.docker_ok(&[
                "network",
                "create",
                "--driver",
                "calico",
                "--ipam-driver",
                "calico-ipam",
                net,
            ]);
        }
        wait_for(&cluster, SESSION_TIMEOUT, "net1-net3 on calico-02", || {
            ["net1", "net2", "net3"].iter().all(|n| has_network(&h2, n))
        });
        for (name, net) in [
            ("workload-A", "net1"),
            ("workload-B", "net2"),
            ("workload-C", "net1"),
        ] {
            h1.docker_ok(&["run", "--net", net, "--name", name, "-tid", "busybox"]);
        }
        for (name, net) in [("workload-D", "net3"), ("workload-E", "net1")] {
            h2.docker_ok(&["run", "--net", net, "--name", name, "-tid", "busybox"]);
        }
        h1.docker_ok(&["exec", "workload-A", "ping", "-c", "4", "workload-C.net1"]);
        let e_ip = ip_of(&h2, "workload-E", "net1");
        let d_ip = ip_of(&h2, "workload-D", "net3");
        let b_ip = ip_of(&h1, "workload-B", "net2");
        wait_for(&cluster, SESSION_TIMEOUT, "A pings E across hosts", || {
            ping(&h1, "workload-A", &e_ip)
        });
        assert!(!ping(&h1, "workload-A", &b_ip), "A reached B");
        assert!(!ping(&h1, "workload-A", &d_ip), "A reached D across hosts");
        let a_ip = ip_of(&h1, "workload-A", "net1");
        assert!(ping(&h2, "workload-E", &a_ip), "E cannot ping A back");
        assert!(!ping(&h2, "workload-D", &a_ip), "D reached A across hosts");

        // A network removed on one host stays removed there; the other keeps its copy.
        h2.docker_ok(&["rm", "-f", "workload-D"]);
        h2.docker_ok(&["network", "rm", "net3"]);
        let until = Instant::now() + Duration::from_secs(6);
        while Instant::now() < until {
            assert!(!has_network(&h2, "net3"), "net3 came back on calico-02");
            std::thread::sleep(Duration::from_millis(250));
        }
        assert!(has_network(&h1, "net3"));
        cluster.down();
    }
}
