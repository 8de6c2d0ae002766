//! `calicoctl node run|status`: start calico-node on this host in the background (or in the
//! foreground for an init system) and tell whether it runs.

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use calico_routing::{bird, PeerStatus};
use calico_store::DatastoreConfig;

use super::Outcome;

/// The line calico-node logs once it serves the plugins.
pub const READY_LINE: &str = "Calico node started successfully";
/// Where the pid file lives unless `CALICO_RUN_DIR` says otherwise.
const DEFAULT_RUN_DIR: &str = "/var/run/calico";
/// How long `node run` waits for calico-node to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// A health file older than this was left by a calico-node that stopped keeping it (it
/// rewrites it every 10 s).
const HEALTH_STALE: Duration = Duration::from_secs(30);

/// The options of `calicoctl node run`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunArgs {
    /// This node's IPv4 address (or `autodetect`).
    #[arg(long)]
    pub ip: Option<String>,
    /// This node's AS number (default: the global one).
    #[arg(long = "as")]
    pub as_number: Option<String>,
    /// The node name (default: the hostname).
    #[arg(long)]
    pub name: Option<String>,
    /// first-found, can-reach=<dest>, interface=<regex,...> or skip-interface=<regex,...>.
    #[arg(long = "ip-autodetection-method")]
    pub ip_autodetection_method: Option<String>,
    /// Where calico-node's log goes.
    #[arg(long = "log-dir", default_value = "/var/log/calico")]
    pub log_dir: PathBuf,
    /// Do not create the default IP pool.
    #[arg(long = "no-default-ippools")]
    pub no_default_ippools: bool,
    /// Routing backend: bird or none.
    #[arg(long, default_value = "bird")]
    pub backend: String,
    /// Use Docker container labels as endpoint labels instead of network profiles.
    #[arg(long = "use-docker-networking-container-labels")]
    pub use_container_labels: bool,
    /// Run in the foreground (for systemd and other init systems).
    #[arg(long = "init-system")]
    pub init_system: bool,
    /// Print what would be run and stop.
    #[arg(long)]
    pub dryrun: bool,
}

/// `calicoctl node run`.
pub fn run(config: Option<&Path>, args: &RunArgs) -> Outcome {
    Outcome::from(start(config, args))
}

/// `calicoctl node status`: whether calico-node runs here, then BIRD's BGP sessions (read on
/// [`bird_socket`]) as Calico prints them, the Docker Engine, and calico-node's IPIP line if it
/// wrote one, then its readiness and liveness.
pub async fn status() -> Outcome {
    if running_pid(&pid_file()).is_none() && !node_in_this_netns() {
        return Outcome::fail("Calico process is not running.");
    }
    let peers = bird::show_protocols(&bird_socket()).await.ok();
    let mut text = status_text(peers.as_deref(), &docker_engine(), ipip_status().as_deref());
    text.push_str(&health_status());
    Outcome::ok(text)
}

/// calico-node's `Readiness: …` and `Liveness: …` lines, as it keeps them in its run directory
/// (`calico_routing::status::HEALTH_FILE`).
fn health_status() -> String {
    let path = run_dir().join(calico_routing::status::HEALTH_FILE);
    let text = fs::read_to_string(&path).ok();
    let age = fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok());
    health_lines(&path, text.as_deref(), age)
}

/// The health lines from the file at `path` (its `text`, last written `age` ago).
fn health_lines(path: &Path, text: Option<&str>, age: Option<Duration>) -> String {
    match (text.map(str::trim).filter(|t| !t.is_empty()), age) {
        (None, _) => format!(
            "Readiness: unknown (calico-node has not written {})\n",
            path.display()
        ),
        (Some(_), Some(age)) if age > HEALTH_STALE => format!(
            "Readiness: unknown (calico-node last wrote {} {} s ago and should every 10 s: it \
             may be stuck)\n",
            path.display(),
            age.as_secs()
        ),
        (Some(text), _) => format!("{text}\n"),
    }
}

/// The text of `node status` for a running calico-node: Calico's sessions section, `Docker
/// Engine: <engine>`, then `IPIP: <line>` when calico-node says a pool has `ipip` enabled
/// (nothing otherwise).
fn status_text(peers: Option<&[PeerStatus]>, engine: &str, ipip: Option<&str>) -> String {
    let mut out = calico_routing::render_node_status(true, peers);
    out.push_str(&format!("\nDocker Engine: {engine}\n"));
    if let Some(line) = ipip {
        out.push_str(&format!("IPIP: {line}\n"));
    }
    out
}

/// The line calico-node keeps in its BIRD directory while a pool has `ipip` enabled
/// (`calico_routing::ipip::STATUS_FILE`).
fn ipip_status() -> Option<String> {
    let text = fs::read_to_string(bird_dir().join(calico_routing::ipip::STATUS_FILE)).ok()?;
    let line = text.trim();
    (!line.is_empty()).then(|| line.to_string())
}

/// The Docker Engine calico-node on this host serves, as it wrote it in its run directory
/// (`28.5.2 (API 1.51)`, or with why it is refused), else `unknown` and why.
pub fn docker_engine() -> String {
    let path = run_dir().join(calico_docker::engine::STATUS_FILE);
    match fs::read_to_string(&path) {
        Ok(line) if !line.trim().is_empty() => line.trim().to_string(),
        _ => format!(
            "unknown (calico-node has not reached Docker on this host: no {})",
            path.display()
        ),
    }
}

/// BIRD's control socket: `CALICO_BIRD_SOCKET`, else `<bird_dir>/bird.ctl` (calico-node's
/// default).
fn bird_socket() -> PathBuf {
    env_path(bird::BIRD_SOCKET_ENV).unwrap_or_else(|| bird_dir().join(bird::SOCKET_FILE))
}

/// calico-node's BIRD directory: `CALICO_BIRD_DIR`, else `/var/run/calico` (its default).
fn bird_dir() -> PathBuf {
    env_path(bird::BIRD_DIR_ENV).unwrap_or_else(|| bird::DEFAULT_BIRD_DIR.into())
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Whether a calico-node process runs in this network namespace (one started by other means
/// than `node run`, such as systemd or the test harness, has no pid file).
fn node_in_this_netns() -> bool {
    let Ok(own) = fs::read_link("/proc/self/ns/net") else {
        return false;
    };
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            return false;
        };
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        comm.trim() == "calico-node"
            && fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|ns| ns == own)
            && fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|st| {
                !st.lines()
                    .any(|l| l.starts_with("State:") && (l.contains('Z') || l.contains('X')))
            })
    })
}

fn run_dir() -> PathBuf {
    std::env::var_os("CALICO_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| DEFAULT_RUN_DIR.into())
}

fn pid_file() -> PathBuf {
    run_dir().join("calico-node.pid")
}

/// The pid in the file, if that process is alive (zombies count as dead).
fn running_pid(pid_file: &Path) -> Option<u32> {
    let pid: u32 = fs::read_to_string(pid_file).ok()?.trim().parse().ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let zombie = status
        .lines()
        .any(|l| l.starts_with("State:") && l.contains('Z'));
    let ours = fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim() == "calico-node");
    (!zombie && ours).then_some(pid)
}

/// The calico-node binary: next to calicoctl, else on PATH.
fn node_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("calico-node")))
        .filter(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from("calico-node"))
}

/// The environment calico-node gets: the datastore calicoctl uses, then the flags.
fn node_env(config: Option<&Path>, args: &RunArgs) -> Result<Vec<(String, String)>> {
    let mut env = Vec::new();
    let mut set = |k: &str, v: String| env.push((k.to_string(), v));
    match DatastoreConfig::load(config, |name| std::env::var(name).ok())? {
        DatastoreConfig::Sqlite { path } => {
            set("DATASTORE_TYPE", "sqlite".into());
            set("SQLITE_PATH", path.display().to_string());
        }
        DatastoreConfig::Etcd(etcd) => {
            set("DATASTORE_TYPE", "etcdv3".into());
            for (name, value) in etcd.env() {
                set(name, value);
            }
        }
    }
    if let Some(name) = &args.name {
        set("NODENAME", name.clone());
    }
    if let Some(ip) = &args.ip {
        set("IP", ip.clone());
    }
    if let Some(asn) = &args.as_number {
        set("AS", asn.clone());
    }
    if let Some(method) = &args.ip_autodetection_method {
        set("IP_AUTODETECTION_METHOD", method.clone());
    }
    if args.no_default_ippools {
        set("NO_DEFAULT_POOLS", "true".into());
    }
    match args.backend.as_str() {
        "bird" | "none" => set("CALICO_NETWORKING_BACKEND", args.backend.clone()),
        other => bail!("--backend={other}: use bird or none"),
    }
    if args.use_container_labels {
        set("CALICO_LIBNETWORK_CREATE_PROFILES", "false".into());
        set("CALICO_LIBNETWORK_LABEL_ENDPOINTS", "true".into());
    }
    Ok(env)
}

fn start(config: Option<&Path>, args: &RunArgs) -> Result<String> {
    let binary = node_binary();
    let env = node_env(config, args)?;
    if args.dryrun {
        let vars: Vec<String> = env
            .iter()
            .map(|(k, v)| match k.as_str() {
                "ETCD_PASSWORD" => format!("{k}=<hidden>"),
                _ => format!("{k}={v}"),
            })
            .collect();
        return Ok(format!("{} {}\n", vars.join(" "), binary.display()));
    }
    let mut command = Command::new(&binary);
    command.envs(env);
    if args.init_system {
        let status = command
            .status()
            .with_context(|| format!("cannot run {}", binary.display()))?;
        return if status.success() {
            Ok(String::new())
        } else {
            Err(anyhow!("calico-node exited: {status}"))
        };
    }
    let pid_file = pid_file();
    if let Some(pid) = running_pid(&pid_file) {
        stop(pid)?;
    }
    fs::create_dir_all(&args.log_dir)
        .with_context(|| format!("cannot create {}", args.log_dir.display()))?;
    fs::create_dir_all(run_dir())
        .with_context(|| format!("cannot create {}", run_dir().display()))?;
    let log_path = args.log_dir.join("calico-node.log");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let start_offset = log.metadata().map(|m| m.len()).unwrap_or(0);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    fs::write(&pid_file, format!("{}\n", child.id()))
        .with_context(|| format!("cannot write {}", pid_file.display()))?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let new_output = read_from(&log_path, start_offset);
        if new_output.contains(READY_LINE) {
            return Ok(format!(
                "Running calico-node (pid {}), log {}\n{READY_LINE}\n",
                child.id(),
                log_path.display()
            ));
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "calico/node has terminated ({status}):\n{}",
                tail(&new_output)
            );
        }
        if Instant::now() > deadline {
            bail!(
                "calico-node did not report readiness within {}s:\n{}",
                READY_TIMEOUT.as_secs(),
                tail(&new_output)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops a running calico-node with SIGTERM and waits for it to go.
fn stop(pid: u32) -> Result<()> {
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
        .with_context(|| format!("cannot stop calico-node (pid {pid})"))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while running_pid(&pid_file()).is_some() {
        if Instant::now() > deadline {
            bail!("calico-node (pid {pid}) did not stop within 15s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn read_from(path: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(path) {
        if file.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = file.read_to_string(&mut text);
        }
    }
    text
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_PEERS: &str = "Calico process is running.\n\nIPv4 BGP status\nNo IPv4 peers \
                            found.\n\nIPv6 BGP status\nNo IPv6 peers found.\n\n";

    #[test]
    fn health_lines_come_from_calico_nodes_file_unless_it_is_missing_or_stale() {
        let path = Path::new("/var/run/calico/health");
        let text =
            "Readiness: not ready: datastore: failing for 11 s: unreachable\nLiveness: live\n";
        let fresh = Some(Duration::from_secs(3));
        assert_eq!(health_lines(path, Some(text), fresh), text);
        assert_eq!(
            health_lines(path, None, None),
            "Readiness: unknown (calico-node has not written /var/run/calico/health)\n"
        );
        assert_eq!(
            health_lines(path, Some("\n"), fresh),
            health_lines(path, None, None)
        );
        assert_eq!(
            health_lines(path, Some(text), Some(Duration::from_secs(31))),
            "Readiness: unknown (calico-node last wrote /var/run/calico/health 31 s ago and \
             should every 10 s: it may be stuck)\n"
        );
    }

    #[test]
    fn status_shows_the_ipip_line_only_when_calico_node_wrote_one() {
        let engine = "28.5.2 (API 1.51)";
        assert_eq!(
            status_text(Some(&[]), engine, None),
            format!("{NO_PEERS}\nDocker Engine: 28.5.2 (API 1.51)\n")
        );
        let line = "pool 192.168.0.0/16 has ipip enabled, but its traffic to other hosts is \
                    routed without encapsulation: IPIP encapsulation is not implemented by \
                    calico-docker yet";
        assert_eq!(
            status_text(Some(&[]), engine, Some(line)),
            format!("{NO_PEERS}\nDocker Engine: 28.5.2 (API 1.51)\nIPIP: {line}\n")
        );
    }
}
