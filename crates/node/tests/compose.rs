//! docker compose v2 on Calico networks, end to end on Docker 28 (compose v2 does not come with
//! Debian 12's 20.10): the project of docs/examples/compose.yaml (shown in the README) comes up,
//! its services reach each other by service name, its two networks are isolated from each
//! other, and `down` leaves no address, endpoint or profile behind that `up` made.
//! Runs in the `e2e` nextest group; `scripts/test` runs it with `DOCKERD_DIR` set.

use std::time::Duration;

use calico_testkit::cluster::{wait_until, Datastore};
use calico_testkit::steps::only_ip;

mod common;

const COMPOSE_FILE: &str = include_str!("../../../docs/examples/compose.yaml");
const README: &str = include_str!("../../../README.md");

mod e2e_compose {
    use super::*;

    #[test]
    fn a_compose_project_on_calico_networks_comes_up_isolates_and_goes_without_a_trace() {
        assert!(
            README.contains(COMPOSE_FILE),
            "the README shows docs/examples/compose.yaml as it is"
        );
        let cluster = common::cluster(1, Datastore::Sqlite);
        let h = cluster.host(1);
        let project = tempfile::tempdir().expect("project dir");
        std::fs::write(project.path().join("compose.yaml"), COMPOSE_FILE).expect("compose file");
        let compose = |args: &[&str]| {
            let mut all = vec!["-p", "shop"];
            all.extend(args);
            h.compose_ok(project.path(), &all)
        };
        let profiles = || cluster.calicoctl_ok(&["get", "profiles"], None);
        let profiles_before = profiles();

        compose(&["up", "-d"]);
        let networks = h.docker_ok(&[
            "network",
            "ls",
            "--filter",
            "driver=calico",
            "--format",
            "{{.Name}}",
        ]);
        assert_eq!(
            networks.lines().collect::<Vec<_>>(),
            ["shop_back", "shop_front"]
        );
        let addresses: Vec<String> = ["shop-web-1", "shop-client-1", "shop-db-1"]
            .iter()
            .map(|c| only_ip(&h, c))
            .collect();
        for address in &addresses {
            assert!(address.starts_with("192.168."), "{addresses:?}");
            let shown = cluster.calicoctl_ok(&["ipam", "show", "--ip", address], None);
            assert!(shown.contains("is assigned"), "{shown}");
        }
        wait_until(Duration::from_secs(10), "three workload endpoints", || {
            cluster.calicoctl_ok(&["get", "wep"], None).lines().count() == 4
        });
        let with_project = profiles();
        for name in ["shop_front", "shop_back"] {
            assert!(
                with_project.lines().any(|l| l.trim() == name),
                "{with_project}"
            );
        }

        // by service name, over ICMP and TCP
        compose(&["exec", "-T", "client", "ping", "-c", "2", "web"]);
        let page = compose(&[
            "exec",
            "-T",
            "client",
            "wget",
            "-q",
            "-O",
            "-",
            "http://web/hostname",
        ]);
        assert_eq!(
            page.trim(),
            h.docker_ok(&["inspect", "-f", "{{.Config.Hostname}}", "shop-web-1"])
        );
        // the other network's service is unreachable, by name and by address
        let db = &addresses[2];
        compose(&[
            "exec",
            "-T",
            "client",
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            "127.0.0.1",
        ]);
        let blocked = h.compose(
            project.path(),
            &[
                "-p", "shop", "exec", "-T", "client", "ping", "-c", "2", "-W", "2", db,
            ],
        );
        assert!(!blocked.status.success(), "client reached db at {db}");
        let unknown = h.compose(
            project.path(),
            &[
                "-p", "shop", "exec", "-T", "client", "ping", "-c", "1", "db",
            ],
        );
        assert!(!unknown.status.success(), "client resolved db");

        compose(&["down"]);
        assert_eq!(
            h.docker_ok(&[
                "network",
                "ls",
                "--filter",
                "driver=calico",
                "--format",
                "{{.Name}}"
            ]),
            ""
        );
        assert_eq!(
            cluster.calicoctl_ok(&["get", "wep"], None).lines().count(),
            1,
            "no endpoints"
        );
        for address in &addresses {
            let shown = cluster.calicoctl_ok(&["ipam", "show", "--ip", address], None);
            assert!(!shown.contains("is assigned"), "{shown}");
        }
        wait_until(
            Duration::from_secs(10),
            "the project's profiles deleted",
            || profiles() == profiles_before,
        );
    }
}
