//! calico-node end to end on two (and three) simulated Docker hosts sharing etcd: BGP between
//! the hosts' BIRDs (node-to-node mesh, or global `bgpPeer`s with the mesh off) carries workload
//! traffic across hosts; networks and names span hosts; concurrent starts never share an
//! address; and BIRD, calico-node, etcd and dockerd faults lose nothing.
//! Runs in the `e2e` nextest group (module `e2e_multihost`); see docs/harness.md.

mod common;

mod e2e_multihost {
    use std::time::{Duration, Instant};

    use calico_testkit::cluster::{Cluster, Datastore, Host};
    use calico_testkit::steps::{calicoctl_beside, create_network, ip_in, run_busybox};
    use calico_testkit::truth;
    use calico_testkit::verdict::{Probe, Verdict};

    use crate::common;

    const SESSION_TIMEOUT: Duration = Duration::from_secs(60);

    /// `calicoctl node status` run inside `host` (BIRD's socket at its default path, which the
    /// harness makes private to each host).
    fn node_status(host: &Host) -> String {
        let ctl = calicoctl_beside(common::CALICO_NODE);
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

    fn cluster(hosts: usize) -> Cluster {
        common::cluster(hosts, Datastore::Etcd)
    }

    /// Every host has an Established mesh session with every other host.
    fn full_mesh(cluster: &Cluster) -> bool {
        cluster.hosts().all(|h| {
            let status = node_status(&h);
            cluster
                .hosts()
                .filter(|o| o.index() != h.index())
                .all(|o| established_with(&status, &o.ip().to_string()))
        })
    }

    #[test]
    fn bgp_mesh_carries_cross_host_traffic_and_follows_the_mesh_setting() {
        let cluster = cluster(2);
        let h1 = cluster.host(1);
        let h2 = cluster.host(2);
        // Created on calico-01 only: calico-node shares it with calico-02.
        create_network(&h1, "net1", &[]);
        wait_for(&cluster, SESSION_TIMEOUT, "net1 on calico-02", || {
            has_network(&h2, "net1")
        });
        run_busybox(&h1, "workload-A", "net1");
        run_busybox(&h2, "workload-E", "net1");
        let e_ip = ip_in(&h2, "workload-E", "net1");
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
        let a_ip = ip_in(&h1, "workload-A", "net1");
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

        // Mesh off, global peers between the two hosts: traffic comes back over them.
        let peers = format!(
            "- apiVersion: v1\n  kind: bgpPeer\n  metadata:\n    peerIP: {ip1}\n    scope: global\n  spec:\n    asNumber: 64512\n\
             - apiVersion: v1\n  kind: bgpPeer\n  metadata:\n    peerIP: {ip2}\n    scope: global\n  spec:\n    asNumber: 64512\n"
        );
        cluster.calicoctl_ok(&["create", "-f", "-"], Some(&peers));
        let global_up = |h: &Host, peer: &str| {
            node_status(h).lines().any(|l| {
                l.contains(&format!("| {peer} "))
                    && l.contains("| global ")
                    && l.contains("Established")
            })
        };
        wait_for(
            &cluster,
            SESSION_TIMEOUT,
            "global peers Established",
            || global_up(&h1, &ip2) && global_up(&h2, &ip1),
        );
        wait_for(
            &cluster,
            SESSION_TIMEOUT,
            "A pings E over global peers",
            || ping(&h1, "workload-A", &e_ip),
        );
        cluster.calicoctl_ok(&["delete", "-f", "-"], Some(&peers));

        cluster.calicoctl_ok(&["config", "set", "nodeToNodeMesh", "on"], None);
        wait_for(&cluster, SESSION_TIMEOUT, "mesh sessions back", sessions_up);
        wait_for(&cluster, SESSION_TIMEOUT, "A pings E again", || {
            ping(&h1, "workload-A", &e_ip)
        });
        cluster.down();
    }

    /// "Security using Calico Profiles" across two hosts: the networks are created on
    /// calico-01 only; A, B, C run on calico-01, D and E on calico-02. Each host's fabric
    /// interface is a host endpoint with no policy (drop all but the failsafe ports): the
    /// datastore, BGP and the workloads' traffic go on as without it.
    #[test]
    fn security_using_calico_profiles_across_hosts() {
        let cluster = cluster(2);
        let h1 = cluster.host(1);
        let h2 = cluster.host(2);
        for host in [&h1, &h2] {
            let node = host.name();
            cluster.calicoctl_ok(
                &["apply", "-f", "-"],
                Some(&format!(
                    "- apiVersion: v1\n  kind: hostEndpoint\n  metadata: {{name: fabric, node: {node}}}\n  spec: {{interfaceName: eth0}}\n"
                )),
            );
        }
        wait_for(
            &cluster,
            SESSION_TIMEOUT,
            "host endpoints programmed",
            || {
                [&h1, &h2].iter().all(|h| {
                    let out = h.exec(&["nft", "list", "map", "inet", "calico", "from-hep"]);
                    String::from_utf8_lossy(&out.stdout).contains("\"eth0\"")
                })
            },
        );
        for net in ["net1", "net2", "net3"] {
            create_network(&h1, net, &[]);
        }
        wait_for(&cluster, SESSION_TIMEOUT, "net1-net3 on calico-02", || {
            ["net1", "net2", "net3"].iter().all(|n| has_network(&h2, n))
        });
        for (name, net) in [
            ("workload-A", "net1"),
            ("workload-B", "net2"),
            ("workload-C", "net1"),
        ] {
            run_busybox(&h1, name, net);
        }
        for (name, net) in [("workload-D", "net3"), ("workload-E", "net1")] {
            run_busybox(&h2, name, net);
        }
        h1.docker_ok(&["exec", "workload-A", "ping", "-c", "4", "workload-C.net1"]);
        let d_ip = ip_in(&h2, "workload-D", "net3");
        let b_ip = ip_in(&h1, "workload-B", "net2");
        wait_for(&cluster, SESSION_TIMEOUT, "A pings E across hosts", || {
            ping(&h1, "workload-A", "workload-E.net1")
        });
        // The tutorial's command, by name across hosts (calico-node's DNS on calico-01).
        h1.docker_ok(&["exec", "workload-A", "ping", "-c", "4", "workload-E.net1"]);
        h2.docker_ok(&["exec", "workload-E", "ping", "-c", "4", "workload-A.net1"]);
        // A name under a Calico network that no container has: calico-node's NXDOMAIN.
        let ghost = h1.docker(&["exec", "workload-A", "nslookup", "ghost.net1"]);
        let answer = String::from_utf8_lossy(&ghost.stdout);
        assert!(
            answer.contains("can't find ghost.net1: NXDOMAIN"),
            "{answer}"
        );
        assert!(!ping(&h1, "workload-A", &b_ip), "A reached B");
        assert!(!ping(&h1, "workload-A", &d_ip), "A reached D across hosts");
        let a_ip = ip_in(&h1, "workload-A", "net1");
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

    #[test]
    fn three_hosts_mesh_and_reach_each_other() {
        let cluster = cluster(3);
        cluster.create_calico_network(1, "net1");
        let names = ["w1", "w2", "w3"];
        for (k, name) in names.iter().enumerate() {
            run_busybox(&cluster.host(k + 1), name, "net1");
        }
        wait_for(&cluster, SESSION_TIMEOUT, "a full mesh of 3", || {
            full_mesh(&cluster)
        });
        let placed: Vec<(&str, usize)> = names.iter().zip(1..).map(|(n, k)| (*n, k)).collect();
        let mut table = Vec::new();
        for from in names {
            for to in names.iter().filter(|to| **to != from) {
                table.push((Probe::icmp(from, to), Verdict::Allow));
            }
        }
        truth::check_within(&cluster, &placed, &table, SESSION_TIMEOUT);
        cluster.down();
    }

    #[test]
    fn fifty_containers_at_once_on_each_host_get_distinct_addresses_from_own_blocks() {
        const PER_HOST: usize = 50;
        const THREADS_PER_HOST: usize = 10;
        let cluster = cluster(2);
        cluster.create_calico_network(1, "net1");
        std::thread::scope(|s| {
            for k in 1..=2 {
                for t in 0..THREADS_PER_HOST {
                    let cluster = &cluster;
                    s.spawn(move || {
                        let host = cluster.host(k);
                        for i in (t..PER_HOST).step_by(THREADS_PER_HOST) {
                            host.docker_ok(&[
                                "run",
                                "-d",
                                "--net",
                                "net1",
                                "--name",
                                &format!("c{k}-{i:02}"),
                                "busybox",
                                "sleep",
                                "3600",
                            ]);
                        }
                    });
                }
            }
        });
        let mut seen = std::collections::HashMap::new();
        let mut blocks = [
            std::collections::BTreeSet::new(),
            std::collections::BTreeSet::new(),
        ];
        for host in cluster.hosts() {
            let listing =
                host.docker_ok(&["ps", "--format", "{{.Names}}", "--filter", "status=running"]);
            assert_eq!(listing.lines().count(), PER_HOST, "{listing}");
            for name in listing.lines() {
                let ip = ip_in(&host, name, "net1");
                if let Some(other) = seen.insert(ip.clone(), name.to_string()) {
                    panic!("{ip} was given to both {other} and {name}");
                }
                let shown = cluster.calicoctl_ok(&["ipam", "show", "--ip", &ip], None);
                assert!(
                    shown.contains(&format!("node: {}", host.name())),
                    "{name} on {}: {shown}",
                    host.name()
                );
                let block = shown
                    .split_whitespace()
                    .skip_while(|w| *w != "block")
                    .nth(1)
                    .unwrap_or_else(|| panic!("no block in {shown:?}"))
                    .to_string();
                blocks[host.index() - 1].insert(block);
            }
        }
        assert_eq!(seen.len(), 2 * PER_HOST);
        assert!(
            blocks[0].is_disjoint(&blocks[1]),
            "the hosts share blocks: {blocks:?}"
        );
        let weps = cluster.calicoctl_ok(&["get", "wep"], None);
        assert_eq!(
            weps.lines().filter(|l| l.contains("libnetwork")).count(),
            2 * PER_HOST,
            "{weps}"
        );
        cluster.down();
    }

    /// The containers of [`fault_cluster`] and where they run.
    const FAULT_PLACED: [(&str, usize); 3] =
        [("workload-A", 1), ("workload-E", 2), ("workload-X", 2)];

    /// Two hosts with A (net1) on calico-01, E (net1) and X (net2) on calico-02 and the mesh
    /// up; returns the verdicts that must hold between them.
    fn fault_cluster() -> (Cluster, Vec<(Probe, Verdict)>) {
        let cluster = cluster(2);
        cluster.create_calico_network(1, "net1");
        cluster.create_calico_network(1, "net2");
        run_busybox(&cluster.host(1), "workload-A", "net1");
        run_busybox(&cluster.host(2), "workload-E", "net1");
        run_busybox(&cluster.host(2), "workload-X", "net2");
        let table = vec![
            (Probe::tcp("workload-A", "workload-E", 8080), Verdict::Allow),
            (Probe::icmp("workload-E", "workload-A"), Verdict::Allow),
            (Probe::icmp("workload-A", "workload-X"), Verdict::Deny),
            (Probe::tcp("workload-X", "workload-A", 8080), Verdict::Deny),
        ];
        wait_for(&cluster, SESSION_TIMEOUT, "the mesh", || {
            full_mesh(&cluster)
        });
        (cluster, table)
    }

    #[test]
    fn killed_bird_and_restarted_calico_node_keep_cross_host_traffic() {
        let (cluster, table) = fault_cluster();
        let placed = FAULT_PLACED;
        let (h1, h2) = (cluster.host(1), cluster.host(2));
        let _listeners = truth::start_listeners(&cluster, &placed, &[8080], &[]);
        truth::check_within(&cluster, &placed, &table, SESSION_TIMEOUT);

        // BIRD killed on calico-02: calico-node starts another, the routes stay or come back.
        let old = h2.bird_pid().expect("calico-02 runs BIRD");
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &old.to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        wait_for(&cluster, SESSION_TIMEOUT, "a new BIRD on calico-02", || {
            h2.bird_pid().is_some_and(|pid| pid != old)
        });
        wait_for(&cluster, SESSION_TIMEOUT, "the mesh back", || {
            full_mesh(&cluster)
        });
        truth::check_within(&cluster, &placed, &table, SESSION_TIMEOUT);

        // calico-node restarted on calico-02: traffic and policy hold while it is down, and
        // calico-01 is untouched (same BIRD, same nftables table, its rule handles compared
        // without the counters, which the probes move: `-s`).
        let table_of =
            |h: &Host| h.exec_ok(&["nft", "-a", "-s", "list", "table", "inet", "calico"]);
        let h1_table = table_of(&h1);
        let h1_bird = h1.bird_pid();
        h2.node_stop();
        truth::check(&cluster, &placed, &table);
        h2.node_start();
        wait_for(
            &cluster,
            SESSION_TIMEOUT,
            "the mesh after the restart",
            || full_mesh(&cluster),
        );
        truth::check(&cluster, &placed, &table);
        assert_eq!(table_of(&h1), h1_table, "calico-01's table changed");
        assert_eq!(h1.bird_pid(), h1_bird, "calico-01's BIRD restarted");
        cluster.down();
    }

    #[test]
    fn etcd_down_for_30_s_keeps_traffic_and_policy_and_everything_resumes() {
        const OUTAGE: Duration = Duration::from_secs(30);
        let (cluster, table) = fault_cluster();
        let placed = FAULT_PLACED;
        let (h1, h2) = (cluster.host(1), cluster.host(2));
        let _listeners = truth::start_listeners(&cluster, &placed, &[8080], &[]);
        truth::check_within(&cluster, &placed, &table, SESSION_TIMEOUT);

        cluster.etcd_stop();
        let since = Instant::now();
        let refused = h1.docker(&["run", "--net", "net1", "--name", "late", "-tid", "busybox"]);
        assert!(!refused.status.success(), "docker run worked without etcd");
        let why = String::from_utf8_lossy(&refused.stderr).to_string();
        assert!(why.contains("datastore"), "unclear error: {why}");
        while since.elapsed() < OUTAGE {
            truth::check(&cluster, &placed, &table);
        }
        cluster.etcd_start();

        // Back: new containers start and are reachable across hosts; policy follows changes.
        h1.docker(&["rm", "-f", "late"]);
        let mut attempt = 0;
        wait_for(
            &cluster,
            SESSION_TIMEOUT,
            "docker run to work again",
            || {
                attempt += 1;
                let name = format!("late-{attempt}");
                let out = h1.docker(&["run", "--net", "net1", "--name", &name, "-tid", "busybox"]);
                if !out.status.success() {
                    h1.docker(&["rm", "-f", &name]);
                }
                out.status.success()
            },
        );
        let late = format!("late-{attempt}");
        let mut placed = placed.to_vec();
        placed.push((late.as_str(), 1));
        let mut table = table.clone();
        table.push((Probe::icmp("workload-E", &late), Verdict::Allow));
        table.push((Probe::icmp("workload-X", &late), Verdict::Deny));
        truth::check_within(&cluster, &placed, &table, SESSION_TIMEOUT);
        cluster.calicoctl_ok(
            &["apply", "-f", "-"],
            Some(
                "- apiVersion: v1\n  kind: profile\n  metadata:\n    name: net2\n  spec:\n    ingress:\n    - action: allow\n    egress:\n    - action: allow\n",
            ),
        );
        truth::check_within(
            &cluster,
            &placed,
            &[(Probe::icmp("workload-A", "workload-X"), Verdict::Allow)],
            SESSION_TIMEOUT,
        );
        assert!(h2.node_pid().is_some(), "calico-node on calico-02 died");
        cluster.down();
    }

    #[test]
    fn dockerd_restart_reconciles_its_endpoints() {
        let (cluster, table) = fault_cluster();
        let placed = FAULT_PLACED;
        let (h1, h2) = (cluster.host(1), cluster.host(2));
        {
            let _listeners = truth::start_listeners(&cluster, &placed, &[8080], &[]);
            truth::check_within(&cluster, &placed, &table, SESSION_TIMEOUT);
        }
        h2.docker_ok(&[
            "run",
            "--restart",
            "always",
            "--net",
            "net1",
            "--name",
            "workload-R",
            "-tid",
            "busybox",
        ]);
        let old: Vec<String> = ["workload-E", "workload-R"]
            .iter()
            .map(|c| ip_in(&h2, c, "net1"))
            .chain([ip_in(&h2, "workload-X", "net2")])
            .collect();

        h2.dockerd_restart();
        // E and X stay stopped, R comes back: only R has an endpoint and an address.
        wait_for(
            &cluster,
            SESSION_TIMEOUT,
            "calico-02's endpoints reconciled",
            || {
                let weps = cluster.calicoctl_ok(&["get", "wep", "--node", "calico-02"], None);
                let ours: Vec<&str> = weps.lines().filter(|l| l.contains("libnetwork")).collect();
                ours.len() == 1 && ours[0].contains("workload-R")
            },
        );
        let r_ip = ip_in(&h2, "workload-R", "net1");
        for ip in &old {
            let shown = cluster.calicoctl_ok(&["ipam", "show", "--ip", ip], None);
            assert!(
                *ip == r_ip || shown.contains("is not assigned"),
                "{ip} is still assigned after its container stopped: {shown}"
            );
        }
        h2.docker_ok(&["start", "workload-E"]);
        let e_ip = ip_in(&h2, "workload-E", "net1");
        wait_for(&cluster, SESSION_TIMEOUT, "A pings E and R again", || {
            ping(&h1, "workload-A", &e_ip) && ping(&h1, "workload-A", &r_ip)
        });
        cluster.down();
    }
}
