//! End-to-end tests of the Docker host harness itself (scripts/cluster through the `cluster`
//! module). calico-node is replaced by `calico-harness-stub-node`, which only creates the plugin
//! sockets, so these tests check the harness whatever state calico-node is in: they use
//! `--net none` containers. Run as root; nextest runs them one at a time (group `e2e`).

use std::path::Path;
use std::time::Duration;

use calico_testkit::cluster::{self, Cluster, Datastore, Options};
use calico_testkit::wait_until;

fn stub(hosts: usize, datastore: Datastore) -> Options {
    Options {
        hosts,
        datastore,
        calico_node: Some(env!("CARGO_BIN_EXE_calico-harness-stub-node").into()),
        ..Options::default()
    }
}

/// calicoctl is another package's binary, built with the workspace (as scripts/test does).
fn require_calicoctl() {
    let exe = std::env::current_exe().unwrap();
    let found = exe
        .parent()
        .and_then(Path::parent)
        .is_some_and(|dir| dir.join("calicoctl").is_file());
    assert!(
        found,
        "calicoctl is not built: run `cargo build --workspace` first"
    );
}

#[test]
fn one_host_sqlite_has_its_own_names_directories_and_datastore() {
    let cluster = Cluster::up(stub(1, Datastore::Sqlite));
    let name = cluster.name().to_string();
    let host = cluster.host(1);
    assert_eq!(host.name(), "calico-01");
    assert_eq!(host.ip().to_string(), "10.10.0.11");
    assert_eq!(host.exec_ok(&["hostname"]), "calico-01");
    assert_eq!(
        host.docker_ok(&["info", "--format", "{{.Name}}"]),
        "calico-01"
    );

    // the node ran in the host's namespaces with the harness's environment
    let log = host.node_log();
    for expected in [
        "hostname=calico-01".to_string(),
        "NODENAME=calico-01".to_string(),
        "HOSTNAME=calico-01".to_string(),
        format!("DOCKER_HOST={}", host.docker_host()),
        "DATASTORE_TYPE=sqlite".to_string(),
        format!(
            "SQLITE_PATH={}",
            cluster.sqlite_path().expect("sqlite").display()
        ),
        "ETCD_ENDPOINTS=\n".to_string(),
        // a clean environment, whatever the test process has
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n".to_string(),
    ] {
        assert!(
            log.contains(&expected),
            "{expected:?} not in the node log:\n{log}"
        );
    }
    // /run/docker/plugins inside the host is the host's own directory
    let sockets = host.exec_ok(&["ls", "/run/docker/plugins"]);
    assert_eq!(sockets, "calico-ipam.sock\ncalico.sock");
    assert!(host.plugins_dir().join("calico.sock").exists());

    assert_eq!(
        host.docker_ok(&["run", "--rm", "--net", "none", "busybox", "echo", "hello"]),
        "hello"
    );
    // the host's network: eth0 on the fabric, a default route, forwarding on
    let routes = host.exec_ok(&["ip", "route"]);
    assert!(
        routes.contains("default via 10.10.0.1 dev eth0"),
        "{routes}"
    );
    assert_eq!(host.exec_ok(&["cat", "/proc/sys/net/ipv4/ip_forward"]), "1");

    require_calicoctl();
    cluster.calicoctl_ok(
        &["apply", "-f", "-"],
        Some("- apiVersion: v1\n  kind: profile\n  metadata:\n    name: harness\n"),
    );
    let profiles = cluster.calicoctl_ok(&["get", "profiles"], None);
    assert!(profiles.contains("harness"), "{profiles}");
    assert!(cluster.sqlite_path().expect("sqlite").exists());

    drop(cluster);
    assert_eq!(cluster::leftovers(&name), Vec::<String>::new());
}

#[test]
fn two_hosts_etcd_are_distinct_daemons_and_nodes_restart() {
    let cluster = Cluster::up(Options {
        node_env: vec![("CALICO_TEST_SETTING".into(), "a b=c".into())],
        ..stub(2, Datastore::Etcd)
    });
    let (h1, h2) = (cluster.host(1), cluster.host(2));
    let id1 = h1.docker_ok(&["info", "--format", "{{.Name}} {{.ID}}"]);
    let id2 = h2.docker_ok(&["info", "--format", "{{.Name}} {{.ID}}"]);
    assert!(id1.starts_with("calico-01 "), "{id1}");
    assert!(id2.starts_with("calico-02 "), "{id2}");
    assert_ne!(id1[10..], id2[10..], "daemon IDs must differ");
    assert_eq!(h2.exec_ok(&["hostname"]), "calico-02");
    assert_eq!(cluster.etcd_endpoint(), Some("http://10.10.0.1:2379"));
    assert!(h2
        .node_log()
        .contains("ETCD_ENDPOINTS=http://10.10.0.1:2379"));

    // the fabric joins the hosts
    h1.exec_ok(&["busybox", "ping", "-c1", "-W2", &h2.ip().to_string()]);
    // each host's dockerd sees only its own containers
    h1.docker_ok(&[
        "run",
        "-d",
        "--net",
        "none",
        "--name",
        "only-on-1",
        "busybox",
        "sleep",
        "600",
    ]);
    assert_eq!(h1.docker_ok(&["ps", "-q"]).lines().count(), 1);
    assert_eq!(h2.docker_ok(&["ps", "-q"]), "");

    // node lifecycle: kill -9 leaves the sockets, start replaces them, stop with TERM
    let first = h1.node_pid().expect("calico-node runs");
    h1.node_kill();
    wait_until(Duration::from_secs(5), "the killed node to be gone", || {
        h1.node_pid().is_none()
    });
    assert!(h1.plugins_dir().join("calico.sock").exists());
    h1.node_start();
    let second = h1.node_pid().expect("calico-node restarted");
    assert_ne!(first, second);
    h1.node_stop();
    assert_eq!(h1.node_pid(), None);
    h1.node_start();
    assert!(h1.node_pid().is_some());
    assert_eq!(h1.node_log().matches("listening on").count(), 3);
    // --node-env reaches every start of every node
    assert_eq!(
        h1.node_log().matches("CALICO_TEST_SETTING=a b=c").count(),
        3
    );
    assert_eq!(
        h2.node_log().matches("CALICO_TEST_SETTING=a b=c").count(),
        1
    );

    require_calicoctl();
    cluster.calicoctl_ok(
        &["apply", "-f", "-"],
        Some("- apiVersion: v1\n  kind: profile\n  metadata:\n    name: over-etcd\n"),
    );
    let profiles = cluster.calicoctl_ok(&["get", "profiles"], None);
    assert!(profiles.contains("over-etcd"), "{profiles}");

    cluster.down();
}

#[test]
fn down_cleans_up_after_dockerd_and_node_were_killed() {
    let cluster = Cluster::up(stub(1, Datastore::Etcd));
    let host = cluster.host(1);
    for name in ["crash-a", "crash-b"] {
        host.docker_ok(&[
            "run", "-d", "--net", "none", "--name", name, "busybox", "sleep", "600",
        ]);
    }
    let dockerd = host.dockerd_pid().expect("dockerd runs");
    let status = std::process::Command::new("kill")
        .args(["-KILL", &dockerd.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    host.node_kill();
    wait_until(Duration::from_secs(5), "dockerd to die", || {
        host.dockerd_pid().is_none()
    });
    // the containers (and their shims) outlive dockerd; down must still remove everything
    cluster.down();
}

#[test]
fn three_hosts_share_one_fabric_and_etcd_and_dockerd_restarts() {
    let cluster = Cluster::up(stub(3, Datastore::Etcd));
    let name = cluster.name().to_string();
    let ids: Vec<String> = cluster
        .hosts()
        .map(|h| h.docker_ok(&["info", "--format", "{{.ID}}"]))
        .collect();
    assert_eq!(
        ids.iter().collect::<std::collections::BTreeSet<_>>().len(),
        3,
        "daemon IDs must differ: {ids:?}"
    );
    for from in cluster.hosts() {
        assert_eq!(from.exec_ok(&["hostname"]), from.name());
        for to in cluster.hosts().filter(|to| to.index() != from.index()) {
            from.exec_ok(&["busybox", "ping", "-c1", "-W2", &to.ip().to_string()]);
        }
    }

    // dockerd restart: a new process, the same daemon (ID, images, containers)
    let h3 = cluster.host(3);
    h3.docker_ok(&["create", "--net", "none", "--name", "kept", "busybox"]);
    let before = h3.dockerd_pid().expect("dockerd runs");
    h3.dockerd_restart();
    assert_ne!(h3.dockerd_pid(), Some(before));
    assert_eq!(h3.docker_ok(&["info", "--format", "{{.ID}}"]), ids[2]);
    assert_eq!(
        h3.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]),
        "kept"
    );

    // etcd stop and start: the data survives
    require_calicoctl();
    cluster.calicoctl_ok(
        &["apply", "-f", "-"],
        Some("- apiVersion: v1\n  kind: profile\n  metadata:\n    name: survives\n"),
    );
    cluster.etcd_stop();
    assert!(!cluster
        .calicoctl(&["get", "profiles"], None)
        .status
        .success());
    cluster.etcd_start();
    let profiles = cluster.calicoctl_ok(&["get", "profiles"], None);
    assert!(profiles.contains("survives"), "{profiles}");

    drop(cluster);
    assert_eq!(cluster::leftovers(&name), Vec::<String>::new());
}
