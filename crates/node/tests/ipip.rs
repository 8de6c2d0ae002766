//! IPIP honesty end to end on one simulated Docker host: a default pool created with
//! `CALICO_IPV4POOL_IPIP=always` is reported once in calico-node's log and in `calicoctl node
//! status`, not again at later passes, and no more once the pool's ipip is off.
//! Runs in the `e2e` nextest group (module `e2e_ipip`); see docs/harness.md.

mod e2e_ipip {
    use std::time::Duration;

    use calico_testkit::cluster::{wait_until, Cluster, Datastore, Host, Options};
    use calico_testkit::steps::calicoctl_beside;

    /// This crate's calico-node (`common::cluster` takes no node environment, which this test
    /// needs).
    const CALICO_NODE: &str = env!("CARGO_BIN_EXE_calico-node");
    const WAIT: Duration = Duration::from_secs(20);
    /// The notice up to its reason, which depends on the kernel.
    const NOTICE: &str = "pool 192.168.0.0/16 has ipip enabled, but its traffic to other hosts \
                          is routed without encapsulation: ";

    fn node_status(host: &Host) -> String {
        host.exec_ok(&[&calicoctl_beside(CALICO_NODE), "node", "status"])
    }

    fn notices(host: &Host) -> usize {
        host.node_log().matches(NOTICE).count()
    }

    fn pool(ipip: bool) -> String {
        format!(
            "apiVersion: v1\nkind: ipPool\nmetadata:\n  cidr: 192.168.0.0/16\nspec:\n  \
             nat-outgoing: true\n  ipip:\n    enabled: {ipip}\n"
        )
    }

    #[test]
    fn an_ipip_pool_is_reported_once_per_change() {
        let cluster = Cluster::up(Options {
            hosts: 1,
            datastore: Datastore::Sqlite,
            calico_node: Some(CALICO_NODE.into()),
            node_env: vec![("CALICO_IPV4POOL_IPIP".into(), "always".into())],
            ..Options::default()
        });
        let h = cluster.host(1);
        wait_until(WAIT, "calico-node to report the IPIP pool", || {
            notices(&h) == 1
        });
        assert!(h.node_log().contains(
            "Created default IPv4 pool (192.168.0.0/16) with NAT outgoing enabled. IPIP mode: \
             always"
        ));
        let status = node_status(&h);
        assert!(
            status
                .lines()
                .any(|line| line.starts_with(&format!("IPIP: {NOTICE}"))),
            "{status}"
        );

        // A change BIRD sees makes a pass that says nothing more about IPIP (checked once the
        // next pass, for the pool's change, is done: passes run one after another).
        let reloads = || h.node_log().matches("BIRD reconfigured").count();
        let before = reloads();
        let peer = "apiVersion: v1\nkind: bgpPeer\nmetadata:\n  peerIP: 10.10.0.99\n  \
                    scope: global\nspec:\n  asNumber: 64512\n";
        cluster.calicoctl_ok(&["apply", "-f", "-"], Some(peer));
        wait_until(WAIT, "BIRD to be reconfigured", || reloads() > before);

        let off = cluster.calicoctl(&["apply", "-f", "-"], Some(&pool(false)));
        assert!(off.status.success() && off.stderr.is_empty(), "{off:?}");
        wait_until(WAIT, "calico-node to see ipip off", || {
            h.node_log().contains("no pool has ipip enabled any more")
        });
        assert_eq!(notices(&h), 1, "{}", h.node_log());
        let status = node_status(&h);
        assert!(status.contains("\nDocker Engine: "), "{status}");
        assert!(!status.contains("IPIP"), "{status}");

        let on = cluster.calicoctl(&["apply", "-f", "-"], Some(&pool(true)));
        assert!(on.status.success(), "{on:?}");
        assert!(
            String::from_utf8_lossy(&on.stderr).starts_with("Warning: ipPool 192.168.0.0/16"),
            "{on:?}"
        );
        wait_until(WAIT, "calico-node to report the IPIP pool again", || {
            notices(&h) == 2
        });
        assert!(node_status(&h).contains(&format!("IPIP: {NOTICE}")));
    }
}
