//! calico-node and the world beyond the cluster, seen from the harness's outside namespace (on
//! the fabric, with no route to any pool: it can answer a container only when the container's
//! traffic was masqueraded to its host's address): nat-outgoing, published ports under the
//! endpoint's policy, and a DNS server that answers only its host and the host's workloads.
//! Runs in the `e2e` nextest group (module `e2e_world`); see docs/harness.md.

mod common;

mod e2e_world {
    use std::time::Duration;

    use calico_testkit::cluster::{wait_until, Datastore, Host};
    use calico_testkit::outside::PEER_CGI;
    use calico_testkit::steps::{create_network, ip_in, run_busybox};

    use crate::common;

    /// How long a pool change may take to reach the hosts' nft tables.
    const PROGRAMMED: Duration = Duration::from_secs(30);

    /// An HTTP/1.0 GET of `/cgi-bin/peer` at `addr` (`ip:port`) from `container` on `host`
    /// (see [`fetch_with`]).
    fn fetch(host: &Host, container: &str, addr: &str) -> Option<String> {
        fetch_with(
            |args| host.docker(&[&["exec", container], args].concat()),
            addr,
        )
    }

    /// Starts busybox httpd in `container`, answering `/cgi-bin/peer` with the client's address.
    fn serve_peer_address(host: &Host, container: &str) {
        let script = format!(
            "mkdir -p /www/cgi-bin && printf '%s' '{PEER_CGI}' > /www/cgi-bin/peer && \
             chmod +x /www/cgi-bin/peer && httpd -p 0.0.0.0:80 -h /www"
        );
        host.docker_ok(&["exec", container, "sh", "-c", &script]);
    }

    /// Runs a UDP server on `port` in `container`'s network namespace (socat from the host:
    /// busybox's nc has no UDP) that answers every datagram with the sender's address; it
    /// stops by itself after two minutes, or with the host.
    fn serve_udp_peer_address(host: &Host, container: &str, port: u16) {
        let pid = host.docker_ok(&["inspect", "-f", "{{.State.Pid}}", container]);
        host.exec_ok(&[
            "sh",
            "-c",
            &format!(
                "nsenter --net=/proc/{pid}/ns/net timeout 120 \
                 socat UDP4-RECVFROM:{port},fork SYSTEM:'echo $SOCAT_PEERADDR' \
                 </dev/null >/dev/null 2>&1 &"
            ),
        ]);
    }

    /// One datagram to `addr` (`ip:port`) with socat, from where `run` runs: the answer, or
    /// `None` when none came within 2 s.
    fn udp_ask(run: impl Fn(&[&str]) -> std::process::Output, addr: &str) -> Option<String> {
        let out = run(&[
            "sh",
            "-c",
            &format!("echo ask | timeout 5 socat -T2 - UDP4:{addr}"),
        ]);
        let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (!answer.is_empty()).then_some(answer)
    }

    /// Whether host `host`'s set `set` of the calico table lists `cidr`.
    fn set_lists(host: &Host, set: &str, cidr: &str) -> bool {
        let out = host.exec_ok(&["nft", "list", "set", "inet", "calico", set]);
        out.contains(cidr)
    }

    fn apply_pool(cluster: &calico_testkit::cluster::Cluster, cidr: &str, nat: bool) {
        cluster.calicoctl_ok(
            &["apply", "-f", "-"],
            Some(&format!(
                "- apiVersion: v1\n  kind: ipPool\n  metadata:\n    cidr: {cidr}\n  spec:\n    nat-outgoing: {nat}\n"
            )),
        );
    }

    /// An HTTP/1.0 GET of `/cgi-bin/peer` at `addr` (`ip:port`) with busybox nc, from a shell
    /// that `run` runs (in a container, a host, the outside namespace; busybox-static's wget
    /// crashes in these images): the body's last line, or `None` when nothing answered within
    /// 3 s.
    fn fetch_with(run: impl Fn(&[&str]) -> std::process::Output, addr: &str) -> Option<String> {
        let (ip, port) = addr.rsplit_once(':').expect("ip:port");
        let request = format!(
            "printf 'GET /cgi-bin/peer HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 {ip} {port}"
        );
        let out = run(&["sh", "-c", &request]);
        let body = String::from_utf8_lossy(&out.stdout);
        let last = body.lines().map(str::trim).rfind(|l| !l.is_empty())?;
        (out.status.success() && body.contains(" 200 ")).then(|| last.to_string())
    }

    /// A policy for every endpoint that admits `(protocol, port)`s from the outside namespace
    /// and passes everything else on to the profiles.
    fn admit_outside(allowed: &[(&str, u16)]) -> String {
        let mut yaml = String::from(
            "- apiVersion: v1\n  kind: policy\n  metadata:\n    name: admit-outside\n  spec:\n    selector: all()\n    ingress:\n",
        );
        for (protocol, port) in allowed {
            yaml += &format!(
                "    - action: allow\n      protocol: {protocol}\n      source:\n        nets: [10.10.0.254/32]\n      destination:\n        ports: [{port}]\n"
            );
        }
        yaml + "    - action: pass\n    egress:\n    - action: pass\n"
    }

    /// The host ports that `dnat-prerouting` of `host` DNATs to `target` (`ip:port`).
    fn dnat_ports(host: &Host, target: &str) -> Vec<u16> {
        let chain = host.exec_ok(&["nft", "list", "chain", "inet", "calico", "dnat-prerouting"]);
        chain
            .lines()
            .filter(|line| line.contains(&format!("to {target}")))
            .filter_map(|line| {
                let (_, after) = line.split_once("dport ")?;
                after.split_whitespace().next()?.parse().ok()
            })
            .collect()
    }

    /// Whether a workload on `network` that routes 127.0.0.1 to its gateway (it has NET_ADMIN
    /// and `route_localnet`, so its kernel sends such packets) reaches a service the host
    /// binds to 127.0.0.1 only: whether its connection attempt shows up on the host as a
    /// half-open connection within 4 s. Workload interfaces have `route_localnet` on the host
    /// side (for published ports on 127.0.0.1); without the guard in the calico table this is
    /// CVE-2020-8558.
    fn workload_reaches_host_loopback(host: &Host, network: &str) -> bool {
        host.exec_ok(&[
            "sh",
            "-c",
            "timeout 60 socat -u TCP4-LISTEN:9999,bind=127.0.0.1,reuseaddr,fork OPEN:/dev/null \
             </dev/null >/dev/null 2>&1 &",
        ]);
        host.docker_ok(&[
            "run",
            "--net",
            network,
            "--name",
            "prober",
            "--cap-add",
            "NET_ADMIN",
            "--sysctl",
            "net.ipv4.conf.all.route_localnet=1",
            "-tid",
            "busybox",
        ]);
        host.docker_ok(&[
            "exec",
            "prober",
            "sh",
            "-c",
            "ip route del local 127.0.0.1 dev lo table local && \
             ip route del local 127.0.0.0/8 dev lo table local && \
             ip route add 127.0.0.1/32 via 169.254.1.1",
        ]);
        host.docker_ok(&[
            "exec",
            "-d",
            "prober",
            "sh",
            "-c",
            "busybox nc -w 5 127.0.0.1 9999",
        ]);
        let half_open = || {
            !host
                .exec_ok(&["ss", "-Htn", "state", "syn-recv", "( sport = :9999 )"])
                .trim()
                .is_empty()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(4);
        let mut reached = false;
        while !reached && std::time::Instant::now() < deadline {
            reached = half_open();
            std::thread::sleep(Duration::from_millis(100));
        }
        host.docker_ok(&["rm", "-f", "prober"]);
        reached
    }

    #[test]
    fn published_ports_meet_the_endpoint_policy_and_follow_the_container() {
        let cluster = common::cluster(1, Datastore::Etcd);
        let h1 = cluster.host(1);
        let outside = cluster.outside();
        let from_outside = |args: &[&str]| outside.exec(args);
        let from_host = |args: &[&str]| h1.exec(args);
        create_network(&h1, "net1", &[]);
        h1.docker_ok(&[
            "run",
            "--net",
            "net1",
            "--name",
            "web",
            "-p",
            "8080:80",
            "-p",
            "5300:53/udp",
            "-p",
            "127.0.0.1:8181:80",
            "-tid",
            "busybox",
        ]);
        serve_peer_address(&h1, "web");
        serve_udp_peer_address(&h1, "web", 53);
        let published = format!("{}:8080", h1.ip());
        let web = ip_in(&h1, "web", "net1");

        // from the host itself (not policed, as in Felix) and by hairpin from the container
        let mut seen = None;
        wait_until(PROGRAMMED, "the published port from the host", || {
            seen = fetch_with(from_host, &published);
            seen.is_some()
        });
        assert_eq!(seen.as_deref(), Some(h1.ip().to_string().as_str()));
        assert!(fetch(&h1, "web", &published).is_some(), "hairpin");
        // from the host's loopback (masqueraded to a host address), and a port published on
        // 127.0.0.1 only
        assert!(
            fetch_with(from_host, "127.0.0.1:8080").is_some(),
            "localhost"
        );
        assert!(
            fetch_with(from_host, "127.0.0.1:8181").is_some(),
            "127.0.0.1 only"
        );
        let loopback_only = format!("{}:8181", h1.ip());
        assert_eq!(fetch_with(from_host, &loopback_only), None);
        assert!(
            !workload_reaches_host_loopback(&h1, "net1"),
            "route_localnet let a workload reach the host's 127.0.0.1 (CVE-2020-8558)"
        );

        // from outside: the default profile (same network only) refuses; a policy admits, and
        // the container sees the real source
        assert_eq!(fetch_with(from_outside, &published), None);
        cluster.calicoctl_ok(&["apply", "-f", "-"], Some(&admit_outside(&[("tcp", 80)])));
        wait_until(PROGRAMMED, "the policy to admit the outside", || {
            seen = fetch_with(from_outside, &published);
            seen.is_some()
        });
        assert_eq!(seen.as_deref(), Some(outside.ip().to_string().as_str()));
        assert_eq!(fetch_with(from_outside, &loopback_only), None);

        // UDP too: refused until a rule admits udp/53 from outside, then with the real source
        let udp = format!("{}:5300", h1.ip());
        assert_eq!(udp_ask(from_outside, &udp), None);
        let both = admit_outside(&[("tcp", 80), ("udp", 53)]);
        cluster.calicoctl_ok(&["apply", "-f", "-"], Some(&both));
        wait_until(
            PROGRAMMED,
            "the policy to admit udp from the outside",
            || {
                seen = udp_ask(from_outside, &udp);
                seen.is_some()
            },
        );
        assert_eq!(seen.as_deref(), Some(outside.ip().to_string().as_str()));

        // a second container asking for the same host port gets Docker's usual error
        let taken = h1.docker(&[
            "run", "--net", "net1", "--name", "web2", "-p", "8080:80", "-tid", "busybox",
        ]);
        let stderr = String::from_utf8_lossy(&taken.stderr);
        assert!(
            !taken.status.success() && stderr.contains("port is already allocated"),
            "{stderr}"
        );
        h1.docker_ok(&["rm", "-f", "web2"]);

        // a host port range (port 80 to a free one of 9100-9102) and -P (exposed port 81 to a
        // free port of the kernel's ephemeral range), each reachable from the host
        h1.docker_ok(&[
            "run",
            "--net",
            "net1",
            "--name",
            "auto",
            "--expose",
            "81",
            "-P",
            "-p",
            "9100-9102:80",
            "-tid",
            "busybox",
        ]);
        serve_peer_address(&h1, "auto");
        h1.docker_ok(&["exec", "auto", "httpd", "-p", "0.0.0.0:81", "-h", "/www"]);
        let auto = ip_in(&h1, "auto", "net1");
        let mut ranged = Vec::new();
        let mut exposed = Vec::new();
        wait_until(PROGRAMMED, "host ports for auto's ports 80 and 81", || {
            ranged = dnat_ports(&h1, &format!("{auto}:80"));
            exposed = dnat_ports(&h1, &format!("{auto}:81"));
            !ranged.is_empty() && !exposed.is_empty()
        });
        assert!(matches!(ranged[..], [9100..=9102]), "{ranged:?}");
        assert!(matches!(exposed[..], [p] if p >= 1024), "{exposed:?}");
        for port in [ranged[0], exposed[0]] {
            let addr = format!("{}:{port}", h1.ip());
            assert!(fetch_with(from_host, &addr).is_some(), "{addr}");
        }
        h1.docker_ok(&["rm", "-f", "auto"]);

        // after a calico-node restart the port is back, rebuilt from what Docker reports (the
        // restarted agent's first full sync would remove a port nobody published again)
        let synced = || h1.node_log().matches("nftables table ").count();
        let before = synced();
        h1.node_stop();
        h1.node_start();
        wait_until(PROGRAMMED, "the restarted agent's first full sync", || {
            synced() > before
        });
        wait_until(PROGRAMMED, "the port after a calico-node restart", || {
            fetch_with(from_outside, &published).is_some()
        });

        // released when the container stops, programmed again when it starts
        let dnat = || h1.exec_ok(&["nft", "list", "chain", "inet", "calico", "dnat-prerouting"]);
        h1.docker_ok(&["stop", "-t", "1", "web"]);
        wait_until(
            PROGRAMMED,
            "the DNAT to go with the stopped container",
            || !dnat().contains(&web),
        );
        h1.docker_ok(&["start", "web"]);
        let restarted = ip_in(&h1, "web", "net1");
        wait_until(
            PROGRAMMED,
            "the DNAT back for the started container",
            || dnat().contains(&restarted),
        );

        // gone with the container
        h1.docker_ok(&["rm", "-f", "web"]);
        wait_until(PROGRAMMED, "the DNAT to go with the container", || {
            !dnat().contains(&restarted)
        });
        assert_eq!(fetch_with(from_outside, &published), None);
        cluster.down();
    }

    /// `timeout 5 busybox nslookup NAME SERVER`, run by `run`: the address it printed for
    /// NAME, if any.
    fn lookup(
        run: impl Fn(&[&str]) -> std::process::Output,
        name: &str,
        server: &str,
    ) -> Option<String> {
        let out = run(&["timeout", "5", "busybox", "nslookup", name, server]);
        let text = String::from_utf8_lossy(&out.stdout);
        let answer = text.split_once(&format!("Name:\t{name}"))?.1;
        answer
            .lines()
            .find_map(|l| l.strip_prefix("Address: "))
            .map(|a| a.trim().to_string())
    }

    #[test]
    fn dns_answers_the_host_and_its_workloads_and_nobody_outside() {
        let cluster = common::cluster(1, Datastore::Etcd);
        let h1 = cluster.host(1);
        create_network(&h1, "net1", &[]);
        run_busybox(&h1, "wa", "net1");
        run_busybox(&h1, "wb", "net1");
        let wa = ip_in(&h1, "wa", "net1");
        let node = h1.ip().to_string();
        let from_host = |args: &[&str]| h1.exec(args);
        let from_wb = |args: &[&str]| h1.docker(&[&["exec", "wb"], args].concat());
        for (who, run) in [
            ("the host", &from_host as &dyn Fn(&[&str]) -> _),
            ("wb", &from_wb),
        ] {
            let mut answer = None;
            wait_until(PROGRAMMED, &format!("{who}'s query to be answered"), || {
                answer = lookup(run, "wa.net1", &node);
                answer.is_some()
            });
            assert_eq!(answer.as_deref(), Some(wa.as_str()), "answer to {who}");
        }
        let outside = cluster.outside();
        assert_eq!(lookup(|args| outside.exec(args), "wa.net1", &node), None);
        cluster.down();
    }

    #[test]
    fn nat_outgoing_masquerades_to_the_world_only_and_follows_the_pools() {
        let cluster = common::cluster(2, Datastore::Etcd);
        let (h1, h2) = (cluster.host(1), cluster.host(2));
        let server = cluster.outside().serve_peer_address(8080);

        // the default pool (nat-outgoing, as calico/node creates it): the world sees the host
        cluster.create_calico_network(1, "net1");
        run_busybox(&h1, "wa", "net1");
        let mut reached = None;
        wait_until(PROGRAMMED, "wa to reach the outside server", || {
            reached = fetch(&h1, "wa", server.address());
            reached.is_some()
        });
        assert_eq!(reached.as_deref(), Some(h1.ip().to_string().as_str()));

        // between workloads, across hosts, the source address stays the container's
        run_busybox(&h2, "wb", "net1");
        serve_peer_address(&h2, "wb");
        let wa_ip = ip_in(&h1, "wa", "net1");
        let wb_url = format!("{}:80", ip_in(&h2, "wb", "net1"));
        let mut seen = None;
        wait_until(PROGRAMMED, "wa to reach wb across hosts", || {
            seen = fetch(&h1, "wa", &wb_url);
            seen.is_some()
        });
        assert_eq!(seen.as_deref(), Some(wa_ip.as_str()));

        // a pool without nat-outgoing: its containers cannot reach the world
        apply_pool(&cluster, "10.77.0.0/16", false);
        create_network(&h1, "plain", &["--subnet", "10.77.0.0/16"]);
        run_busybox(&h1, "wc", "plain");
        for host in [&h1, &h2] {
            wait_until(PROGRAMMED, "the pool in every host's table", || {
                set_lists(host, "all-pools4", "10.77.0.0/16")
            });
        }
        assert_eq!(fetch(&h1, "wc", server.address()), None);

        // flipping the flag applies to the next connection, both ways
        apply_pool(&cluster, "10.77.0.0/16", true);
        wait_until(PROGRAMMED, "the flipped pool in host 1's table", || {
            set_lists(&h1, "masq-pools4", "10.77.0.0/16")
        });
        assert_eq!(
            fetch(&h1, "wc", server.address()).as_deref(),
            Some(h1.ip().to_string().as_str())
        );
        apply_pool(&cluster, "10.77.0.0/16", false);
        wait_until(
            PROGRAMMED,
            "the pool flipped back in host 1's table",
            || !set_lists(&h1, "masq-pools4", "10.77.0.0/16"),
        );
        assert_eq!(fetch(&h1, "wc", server.address()), None);
        // the default pool kept its translation throughout
        assert_eq!(
            fetch(&h1, "wa", server.address()).as_deref(),
            Some(h1.ip().to_string().as_str())
        );
        cluster.down();
    }
}
