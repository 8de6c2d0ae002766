//! calico-node's health endpoints and request log end to end on one simulated Docker host on
//! etcd: `/readiness` answers 204 once calico-node serves, 503 with why once etcd has been
//! stopped for longer than the grace period, and 204 again when etcd is back, while
//! `/liveness` stays 204 and `calicoctl node status` says the same; with
//! `CALICO_LOG_FORMAT=json` each plugin request is one JSON line naming its method, network,
//! endpoint and time taken.
//! Runs in the `e2e` nextest group (module `e2e_health`); see docs/harness.md.

mod e2e_health {
    use std::time::{Duration, Instant};

    use calico_testkit::cluster::{wait_until, Cluster, Datastore, Host, Options};
    use calico_testkit::steps::{calicoctl_beside, create_network, run_busybox};

    /// This crate's calico-node (`common::cluster` takes no node environment, which this test
    /// needs).
    const CALICO_NODE: &str = env!("CARGO_BIN_EXE_calico-node");
    /// The datastore probe's grace period (`health::datastore::GRACE`).
    const GRACE: Duration = Duration::from_secs(10);
    const WAIT: Duration = Duration::from_secs(60);

    /// The health port the test configures (`FELIX_HEALTHPORT`; not the default 9099, so the
    /// setting must take effect).
    const HEALTH_PORT: u16 = 9199;

    /// `GET <path>` on the health port from inside `host`: the status code and the body.
    fn get(host: &Host, path: &str) -> (u16, String) {
        let script = format!(
            "printf 'GET {path} HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' \
             | busybox nc 127.0.0.1 {HEALTH_PORT}"
        );
        let out = host.exec(&["sh", "-c", &script]);
        let answer = String::from_utf8_lossy(&out.stdout).to_string();
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or_default();
        (status, body)
    }

    fn node_status(host: &Host) -> String {
        host.exec_ok(&[&calicoctl_beside(CALICO_NODE), "node", "status"])
    }

    fn assert_live(host: &Host) {
        assert_eq!(get(host, "/liveness"), (204, String::new()));
    }

    /// The JSON log lines of calico-node's answered plugin calls (the log also has what the
    /// programs calico-node runs print).
    fn answered_calls(host: &Host) -> Vec<serde_json::Value> {
        host.node_log()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|event| event["fields"]["message"] == "plugin call answered")
            .collect()
    }

    #[test]
    fn readiness_follows_etcd_and_liveness_stays() {
        let cluster = Cluster::up(Options {
            hosts: 1,
            datastore: Datastore::Etcd,
            calico_node: Some(CALICO_NODE.into()),
            node_env: vec![
                ("FELIX_HEALTHENABLED".into(), "true".into()),
                ("FELIX_HEALTHPORT".into(), HEALTH_PORT.to_string()),
                ("CALICO_LOG_FORMAT".into(), "json".into()),
            ],
            ..Options::default()
        });
        let h = cluster.host(1);
        wait_until(WAIT, "calico-node to be ready", || {
            get(&h, "/readiness").0 == 204
        });
        assert_live(&h);
        assert_eq!(get(&h, "/metrics").0, 404);
        let says = |text: &str| {
            let deadline = Instant::now() + WAIT;
            loop {
                let status = node_status(&h);
                if status.contains(text) {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "node status does not say {text:?} after {WAIT:?}:\n{status}"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        };
        says("Readiness: ready\nLiveness: live");

        // One JSON line per plugin request, with the network and endpoint Docker named.
        create_network(&h, "net1", &[]);
        run_busybox(&h, "workload-A", "net1");
        let network = h.docker_ok(&["network", "inspect", "-f", "{{.Id}}", "net1"]);
        let endpoint = h.docker_ok(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.net1.EndpointID}}",
            "workload-A",
        ]);
        let calls = answered_calls(&h);
        let join = calls
            .iter()
            .find(|c| c["fields"]["method"] == "NetworkDriver.Join")
            .unwrap_or_else(|| panic!("no Join line in {calls:#?}"));
        assert_eq!(join["level"], "INFO", "{join}");
        assert_eq!(join["fields"]["network"], network.trim(), "{join}");
        assert_eq!(join["fields"]["endpoint"], endpoint.trim(), "{join}");
        assert!(join["fields"]["elapsed"].is_string(), "{join}");
        assert!(
            calls
                .iter()
                .any(|c| c["fields"]["method"] == "IpamDriver.RequestAddress"
                    && c["fields"]["pool"].is_string()),
            "{calls:#?}"
        );

        // etcd away: ready for the grace period, then not, and why; live throughout.
        cluster.etcd_stop();
        let stopped = Instant::now();
        let mut why = String::new();
        wait_until(WAIT, "readiness to fail without etcd", || {
            assert_live(&h);
            let (status, body) = get(&h, "/readiness");
            why = body;
            status == 503
        });
        assert!(
            stopped.elapsed() > GRACE,
            "not ready after {:?}, within the grace period",
            stopped.elapsed()
        );
        assert!(
            why.starts_with("not ready: datastore: failing for ") && why.contains("unreachable"),
            "{why}"
        );
        says("Readiness: not ready: datastore: failing for ");
        assert!(node_status(&h).contains("Liveness: live"));

        // etcd back: ready again.
        cluster.etcd_start();
        wait_until(WAIT, "readiness to come back with etcd", || {
            assert_live(&h);
            get(&h, "/readiness").0 == 204
        });
        says("Readiness: ready\nLiveness: live");
        cluster.down();
    }
}
