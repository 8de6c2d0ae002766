//! Simulated Docker hosts for end-to-end tests: a thin blocking wrapper around `scripts/cluster`
//! (see docs/harness.md). Each [`Cluster`] gets a unique name, so clusters of different tests
//! never collide; dropping it runs `scripts/cluster down`.
//!
//! The script owns the harness's layout (paths, names, pid files): this module learns it only
//! through `scripts/cluster info`, `processes`, `leftovers` and `disown`.
//!
//! The hosts run Debian 12's Docker Engine 20.10 unless the test process has `DOCKERD_DIR` set to
//! a directory with another engine (`scripts/cluster up --dockerd DIR`; `scripts/test` runs the
//! end-to-end tests a second time on Docker 28 that way). Each cluster is driven with the docker
//! CLI of its own engine, and [`Cluster::docker_version`] says which engine it runs.
//!
//! ```no_run
//! use calico_testkit::cluster::{Cluster, Datastore, Options};
//! let cluster = Cluster::up(Options { hosts: 2, datastore: Datastore::Etcd, ..Options::default() });
//! let h1 = cluster.host(1);
//! h1.docker_ok(&["network", "create", "--driver", "calico", "--ipam-driver", "calico-ipam", "net1"]);
//! h1.docker_ok(&["run", "--net", "net1", "--name", "wa", "-tid", "busybox"]);
//! let out = cluster.calicoctl(&["get", "workloadEndpoint"], None);
//! assert!(out.status.success());
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::outside::Outside;

/// How long a Calico network created on one host may take to appear on the others.
pub const NETWORK_SHARING_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest any single command run through the harness may take before the test fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The datastore the cluster's calico-nodes and `calicoctl` share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Datastore {
    /// etcd v3 in the fabric namespace at `http://10.10.0.1:2379`.
    Etcd,
    /// A SQLite file; one host only.
    Sqlite,
}

/// What [`Cluster::up`] builds.
#[derive(Clone, Debug)]
pub struct Options {
    /// Number of Docker hosts, `calico-01`..; 1 to 20. Default 2.
    pub hosts: usize,
    /// Default [`Datastore::Etcd`].
    pub datastore: Datastore,
    /// The cluster name (1-32 of `[a-z0-9-]`). Default: made from the test's name, the pid and a
    /// counter, so that concurrent tests and test processes never collide.
    pub name: Option<String>,
    /// The calico-node binary. Default: `$CALICO_NODE_BIN`, else `calico-node` next to the test
    /// binary's profile directory (`target/<profile>/`), else the script's default
    /// (`target/debug/calico-node`). Tests in crates/node pass `env!("CARGO_BIN_EXE_calico-node")`.
    pub calico_node: Option<PathBuf>,
    /// The calicoctl binary, found the same way (`$CALICOCTL_BIN`, `target/<profile>/calicoctl`).
    pub calicoctl: Option<PathBuf>,
    /// Extra environment for every host's calico-node (`--node-env`), kept across node restarts;
    /// it overrides the harness's own variables. calico-node otherwise starts from a clean
    /// environment (only `RUST_LOG` and `RUST_BACKTRACE` pass through from the test).
    pub node_env: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            hosts: 2,
            datastore: Datastore::Etcd,
            name: None,
            calico_node: None,
            calicoctl: None,
            node_env: Vec::new(),
        }
    }
}

/// A running set of simulated Docker hosts; `scripts/cluster down` runs on drop.
pub struct Cluster {
    name: String,
    root: PathBuf,
    info: HashMap<String, String>,
    hosts: usize,
    is_down: bool,
}

/// One simulated Docker host of a [`Cluster`] (numbered from 1).
pub struct Host<'c> {
    cluster: &'c Cluster,
    k: usize,
}

/// Polls `condition` every 50 ms until it returns true; panics with `what` after `timeout`.
/// Tests use it instead of sleeping.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Cluster {
    /// Runs `scripts/cluster up` and waits until every host's calico-node has created its
    /// plugin sockets and every dockerd answers with the `busybox:latest` image imported.
    /// Panics with the script's output (which ends with the failing component's log) on failure.
    pub fn up(options: Options) -> Cluster {
        require_root();
        let root = repo_root();
        let script = root.join("scripts/cluster");
        // Clusters whose test process was killed before its Drop ran.
        let _ = Command::new(&script)
            .arg("reap")
            .stdin(Stdio::null())
            .output();

        let name = options.name.clone().unwrap_or_else(unique_name);
        let mut command = Command::new(&script);
        command
            .args(["up", "--name", &name])
            .args(["--hosts", &options.hosts.to_string()])
            .args([
                "--datastore",
                match options.datastore {
                    Datastore::Etcd => "etcd",
                    Datastore::Sqlite => "sqlite",
                },
            ])
            .env("CLUSTER_OWNER_PID", std::process::id().to_string());
        for (key, value) in &options.node_env {
            command.arg("--node-env").arg(format!("{key}={value}"));
        }
        if let Some(bin) = options
            .calico_node
            .clone()
            .or_else(|| default_binary("CALICO_NODE_BIN", "calico-node"))
        {
            command.env("CALICO_NODE_BIN", bin);
        }
        if let Some(bin) = options
            .calicoctl
            .clone()
            .or_else(|| default_binary("CALICOCTL_BIN", "calicoctl"))
        {
            command.env("CALICOCTL_BIN", bin);
        }
        let started = Instant::now();
        let output = run(&mut command, None, Duration::from_secs(300));
        if !output.status.success() {
            // The script already tore down what it built, keeping the logs for this message.
            let _ = Command::new(&script)
                .args(["down", "--name", &name])
                .stdin(Stdio::null())
                .output();
            panic!(
                "scripts/cluster up --name {name} failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let info: HashMap<String, String> = script_output(&root, &["info", "--name", &name])
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let hosts = info["hosts"].parse().expect("hosts in cluster.info");
        eprintln!(
            "cluster {name}: {hosts} host(s) on Docker Engine {} up in {:.1} s (source {})",
            info["docker_version"],
            started.elapsed().as_secs_f64(),
            info["env_sh"]
        );
        Cluster {
            name,
            root,
            info,
            hosts,
            is_down: false,
        }
    }

    /// The cluster's name (`--name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Docker Engine version the hosts run (`docker version`'s server version).
    pub fn docker_version(&self) -> &str {
        &self.info["docker_version"]
    }

    /// The docker CLI that goes with the hosts' engine.
    pub fn docker_cli(&self) -> &Path {
        Path::new(&self.info["docker"])
    }

    /// The number of hosts.
    pub fn host_count(&self) -> usize {
        self.hosts
    }

    /// Host `k`, from 1 (`calico-01`). Panics if there is no such host.
    pub fn host(&self, k: usize) -> Host<'_> {
        assert!(
            (1..=self.hosts).contains(&k),
            "cluster {} has hosts 1..={}, not {k}",
            self.name,
            self.hosts
        );
        Host { cluster: self, k }
    }

    /// Every host, in order.
    pub fn hosts(&self) -> impl Iterator<Item = Host<'_>> {
        (1..=self.hosts).map(move |k| Host { cluster: self, k })
    }

    /// `/run/calico-harness/<name>`: pid files, sockets, `env.sh`, `cluster.info`, `logs/`.
    pub fn state_dir(&self) -> PathBuf {
        PathBuf::from(&self.info["state"])
    }

    /// The SQLite file every calico-node and calicoctl use, if the datastore is SQLite.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.info.get("sqlite_path").map(PathBuf::from)
    }

    /// `DOCKER_CONFIG` for the docker CLI and compose (keeps the user's ~/.docker out).
    fn docker_config(&self) -> &str {
        &self.info["docker_config"]
    }

    /// The outside namespace: on the fabric, with no route to any pool.
    pub fn outside(&self) -> Outside<'_> {
        Outside { cluster: self }
    }

    /// The value of `key` in cluster.info.
    pub(crate) fn info(&self, key: &str) -> &str {
        self.info
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from cluster.info"))
    }

    /// The etcd client URL (reachable from the hosts and the fabric namespace), if etcd is used.
    pub fn etcd_endpoint(&self) -> Option<&str> {
        self.info.get("etcd_endpoints").map(String::as_str)
    }

    /// Runs calicoctl with the cluster's datastore environment (for etcd, inside the fabric
    /// network namespace, where etcd is reachable), feeding it `stdin` if given.
    pub fn calicoctl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let calicoctl = &self.info["calicoctl"];
        let mut command = match self.info.get("calicoctl_netns").filter(|ns| !ns.is_empty()) {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{ns}"))
                    .arg("--")
                    .arg(calicoctl);
                c
            }
            None => Command::new(calicoctl),
        };
        command.args(args);
        for var in [
            "DATASTORE_TYPE",
            "SQLITE_PATH",
            "ETCD_ENDPOINTS",
            "ETCD_CA_CERT_FILE",
            "ETCD_CERT_FILE",
            "ETCD_KEY_FILE",
        ] {
            command.env_remove(var);
        }
        for pair in self.info["calicoctl_env"].split_whitespace() {
            if let Some((k, v)) = pair.split_once('=') {
                command.env(k, v);
            }
        }
        run(&mut command, stdin.map(str::as_bytes), COMMAND_TIMEOUT)
    }

    /// [`Cluster::calicoctl`] that must succeed; returns its stdout.
    pub fn calicoctl_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let output = self.calicoctl(args, stdin);
        expect_success(&format!("calicoctl {}", args.join(" ")), &output)
    }

    /// The last `lines` lines of every component's log, for failure messages.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        let mut logs: Vec<PathBuf> = self
            .info
            .get("etcd_log")
            .map(PathBuf::from)
            .into_iter()
            .collect();
        for host in self.hosts() {
            logs.push(host.node_log_path());
            logs.push(host.dockerd_log_path());
        }
        for log in logs {
            if let Ok(text) = std::fs::read_to_string(&log) {
                let all: Vec<&str> = text.lines().collect();
                let _ = writeln!(out, "--- last lines of {} ---", log.display());
                for line in &all[all.len().saturating_sub(lines)..] {
                    let _ = writeln!(out, "| {line}");
                }
            }
        }
        out
    }

    /// `docker network create --driver calico --ipam-driver calico-ipam NAME` on host `k`, then
    /// waits until every host's dockerd lists the network (calico-node shares Calico networks
    /// between hosts through the datastore).
    pub fn create_calico_network(&self, k: usize, name: &str) {
        crate::steps::create_network(&self.host(k), name, &[]);
        for host in self.hosts() {
            wait_until(NETWORK_SHARING_TIMEOUT, "the network on every host", || {
                host.docker_ok(&["network", "ls", "--format", "{{.Name}}"])
                    .lines()
                    .any(|n| n == name)
            });
        }
    }

    /// Stops etcd (SIGTERM; its data stays).
    pub fn etcd_stop(&self) {
        self.script(&["etcd-stop"]);
    }

    /// Starts etcd again on the same data and waits until it is healthy.
    pub fn etcd_start(&self) {
        self.script(&["etcd-start"]);
    }

    /// Runs `scripts/cluster ARGS --name <this cluster>`, which must succeed; returns its stdout.
    fn script(&self, args: &[&str]) -> String {
        let mut args = args.to_vec();
        args.extend(["--name", &self.name]);
        script_output(&self.root, &args)
    }

    /// Runs `scripts/cluster down` now and checks that nothing of the cluster is left: no
    /// process of its pid files or namespaces, no netns, cgroup, mount or directory.
    pub fn down(mut self) {
        let before = self.processes();
        self.is_down = true;
        let output = self.run_down();
        let mut left = leftovers(&self.name);
        for (pid, ns) in before {
            if namespaces_of(pid).contains(&ns) {
                left.push(format!("process {pid} ({})", cmdline(pid)));
            }
        }
        assert!(
            output.status.success() && left.is_empty(),
            "scripts/cluster down --name {} ({}) left {left:?}:\n{}",
            self.name,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn run_down(&self) -> Output {
        run(
            Command::new(self.root.join("scripts/cluster")).args(["down", "--name", &self.name]),
            None,
            Duration::from_secs(300),
        )
    }

    /// Every process started for the cluster, with the namespace that proves it is ours
    /// (`scripts/cluster processes`).
    fn processes(&self) -> Vec<(u32, String)> {
        self.script(&["processes"])
            .lines()
            .filter_map(|line| {
                let (pid, ns) = line.split_once(' ')?;
                Some((pid.parse().ok()?, ns.to_string()))
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.is_down {
            return;
        }
        if std::thread::panicking() {
            eprintln!(
                "cluster {} at the failure:\n{}",
                self.name,
                self.log_tails(30)
            );
            if std::env::var_os("CALICO_HARNESS_KEEP").is_some() {
                // no owner: `scripts/cluster reap` (run by the next test) leaves it alone
                let disown = run(
                    Command::new(self.root.join("scripts/cluster"))
                        .args(["disown", "--name", &self.name]),
                    None,
                    COMMAND_TIMEOUT,
                );
                eprintln!(
                    "CALICO_HARNESS_KEEP is set: cluster {0} left running ({1}); \
                     source {2}, then scripts/cluster down --name {0}",
                    self.name,
                    if disown.status.success() {
                        "disowned: reap leaves it alone"
                    } else {
                        "could not disown it: the next reap may take it down"
                    },
                    self.info["env_sh"]
                );
                return;
            }
        }
        let output = self.run_down();
        if !output.status.success() {
            eprintln!(
                "scripts/cluster down --name {} failed ({}):\n{}",
                self.name,
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

impl Host<'_> {
    fn get(&self, key: &str) -> &str {
        let key = format!("host.{}.{key}", self.k);
        self.cluster
            .info
            .get(&key)
            .unwrap_or_else(|| panic!("{key} missing from cluster.info"))
    }

    /// The host's number, from 1.
    pub fn index(&self) -> usize {
        self.k
    }

    /// The host's name and hostname, which is also its Calico node name: `calico-0K`.
    pub fn name(&self) -> &str {
        self.get("name")
    }

    /// The host's address on the fabric: `10.10.0.1K`.
    pub fn ip(&self) -> Ipv4Addr {
        self.get("ip").parse().expect("host ip in cluster.info")
    }

    /// The host's network namespace name (`ip netns exec` works for ip, nft, sysctl).
    pub fn netns(&self) -> &str {
        self.get("netns")
    }

    /// `unix:///run/calico-harness/<name>/calico-0K/docker.sock`.
    pub fn docker_host(&self) -> &str {
        self.get("docker_host")
    }

    /// The host's state directory (pid files, sockets, its calico-node's files).
    pub fn dir(&self) -> PathBuf {
        PathBuf::from(self.get("dir"))
    }

    /// The directory the host sees as /run/docker/plugins (calico.sock, calico-ipam.sock).
    pub fn plugins_dir(&self) -> PathBuf {
        PathBuf::from(self.get("plugins"))
    }

    /// The docker CLI of the cluster's engine against this host's dockerd.
    pub fn docker(&self, args: &[&str]) -> Output {
        let mut command = Command::new(self.cluster.docker_cli());
        command
            .arg("-H")
            .arg(self.docker_host())
            .args(args)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env("DOCKER_CONFIG", self.cluster.docker_config());
        run(&mut command, None, COMMAND_TIMEOUT)
    }

    /// `docker-compose` (v2) of the cluster's engine against this host's dockerd, in
    /// `project_dir`. Panics when the engine has none: Debian 12's 20.10 does not (run the
    /// test with `DOCKERD_DIR` set to Docker 28's directory, as `scripts/test` does).
    pub fn compose(&self, project_dir: &Path, args: &[&str]) -> Output {
        let dir = &self.cluster.info["dockerd_dir"];
        let compose = Path::new(dir).join("docker-compose");
        assert!(
            !dir.is_empty() && compose.is_file(),
            "docker compose v2 comes with Docker 28: set DOCKERD_DIR to the directory that \
             scripts/lib.sh's docker_engine_28 prints (this cluster runs Docker {})",
            self.cluster.docker_version()
        );
        let mut command = Command::new(compose);
        command
            .current_dir(project_dir)
            .args(args)
            .env("DOCKER_HOST", self.docker_host())
            .env_remove("DOCKER_CONTEXT")
            .env("DOCKER_CONFIG", self.cluster.docker_config());
        run(&mut command, None, COMMAND_TIMEOUT)
    }

    /// [`Host::compose`] that must succeed; returns its stdout without the trailing newline.
    pub fn compose_ok(&self, project_dir: &Path, args: &[&str]) -> String {
        let output = self.compose(project_dir, args);
        expect_success(
            &format!("{} docker-compose {}", self.name(), args.join(" ")),
            &output,
        )
    }

    /// [`Host::docker`] that must succeed; returns its stdout without the trailing newline.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let output = self.docker(args);
        expect_success(
            &format!("{} docker {}", self.name(), args.join(" ")),
            &output,
        )
    }

    /// Runs a command in the host's network, mount and UTS namespaces (as `h<K>` of env.sh).
    pub fn exec(&self, args: &[&str]) -> Output {
        run(&mut self.command(args), None, COMMAND_TIMEOUT)
    }

    /// The [`Command`] that [`Host::exec`] runs (`nsenter` into the host's network, mount and
    /// UTS namespaces, then `args`), for a caller that spawns it itself, such as a server that
    /// must outlive one call. nsenter execs `args` in place: the child's pid is the command's.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg("-t")
            .arg(self.anchor_pid().to_string())
            .args(["--net", "--uts", "--mount", "--"])
            .args(args);
        command
    }

    /// [`Host::exec`] that must succeed; returns its stdout without the trailing newline.
    pub fn exec_ok(&self, args: &[&str]) -> String {
        let output = self.exec(args);
        expect_success(&format!("{}: {}", self.name(), args.join(" ")), &output)
    }

    /// Starts calico-node again (after [`Host::node_stop`] or [`Host::node_kill`]) and waits for
    /// its plugin sockets.
    pub fn node_start(&self) {
        self.node("node-start");
    }

    /// Stops calico-node with SIGTERM and waits for it to exit.
    pub fn node_stop(&self) {
        self.node("node-stop");
    }

    /// Kills calico-node with SIGKILL, as a crash would; its sockets stay behind.
    pub fn node_kill(&self) {
        self.node("node-kill");
    }

    /// Restarts dockerd (SIGTERM, which stops its containers, then a new dockerd) and waits
    /// until it answers.
    pub fn dockerd_restart(&self) {
        self.cluster
            .script(&["dockerd-restart", &self.k.to_string()]);
    }

    fn node(&self, action: &str) {
        self.cluster.script(&[action, &self.k.to_string()]);
    }

    /// The pid of the BIRD calico-node runs (its child named `bird`), if one is running.
    pub fn bird_pid(&self) -> Option<u32> {
        let node = self.node_pid()?;
        std::fs::read_dir("/proc")
            .ok()?
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
            .find(|pid| {
                // "<pid> (<comm>) <state> <ppid> …"
                let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                    return false;
                };
                let Some((head, tail)) = stat.rsplit_once(')') else {
                    return false;
                };
                let ppid = tail.split_whitespace().nth(1).and_then(|p| p.parse().ok());
                head.ends_with("(bird") && ppid == Some(node)
            })
    }

    /// The pid of the running calico-node, if one is running.
    pub fn node_pid(&self) -> Option<u32> {
        self.pid_file("node_pid_file").filter(|pid| alive(*pid))
    }

    /// The pid of the running dockerd, if one is running.
    pub fn dockerd_pid(&self) -> Option<u32> {
        self.pid_file("dockerd_pid_file").filter(|pid| alive(*pid))
    }

    fn anchor_pid(&self) -> u32 {
        self.pid_file("anchor_pid_file")
            .unwrap_or_else(|| panic!("{} has no anchor process", self.name()))
    }

    /// The pid in the file cluster.info names under `key`.
    fn pid_file(&self, key: &str) -> Option<u32> {
        std::fs::read_to_string(self.get(key))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// calico-node's stdout and stderr (every start appends to it).
    pub fn node_log_path(&self) -> PathBuf {
        PathBuf::from(self.get("node_log"))
    }

    /// The contents of [`Host::node_log_path`].
    pub fn node_log(&self) -> String {
        std::fs::read_to_string(self.node_log_path()).unwrap_or_default()
    }

    /// dockerd's log.
    pub fn dockerd_log_path(&self) -> PathBuf {
        PathBuf::from(self.get("dockerd_log"))
    }
}

/// What of cluster `name` still exists (`scripts/cluster leftovers`): netns, cgroup dirs, mounts,
/// processes in its namespaces, state and data dirs. Empty after a clean `down`.
pub fn leftovers(name: &str) -> Vec<String> {
    script_output(&repo_root(), &["leftovers", "--name", name])
        .lines()
        .map(str::to_string)
        .collect()
}

// ----------------------------------------------------------------------------------- helpers

fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize()
        .unwrap_or_else(|e| panic!("repository root {}: {e}", root.display()))
}

fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_string));
    assert!(
        uid.as_deref() == Some("0"),
        "the Docker host harness needs root (namespaces, dockerd): run the tests with sudo, \
         as scripts/test does"
    );
}

/// `<test name>-<pid>-<n>`, within the script's 32-character limit.
fn unique_name() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("t");
    let test = test.rsplit("::").next().unwrap_or(test);
    let mut slug = String::new();
    for c in test.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.truncate(16);
    let slug = slug.trim_end_matches('-');
    let slug = if slug.is_empty() { "t" } else { slug };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{slug}-{}-{n}", std::process::id())
}

/// `$VAR`, else `<name>` in the test binary's profile dir (`target/<profile>/deps/<test>` →
/// `target/<profile>/<name>`), else None (the script's default).
fn default_binary(var: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let candidate = profile_dir.join(name);
    candidate.is_file().then_some(candidate)
}

/// Runs `command` with `stdin`, collecting its output; panics if it runs longer than `timeout`.
pub(crate) fn run(command: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    let description = format!("{command:?}");
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {description}: {e}"));
    let writer = stdin.map(|input| {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        })
    });
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = reader(Box::new(child.stdout.take().expect("stdout pipe")));
    let stderr = reader(Box::new(child.stderr.take().expect("stderr pipe")));
    let deadline = Instant::now() + timeout;
    let status: ExitStatus = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{description} did not finish within {timeout:?}");
            }
            Err(e) => panic!("waiting for {description}: {e}"),
        }
    };
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Runs `scripts/cluster ARGS` of the repository at `root`, which must succeed; returns stdout.
fn script_output(root: &Path, args: &[&str]) -> String {
    let output = run(
        Command::new(root.join("scripts/cluster")).args(args),
        None,
        COMMAND_TIMEOUT,
    );
    expect_success(&format!("scripts/cluster {}", args.join(" ")), &output)
}

pub(crate) fn expect_success(what: &str, output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout.trim_end_matches('\n').to_string()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("State:"))
                .map(|st| !matches!(st.trim().chars().next(), Some('Z' | 'X')))
        })
        .unwrap_or(false)
}

/// The `net:[…]` and `mnt:[…]` ids of a live process (none for a zombie or a gone pid).
fn namespaces_of(pid: u32) -> Vec<String> {
    if !alive(pid) {
        return Vec::new();
    }
    ["net", "mnt"]
        .iter()
        .filter_map(|kind| std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok())
        .map(|link| link.to_string_lossy().to_string())
        .collect()
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_returns_once_the_condition_holds() {
        let mut calls = 0;
        wait_until(Duration::from_secs(5), "the third call", || {
            calls += 1;
            calls == 3
        });
        assert_eq!(calls, 3);
    }

    #[test]
    #[should_panic(expected = "timed out after 100ms waiting for never")]
    fn wait_until_panics_with_what_on_timeout() {
        wait_until(Duration::from_millis(100), "never", || false);
    }

    #[test]
    fn unique_names_fit_the_script_limit() {
        let a = unique_name();
        let b = unique_name();
        assert_ne!(a, b);
        for name in [a, b] {
            assert!(name.len() <= 32, "{name}");
            assert!(name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            assert!(name.as_bytes()[0].is_ascii_alphanumeric(), "{name}");
        }
    }

    #[test]
    fn leftovers_of_an_unknown_cluster_are_none() {
        assert!(leftovers("no-such-cluster-for-sure").is_empty());
    }
}
