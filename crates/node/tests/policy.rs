//! Policy end to end on one simulated Docker host: the tutorials' verdicts and truth tables
//! whose expected side comes from the independent evaluator (`calico_testkit::verdict`).

mod common;

mod e2e {
    use std::time::Duration;

    use calico_testkit::cluster::{Cluster, Datastore};
    use calico_testkit::steps::{run_busybox, wait_for_endpoints};
    use calico_testkit::truth::{self, world};
    use calico_testkit::tutorial::{POLICIES, PROFILES_WITH_LABELS, PROFILES_WITH_RULES};
    use calico_testkit::verdict::{Probe, Verdict};

    use crate::common;

    const TCP_PORTS: [u16; 2] = [3306, 8080];
    /// How long BGP may take to bring routes between hosts (sessions, then the kernel scan).
    const ROUTES_TIMEOUT: Duration = Duration::from_secs(60);
    const UDP_PORT: u16 = 5353;

    fn one_host() -> Cluster {
        common::cluster(1, Datastore::Sqlite)
    }

    /// Starts containers (name, network), each on host `host_of(name)`, and waits until
    /// calicoctl shows all their endpoints.
    fn containers(cluster: &Cluster, host_of: fn(&str) -> usize, specs: &[(&str, &str)]) {
        for (name, net) in specs {
            run_busybox(&cluster.host(host_of(name)), name, net);
        }
        let names: Vec<&str> = specs.iter().map(|(name, _)| *name).collect();
        wait_for_endpoints(
            cluster,
            Duration::from_secs(20),
            "every workload endpoint",
            &names,
        );
    }

    /// Every probe (ICMP, both TCP ports, UDP) between every ordered pair of `names`.
    fn all_probes(names: &[&str]) -> Vec<Probe> {
        Probe::between(names, names, &TCP_PORTS, &[UDP_PORT])
    }

    fn on_host(names: &[&'static str]) -> Vec<(&'static str, usize)> {
        names.iter().map(|n| (*n, 1)).collect()
    }

    #[test]
    fn security_using_calico_profiles() {
        let cluster = one_host();
        let h = cluster.host(1);
        for net in ["net1", "net2", "net3"] {
            cluster.create_calico_network(1, net);
        }
        containers(
            &cluster,
            |_| 1,
            &[
                ("workload-A", "net1"),
                ("workload-B", "net2"),
                ("workload-C", "net1"),
            ],
        );
        h.docker_ok(&["exec", "workload-A", "ping", "-c", "4", "workload-C.net1"]);
        h.docker_ok(&["exec", "workload-C", "ping", "-c", "4", "workload-A.net1"]);
        let names = ["workload-A", "workload-B", "workload-C"];
        let placed = on_host(&names);
        truth::check(
            &cluster,
            &placed,
            &[
                (Probe::icmp("workload-A", "workload-C"), Verdict::Allow),
                (Probe::icmp("workload-C", "workload-A"), Verdict::Allow),
                (Probe::icmp("workload-A", "workload-B"), Verdict::Deny),
                (Probe::icmp("workload-B", "workload-A"), Verdict::Deny),
                (Probe::icmp("workload-B", "workload-C"), Verdict::Deny),
            ],
        );
    }

    /// The tutorial's promises, independent of the evaluator.
    fn tutorial_expectations() -> Vec<(Probe, Verdict)> {
        let mut table = vec![
            (Probe::tcp("fe1", "db1", 3306), Verdict::Allow),
            (Probe::tcp("fe2", "db2", 3306), Verdict::Allow),
            (Probe::tcp("fe1", "db1", 8080), Verdict::Deny),
            (Probe::icmp("fe1", "db1"), Verdict::Deny),
            (Probe::udp("fe1", "db1", UDP_PORT), Verdict::Deny),
            (Probe::tcp("db1", "fe1", 3306), Verdict::Deny),
            (Probe::icmp("db1", "fe1"), Verdict::Deny),
            (Probe::icmp("fe1", "fe2"), Verdict::Deny),
            (Probe::tcp("fe1", "fe2", 3306), Verdict::Deny),
        ];
        for (a, b) in [("db1", "db2"), ("db2", "db1")] {
            table.push((Probe::icmp(a, b), Verdict::Allow));
            table.push((Probe::tcp(a, b, 8080), Verdict::Allow));
            table.push((Probe::udp(a, b, UDP_PORT), Verdict::Allow));
        }
        table
    }

    #[test]
    fn security_using_calico_profiles_and_policy() {
        profiles_and_policy_tutorial(&one_host(), |_| 1);
    }

    /// The same tutorial with frontends, databases and backups spread over two hosts (networks
    /// created on calico-01 only): the same verdicts.
    #[test]
    fn security_using_calico_profiles_and_policy_across_hosts() {
        let cluster = common::cluster(2, Datastore::Etcd);
        profiles_and_policy_tutorial(&cluster, |name| match name {
            "db1" | "fe2" | "dbb1" => 1,
            _ => 2,
        });
    }

    /// "Security using Calico Profiles and Policy": rules in profiles, then labels in profiles
    /// and rules in policies, then the multiple-networks extension; `host_of` places each
    /// container.
    fn profiles_and_policy_tutorial(cluster: &Cluster, host_of: fn(&str) -> usize) {
        let place = |names: &[&'static str]| -> Vec<(&'static str, usize)> {
            names.iter().map(|n| (*n, host_of(n))).collect()
        };
        cluster.create_calico_network(1, "database");
        cluster.create_calico_network(1, "frontend");
        containers(
            cluster,
            host_of,
            &[
                ("db1", "database"),
                ("db2", "database"),
                ("fe1", "frontend"),
                ("fe2", "frontend"),
            ],
        );
        let names = ["db1", "db2", "fe1", "fe2"];
        let placed = place(&names);
        let _listeners = truth::start_listeners(cluster, &placed, &TCP_PORTS, &[UDP_PORT]);

        // a) rules in the profiles (the first check waits for routes between hosts)
        let applied = cluster.calicoctl_ok(&["apply", "-f", "-"], Some(PROFILES_WITH_RULES));
        assert_eq!(applied, "Successfully applied 2 'profile' resource(s)");
        truth::check_within(cluster, &placed, &tutorial_expectations(), ROUTES_TIMEOUT);
        truth::check(cluster, &placed, &world(cluster).table(&all_probes(&names)));

        // b) labels in the profiles, rules in two global policies
        cluster.calicoctl_ok(&["apply", "-f", "-"], Some(PROFILES_WITH_LABELS));
        let created = cluster.calicoctl_ok(&["create", "-f", "-"], Some(POLICIES));
        assert_eq!(created, "Successfully created 2 'policy' resource(s)");
        truth::check(cluster, &placed, &tutorial_expectations());
        truth::check(cluster, &placed, &world(cluster).table(&all_probes(&names)));

        // Multiple networks: backups, and database-backup for databases that back up.
        cluster.create_calico_network(1, "backups");
        cluster.create_calico_network(1, "database-backup");
        cluster.calicoctl_ok(&["apply", "-f", "-"], Some(BACKUP_PROFILES_AND_POLICY));
        containers(
            cluster,
            host_of,
            &[("bk1", "backups"), ("dbb1", "database-backup")],
        );
        let names = ["db1", "fe1", "bk1", "dbb1"];
        let placed = place(&names);
        let _more =
            truth::start_listeners(cluster, &place(&["bk1", "dbb1"]), &TCP_PORTS, &[UDP_PORT]);
        truth::check(
            cluster,
            &placed,
            &[
                (Probe::tcp("fe1", "dbb1", 3306), Verdict::Allow),
                (Probe::tcp("fe1", "dbb1", 8080), Verdict::Deny),
                (Probe::icmp("dbb1", "bk1"), Verdict::Allow),
                (Probe::icmp("bk1", "dbb1"), Verdict::Allow),
                (Probe::icmp("dbb1", "db1"), Verdict::Allow),
                (Probe::icmp("bk1", "db1"), Verdict::Deny),
                (Probe::icmp("fe1", "bk1"), Verdict::Deny),
            ],
        );
        truth::check(cluster, &placed, &world(cluster).table(&all_probes(&names)));
    }

    const BACKUP_PROFILES_AND_POLICY: &str = "\
- apiVersion: v1
  kind: profile
  metadata:
    name: backups
    labels:
      backup: 'true'
- apiVersion: v1
  kind: profile
  metadata:
    name: database-backup
    labels:
      role: database
      backup: 'true'
- apiVersion: v1
  kind: policy
  metadata:
    name: backupnetwork
  spec:
    selector: backup == 'true'
    ingress:
    - action: allow
      source:
        selector: backup == 'true'
    egress:
    - action: allow
      destination:
        selector: backup == 'true'
";
}

mod e2e_faults {
    use std::time::Duration;

    use calico_testkit::cluster::{wait_until, Cluster, Datastore, Host};
    use calico_testkit::steps::{create_network, only_ip, run_busybox, wait_for_endpoints};
    use calico_testkit::truth;
    use calico_testkit::verdict::{Probe, Verdict};

    use crate::common;

    fn one_host() -> Cluster {
        common::cluster(1, Datastore::Sqlite)
    }

    fn ip_of(cluster: &Cluster, container: &str) -> String {
        only_ip(&cluster.host(1), container)
    }

    /// `ip addr VERB ADDRESS dev cali0` in container wx.
    fn wx_ip_addr(h: &Host, verb: &str, address: &str) {
        h.docker_ok(&["exec", "wx", "ip", "addr", verb, address, "dev", "cali0"]);
    }

    /// Two networks: A and C in net1 (allowed to each other), X in net2 (isolated), X with
    /// NET_ADMIN so it can change its addresses.
    fn three_containers(cluster: &Cluster) {
        let h = cluster.host(1);
        for net in ["net1", "net2"] {
            create_network(&h, net, &[]);
        }
        run_busybox(&h, "wa", "net1");
        run_busybox(&h, "wc", "net1");
        h.docker_ok(&[
            "run",
            "--net",
            "net2",
            "--cap-add",
            "NET_ADMIN",
            "--name",
            "wx",
            "-tid",
            "busybox",
        ]);
        wait_for_endpoints(
            cluster,
            Duration::from_secs(20),
            "three endpoints",
            &["wa", "wc", "wx"],
        );
    }

    #[test]
    fn spoofed_and_changed_source_addresses_reach_nothing_new() {
        let cluster = one_host();
        let h = cluster.host(1);
        three_containers(&cluster);
        let placed = [("wa", 1), ("wc", 1), ("wx", 1)];
        let _listeners = truth::start_listeners(&cluster, &placed, &[8080], &[]);
        truth::check(
            &cluster,
            &placed,
            &[
                (Probe::tcp("wa", "wc", 8080), Verdict::Allow),
                (Probe::tcp("wx", "wc", 8080), Verdict::Deny),
            ],
        );
        let (a_ip, c_ip) = (ip_of(&cluster, "wa"), ip_of(&cluster, "wc"));
        // X pretends to be A: A's address as a second address, used as the source.
        wx_ip_addr(&h, "add", &format!("{a_ip}/32"));
        let spoofed = h.docker(&[
            "exec", "wx", "ping", "-c", "2", "-W", "1", "-I", &a_ip, &c_ip,
        ]);
        assert!(!spoofed.status.success(), "a ping from A's address left X");
        let connect = h.docker(&[
            "exec",
            "wx",
            "sh",
            "-c",
            &format!("echo | nc -w 1 -s {a_ip} {c_ip} 8080"),
        ]);
        assert!(
            !String::from_utf8_lossy(&connect.stdout).contains("ok"),
            "a TCP connection from A's address reached C"
        );
        // X moves to a fresh address of the pool.
        let x_ip = ip_of(&cluster, "wx");
        wx_ip_addr(&h, "del", &format!("{x_ip}/32"));
        wx_ip_addr(&h, "add", "192.168.222.222/32");
        let moved = h.docker(&["exec", "wx", "ping", "-c", "2", "-W", "1", &c_ip]);
        assert!(
            !moved.status.success(),
            "X reached C from an address it was not given"
        );
        truth::check(
            &cluster,
            &[("wa", 1), ("wc", 1)],
            &[(Probe::tcp("wa", "wc", 8080), Verdict::Allow)],
        );
    }

    #[test]
    fn kill_dash_nine_keeps_policy_and_restart_does_not_rewrite_the_table() {
        let cluster = one_host();
        let h = cluster.host(1);
        three_containers(&cluster);
        let placed = [("wa", 1), ("wc", 1), ("wx", 1)];
        let _listeners = truth::start_listeners(&cluster, &placed, &[8080], &[]);
        let table = [
            (Probe::tcp("wa", "wc", 8080), Verdict::Allow),
            (Probe::icmp("wc", "wa"), Verdict::Allow),
            (Probe::tcp("wx", "wc", 8080), Verdict::Deny),
            (Probe::icmp("wa", "wx"), Verdict::Deny),
        ];
        truth::check(&cluster, &placed, &table);
        // Rule handles, without the counters the probes move (`-s`, stateless).
        let handles = || h.exec_ok(&["nft", "-a", "-s", "list", "table", "inet", "calico"]);
        let before = handles();

        h.node_kill();
        truth::check(&cluster, &placed, &table);
        h.node_start();
        wait_until(Duration::from_secs(30), "calico-node's first sync", || {
            h.node_log()
                .contains("nftables table already matches the datastore; nothing to write")
        });
        assert_eq!(handles(), before, "the restart rewrote the table");
        truth::check(&cluster, &placed, &table);
    }
}
