//! The truth-table checker (`calico_testkit::truth`) against real containers on one simulated
//! Docker host running the real calico-node. Run as root; the test is in module `e2e`, so
//! nextest runs it in the `e2e` group (one at a time).

mod e2e {
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use calico_testkit::cluster::{Cluster, Datastore, Options};
    use calico_testkit::steps::{create_network, run_busybox};
    use calico_testkit::truth;
    use calico_testkit::verdict::{Probe, Verdict};

    /// calico-node is another package's binary: `target/<profile>/calico-node`, next to this
    /// test binary's `deps/` directory.
    fn calico_node() -> PathBuf {
        let exe = std::env::current_exe().expect("the test binary");
        let bin = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target/<profile>/deps")
            .join("calico-node");
        assert!(
            bin.is_file(),
            "{} is not built: run `cargo build -p calico-node` (or the workspace) first",
            bin.display()
        );
        bin
    }

    #[test]
    fn e2e_truth_table_checker_sees_real_connectivity() {
        let cluster = Cluster::up(Options {
            hosts: 1,
            datastore: Datastore::Sqlite,
            calico_node: Some(calico_node()),
            ..Options::default()
        });
        let h = cluster.host(1);
        let containers = [("wa", 1), ("wb", 1), ("wc", 1), ("wd", 1)];
        for (net, members) in [("net1", ["wa", "wb"]), ("net2", ["wc", "wd"])] {
            create_network(&h, net, &[]);
            for name in members {
                run_busybox(&h, name, net);
            }
        }
        let started = Instant::now();
        let listeners = truth::start_listeners(&cluster, &containers, &[3306, 8080], &[5353]);
        eprintln!("listeners up in {:.1} s", started.elapsed().as_secs_f64());

        // The networks' default profiles: members reach each other on everything, other
        // networks reach nothing; ports without a listener fail (TCP refused, UDP unanswered).
        let network = |c: &str| if c == "wa" || c == "wb" { 1 } else { 2 };
        let mut table = Vec::new();
        for (from, _) in containers {
            for (to, _) in containers {
                if from != to {
                    let verdict = if network(from) == network(to) {
                        Verdict::Allow
                    } else {
                        Verdict::Deny
                    };
                    for probe in Probe::every_kind(from, to, &[3306, 8080], &[5353]) {
                        table.push((probe, verdict));
                    }
                }
            }
        }
        table.push((Probe::tcp("wa", "wb", 9999), Verdict::Deny));
        table.push((Probe::udp("wa", "wb", 9999), Verdict::Deny));
        table.push((Probe::udp("wd", "wc", 9999), Verdict::Deny));
        let started = Instant::now();
        truth::check(&cluster, &containers, &table);
        eprintln!(
            "{} probes matched in {:.1} s",
            table.len(),
            started.elapsed().as_secs_f64()
        );

        let wrong = [
            (Probe::icmp("wa", "wb"), Verdict::Allow),
            (Probe::tcp("wa", "wb", 3306), Verdict::Deny),
            (Probe::udp("wc", "wd", 5353), Verdict::Allow),
            (Probe::udp("wc", "wd", 9999), Verdict::Allow),
        ];
        let started = Instant::now();
        let failure = std::panic::catch_unwind(|| {
            truth::check_within(&cluster, &containers, &wrong, Duration::from_secs(2))
        })
        .expect_err("a wrong table must fail");
        let elapsed = started.elapsed();
        let message = failure
            .downcast_ref::<String>()
            .expect("a formatted panic message");
        eprintln!("the wrong table failed after {elapsed:.1?}:\n{message}");
        let wrong_lines: Vec<&str> = message
            .lines()
            .filter(|l| l.ends_with("<---- WRONG"))
            .collect();
        assert_eq!(wrong_lines.len(), 2, "{message}");
        assert!(
            wrong_lines[0].contains("wa -> wb tcp/3306")
                && wrong_lines[0].contains("deny      allow"),
            "{message}"
        );
        assert!(
            wrong_lines[1].contains("wc -> wd udp/9999")
                && wrong_lines[1].contains("allow     deny"),
            "{message}"
        );
        assert!(message.contains("wa -> wb icmp"), "{message}");
        drop(listeners);
        cluster.down();
    }
}
