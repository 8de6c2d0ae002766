//! Policy truth tables: 4 networks × 3 containers on one host, probed with ICMP, two TCP ports
//! and one UDP port, under 12 policy scenarios. The expected side of every table comes from the
//! independent evaluator (`calico_testkit::verdict`), fed with what calicoctl reads back.

mod common;

mod e2e {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use calico_model::{codec, Resource};
    use calico_testkit::cluster::{Cluster, Datastore};
    use calico_testkit::steps::{create_network, only_ip, run_busybox, wait_for_endpoints};
    use calico_testkit::truth::{self, Listeners};
    use calico_testkit::verdict::Probe;

    use crate::common;

    const TCP_PORTS: [u16; 2] = [3306, 8080];
    const UDP_PORT: u16 = 5353;
    const NETWORKS: [&str; 4] = ["n1", "n2", "n3", "n4"];
    const CONTAINERS: [&str; 12] = [
        "a1", "a2", "a3", "b1", "b2", "b3", "c1", "c2", "c3", "d1", "d2", "d3",
    ];
    /// Probe destinations: one container of each network.
    const TARGETS: [&str; 4] = ["a1", "b2", "c3", "d1"];

    /// The networks' profiles: the plugin's default rules plus labels.
    const BASELINE_PROFILES: &str = "\
- apiVersion: v1
  kind: profile
  metadata: {name: n1, tags: [n1], labels: {tier: web, env: prod}}
  spec:
    ingress: [{action: allow, source: {tag: n1}}]
    egress: [{action: allow}]
- apiVersion: v1
  kind: profile
  metadata: {name: n2, tags: [n2], labels: {tier: app}}
  spec:
    ingress: [{action: allow, source: {tag: n2}}]
    egress: [{action: allow}]
- apiVersion: v1
  kind: profile
  metadata: {name: n3, tags: [n3], labels: {tier: db}}
  spec:
    ingress: [{action: allow, source: {tag: n3}}]
    egress: [{action: allow}]
- apiVersion: v1
  kind: profile
  metadata: {name: n4, tags: [n4], labels: {tier: web, env: dev}}
  spec:
    ingress: [{action: allow, source: {tag: n4}}]
    egress: [{action: allow}]
";

    /// One host, four networks, twelve containers with listeners, baseline profiles; the
    /// host's fabric interface is a host endpoint with no policy (which never polices the
    /// host's workloads).
    struct Bed {
        cluster: Cluster,
        _listeners: Listeners,
        /// Container name → its IPv4 address.
        ips: BTreeMap<String, String>,
        /// The workload endpoints as first written, to restore between scenarios.
        endpoints: String,
    }

    impl Bed {
        fn new() -> Bed {
            let cluster = common::cluster(1, Datastore::Sqlite);
            let h = cluster.host(1);
            let node = h.name();
            cluster.calicoctl_ok(
                &["apply", "-f", "-"],
                Some(&format!(
                    "- apiVersion: v1\n  kind: hostEndpoint\n  metadata: {{name: fabric, node: {node}}}\n  spec: {{interfaceName: eth0}}\n"
                )),
            );
            for net in NETWORKS {
                create_network(&h, net, &[]);
            }
            for (i, name) in CONTAINERS.iter().enumerate() {
                let net = NETWORKS[i / 3];
                run_busybox(&h, name, net);
            }
            wait_for_endpoints(
                &cluster,
                Duration::from_secs(30),
                "twelve workload endpoints",
                &CONTAINERS,
            );
            let placed: Vec<(&str, usize)> = CONTAINERS.iter().map(|c| (*c, 1)).collect();
            let listeners = truth::start_listeners(&cluster, &placed, &TCP_PORTS, &[UDP_PORT]);
            let ips = CONTAINERS
                .iter()
                .map(|c| (c.to_string(), only_ip(&h, c)))
                .collect();
            let endpoints = cluster.calicoctl_ok(&["get", "wep", "-o", "yaml"], None);
            Bed {
                cluster,
                _listeners: listeners,
                ips,
                endpoints,
            }
        }

        /// Back to the baseline: no policies, baseline profiles, endpoints as Docker made them.
        fn reset(&self) {
            let policies = self
                .cluster
                .calicoctl_ok(&["get", "policy", "-o", "yaml"], None);
            if policies != "[]" {
                self.cluster
                    .calicoctl_ok(&["delete", "-f", "-"], Some(&policies));
            }
            self.cluster
                .calicoctl_ok(&["apply", "-f", "-"], Some(BASELINE_PROFILES));
            self.cluster
                .calicoctl_ok(&["apply", "-f", "-"], Some(&self.endpoints));
        }

        /// Applies a scenario and checks every probe against the evaluator's verdict.
        fn scenario(&self, name: &str, yaml: &str) {
            eprintln!("scenario: {name}");
            self.reset();
            if !yaml.trim().is_empty() {
                self.cluster.calicoctl_ok(&["apply", "-f", "-"], Some(yaml));
            }
            let world = truth::world(&self.cluster);
            let probes = Probe::between(&CONTAINERS, &TARGETS, &TCP_PORTS, &[UDP_PORT]);
            let placed: Vec<(&str, usize)> = CONTAINERS.iter().map(|c| (*c, 1)).collect();
            truth::check_within(
                &self.cluster,
                &placed,
                &world.table(&probes),
                Duration::from_secs(20),
            );
        }

        /// A workload endpoint of the baseline, edited by `edit`, as YAML to apply.
        fn endpoint_edited(&self, container: &str, edit: impl FnOnce(&mut Resource)) -> String {
            let mut all = codec::decode(&self.endpoints).expect("endpoints decode");
            let pos = all
                .iter()
                .position(|r| matches!(r, Resource::WorkloadEndpoint(w) if w.metadata.workload == container))
                .expect("the container's endpoint");
            let mut wep = all.swap_remove(pos);
            edit(&mut wep);
            codec::to_yaml(&[wep])
        }
    }

    fn policy(name: &str, order: Option<u32>, selector: &str, body: &str) -> String {
        let order = order
            .map(|o| format!("\n    order: {o}"))
            .unwrap_or_default();
        format!(
            "- apiVersion: v1\n  kind: policy\n  metadata:\n    name: {name}\n  spec:{order}\n    selector: \"{selector}\"\n{body}"
        )
    }

    #[test]
    fn ordering_deny_pass_and_log() {
        let bed = Bed::new();
        bed.scenario(
            "order and name ties",
            &format!(
                "{}{}",
                policy("a-deny-web", Some(10), "tier == 'db'", "    ingress:\n    - action: deny\n      source: {selector: \"tier == 'web'\"}\n"),
                policy("b-allow-all", Some(10), "tier == 'db'", "    ingress:\n    - action: allow\n"),
            ),
        );
        bed.scenario(
            "deny before allow",
            &format!(
                "{}{}",
                policy(
                    "deny-icmp",
                    Some(1),
                    "tier == 'app'",
                    "    ingress:\n    - action: deny\n      protocol: icmp\n"
                ),
                policy(
                    "allow-rest",
                    Some(2),
                    "tier == 'app'",
                    "    ingress:\n    - action: allow\n"
                ),
            ),
        );
        bed.scenario(
            "pass into profiles",
            &format!(
                "{}- apiVersion: v1\n  kind: profile\n  metadata: {{name: n3, tags: [n3], labels: {{tier: db}}}}\n  spec:\n    ingress: [{{action: allow, source: {{tag: n3}}}}, {{action: allow, source: {{selector: \"tier == 'app'\"}}}}]\n    egress: [{{action: allow}}]\n",
                policy("pass-app", Some(5), "tier == 'db'", "    ingress:\n    - action: pass\n      source: {selector: \"tier == 'app'\"}\n"),
            ),
        );
        bed.scenario(
            "log then allow",
            &policy(
                "log-web",
                None,
                "tier == 'web'",
                "    ingress:\n    - action: log\n    - action: allow\n      source: {selector: \"tier == 'app'\"}\n",
            ),
        );
    }

    #[test]
    fn selectors_nets_ports_and_icmp() {
        let bed = Bed::new();
        bed.scenario(
            "!has(x) selector vs notSelector has(x)",
            &policy(
                "env-less",
                None,
                "tier == 'db'",
                "    ingress:\n    - action: allow\n      protocol: tcp\n      source: {selector: \"!has(env)\"}\n      destination: {ports: [3306]}\n    - action: allow\n      protocol: tcp\n      source: {notSelector: \"has(env)\"}\n      destination: {ports: [8080]}\n",
            ),
        );
        let a1 = &bed.ips["a1"];
        let b1 = &bed.ips["b1"];
        bed.scenario(
            "nets and notNets",
            &policy(
                "by-address",
                None,
                "tier == 'db' || tier == 'app'",
                &format!("    ingress:\n    - action: allow\n      protocol: tcp\n      source: {{nets: [\"{a1}/32\", \"{b1}/32\"]}}\n    - action: allow\n      protocol: udp\n      source: {{notNets: [\"{a1}/32\"]}}\n"),
            ),
        );
        bed.scenario(
            "notPorts and ranges",
            &policy(
                "ports",
                None,
                "all()",
                "    ingress:\n    - action: allow\n      protocol: tcp\n      destination: {ports: [\"3000:3400\"]}\n    - action: allow\n      protocol: udp\n      destination: {notPorts: [5353]}\n    - action: allow\n      protocol: tcp\n      destination: {notPorts: [\"1:8079\", \"8081:65535\"]}\n",
            ),
        );
        bed.scenario(
            "ICMP type",
            &policy(
                "icmp-types",
                None,
                "tier == 'web'",
                "    ingress:\n    - action: allow\n      protocol: icmp\n      icmp: {type: 13}\n    - action: allow\n      protocol: tcp\n    - action: deny\n      protocol: icmp\n      notICMP: {type: 0}\n",
            ),
        );
    }

    #[test]
    fn types_empty_policies_missing_profiles_and_label_overrides() {
        let bed = Bed::new();
        bed.scenario(
            "ingress-only types",
            &policy(
                "db-in",
                None,
                "tier == 'db'",
                "    types: [ingress]\n    ingress:\n    - action: allow\n      source: {selector: \"tier == 'app'\"}\n",
            ),
        );
        bed.scenario(
            "egress-only types",
            &policy(
                "web-out",
                None,
                "tier == 'web'",
                "    types: [egress]\n    egress:\n    - action: allow\n      destination: {selector: \"tier == 'web'\"}\n",
            ),
        );
        bed.scenario(
            "a policy with no rules",
            &policy(
                "isolate-app",
                None,
                "tier == 'app'",
                "    types: [ingress, egress]\n",
            ),
        );
        let missing = bed.endpoint_edited("c3", |r| {
            if let Resource::WorkloadEndpoint(w) = r {
                w.spec.profiles = vec!["no-such-profile".into()];
            }
        });
        bed.scenario("an endpoint with a missing profile", &missing);
        let relabelled = bed.endpoint_edited("b2", |r| {
            if let Resource::WorkloadEndpoint(w) = r {
                w.metadata.labels.insert("tier".into(), "db".into());
            }
        });
        bed.scenario(
            "a profile label overridden by an endpoint label",
            &format!(
                "{relabelled}{}",
                policy(
                    "db-from-web",
                    None,
                    "tier == 'db'",
                    "    ingress:\n    - action: allow\n      source: {selector: \"tier == 'web'\"}\n",
                ),
            ),
        );
    }
}
