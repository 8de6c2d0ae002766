//! calicoctl 0.x's `profile` and `pool` commands end to end: the real binary against a
//! temporary SQLite datastore (through a `-c` config file, given after the command words as a
//! user may). Docker is a socket that does not exist, or a fake daemon where a test needs one.

mod common;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use common::{calicoctl, Run};

/// A datastore for one test, the config file naming it, and the Docker socket to use.
struct Ctl {
    config: PathBuf,
    docker_host: String,
    dir: tempfile::TempDir,
}

impl Ctl {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("calicoctl.cfg");
        std::fs::write(
            &config,
            format!(
                "apiVersion: v1\nkind: calicoApiConfig\nmetadata:\nspec:\n  \
                 datastoreType: sqlite\n  sqlitePath: {}\n",
                dir.path().join("calico.db").display()
            ),
        )
        .unwrap();
        let docker_host = format!("unix://{}", dir.path().join("no-docker.sock").display());
        Ctl {
            config,
            docker_host,
            dir,
        }
    }

    /// Runs `calicoctl ARGS -c <config>` (ARGS split at spaces) with `stdin` as input.
    fn run_with(&self, args: &str, stdin: &str) -> Run {
        let mut argv: Vec<&OsStr> = args.split_whitespace().map(OsStr::new).collect();
        argv.push(OsStr::new("-c"));
        argv.push(self.config.as_os_str());
        calicoctl(
            &argv,
            &[("DOCKER_HOST", OsStr::new(&self.docker_host))],
            stdin,
        )
    }

    fn run(&self, args: &str) -> Run {
        self.run_with(args, "")
    }

    /// `get KIND NAME -o json`, the one resource.
    fn get_json(&self, kind: &str, name: &str) -> serde_json::Value {
        let list: serde_json::Value =
            serde_json::from_str(self.run(&format!("get {kind} {name} -o json")).ok()).unwrap();
        list[0].clone()
    }
}

const DEFAULT_RULES: &str =
    "Inbound rules:\n   1 allow from tag databases\nOutbound rules:\n   1 allow\n";

/// "Accessing Calico policy with Calico as a network plugin" (Calico v1.6 docs), with
/// `profile add` standing in for `docker network create`: both create the default profile.
#[test]
fn tutorial_transcript() {
    let ctl = Ctl::new();
    assert_eq!(
        ctl.run("profile add databases").ok(),
        "Created profile databases\n"
    );
    assert_eq!(ctl.run("profile databases rule show").ok(), DEFAULT_RULES);
    ctl.run("profile add applications").ok();
    assert_eq!(
        ctl.run("profile databases rule add inbound allow tcp from tag applications to ports 3306")
            .ok(),
        ""
    );
    assert_eq!(
        ctl.run("profile databases rule show").ok(),
        "Inbound rules:\n\
         \x20  1 allow from tag databases\n\
         \x20  2 allow tcp from tag applications to ports 3306\n\
         Outbound rules:\n\
         \x20  1 allow\n"
    );

    let profile = ctl.get_json("profile", "databases");
    assert_eq!(
        profile["metadata"],
        serde_json::json!({"name": "databases", "tags": ["databases"]})
    );
    assert_eq!(
        profile["spec"],
        serde_json::json!({
            "ingress": [
                {"action": "allow", "source": {"tag": "databases"}},
                {
                    "action": "allow",
                    "protocol": "tcp",
                    "source": {"tag": "applications"},
                    "destination": {"ports": [3306]}
                }
            ],
            "egress": [{"action": "allow"}]
        })
    );
    let yaml = ctl.run("get profile databases -o yaml").ok().to_string();
    assert!(
        yaml.contains(
            "    - action: allow\n      destination:\n        ports:\n        - 3306\n      \
             protocol: tcp\n      source:\n        tag: applications\n"
        ),
        "{yaml}"
    );
}

#[test]
fn rules_written_by_apply_are_listed() {
    let ctl = Ctl::new();
    let profile = "\
- apiVersion: v1
  kind: profile
  metadata:
    name: web
  spec:
    ingress:
    - action: allow
      protocol: tcp
      source:
        selector: role == 'frontend'
        nets: [10.0.0.0/8]
      destination:
        ports: [80, 443, '8000:8080']
    - action: deny
      protocol: icmp
      icmp: {type: 8, code: 0}
    - action: log
      source:
        notTag: untrusted
    egress:
    - action: allow
      destination:
        net: 192.168.0.0/16
";
    ctl.run_with("apply -f -", profile).ok();
    assert_eq!(
        ctl.run("profile web rule show").ok(),
        "Inbound rules:\n\
         \x20  1 allow tcp from cidr 10.0.0.0/8 selector \"role == 'frontend'\" to ports 80,443,8000:8080\n\
         \x20  2 deny icmp type 8 code 0\n\
         \x20  3 log from not tag untrusted\n\
         Outbound rules:\n\
         \x20  1 allow to cidr 192.168.0.0/16\n"
    );
    assert_eq!(
        ctl.run("profile web rule remove outbound allow to cidr 192.168.0.0/16")
            .ok(),
        "",
        "a v1 `net` matches the legacy `cidr`"
    );
    assert_eq!(
        ctl.run("profile web rule remove inbound deny icmp type 8 code 0")
            .ok(),
        ""
    );
    assert_eq!(
        ctl.run("profile web tag show").ok(),
        "",
        "no tags, nothing printed"
    );
}

#[test]
fn rule_json_edit_and_update() {
    let ctl = Ctl::new();
    ctl.run("profile add databases").ok();
    let json = ctl.run("profile databases rule json").ok().to_string();
    assert_eq!(
        json,
        "{\n  \"inbound_rules\": [\n    {\n      \"action\": \"allow\",\n      \
         \"src_tag\": \"databases\"\n    }\n  ],\n  \"outbound_rules\": [\n    {\n      \
         \"action\": \"allow\"\n    }\n  ]\n}\n\n"
    );
    let mut doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    doc["inbound_rules"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "action": "deny",
            "protocol": "udp",
            "src_net": "10.0.0.0/8",
            "dst_ports": [53, "1000:2000"]
        }));
    doc["outbound_rules"][0]["action"] = "deny".into();
    assert_eq!(
        ctl.run_with("profile databases rule update", &doc.to_string())
            .ok(),
        "Successfully updated rules on profile databases\n"
    );
    let listing = "Inbound rules:\n\
                   \x20  1 allow from tag databases\n\
                   \x20  2 deny udp from cidr 10.0.0.0/8 to ports 53,1000:2000\n\
                   Outbound rules:\n\
                   \x20  1 deny\n";
    assert_eq!(ctl.run("profile databases rule show").ok(), listing);
    let again = ctl.run("profile databases rule json").ok().to_string();
    assert_eq!(
        ctl.run_with("profile databases rule update", &again).ok(),
        "Successfully updated rules on profile databases\n",
        "rule json output is valid rule update input"
    );
    assert_eq!(ctl.run("profile databases rule json").ok(), again);

    let bad_inputs = [
        (
            "not json",
            "Invalid rules JSON: expected ident at line 1 column 2\n",
        ),
        (
            r#"{"inbound_rules": [{"action": "allow", "dst_port": [80]}], "outbound_rules": []}"#,
            "Key dst_port is not allowed on Rule.\n",
        ),
        (
            r#"{"id": "other", "inbound_rules": [], "outbound_rules": []}"#,
            "Rules JSON \"id\"=other doesn't match profile name databases.\n",
        ),
        (
            r#"{"inbound_rules": [{"action": "allow", "protocol": "icmp", "dst_ports": [80]}], "outbound_rules": []}"#,
            "error with field spec.ingress[0].destination.ports = '[80]' (protocol does not \
             support ports; set protocol to tcp or udp)\n",
        ),
    ];
    for (input, message) in bad_inputs {
        assert_eq!(
            ctl.run_with("profile databases rule update", input)
                .failed(),
            message
        );
    }
    assert_eq!(
        ctl.run("profile databases rule show").ok(),
        listing,
        "failed updates change nothing"
    );
    assert_eq!(
        ctl.run_with("profile nosuch rule update", &again).failed(),
        "Profile nosuch not found.\n"
    );
}

#[test]
fn rule_add_positions() {
    let ctl = Ctl::new();
    ctl.run("profile add databases").ok();
    for line in [
        "rule add inbound --at=1 deny tcp to ports 22",
        "rule add inbound allow udp from ports 53",
        "rule add inbound allow icmp type 8 --at 3",
        "rule add outbound --at=2 deny to cidr 10.0.0.0/8",
    ] {
        assert_eq!(ctl.run(&format!("profile databases {line}")).ok(), "");
    }
    let listing = "Inbound rules:\n\
                   \x20  1 deny tcp to ports 22\n\
                   \x20  2 allow from tag databases\n\
                   \x20  3 allow icmp type 8\n\
                   \x20  4 allow udp from ports 53\n\
                   Outbound rules:\n\
                   \x20  1 allow\n\
                   \x20  2 deny to cidr 10.0.0.0/8\n";
    assert_eq!(ctl.run("profile databases rule show").ok(), listing);

    for (line, message) in [
        ("inbound --at=0 deny", "Position 0 is out-of-range.\n"),
        ("inbound --at=6 deny", "Position 6 is out-of-range.\n"),
        ("outbound --at=-1 deny", "Position -1 is out-of-range.\n"),
    ] {
        assert_eq!(
            ctl.run(&format!("profile databases rule add {line}"))
                .failed(),
            message
        );
    }
    assert_eq!(
        ctl.run("profile databases rule add inbound allow from tag databases")
            .ok(),
        "Rule already present, skipping.\n"
    );
    assert_eq!(
        ctl.run("profile databases rule add inbound --at=1 allow udp from ports 53")
            .ok(),
        "Rule already present, skipping.\n"
    );
    assert_eq!(
        ctl.run("profile databases rule show").ok(),
        listing,
        "refused and duplicate rules change nothing"
    );
}

#[test]
fn rule_remove_by_position_and_by_value() {
    let ctl = Ctl::new();
    ctl.run("profile add databases").ok();
    ctl.run("profile databases rule add inbound allow tcp from tag applications to ports 3306,8000-8080")
        .ok();
    ctl.run("profile databases rule add inbound deny").ok();
    assert_eq!(
        ctl.run("profile databases rule remove inbound --at=4")
            .failed(),
        "Rule position out-of-range.\n"
    );
    assert_eq!(
        ctl.run("profile databases rule remove outbound --at=0")
            .failed(),
        "Rule position out-of-range.\n"
    );
    assert_eq!(
        ctl.run("profile databases rule remove inbound deny tcp")
            .failed(),
        "Rule not found.\n"
    );
    assert_eq!(
        ctl.run("profile databases rule remove outbound allow from tag databases")
            .failed(),
        "Rule not found.\n",
        "the rule is inbound"
    );
    assert_eq!(
        ctl.run("profile databases rule remove inbound --at=1").ok(),
        ""
    );
    assert_eq!(
        ctl.run("profile databases rule remove inbound allow tcp to ports 3306,8000:8080 from tag applications")
            .ok(),
        ""
    );
    assert_eq!(
        ctl.run("profile databases rule show").ok(),
        "Inbound rules:\n   1 deny\nOutbound rules:\n   1 allow\n"
    );
    ctl.run("profile databases rule remove outbound allow").ok();
    assert_eq!(
        ctl.run("profile databases rule show").ok(),
        "Inbound rules:\n   1 deny\nOutbound rules:\n"
    );
}

#[test]
fn tags() {
    let ctl = Ctl::new();
    ctl.run("profile add databases").ok();
    assert_eq!(ctl.run("profile databases tag show").ok(), "databases\n");
    assert_eq!(
        ctl.run("profile databases tag add web").ok(),
        "Tag web added to profile databases\n"
    );
    assert_eq!(
        ctl.run("profile databases tag add web").ok(),
        "Tag web added to profile databases\n",
        "adding a tag twice keeps one"
    );
    assert_eq!(
        ctl.run("profile databases tag show").ok(),
        "databases\nweb\n"
    );
    assert_eq!(
        ctl.get_json("profile", "databases")["metadata"]["tags"],
        serde_json::json!(["databases", "web"])
    );
    assert_eq!(
        ctl.run("profile databases tag remove databases").ok(),
        "Tag databases removed from profile databases\n"
    );
    assert_eq!(
        ctl.run("profile databases tag remove databases").failed(),
        "Tag databases is not on profile databases\n"
    );
    assert_eq!(ctl.run("profile databases tag show").ok(), "web\n");
    assert_eq!(
        ctl.run("profile databases tag add we/b").failed(),
        "Tags names can only contain numbers, letters, dots, dashes and underscores.\n\n"
    );
}

const ENDPOINTS: &str = "\
- apiVersion: v1
  kind: workloadEndpoint
  metadata:
    node: host1
    orchestrator: libnetwork
    workload: libnetwork
    name: 0123456789abcdef
  spec:
    interfaceName: cali0123456789a
    ipNetworks: [192.168.0.5/32]
    profiles: [databases]
- apiVersion: v1
  kind: hostEndpoint
  metadata:
    node: host2
    name: eth0
  spec:
    interfaceName: eth0
    profiles: [databases, edge]
";

#[test]
fn profile_add_show_and_remove() {
    let ctl = Ctl::new();
    assert_eq!(
        ctl.run("profile show").ok(),
        "+------+\n| Name |\n+------+\n+------+\n"
    );
    for name in ["databases", "edge", "applications"] {
        ctl.run(&format!("profile add {name}")).ok();
    }
    assert_eq!(
        ctl.run("profile add edge").ok(),
        "Profile edge already exists.\n"
    );
    assert_eq!(
        ctl.run("profile show").ok(),
        "+--------------+\n\
         |     Name     |\n\
         +--------------+\n\
         | applications |\n\
         |  databases   |\n\
         |     edge     |\n\
         +--------------+\n"
    );
    ctl.run_with("apply -f -", ENDPOINTS).ok();
    assert_eq!(
        ctl.run("profile show --detailed").ok(),
        "+--------------+-------+-----------------+-------------+------------------+--------+\n\
         |     Name     |  Host | Orchestrator ID | Workload ID |   Endpoint ID    | State  |\n\
         +--------------+-------+-----------------+-------------+------------------+--------+\n\
         | applications |  None |       None      |     None    |       None       |  None  |\n\
         |  databases   | host1 |    libnetwork   |  libnetwork | 0123456789abcdef | active |\n\
         |  databases   | host2 |       None      |     None    |       eth0       | active |\n\
         |     edge     | host2 |       None      |     None    |       eth0       | active |\n\
         +--------------+-------+-----------------+-------------+------------------+--------+\n"
    );

    let in_use = "Cannot remove profile - profile in use by endpoint(s).\n\
                  Use the '--no-check' flag to remove the profile anyway.\n";
    assert_eq!(ctl.run("profile remove databases").failed(), in_use);
    assert_eq!(
        ctl.run("profile remove edge").failed(),
        in_use,
        "host endpoints count"
    );
    assert_eq!(
        ctl.run("profile remove applications").ok(),
        "Deleted profile applications\n"
    );
    assert_eq!(
        ctl.run("profile remove databases --no-check").ok(),
        "Deleted profile databases\n"
    );
    assert_eq!(
        ctl.run("profile remove databases").failed(),
        "Profile databases not found.\n"
    );
    assert_eq!(
        ctl.run("get profiles").ok(),
        "NAME   \nedge   \n\n",
        "the v1 resources are the same ones"
    );
    assert_eq!(
        ctl.run("profile add data/bases").failed(),
        "Profile names must be < 40 character long and can only contain numbers, letters,\n\
         dots, dashes and underscores.\n\n"
    );
}

#[test]
fn unknown_profiles() {
    let ctl = Ctl::new();
    for line in [
        "tag show",
        "tag add x",
        "tag remove x",
        "rule show",
        "rule json",
        "rule add inbound allow",
        "rule remove outbound --at=1",
        "rule remove outbound deny",
    ] {
        assert_eq!(
            ctl.run(&format!("profile nosuch {line}")).failed(),
            "Profile nosuch not found.\n",
            "{line}"
        );
    }
    assert_eq!(
        ctl.run("get profiles").ok(),
        "NAME   \n\n",
        "nothing was created"
    );
}

#[test]
fn value_errors() {
    let ctl = Ctl::new();
    ctl.run("profile add db").ok();
    for (line, message) in [
        ("allow from cidr 10.0.0.256", "Invalid CIDR specified.\n"),
        (
            "allow icmp type 8 code 300",
            "Invalid ICMP type or ICMP code specified.\n",
        ),
        (
            "allow tcp to ports 65536",
            "Invalid SRCPORTS or DSTPORTS specified.\n",
        ),
        (
            "allow tcp to ports 80,,81",
            "Ports: '80,,81' are invalid; expecting a comma-separated list of ports and port\n\
             ranges.\n\n",
        ),
        (
            "allow icmpv6 from cidr 10.0.0.0/8",
            "Invalid or unmatching IP versions for SRCCIDR/DSTCIDR.\n",
        ),
        (
            "allow icmp from ports 80",
            "Ports are not valid with protocol 'icmp'\n",
        ),
        (
            "allow from tag a+b",
            "Tags names can only contain numbers, letters, dots, dashes and underscores.\n\n",
        ),
    ] {
        assert_eq!(
            ctl.run(&format!("profile db rule add inbound {line}"))
                .failed(),
            message,
            "{line}"
        );
    }
    assert_eq!(
        ctl.run("profile db rule show").ok(),
        "Inbound rules:\n   1 allow from tag db\nOutbound rules:\n   1 allow\n"
    );
}

#[test]
fn usage_errors_and_help() {
    let ctl = Ctl::new();
    let help = ctl.run("profile --help");
    assert!(
        help.ok()
            .starts_with("Usage:\n  calicoctl profile show [--detailed]\n"),
        "{help:?}"
    );
    assert!(help.ok().contains("\nOptions:\n  --detailed "), "{help:?}");
    let pool_help = ctl.run("pool -h");
    assert!(pool_help
        .ok()
        .starts_with("Usage:\n  calicoctl pool add <CIDRS>... [--ipip] [--nat-outgoing]\n"));

    for (line, reason) in [
        ("profile", "Missing command"),
        (
            "profile db rule add inbound permit",
            "Expected allow or deny, not 'permit'",
        ),
        (
            "profile db rule add inbound allow tcp sideways",
            "Unexpected 'sideways'",
        ),
        ("profile show --frobnicate", "Unknown option --frobnicate"),
        (
            "profile db rule add inbound --at=x allow",
            "--at needs an integer position, not 'x'",
        ),
    ] {
        let err = ctl.run(line);
        let stderr = err.failed();
        assert!(
            stderr.starts_with(&format!("{reason}\nUsage:\n  calicoctl profile show")),
            "{line}: {stderr}"
        );
    }
    let err = ctl.run("pool frob");
    assert_eq!(
        err.failed(),
        "Expected add, remove or show, not 'frob'\n\
         Usage:\n\
         \x20 calicoctl pool add <CIDRS>... [--ipip] [--nat-outgoing]\n\
         \x20 calicoctl pool remove <CIDRS>...\n\
         \x20 calicoctl pool show [--ipv4 | --ipv6]\n"
    );
}

#[test]
fn pools() {
    let ctl = Ctl::new();
    let empty_v4 = "+-----------+---------+\n| IPv4 CIDR | Options |\n+-----------+---------+\n+-----------+---------+\n";
    let empty_v6 = empty_v4.replace("IPv4", "IPv6");
    assert_eq!(ctl.run("pool show").ok(), format!("{empty_v4}{empty_v6}"));
    let with_ipip = ctl.run("pool add 192.168.0.0/16 10.0.0.0/8 --ipip --nat-outgoing");
    let warning = |cidr: &str| {
        format!(
            "Warning: ipPool {cidr} has ipip enabled, but IPIP encapsulation will not be in \
             effect: IPIP encapsulation is not implemented by calico-docker yet, so traffic to \
             other hosts is routed without encapsulation\n"
        )
    };
    assert_eq!(
        (with_ipip.code, with_ipip.stdout.as_str()),
        (0, ""),
        "{with_ipip:?}"
    );
    assert_eq!(
        with_ipip.stderr,
        format!("{}{}", warning("192.168.0.0/16"), warning("10.0.0.0/8"))
    );
    assert_eq!(ctl.run("pool add fd80:24e2:f998:72d6::/64").ok(), "");
    let v4 = "+----------------+-------------------+\n\
              |   IPv4 CIDR    |      Options      |\n\
              +----------------+-------------------+\n\
              |   10.0.0.0/8   | ipip,nat-outgoing |\n\
              | 192.168.0.0/16 | ipip,nat-outgoing |\n\
              +----------------+-------------------+\n";
    let v6 = "+--------------------------+---------+\n\
              |        IPv6 CIDR         | Options |\n\
              +--------------------------+---------+\n\
              | fd80:24e2:f998:72d6::/64 |         |\n\
              +--------------------------+---------+\n";
    assert_eq!(ctl.run("pool show").ok(), format!("{v4}{v6}"));
    assert_eq!(ctl.run("pool show --ipv6").ok(), v6);
    assert_eq!(
        ctl.get_json("ippool", "192.168.0.0/16")["spec"],
        serde_json::json!({"ipip": {"enabled": true}, "nat-outgoing": true})
    );

    assert_eq!(
        ctl.run("pool add 10.1.2.3/8").ok(),
        "",
        "re-adding a pool (host bits cleared) replaces its settings"
    );
    assert_eq!(
        ctl.get_json("ippool", "10.0.0.0/8")["spec"],
        serde_json::json!({})
    );
    ctl.run_with(
        "apply -f -",
        "apiVersion: v1\nkind: ipPool\nmetadata:\n  cidr: 172.16.0.0/16\nspec:\n  nat-outgoing: true\n",
    )
    .ok();
    assert_eq!(
        ctl.run("pool show --ipv4").ok(),
        "+----------------+-------------------+\n\
         |   IPv4 CIDR    |      Options      |\n\
         +----------------+-------------------+\n\
         |   10.0.0.0/8   |                   |\n\
         | 172.16.0.0/16  |    nat-outgoing   |\n\
         | 192.168.0.0/16 | ipip,nat-outgoing |\n\
         +----------------+-------------------+\n"
    );

    for (line, message) in [
        (
            "pool add 192.168.1.0/24",
            "Cannot add IP pool 192.168.1.0/24 - pool overlaps with an existing pool 192.168.0.0/16\n",
        ),
        (
            "pool add 172.20.0.0/16 172.20.5.0/24",
            "Cannot add IP pool 172.20.5.0/24 - pool overlaps with another new pool 172.20.0.0/16\n",
        ),
        (
            "pool add 172.30.0.0/27",
            "An IPv4 pool must have a prefix length of 26 or lower.\nGiven: 172.30.0.0/27.\nNo pools added.\n",
        ),
        (
            "pool add fd00::/64 --ipip",
            "IP in IP not supported for IPv6 pools\n",
        ),
        ("pool add 172.30.0.0/33", "Invalid CIDR specified 172.30.0.0/33\n"),
        (
            "pool add 172.31.0.0/16 169.254.0.0/16",
            "Cannot add IP pool 169.254.0.0/16 - error with field metadata.cidr = \
             '169.254.0.0/16' (IP pool range overlaps with IPv4 Link Local range \
             169.254.0.0/16)\nNo pools added.\n",
        ),
    ] {
        assert_eq!(ctl.run(line).failed(), message, "{line}");
    }
    assert_eq!(
        ctl.run("get ippools").ok(),
        "CIDR                       \n10.0.0.0/8                 \n172.16.0.0/16              \n\
         192.168.0.0/16             \nfd80:24e2:f998:72d6::/64   \n\n",
        "refused adds write nothing"
    );

    assert_eq!(
        ctl.run("pool remove 10.0.0.0/8 172.16.0.0/16").ok(),
        "Disabling IP Pool\nDeleted IP Pool\nDisabling IP Pool\nDeleted IP Pool\n"
    );
    let partial = ctl.run("pool remove 192.168.0.0/16 10.0.0.0/8");
    assert_eq!(partial.code, 1);
    assert_eq!(partial.stdout, "Disabling IP Pool\nDeleted IP Pool\n");
    assert_eq!(partial.stderr, "10.0.0.0/8 is not a configured pool.\n");
    assert_eq!(ctl.run("pool show").ok(), format!("{empty_v4}{v6}"));
}

/// A Docker daemon that knows one network, answering `GET /v1.41/networks/<id or name>` for
/// its name, ID or an ID prefix and 404 for anything else.
fn fake_docker(socket: &Path, id: &'static str, name: &'static str) {
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut header = String::new();
            while reader.read_line(&mut header).unwrap() > 2 {
                header.clear();
            }
            let asked = request_line
                .split_whitespace()
                .nth(1)
                .and_then(|path| path.strip_prefix("/v1.41/networks/"))
                .unwrap_or_default()
                .to_string();
            let known = !asked.is_empty() && (asked == name || id.starts_with(&asked));
            let (status, body) = if known {
                (
                    "200 OK",
                    format!(r#"{{"Id": "{id}", "Name": "{name}", "Driver": "calico"}}"#),
                )
            } else {
                (
                    "404 Not Found",
                    format!(r#"{{"message": "network {asked} not found"}}"#),
                )
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
}

#[test]
fn docker_network_ids_name_the_network_profile() {
    let mut ctl = Ctl::new();
    let socket = ctl.dir.path().join("docker.sock");
    let id = "3f2a9c0d7e1b46a8b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0";
    fake_docker(&socket, id, "databases");
    ctl.docker_host = format!("unix://{}", socket.display());
    ctl.run("profile add databases").ok();
    for given in [id, "3f2a9c"] {
        assert_eq!(
            ctl.run(&format!("profile {given} rule show")).ok(),
            DEFAULT_RULES
        );
    }
    assert_eq!(
        ctl.run("profile 3f2a9c tag add web").ok(),
        "Tag web added to profile 3f2a9c\n"
    );
    assert_eq!(
        ctl.run("profile 3f2a9c rule add inbound allow tcp from tag applications to ports 3306")
            .ok(),
        ""
    );
    assert_eq!(
        ctl.run("profile databases rule show").ok(),
        "Inbound rules:\n\
         \x20  1 allow from tag databases\n\
         \x20  2 allow tcp from tag applications to ports 3306\n\
         Outbound rules:\n\
         \x20  1 allow\n"
    );
    assert_eq!(
        ctl.run("profile databases tag show").ok(),
        "databases\nweb\n"
    );
    assert_eq!(
        ctl.run("profile 77aa rule show").failed(),
        "Profile 77aa not found.\n"
    );
}
