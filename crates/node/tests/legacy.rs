//! "Accessing Calico policy with Calico as a network plugin": the older `calicoctl profile …
//! rule …` commands, verbatim, acting on the profiles Docker networks get, and enforced.

mod common;

mod e2e {
    use std::time::Duration;

    use calico_testkit::cluster::{wait_until, Datastore};
    use calico_testkit::steps::{create_network, run_busybox, wait_for_endpoints};
    use calico_testkit::truth;
    use calico_testkit::verdict::{Probe, Verdict};

    use crate::common;

    #[test]
    fn accessing_calico_policy_with_the_profile_commands() {
        let cluster = common::cluster(1, Datastore::Sqlite);
        let h = cluster.host(1);
        create_network(&h, "databases", &["--ipam-driver", "calico"]);
        let rules = || cluster.calicoctl_ok(&["profile", "databases", "rule", "show"], None);
        wait_until(Duration::from_secs(10), "the databases profile", || {
            cluster
                .calicoctl(&["profile", "databases", "rule", "show"], None)
                .status
                .success()
        });
        assert_eq!(
            rules(),
            "Inbound rules:\n   1 allow from tag databases\nOutbound rules:\n   1 allow"
        );
        create_network(&h, "applications", &["--ipam-driver", "calico"]);
        cluster.calicoctl_ok(
            &[
                "profile",
                "databases",
                "rule",
                "add",
                "inbound",
                "allow",
                "tcp",
                "from",
                "tag",
                "applications",
                "to",
                "ports",
                "3306",
            ],
            None,
        );
        assert_eq!(
            rules(),
            "Inbound rules:\n   1 allow from tag databases\n   2 allow tcp from tag applications to ports 3306\nOutbound rules:\n   1 allow"
        );
        let yaml = cluster.calicoctl_ok(&["get", "profile", "databases", "-o", "yaml"], None);
        assert!(
            yaml.contains(
                "    - action: allow\n      destination:\n        ports:\n        - 3306\n      protocol: tcp\n      source:\n        tag: applications"
            ),
            "{yaml}"
        );

        for (name, net) in [("db1", "databases"), ("app1", "applications")] {
            run_busybox(&h, name, net);
        }
        wait_for_endpoints(
            &cluster,
            Duration::from_secs(20),
            "both endpoints",
            &["db1", "app1"],
        );
        let placed = [("db1", 1), ("app1", 1)];
        let _listeners = truth::start_listeners(&cluster, &placed, &[3306, 8080], &[5353]);
        truth::check(
            &cluster,
            &placed,
            &[
                (Probe::tcp("app1", "db1", 3306), Verdict::Allow),
                (Probe::tcp("app1", "db1", 8080), Verdict::Deny),
                (Probe::icmp("app1", "db1"), Verdict::Deny),
                (Probe::udp("app1", "db1", 5353), Verdict::Deny),
                (Probe::icmp("db1", "app1"), Verdict::Deny),
            ],
        );
    }
}
