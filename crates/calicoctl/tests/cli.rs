//! calicoctl end to end: the real binary against a real datastore, SQLite and etcd alike.
//! Every scenario runs once per backend.

mod common;

use std::ffi::OsStr;
use std::path::PathBuf;

use common::{calicoctl, Run};

use calico_testkit::etcd::EtcdServer;
use calico_testkit::tutorial::{
    POLICIES as TUTORIAL_POLICIES, PROFILES_WITH_RULES as TUTORIAL_PROFILES,
};

/// A datastore for one test plus the config file that points calicoctl at it.
struct Ctl {
    config: PathBuf,
    _dir: tempfile::TempDir,
    _etcd: Option<EtcdServer>,
}

impl Ctl {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("calico.db");
        let spec = format!("datastoreType: sqlite\n  sqlitePath: {}", db.display());
        Ctl::with_spec(dir, &spec, None)
    }

    fn etcd() -> Self {
        let etcd = EtcdServer::start();
        let spec = format!("datastoreType: etcdv3\n  etcdEndpoints: {}", etcd.endpoint);
        Ctl::with_spec(tempfile::tempdir().unwrap(), &spec, Some(etcd))
    }

    fn with_spec(dir: tempfile::TempDir, spec: &str, etcd: Option<EtcdServer>) -> Self {
        let config = dir.path().join("calicoctl.cfg");
        std::fs::write(
            &config,
            format!("apiVersion: v1\nkind: calicoApiConfig\nmetadata:\nspec:\n  {spec}\n"),
        )
        .unwrap();
        Ctl {
            config,
            _dir: dir,
            _etcd: etcd,
        }
    }

    /// Runs `calicoctl ARGS -c <config>` with `stdin` as standard input.
    fn run(&self, args: &[&str], stdin: &str) -> Run {
        let mut argv: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        argv.push(OsStr::new("-c"));
        argv.push(self.config.as_os_str());
        calicoctl(&argv, &[], stdin)
    }

    fn get_yaml(&self, kind: &str) -> String {
        self.run(&["get", kind, "-o", "yaml"], "").ok().to_string()
    }
}

/// Runs each scenario on SQLite and on a real etcd.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(&super::Ctl::sqlite()); })*
        }
        mod etcd {
            $(#[test] fn $name() { super::$name(&super::Ctl::etcd()); })*
        }
    };
}

on_both_backends!(
    tutorial_profiles_and_policies,
    create_apply_replace_and_skip_exists,
    delete_by_name_by_file_and_skip_not_exists,
    partial_success_stops_at_the_first_error,
    get_formats_and_empty_kinds,
    invalid_file_writes_nothing,
    ipip_pools_are_written_with_a_warning,
);

/// What calicoctl says on stderr after writing the ipPool 10.9.0.0/16 with ipip enabled.
const IPIP_WARNING: &str = "Warning: ipPool 10.9.0.0/16 has ipip enabled, but IPIP encapsulation \
                            will not be in effect: IPIP encapsulation is not implemented by \
                            calico-docker yet, so traffic to other hosts is routed without \
                            encapsulation\n";

fn ipip_pools_are_written_with_a_warning(ctl: &Ctl) {
    let pool = |ipip: &str| {
        format!(
            "apiVersion: v1\nkind: ipPool\nmetadata:\n  cidr: 10.9.0.0/16\nspec:\n  \
             nat-outgoing: true\n  ipip:\n{ipip}"
        )
    };
    let always = pool("    enabled: true\n    mode: always\n");
    for (verb, past) in [
        ("create", "created"),
        ("replace", "replaced"),
        ("apply", "applied"),
    ] {
        let run = ctl.run(&[verb, "-f", "-"], &always);
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(
            run.stdout,
            format!("Successfully {past} 1 'ipPool' resource(s)\n")
        );
        assert_eq!(run.stderr, IPIP_WARNING, "{verb}");
    }
    assert!(ctl
        .get_yaml("ippool")
        .contains("    ipip:\n      enabled: true\n      mode: always\n"));

    let off = pool("    enabled: false\n");
    assert_eq!(
        ctl.run(&["apply", "-f", "-"], &off).ok(),
        "Successfully applied 1 'ipPool' resource(s)\n",
        "no warning without ipip"
    );
    let with_profile = format!(
        "{}---\n{}",
        profile("p"),
        pool("    enabled: true\n    mode: cross-subnet\n")
    );
    let run = ctl.run(&["apply", "-f", "-"], &with_profile);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "Successfully applied 2 resource(s)\n", IPIP_WARNING)
    );
    assert_eq!(
        ctl.run(&["delete", "-f", "-"], &always).ok(),
        "Successfully deleted 1 'ipPool' resource(s)\n",
        "deleting says nothing about ipip"
    );
}

fn profile(name: &str) -> String {
    format!("- apiVersion: v1\n  kind: profile\n  metadata:\n    name: {name}\n")
}

fn tutorial_profiles_and_policies(ctl: &Ctl) {
    let applied = ctl.run(&["apply", "-f", "-"], TUTORIAL_PROFILES);
    assert_eq!(
        applied.ok(),
        "Successfully applied 2 'profile' resource(s)\n"
    );
    let created = ctl.run(&["create", "-f", "-"], TUTORIAL_POLICIES);
    assert_eq!(
        created.ok(),
        "Successfully created 2 'policy' resource(s)\n"
    );

    let again = ctl.run(&["create", "-f", "-"], TUTORIAL_POLICIES);
    assert_eq!(
        again.failed(),
        "Failed to create any 'policy' resources: resource already exists: Policy(name=database)\n"
    );

    for kind in ["profile", "policy"] {
        let first = ctl.get_yaml(kind);
        let reapplied = ctl.run(&["apply", "-f", "-"], &first);
        assert_eq!(
            reapplied.ok(),
            format!("Successfully applied 2 '{kind}' resource(s)\n")
        );
        assert_eq!(
            ctl.get_yaml(kind),
            first,
            "re-applying `get -o yaml` changes nothing"
        );
    }
    let yaml = ctl.get_yaml("profiles");
    assert!(yaml.starts_with("- apiVersion: v1\n  kind: profile\n  metadata:\n"));
    assert!(
        yaml.contains("        selector: role == 'frontend'\n"),
        "{yaml}"
    );
    let policies = ctl.get_yaml("policy");
    assert!(
        policies.contains("    types:\n    - ingress\n    - egress\n"),
        "{policies}"
    );
}

fn create_apply_replace_and_skip_exists(ctl: &Ctl) {
    let two = format!("{}{}", profile("a"), profile("b"));
    assert_eq!(
        ctl.run(&["create", "-f", "-"], &two).ok(),
        "Successfully created 2 'profile' resource(s)\n"
    );
    assert_eq!(
        ctl.run(&["create", "-f", "-"], &profile("a")).failed(),
        "Failed to create 'profile' resource: resource already exists: Profile(name=a)\n"
    );
    assert_eq!(
        ctl.run(&["create", "--skip-exists", "-f", "-"], &two).ok(),
        "Successfully created 2 'profile' resource(s)\n"
    );
    assert_eq!(
        ctl.run(&["replace", "-f", "-"], &profile("missing"))
            .failed(),
        "Failed to replace 'profile' resource: resource does not exist: Profile(name=missing)\n"
    );
    let tagged = "- apiVersion: v1\n  kind: profile\n  metadata:\n    name: a\n    tags: [x]\n";
    assert_eq!(
        ctl.run(&["replace", "-f", "-"], tagged).ok(),
        "Successfully replaced 1 'profile' resource(s)\n"
    );
    assert!(ctl.get_yaml("profile").contains("    tags:\n    - x\n"));
    assert_eq!(
        ctl.run(&["apply", "-f", "-"], &profile("a")).ok(),
        "Successfully applied 1 'profile' resource(s)\n"
    );
    assert!(
        !ctl.get_yaml("profile").contains("tags"),
        "apply replaces the whole resource"
    );

    let mixed = format!(
        "{}---\napiVersion: v1\nkind: ipPool\nmetadata:\n  cidr: 10.1.0.0/16\n",
        profile("c")
    );
    assert_eq!(
        ctl.run(&["create", "-f", "-"], &mixed).ok(),
        "Successfully created 2 resource(s)\n"
    );
    let file = ctl._dir.path().join("pool.json");
    std::fs::write(
        &file,
        r#"{"apiVersion": "v1", "kind": "ipPool", "metadata": {"cidr": "10.2.0.0/16"}, "spec": {"nat-outgoing": true}}"#,
    )
    .unwrap();
    assert_eq!(
        ctl.run(&["apply", "-f", file.to_str().unwrap()], "").ok(),
        "Successfully applied 1 'ipPool' resource(s)\n"
    );
    assert_eq!(
        ctl.run(&["get", "ippools", "-o", "wide"], "").ok(),
        "CIDR          NAT     IPIP    \n10.1.0.0/16   false   false   \n10.2.0.0/16   true    false   \n\n"
    );
}

fn delete_by_name_by_file_and_skip_not_exists(ctl: &Ctl) {
    let three = format!("{}{}{}", profile("a"), profile("b"), profile("c"));
    ctl.run(&["create", "-f", "-"], &three).ok();
    assert_eq!(
        ctl.run(&["delete", "profile", "a"], "").ok(),
        "Successfully deleted 1 'profile' resource(s)\n"
    );
    assert_eq!(
        ctl.run(&["delete", "profile", "a"], "").failed(),
        "Failed to delete 'profile' resource: resource does not exist: Profile(name=a)\n"
    );
    assert_eq!(
        ctl.run(&["delete", "--skip-not-exists", "pro", "a"], "")
            .ok(),
        "Successfully deleted 1 'profile' resource(s)\n"
    );
    assert_eq!(
        ctl.run(&["delete", "-s", "-f", "-"], &three).ok(),
        "Successfully deleted 3 'profile' resource(s)\n"
    );
    assert_eq!(
        ctl.run(&["get", "profiles"], "").ok(),
        "NAME   \n\n",
        "everything is gone"
    );
    assert_eq!(
        ctl.run(&["delete", "workloadendpoint", "ep1"], "").failed(),
        "Failed to delete 'workloadEndpoint' resource: insufficient identifiers, missing 'node'\n"
    );
    assert_eq!(
        ctl.run(&["delete", "gadget", "x"], "").failed(),
        "Resource type 'gadget' is not supported\n"
    );
}

fn partial_success_stops_at_the_first_error(ctl: &Ctl) {
    ctl.run(&["create", "-f", "-"], &profile("b")).ok();
    let three = format!("{}{}{}", profile("a"), profile("b"), profile("c"));
    assert_eq!(
        ctl.run(&["create", "-f", "-"], &three).failed(),
        "Partial success: created the first 1 out of 3 'profile' resources:\n\
         Hit error: resource already exists: Profile(name=b)\n"
    );
    assert_eq!(
        ctl.run(&["get", "profile"], "").ok(),
        "NAME   \na      \nb      \n\n",
        "c was never attempted"
    );
}

fn get_formats_and_empty_kinds(ctl: &Ctl) {
    for kind in ["policy", "nodes", "hep", "wep", "ipp", "bgpPeers"] {
        assert_eq!(ctl.run(&["get", kind, "-o", "yaml"], "").ok(), "[]\n");
        assert_eq!(ctl.run(&["get", kind, "-o", "json"], "").ok(), "[]\n");
    }
    assert_eq!(
        ctl.run(&["get", "wep"], "").ok(),
        "NODE   ORCHESTRATOR   WORKLOAD   NAME   \n\n"
    );
    ctl.run(&["apply", "-f", "-"], TUTORIAL_PROFILES).ok();
    ctl.run(&["apply", "-f", "-"], TUTORIAL_POLICIES).ok();
    assert_eq!(
        ctl.run(&["get", "policy", "-o", "wide"], "").ok(),
        "NAME       ORDER   SELECTOR             \n\
         database   0       role == 'database'   \n\
         frontend   0       role == 'frontend'   \n\n"
    );
    assert_eq!(
        ctl.run(&["get", "profile", "frontend"], "").ok(),
        "NAME       \nfrontend   \n\n"
    );
    assert_eq!(
        ctl.run(&["get", "profile", "nothing"], "").ok(),
        "NAME   \n\n",
        "get never fails for a missing name"
    );
    assert_eq!(
        ctl.run(&["get", "profile", "-o", "custom-columns=NAME,TAGS"], "")
            .ok(),
        "NAME       TAGS   \ndatabase          \nfrontend          \n\n"
    );
    let json: serde_json::Value = serde_json::from_str(
        ctl.run(&["get", "policy", "frontend", "-o", "json"], "")
            .ok(),
    )
    .unwrap();
    assert_eq!(json[0]["kind"], "policy");
    assert_eq!(
        json[0]["spec"]["egress"][0]["destination"]["ports"][0],
        3306
    );
    assert_eq!(
        ctl.run(&["get", "profile", "-o", "xml"], "").failed(),
        "unrecognized output format 'xml'\n"
    );
    let by_file = ctl.run(&["get", "-f", "-", "-o", "yaml"], &profile("frontend"));
    assert!(by_file.ok().contains("name: frontend"));
    assert!(!by_file.ok().contains("name: database"));
}

fn invalid_file_writes_nothing(ctl: &Ctl) {
    let valid = profile("good");
    let cases: &[(&str, &str)] = &[
        (
            "- apiVersion: v1\n  kind: profile\n  metadata:\n    name: bad\n    colour: red\n",
            "colour",
        ),
        (
            "- apiVersion: v1\n  kind: policy\n  metadata:\n    name: bad\n  spec:\n    selector: role == \n",
            "column 8",
        ),
        (
            "- apiVersion: v1\n  kind: profile\n  metadata:\n    name: bad\n  spec:\n    ingress:\n    - action: allow\n      protocol: icmp\n      destination:\n        ports: [80]\n",
            "spec.ingress[0].destination.ports",
        ),
        (
            "- apiVersion: v1\n  kind: profile\n  metadata:\n    name: bad\n  spec:\n    ingress:\n    - action: allow\n      protocol: icmp\n      icmp:\n        code: 3\n",
            "spec.ingress[0].icmp",
        ),
        (
            "- apiVersion: v1\n  kind: ipPool\n  metadata:\n    cidr: 10.0.0.0/30\n",
            "min /26",
        ),
    ];
    for (bad, needle) in cases {
        let file = format!("{valid}{bad}");
        let err = ctl.run(&["create", "-f", "-"], &file);
        let msg = err.failed();
        assert!(
            msg.starts_with("Failed to execute command: "),
            "{bad}: {msg}"
        );
        assert!(
            msg.contains(needle),
            "{bad}: {msg:?} should mention {needle:?}"
        );
        assert_eq!(ctl.run(&["get", "profile"], "").ok(), "NAME   \n\n");
        assert_eq!(ctl.run(&["get", "ippool"], "").ok(), "CIDR   \n\n");
    }
    let syntax = ctl.run(
        &["apply", "-f", "-"],
        "- apiVersion: v1\n  kind: [profile\n",
    );
    assert!(syntax.failed().contains("line 2"), "{syntax:?}");
    assert_eq!(
        ctl.run(&["apply", "-f", "-"], "").failed(),
        "No resources specified in file\n"
    );
}

#[test]
fn selector_commands() {
    let ctl = Ctl::sqlite();
    assert_eq!(
        ctl.run(&["selector", "check", "all()"], "").ok(),
        "canonical: all()\nid: s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug\n"
    );
    let json: serde_json::Value = serde_json::from_str(
        ctl.run(&["selector", "check", "a=='b' && has(c)", "-o", "json"], "")
            .ok(),
    )
    .unwrap();
    assert_eq!(json["canonical"], "(a == \"b\" && has(c))");
    let bad = ctl.run(&["selector", "check", "a == "], "");
    assert!(bad.failed().contains("column 6"), "{bad:?}");
    assert!(bad.stdout.is_empty());
    let labels = r#"{"role": "db"}"#;
    assert_eq!(
        ctl.run(
            &["selector", "match", "role == 'db'", "--labels", labels],
            ""
        )
        .ok(),
        "true\n"
    );
    assert_eq!(
        ctl.run(&["selector", "match", "!has(role)", "--labels", labels], "")
            .ok(),
        "false\n"
    );
    let bad_labels = ctl.run(&["selector", "match", "all()", "--labels", "[1]"], "");
    assert!(bad_labels.failed().contains("--labels"));
}

#[test]
fn version_and_bad_arguments() {
    let ctl = Ctl::sqlite();
    let run_dir = tempfile::tempdir().unwrap();
    let version = || {
        let args = [
            OsStr::new("version"),
            OsStr::new("-c"),
            ctl.config.as_os_str(),
        ];
        calicoctl(&args, &[("CALICO_RUN_DIR", run_dir.path().as_os_str())], "")
    };
    let first = version();
    let lines: Vec<&str> = first.ok().lines().collect();
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert!(lines[0].starts_with("Client Version:    v"));
    assert!(lines[1].starts_with("Build date:        "));
    assert!(lines[2].starts_with("Git commit:        "));
    assert_eq!(lines[3], "Cluster Version:   unknown");
    assert_eq!(lines[4], "Cluster Type:      unknown");
    assert_eq!(
        lines[5],
        format!(
            "Docker Engine:     unknown (calico-node has not reached Docker on this host: no {}/docker-engine)",
            run_dir.path().display()
        )
    );
    // calico-node's line, as it writes it, is printed as it is
    std::fs::write(run_dir.path().join("docker-engine"), "28.5.2 (API 1.51)\n").unwrap();
    assert_eq!(
        version().ok().lines().nth(5),
        Some("Docker Engine:     28.5.2 (API 1.51)")
    );

    let bad = ctl.run(&["create", "--frobnicate"], "");
    assert!(bad
        .failed()
        .starts_with("Invalid option: 'calicoctl create --frobnicate -c "));
}

#[test]
fn environment_selects_the_datastore_without_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("env.db");
    let default_file = calico_store::config::DEFAULT_CONFIG_FILE;
    assert!(
        !std::path::Path::new(default_file).exists(),
        "{default_file} exists and would take precedence over the environment"
    );
    let env = [
        ("DATASTORE_TYPE", OsStr::new("sqlite")),
        ("SQLITE_PATH", db.as_os_str()),
    ];
    let applied = calicoctl(&["apply", "-f", "-"], &env, &profile("env"));
    assert_eq!(applied.code, 0, "{applied:?}");
    assert!(db.exists(), "the SQLite file named by SQLITE_PATH was used");
}
