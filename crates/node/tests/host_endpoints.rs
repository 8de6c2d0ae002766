//! Host endpoints end to end, as Felix 2.6 enforces them: a `hostEndpoint` polices the host's
//! own traffic on its interface (to the host, from the host) and never its containers' traffic;
//! the failsafe ports stay open; selector policies, then the endpoint's profiles, admit what
//! they allow; `preDNAT` policies act on arriving traffic before published ports' DNAT;
//! `doNotTrack` policies act before connection tracking; an interface that does not exist yet
//! is policed as soon as it appears, and one named by its expected IPs only is found. Everything
//! is seen from the harness's outside namespace (10.10.0.254 on the fabric) against services
//! started in a host's namespaces.
//! Runs in the `e2e` nextest group (module `e2e_host_endpoints`); see docs/harness.md.

mod common;

mod e2e_host_endpoints {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use calico_testkit::cluster::{wait_until, Cluster, Datastore, Host, Options};
    use calico_testkit::outside::fetch_peer;
    use calico_testkit::steps::{
        create_network, fetch_peer_in, run_busybox, serve_peer_address_in,
    };

    use crate::common;

    /// How long a datastore change may take to reach the host's nft table.
    const PROGRAMMED: Duration = Duration::from_secs(30);
    /// A service of the host on a port that no failsafe list has.
    const SERVICE: u16 = 7000;
    /// The port of the `doNotTrack` pair.
    const UNTRACKED: u16 = 7001;
    /// A service that a host endpoint's profile admits.
    const PROFILED: u16 = 7100;
    /// The label key of every host endpoint here; workloads do not have it.
    const LABEL: &str = "host-endpoint";

    /// `calicoctl apply -f -` of `yaml`.
    fn apply(cluster: &Cluster, yaml: &str) {
        cluster.calicoctl_ok(&["apply", "-f", "-"], Some(yaml));
    }

    /// YAML from its lines.
    fn yaml(lines: &[&str]) -> String {
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    /// A v1 hostEndpoint `name` of `host` (its node name is its hostname) for `interface`,
    /// labelled `host-endpoint: <label>`, with no profile.
    fn host_endpoint(host: &Host, name: &str, interface: &str, label: &str) -> String {
        host_endpoint_with(host, name, interface, label, &[])
    }

    /// [`host_endpoint`] with `profiles`.
    fn host_endpoint_with(
        host: &Host,
        name: &str,
        interface: &str,
        label: &str,
        profiles: &[&str],
    ) -> String {
        let profiles = format!("    profiles: [{}]", profiles.join(", "));
        yaml(&[
            "- apiVersion: v1",
            "  kind: hostEndpoint",
            "  metadata:",
            &format!("    name: {name}"),
            &format!("    node: {}", host.name()),
            "    labels:",
            &format!("      {LABEL}: {label}"),
            "  spec:",
            &format!("    interfaceName: {interface}"),
            &profiles,
        ])
    }

    /// A v1 policy `name` for the host endpoints labelled `host-endpoint: <label>`; `spec` is
    /// the rest of its spec, indented by four spaces.
    fn host_policy(name: &str, label: &str, spec: &str) -> String {
        yaml(&[
            "- apiVersion: v1",
            "  kind: policy",
            "  metadata:",
            &format!("    name: {name}"),
            "  spec:",
            &format!("    selector: {LABEL} == '{label}'"),
        ]) + spec
    }

    /// A rule (indented for [`host_policy`]): `action` for tcp to `port`, from `source` if
    /// given.
    fn tcp_rule(action: &str, port: u16, source: Option<Ipv4Addr>) -> String {
        let mut lines = vec![
            format!("    - action: {action}"),
            "      protocol: tcp".to_string(),
        ];
        if let Some(source) = source {
            lines.push("      source:".into());
            lines.push(format!("        nets: [{source}/32]"));
        }
        lines.push("      destination:".into());
        lines.push(format!("        ports: [{port}]"));
        yaml(&lines.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// A policy for the workloads (every endpoint without the host endpoints' label) that
    /// admits tcp/80 from the fabric (the outside namespace's addresses included) and passes
    /// everything else to the profiles.
    fn admit_fabric_to_workloads() -> String {
        yaml(&[
            "- apiVersion: v1",
            "  kind: policy",
            "  metadata:",
            "    name: workloads-from-fabric",
            "  spec:",
            &format!("    selector: \"!has({LABEL})\""),
            "    ingress:",
            "    - action: allow",
            "      protocol: tcp",
            "      source:",
            "        nets: [10.10.0.0/24]",
            "      destination:",
            "        ports: [80]",
            "    - action: pass",
            "    egress:",
            "    - action: pass",
        ])
    }

    /// `docker run -p 8080:80` of a busybox `web` on `network` that serves its peer address,
    /// and the published address `<host>:8080`.
    fn publish_web(host: &Host, network: &str) -> String {
        host.docker_ok(&[
            "run", "--net", network, "--name", "web", "-p", "8080:80", "-tid", "busybox",
        ]);
        serve_peer_address_in(host, "web");
        format!("{}:8080", host.ip())
    }

    /// The host's conntrack entries (`conntrack -L`, its own network namespace) of TCP flows
    /// from or to `port`.
    fn tracked(host: &Host, port: u16) -> Vec<String> {
        let needle = format!("port={port} ");
        host.exec_ok(&["conntrack", "-L", "-p", "tcp"])
            .lines()
            .filter(|l| l.contains(&needle))
            .map(str::to_string)
            .collect()
    }

    /// The calico table, for failure messages.
    fn calico_table(host: &Host) -> String {
        String::from_utf8_lossy(
            &host
                .exec(&["nft", "list", "table", "inet", "calico"])
                .stdout,
        )
        .into_owned()
    }

    #[test]
    fn a_host_endpoint_polices_the_host_and_never_its_containers() {
        let cluster = common::cluster(1, Datastore::Etcd);
        let h1 = cluster.host(1);
        let outside = cluster.outside();
        let from_host = |args: &[&str]| h1.exec(args);
        let me = Some(outside.ip().to_string());
        let host_ip = Some(h1.ip().to_string());

        let service = h1.serve_peer_address(SERVICE);
        // no sshd on the simulated hosts: a listener of our own on the failsafe port
        let ssh = h1.serve_peer_address(22);
        let world = outside.serve_peer_address(8080);
        create_network(&h1, "net1", &[]);
        let published = publish_web(&h1, "net1");
        run_busybox(&h1, "wa", "net1");
        apply(&cluster, &admit_fabric_to_workloads());

        // before any host endpoint: everything open both ways
        assert_eq!(outside.fetch_peer(service.address()), me);
        assert_eq!(outside.fetch_peer(ssh.address()), me);
        assert_eq!(fetch_peer(from_host, world.address(), None), host_ip);
        wait_until(PROGRAMMED, "the published port admitted", || {
            outside.fetch_peer(&published).is_some()
        });
        wait_until(PROGRAMMED, "wa to reach the outside server", || {
            fetch_peer_in(&h1, "wa", world.address()).is_some()
        });

        // a host endpoint for the fabric interface, no policy, no profile: only the failsafe
        // ports and established connections pass, in and out
        let eth0 = host_endpoint(&h1, "fabric", "eth0", "fabric");
        apply(&cluster, &eth0);
        wait_until(PROGRAMMED, "the host service refused from outside", || {
            outside.fetch_peer(service.address()).is_none()
        });
        let table = || calico_table(&h1);
        assert_eq!(
            outside.fetch_peer(ssh.address()),
            me,
            "failsafe tcp/22\n{}",
            table()
        );
        assert_eq!(
            fetch_peer(from_host, world.address(), None),
            None,
            "the host's own outbound tcp/8080 (not failsafe)\n{}",
            table()
        );
        // its containers are not policed by it: out through it (nat-outgoing), and in through
        // it to a published port (the container's own policy decides, with the real source)
        assert_eq!(
            fetch_peer_in(&h1, "wa", world.address()),
            host_ip,
            "a container to the outside\n{}",
            table()
        );
        assert_eq!(
            outside.fetch_peer(&published),
            me,
            "the outside to a published port\n{}",
            table()
        );

        // a policy selecting the host endpoint's labels admits the service (ingress only: the
        // host's new outbound connections stay refused, the replies pass as established)
        let admit = host_policy(
            "fabric-services",
            "fabric",
            &format!("    ingress:\n{}", tcp_rule("allow", SERVICE, None)),
        );
        apply(&cluster, &admit);
        wait_until(PROGRAMMED, "the policy to admit the host service", || {
            outside.fetch_peer(service.address()).is_some()
        });
        assert_eq!(outside.fetch_peer(service.address()), me);
        assert_eq!(outside.fetch_peer(ssh.address()), me);
        assert_eq!(fetch_peer(from_host, world.address(), None), None);
        // (calico-node read that policy from etcd through the host endpoint: outbound
        // tcp/2379 is failsafe)

        // without the host endpoint the host is open again
        cluster.calicoctl_ok(&["delete", "-f", "-"], Some(&eth0));
        wait_until(PROGRAMMED, "the host's own outbound traffic again", || {
            fetch_peer(from_host, world.address(), None).is_some()
        });

        // a host endpoint that names only its expected IPs covers the interface that has one
        let by_ip = format!(
            "- apiVersion: v1\n  kind: hostEndpoint\n  metadata: {{name: by-ip, node: {}}}\n  spec: {{expectedIPs: [{}]}}\n",
            h1.name(),
            h1.ip()
        );
        apply(&cluster, &by_ip);
        wait_until(PROGRAMMED, "the host endpoint found by its address", || {
            outside.fetch_peer(service.address()).is_none()
        });
        assert!(calico_table(&h1).contains("\"eth0\" : goto fh-eth0"));
        assert_eq!(outside.fetch_peer(ssh.address()), me, "failsafe tcp/22");
        drop((service, ssh, world));
        cluster.down();
    }

    #[test]
    fn pre_dnat_policy_acts_before_the_published_ports_and_the_normal_policy() {
        let cluster = common::cluster(1, Datastore::Etcd);
        let h1 = cluster.host(1);
        let outside = cluster.outside();
        let (first, second) = (outside.ip(), Ipv4Addr::new(10, 10, 0, 253));
        outside.add_address(second);
        let as_first = Some(first.to_string());
        let as_second = Some(second.to_string());

        let service = h1.serve_peer_address(SERVICE);
        create_network(&h1, "net1", &[]);
        let published = publish_web(&h1, "net1");
        apply(&cluster, &admit_fabric_to_workloads());
        wait_until(PROGRAMMED, "the published port admitted", || {
            outside.fetch_peer(&published).is_some()
        });
        assert_eq!(outside.fetch_peer_from(first, &published), as_first);
        assert_eq!(outside.fetch_peer_from(second, &published), as_second);

        // a preDNAT deny for one source and the published (host) port: that source is blocked
        // before the DNAT, the other still gets in, as does the host itself
        let deny = host_policy(
            "guard-published",
            "fabric",
            &format!(
                "    preDNAT: true\n    ingress:\n{}",
                tcp_rule("deny", 8080, Some(first))
            ),
        );
        apply(
            &cluster,
            &(host_endpoint(&h1, "fabric", "eth0", "fabric") + &deny),
        );
        wait_until(PROGRAMMED, "the preDNAT deny for the first source", || {
            outside.fetch_peer_from(first, &published).is_none()
        });
        let table = || calico_table(&h1);
        assert_eq!(
            outside.fetch_peer_from(second, &published),
            as_second,
            "the other source\n{}",
            table()
        );
        assert_eq!(
            fetch_peer(|args| h1.exec(args), &published, None),
            Some(h1.ip().to_string()),
            "the host itself\n{}",
            table()
        );

        // the host endpoint has no normal policy, so its service is refused to both; a preDNAT
        // allow for one source admits it before the normal policy (Felix's filter input
        // accepts what the mangle table's preDNAT policy accepted)
        assert_eq!(outside.fetch_peer_from(second, service.address()), None);
        let allow = host_policy(
            "admit-second",
            "fabric",
            &format!(
                "    preDNAT: true\n    ingress:\n{}",
                tcp_rule("allow", SERVICE, Some(second))
            ),
        );
        apply(&cluster, &allow);
        wait_until(
            PROGRAMMED,
            "the preDNAT allow for the second source",
            || outside.fetch_peer_from(second, service.address()).is_some(),
        );
        assert_eq!(
            outside.fetch_peer_from(second, service.address()),
            as_second
        );
        assert_eq!(
            outside.fetch_peer_from(first, service.address()),
            None,
            "the first source, which no preDNAT policy admits\n{}",
            table()
        );
        drop(service);
        cluster.down();
    }

    /// An nft table of the test's own in the host's namespace that drops, on `eth0`, every
    /// packet that would create a new conntrack entry, in and out. It runs just after
    /// conntrack (priority -190; conntrack is -200) and so does what a full conntrack table
    /// does: the kernel then drops each packet that needs a new entry (`nf_conntrack: table
    /// full, dropping packet`), while packets of existing entries and untracked packets pass.
    /// The real limit, `nf_conntrack_max`, is the whole machine's and cannot be lowered for
    /// one namespace.
    const CONNTRACK_FULL: &str = "table inet e2e-conntrack-full {
    chain prerouting { type filter hook prerouting priority -190; policy accept;
        iifname \"eth0\" ct state new drop; }
    chain output { type filter hook output priority -190; policy accept;
        oifname \"eth0\" ct state new drop; }
}";

    #[test]
    fn a_do_not_track_pair_works_without_connection_tracking() {
        let cluster = common::cluster(1, Datastore::Etcd);
        let h1 = cluster.host(1);
        let outside = cluster.outside();
        let me = Some(outside.ip().to_string());

        let untracked = h1.serve_peer_address(UNTRACKED);
        let service = h1.serve_peer_address(SERVICE);
        let ssh = h1.serve_peer_address(22);

        // normal policy allows nothing; the doNotTrack pair allows UNTRACKED in (to the port)
        // and its replies out (from the port), as Felix requires both to be written
        let nothing = host_policy(
            "fabric-nothing",
            "fabric",
            "    ingress:\n    - action: deny\n    egress:\n    - action: deny\n",
        );
        let pair = host_policy(
            "untracked-pair",
            "fabric",
            &(yaml(&["    doNotTrack: true", "    ingress:"])
                + &tcp_rule("allow", UNTRACKED, None)
                + &yaml(&[
                    "    egress:",
                    "    - action: allow",
                    "      protocol: tcp",
                    "      source:",
                    &format!("        ports: [{UNTRACKED}]"),
                ])),
        );
        apply(
            &cluster,
            &(host_endpoint(&h1, "fabric", "eth0", "fabric") + &nothing + &pair),
        );
        wait_until(
            PROGRAMMED,
            "the normal policy to refuse the service",
            || outside.fetch_peer(service.address()).is_none(),
        );
        let table = || calico_table(&h1);
        assert_eq!(
            outside.fetch_peer(untracked.address()),
            me,
            "the doNotTrack pair\n{}",
            table()
        );
        // tcp/22 (failsafe) is a tracked flow: it has an entry, the pair's flow has none
        assert_eq!(outside.fetch_peer(ssh.address()), me);
        assert!(!tracked(&h1, 22).is_empty(), "tcp/22 tracked");
        assert_eq!(
            tracked(&h1, UNTRACKED),
            Vec::<String>::new(),
            "the doNotTrack flow\n{}",
            table()
        );

        // no new conntrack entry possible: the tracked service is refused, the pair still works
        h1.exec_ok(&[
            "sh",
            "-c",
            &format!("nft -f - <<'EOF'\n{CONNTRACK_FULL}\nEOF"),
        ]);
        let tracked_refused = outside.fetch_peer(ssh.address());
        let untracked_works = outside.fetch_peer(untracked.address());
        h1.exec_ok(&["nft", "delete", "table", "inet", "e2e-conntrack-full"]);
        assert_eq!(
            tracked_refused, None,
            "tcp/22 without new conntrack entries"
        );
        assert_eq!(
            untracked_works,
            me,
            "the doNotTrack pair without new conntrack entries\n{}",
            table()
        );

        // a flushed conntrack table changes nothing for it
        assert_eq!(outside.fetch_peer(ssh.address()), me, "tcp/22 again");
        h1.exec_ok(&["conntrack", "-F"]);
        assert_eq!(tracked(&h1, 22), Vec::<String>::new(), "flushed");
        assert_eq!(
            outside.fetch_peer(untracked.address()),
            me,
            "after conntrack -F"
        );
        assert_eq!(tracked(&h1, UNTRACKED), Vec::<String>::new());
        assert_eq!(outside.fetch_peer(service.address()), None);
        drop((untracked, service, ssh));
        cluster.down();
    }

    #[test]
    fn a_host_endpoint_applies_to_its_interface_as_soon_as_it_appears() {
        // a failsafe list of our own: the configured port is open, the default ones are not
        let cluster = Cluster::up(Options {
            hosts: 1,
            datastore: Datastore::Etcd,
            calico_node: Some(common::CALICO_NODE.into()),
            node_env: vec![
                (
                    "FELIX_FAILSAFEINBOUNDHOSTPORTS".into(),
                    "tcp:22,tcp:7022".into(),
                ),
                ("FELIX_FAILSAFEOUTBOUNDHOSTPORTS".into(), "tcp:7023".into()),
            ],
            ..Options::default()
        });
        let h1 = cluster.host(1);
        let outside = cluster.outside();
        let service = h1.serve_peer_address(SERVICE);
        let ssh = h1.serve_peer_address(22);
        let configured = h1.serve_peer_address(7022);
        let default_failsafe = h1.serve_peer_address(6666);
        let profiled = h1.serve_peer_address(PROFILED);

        // the host endpoint first, for an interface the host does not have
        apply(&cluster, &host_endpoint(&h1, "link9", "hep9", "link9"));
        wait_until(PROGRAMMED, "the agent to program the host endpoint", || {
            calico_table(&h1).contains("\"hep9\"")
        });
        assert!(!h1.exec_ok(&["ip", "-o", "link"]).contains("hep9"));

        // then the interface: a veth from the host to the outside namespace, on a subnet of
        // its own (10.99.0.1 on the host's hep9, 10.99.0.2 outside), gone with either side
        outside.exec_ok(&[
            "ip",
            "link",
            "add",
            "hep9o",
            "type",
            "veth",
            "peer",
            "name",
            "hep9",
            "netns",
            h1.netns(),
        ]);
        outside.exec_ok(&["ip", "addr", "add", "10.99.0.2/30", "dev", "hep9o"]);
        outside.exec_ok(&["ip", "link", "set", "hep9o", "up"]);
        h1.exec_ok(&["ip", "addr", "add", "10.99.0.1/30", "dev", "hep9"]);
        h1.exec_ok(&["ip", "link", "set", "hep9", "up"]);
        let via_hep9 = |port: u16| outside.fetch_peer(&format!("10.99.0.1:{port}"));
        let there = Some("10.99.0.2".to_string());
        wait_until(PROGRAMMED, "failsafe tcp/22 over the new link", || {
            via_hep9(22).is_some()
        });
        let table = || calico_table(&h1);
        assert_eq!(
            via_hep9(SERVICE),
            None,
            "the service over hep9\n{}",
            table()
        );
        assert_eq!(via_hep9(7022), there, "the configured failsafe port");
        assert_eq!(
            via_hep9(6666),
            None,
            "tcp/6666: a default, not in the configured list"
        );
        // out of the host over hep9: the configured outbound port, not a default one
        let from_host_over_hep9 = |port: u16| {
            outside.exec_ok(&[
                "sh",
                "-c",
                &format!(
                    "timeout 20 socat TCP4-LISTEN:{port},bind=10.99.0.2,reuseaddr \
                     SYSTEM:'echo outside' </dev/null >/dev/null 2>&1 &"
                ),
            ]);
            let reached = || {
                let out = h1.exec(&["sh", "-c", &format!("busybox nc -w 2 10.99.0.2 {port}")]);
                String::from_utf8_lossy(&out.stdout).contains("outside")
            };
            let deadline = std::time::Instant::now() + Duration::from_secs(3);
            let mut ok = reached();
            while !ok && std::time::Instant::now() < deadline {
                ok = reached();
            }
            ok
        };
        assert!(
            from_host_over_hep9(7023),
            "the configured outbound failsafe port"
        );
        assert!(
            !from_host_over_hep9(6667),
            "tcp/6667: an outbound default, not in the configured list"
        );
        // the same services over eth0, which no host endpoint covers
        assert_eq!(
            outside.fetch_peer(service.address()),
            Some(outside.ip().to_string())
        );
        assert!(outside.fetch_peer(default_failsafe.address()).is_some());

        // its profiles apply when no policy does
        let profile = yaml(&[
            "- apiVersion: v1",
            "  kind: profile",
            "  metadata:",
            "    name: link9-profile",
            "  spec:",
            "    ingress:",
        ]) + &tcp_rule("allow", PROFILED, None);
        let with_profile = host_endpoint_with(&h1, "link9", "hep9", "link9", &["link9-profile"]);
        apply(&cluster, &(profile + &with_profile));
        wait_until(
            PROGRAMMED,
            "the profile to admit its port over hep9",
            || via_hep9(PROFILED).is_some(),
        );
        assert_eq!(via_hep9(SERVICE), None, "a port the profile does not name");

        // a policy for its labels admits the service over it; a policy applies now and none
        // allows the profile's port, so the profile is not reached (policies, then profiles,
        // as for a workload)
        let admit = host_policy(
            "link9-services",
            "link9",
            &format!("    ingress:\n{}", tcp_rule("allow", SERVICE, None)),
        );
        apply(&cluster, &admit);
        wait_until(
            PROGRAMMED,
            "the policy to admit the service over hep9",
            || via_hep9(SERVICE).is_some(),
        );
        assert_eq!(via_hep9(SERVICE), there);
        assert_eq!(
            via_hep9(PROFILED),
            None,
            "the profile's port under a policy that does not pass\n{}",
            table()
        );

        h1.exec_ok(&["ip", "link", "del", "hep9"]);
        assert!(!outside.exec_ok(&["ip", "-o", "link"]).contains("hep9o"));
        drop((service, ssh, configured, default_failsafe, profiled));
        cluster.down();
    }
}
