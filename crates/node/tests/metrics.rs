//! calico-node's Prometheus metrics end to end: two simulated Docker hosts on etcd with
//! `FELIX_PROMETHEUSMETRICSENABLED=true` and a non-default `FELIX_PROMETHEUSMETRICSPORT`; the
//! metrics are served on the node's address only, scraped before and during the "profiles and
//! policy" tutorial and parsed with the Prometheus project's own OpenMetrics parser (Python's
//! `prometheus_client`, Debian's python3-prometheus-client). Plugin requests, transactions,
//! graph sizes, IPAM, DNS and BGP move as the tutorial runs, and the rule counters show the
//! probes the tutorial's policies allow and the ones they refuse.
//! Runs in the `e2e` nextest group (module `e2e_metrics`); see docs/harness.md.

mod e2e_metrics {
    use std::collections::BTreeMap;
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use calico_testkit::cluster::{wait_until, Cluster, Datastore, Host, Options};
    use calico_testkit::steps::{run_busybox, wait_for_endpoints};
    use calico_testkit::truth;
    use calico_testkit::tutorial::{POLICIES, PROFILES_WITH_LABELS};
    use calico_testkit::verdict::{Probe, Verdict};

    const CALICO_NODE: &str = env!("CARGO_BIN_EXE_calico-node");
    const WAIT: Duration = Duration::from_secs(60);
    /// Not the default 9091, so the setting must take effect.
    const PORT: u16 = 9191;

    /// Debian's Python, which python3-prometheus-client installs for (another `python3` may
    /// come first on `PATH`).
    const PYTHON: &str = "/usr/bin/python3";

    /// Parses OpenMetrics text from stdin with the reference parser and prints every sample as
    /// `[name, labels, value]` in JSON; a malformed exposition raises (non-zero exit).
    const PARSE: &str = "\
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        samples.append([s.name, s.labels, s.value])
print(json.dumps(samples))
";

    /// One scrape: samples by name, each with its labels.
    struct Scrape(Vec<(String, BTreeMap<String, String>, f64)>);

    impl Scrape {
        /// The sum of the samples named `name` whose labels include all of `labels`.
        fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
            self.0
                .iter()
                .filter(|(n, l, _)| {
                    n == name
                        && labels
                            .iter()
                            .all(|(k, v)| l.get(*k).map(String::as_str) == Some(v))
                })
                .map(|(_, _, v)| v)
                .sum()
        }

        fn has(&self, name: &str) -> bool {
            self.0.iter().any(|(n, _, _)| n == name)
        }
    }

    /// `GET /metrics` from inside `host` at `address`: the raw answer.
    fn get(host: &Host, address: &str) -> String {
        let (ip, port) = address.rsplit_once(':').expect("host:port");
        let script = format!(
            "printf 'GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' \
             | timeout 10 busybox nc {ip} {port}"
        );
        let out = host.exec(&["sh", "-c", &script]);
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Scrapes `host` and parses the body with [`PARSE`].
    fn scrape(host: &Host, address: &str) -> Scrape {
        let answer = get(host, address);
        let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/openmetrics-text; version=1.0.0"),
            "{head}"
        );
        let mut python = Command::new(PYTHON)
            .args(["-c", PARSE])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3");
        python
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        let out = python.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "the OpenMetrics parser refused the exposition: {}\n{body}",
            String::from_utf8_lossy(&out.stderr)
        );
        let samples: Vec<(String, BTreeMap<String, String>, f64)> =
            serde_json::from_slice(&out.stdout).expect("the parser's JSON");
        Scrape(samples)
    }

    #[test]
    fn metrics_move_with_the_policy_tutorial_and_rule_counters_show_refused_probes() {
        let cluster = Cluster::up(Options {
            hosts: 2,
            datastore: Datastore::Etcd,
            calico_node: Some(CALICO_NODE.into()),
            node_env: vec![
                ("FELIX_PROMETHEUSMETRICSENABLED".into(), "true".into()),
                ("FELIX_PROMETHEUSMETRICSPORT".into(), PORT.to_string()),
            ],
            ..Options::default()
        });
        let h = cluster.host(1);
        let address = h.exec_ok(&["cat", "/var/run/calico/metrics-address"]);
        let address = address.trim();
        assert_eq!(address, format!("{}:{PORT}", h.ip()), "the node's address");
        assert_eq!(
            get(&h, &format!("127.0.0.1:{PORT}")),
            "",
            "nothing listens on the loopback address"
        );
        wait_until(WAIT, "the BGP session to calico-02 to be up", || {
            scrape(&h, address).sum("calico_bgp_sessions", &[("state", "up")]) == 1.0
        });
        let before = scrape(&h, address);

        cluster.create_calico_network(1, "database");
        cluster.create_calico_network(1, "frontend");
        run_busybox(&h, "db1", "database");
        run_busybox(&h, "fe1", "frontend");
        wait_for_endpoints(&cluster, WAIT, "both endpoints", &["db1", "fe1"]);
        cluster.calicoctl_ok(&["apply", "-f", "-"], Some(PROFILES_WITH_LABELS));
        cluster.calicoctl_ok(&["create", "-f", "-"], Some(POLICIES));
        let placed = [("db1", 1), ("fe1", 1)];
        let _listeners = truth::start_listeners(&cluster, &placed, &[3306, 8080], &[]);
        let refused = [
            Probe::tcp("fe1", "db1", 8080),
            Probe::icmp("fe1", "db1"),
            Probe::tcp("db1", "fe1", 3306),
        ];
        let mut table = vec![(Probe::tcp("fe1", "db1", 3306), Verdict::Allow)];
        table.extend(refused.iter().cloned().map(|p| (p, Verdict::Deny)));
        truth::check_within(&cluster, &placed, &table, WAIT);
        // From the host (the tutorial's policies let fe1 send nothing but TCP to databases).
        let server = h.ip().to_string();
        let ok = h.exec_ok(&[
            "timeout",
            "5",
            "busybox",
            "nslookup",
            "db1.database",
            &server,
        ]);
        assert!(ok.contains("Address"), "{ok}");
        let after = scrape(&h, address);

        let grew = |name: &str, labels: &[(&str, &str)], by: f64| {
            let (was, is) = (before.sum(name, labels), after.sum(name, labels));
            assert!(
                is - was >= by,
                "{name}{labels:?}: {was} -> {is}, expected +{by}"
            );
        };
        let create = [("method", "NetworkDriver.CreateEndpoint"), ("result", "ok")];
        grew("calico_plugin_requests_total", &create, 2.0);
        grew(
            "calico_plugin_request_duration_seconds_count",
            &[("method", "NetworkDriver.CreateEndpoint")],
            2.0,
        );
        grew(
            "calico_dataplane_transactions_total",
            &[("kind", "incremental")],
            1.0,
        );
        grew("calico_dataplane_transaction_bytes_total", &[], 1.0);
        grew("calico_datastore_watch_events_total", &[], 4.0);
        grew("calico_dns_queries_total", &[("result", "answered")], 1.0);
        grew("calico_ipam_allocations_in_use", &[], 2.0);
        assert_eq!(after.sum("calico_local_endpoints", &[]), 2.0);
        assert_eq!(after.sum("calico_active_policies", &[]), 2.0);
        assert!(after.sum("calico_ipam_blocks", &[]) >= 1.0);
        assert!(after.has("calico_ipam_addresses_free"));
        assert_eq!(after.sum("calico_dataplane_failures_total", &[]), 0.0);
        assert_eq!(after.sum("calico_bgp_sessions", &[("state", "up")]), 1.0);

        // The allowed connection went through the frontend policy's egress rule and the
        // database policy's first ingress rule; every refused probe was dropped by its sender's
        // policies (each policy of the tutorial governs one direction of its endpoints, and
        // none allows these), at least one packet each.
        let rule = |kind: &str, name: &str, direction: &str, rule: &str| {
            after.sum(
                "calico_rule_packets_total",
                &[
                    ("kind", kind),
                    ("name", name),
                    ("direction", direction),
                    ("rule", rule),
                ],
            )
        };
        assert!(rule("policy", "frontend", "egress", "0") >= 1.0);
        assert!(rule("policy", "database", "ingress", "0") >= 1.0);
        let refused_drops = after.sum(
            "calico_rule_packets_total",
            &[
                ("kind", "workload-endpoint"),
                ("direction", "egress"),
                ("rule", "no-policy-allowed"),
                ("action", "deny"),
            ],
        );
        assert!(
            refused_drops >= refused.len() as f64,
            "{refused_drops} packets dropped for {} refused probes",
            refused.len()
        );
        let bytes = after.sum(
            "calico_rule_bytes_total",
            &[("rule", "no-policy-allowed"), ("direction", "egress")],
        );
        assert!(bytes >= 28.0 * refused_drops, "{bytes} bytes");
    }
}
