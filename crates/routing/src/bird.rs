//! Running BIRD 2: a supervised `bird -f` child, reloads, and its BGP sessions.
//!
//! [`Bird::start`] validates the configuration (`bird -p`), writes it to
//! `<config dir>/bird.cfg` and runs `bird -f -R -c <file> -s <socket>` until the [`Bird`] is
//! stopped or dropped. A BIRD that exits is started again, after 0.5 s doubling up to 10 s (back
//! to 0.5 s once a run lasted 30 s). BIRD's log (stderr) is forwarded to `tracing` (target `bird`).
//! `bird` and `birdc` are looked up on `PATH`.
//!
//! Stopping is a BGP graceful restart (`birdc graceful restart`): the peers keep this node's
//! routes and the kernel keeps the routes BIRD installed, so traffic flows while calico-node
//! restarts; the next BIRD (`-R`: graceful restart recovery) takes them over once its sessions
//! are back. A BIRD that is killed leaves the same state behind.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout, Instant};
use tracing::{error, info, warn};

use crate::status::{parse_protocols, PeerStatus};
use crate::{Error, Result};

/// The configuration file's name inside the config directory.
pub const CONFIG_FILE: &str = "bird.cfg";

/// The variable naming calico-node's BIRD directory (its configuration, its control socket by
/// default, and [`crate::ipip::STATUS_FILE`]); calicoctl reads it too, to find them.
pub const BIRD_DIR_ENV: &str = "CALICO_BIRD_DIR";

/// calico-node's BIRD directory when [`BIRD_DIR_ENV`] is not set.
pub const DEFAULT_BIRD_DIR: &str = "/var/run/calico";

/// The variable naming BIRD's control socket; without it the socket is [`SOCKET_FILE`] in the
/// BIRD directory.
pub const BIRD_SOCKET_ENV: &str = "CALICO_BIRD_SOCKET";

/// The control socket's name inside the BIRD directory, when [`BIRD_SOCKET_ENV`] is not set.
pub const SOCKET_FILE: &str = "bird.ctl";

/// How long [`Bird::start`] waits for BIRD's control socket to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a BIRD asked to stop gets to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

const RESTART_MIN: Duration = Duration::from_millis(500);
const RESTART_MAX: Duration = Duration::from_secs(10);
/// A run at least this long resets the restart delay.
const STABLE_RUN: Duration = Duration::from_secs(30);

/// A running, supervised BIRD. Dropping it stops BIRD (best effort; [`Bird::stop`] waits).
#[derive(Debug)]
pub struct Bird {
    config_path: PathBuf,
    socket: PathBuf,
    /// The configuration text BIRD last loaded.
    loaded: Mutex<String>,
    pid: Arc<AtomicU32>,
    stop: watch::Sender<bool>,
    supervisor: Option<JoinHandle<()>>,
}

impl Bird {
    /// Writes `config` to `<config_dir>/bird.cfg` (the directory is created) and starts BIRD
    /// with its control socket at `socket`; returns once the socket answers. A configuration
    /// BIRD rejects is an [`Error::Config`] and nothing is started.
    pub async fn start(config_dir: &Path, socket: &Path, config: &str) -> Result<Bird> {
        tokio::fs::create_dir_all(config_dir)
            .await
            .map_err(|e| io_error(format!("cannot create {}", config_dir.display()), e))?;
        let config_dir = std::path::absolute(config_dir)
            .map_err(|e| io_error(format!("bad path {}", config_dir.display()), e))?;
        let config_path = config_dir.join(CONFIG_FILE);
        install_config(&config_path, config).await?;

        let pid = Arc::new(AtomicU32::new(0));
        let (stop, stopped) = watch::channel(false);
        let supervisor = tokio::spawn(supervise(
            config_path.clone(),
            socket.to_path_buf(),
            pid.clone(),
            stopped,
        ));
        let bird = Bird {
            config_path,
            socket: socket.to_path_buf(),
            loaded: Mutex::new(config.to_string()),
            pid,
            stop,
            supervisor: Some(supervisor),
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match birdc(&bird.socket, &["show", "status"]).await {
                Ok(out) if out.status.success() => return Ok(bird),
                _ if Instant::now() >= deadline => {
                    return Err(Error::Bird(format!(
                        "no answer on {} after {READY_TIMEOUT:?}",
                        bird.socket.display()
                    )))
                }
                _ => sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Makes BIRD load `config` (`birdc configure`), unless it is the text already loaded;
    /// returns whether it reconfigured. A configuration BIRD rejects is an [`Error::Config`]
    /// and leaves the running one (and the file) as they were.
    pub async fn reload(&self, config: &str) -> Result<bool> {
        let mut loaded = self.loaded.lock().await;
        if *loaded == config {
            return Ok(false);
        }
        install_config(&self.config_path, config).await?;
        let out = birdc(&self.socket, &["configure"]).await?;
        let text = String::from_utf8_lossy(&out.stdout);
        let accepted = ["Reconfigured", "Reconfiguration in progress", "queueing"];
        if !out.status.success() || !accepted.iter().any(|a| text.contains(a)) {
            return Err(Error::Bird(format!(
                "configure failed: {}{}",
                text.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        *loaded = config.to_string();
        Ok(true)
    }

    /// BIRD's BGP sessions ([`show_protocols`] on this BIRD's socket).
    pub async fn protocols(&self) -> Result<Vec<PeerStatus>> {
        show_protocols(&self.socket).await
    }

    /// The process id of the BIRD running now, if one is.
    pub fn pid(&self) -> Option<u32> {
        match self.pid.load(Ordering::SeqCst) {
            0 => None,
            pid => Some(pid),
        }
    }

    /// Stops BIRD in graceful restart mode and waits for it to exit (its routes stay).
    pub async fn stop(mut self) {
        self.stop.send_replace(true);
        if let Some(supervisor) = self.supervisor.take() {
            if let Err(e) = supervisor.await {
                error!(error = %e, "BIRD supervisor failed");
            }
        }
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        if self.supervisor.is_none() {
            return;
        }
        // Stop first, so the supervisor does not take the exit for a crash; kill directly too,
        // in case the runtime goes away before the supervisor runs again (a killed BIRD leaves
        // its routes, as a graceful restart does).
        self.stop.send_replace(true);
        if let Some(pid) = self.pid() {
            if let Ok(pid) = i32::try_from(pid) {
                // The process may already be gone; nothing to do then.
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

/// The BGP sessions of the BIRD whose control socket is `socket` (`birdc show protocols`).
pub async fn show_protocols(socket: &Path) -> Result<Vec<PeerStatus>> {
    let out = birdc(socket, &["show", "protocols"]).await?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(Error::Bird(format!(
            "show protocols failed: {}{}",
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(parse_protocols(&text))
}

/// Validates `config` with `bird -p` and moves it into place atomically.
async fn install_config(path: &Path, config: &str) -> Result<()> {
    let tmp = path.with_extension("cfg.new");
    tokio::fs::write(&tmp, config)
        .await
        .map_err(|e| io_error(format!("cannot write {}", tmp.display()), e))?;
    let checked = Command::new("bird")
        .arg("-p")
        .arg("-c")
        .arg(&tmp)
        .output()
        .await
        .map_err(|e| io_error("cannot run bird -p".into(), e));
    let result = match checked {
        Ok(out) if out.status.success() => tokio::fs::rename(&tmp, path)
            .await
            .map_err(|e| io_error(format!("cannot write {}", path.display()), e)),
        Ok(out) => Err(Error::Config(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )),
        Err(e) => Err(e),
    };
    if result.is_err() {
        // Best effort: a leftover temporary file is harmless and overwritten next time.
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

async fn birdc(socket: &Path, args: &[&str]) -> Result<Output> {
    Command::new("birdc")
        .arg("-s")
        .arg(socket)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| io_error("cannot run birdc".into(), e))
}

/// Keeps one BIRD running until `stopped` turns true.
async fn supervise(
    config: PathBuf,
    socket: PathBuf,
    pid: Arc<AtomicU32>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut delay = RESTART_MIN;
    loop {
        let started = Instant::now();
        match spawn_bird(&config, &socket) {
            Ok(mut child) => {
                pid.store(child.id().unwrap_or(0), Ordering::SeqCst);
                let exit = tokio::select! {
                    status = child.wait() => Some(status),
                    _ = stopped.wait_for(|s| *s) => None,
                };
                match exit {
                    None => {
                        stop_child(&mut child, &socket).await;
                        pid.store(0, Ordering::SeqCst);
                        return;
                    }
                    Some(status) => {
                        pid.store(0, Ordering::SeqCst);
                        if *stopped.borrow() {
                            return;
                        }
                        warn!(status = %describe(status), "BIRD exited; restarting in {delay:?}");
                    }
                }
            }
            Err(e) => error!(error = %e, "cannot start BIRD; retrying in {delay:?}"),
        }
        if started.elapsed() >= STABLE_RUN {
            delay = RESTART_MIN;
        }
        tokio::select! {
            _ = sleep(delay) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        delay = (delay * 2).min(RESTART_MAX);
    }
}

fn spawn_bird(config: &Path, socket: &Path) -> std::io::Result<Child> {
    let mut child = Command::new("bird")
        .arg("-f")
        .arg("-R")
        .arg("-c")
        .arg(config)
        .arg("-s")
        .arg(socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                info!(target: "bird", "{line}");
            }
        });
    }
    info!(pid = child.id(), config = %config.display(), "started BIRD");
    Ok(child)
}

/// `birdc graceful restart`, then SIGKILL if BIRD has not exited within [`STOP_TIMEOUT`].
async fn stop_child(child: &mut Child, socket: &Path) {
    if let Err(e) = birdc(socket, &["graceful", "restart"]).await {
        warn!(error = %e, "cannot ask BIRD for a graceful restart");
    }
    match timeout(STOP_TIMEOUT, child.wait()).await {
        Ok(_) => info!("BIRD stopped (graceful restart: its routes stay)"),
        Err(_) => {
            warn!("BIRD did not stop; killing it");
            if let Err(e) = child.kill().await {
                error!(error = %e, "cannot kill BIRD");
            }
        }
    }
}

/// Stops a BIRD that is not our child (one left behind by an earlier calico-node) the same
/// way, blocking: `birdc graceful restart` on `socket`, then SIGKILL after [`STOP_TIMEOUT`].
pub fn stop_orphan(pid: i32, socket: &Path) {
    let pid = Pid::from_raw(pid);
    let asked = std::process::Command::new("birdc")
        .arg("-s")
        .arg(socket)
        .args(["graceful", "restart"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Err(e) = asked {
        warn!(error = %e, "cannot ask the old BIRD for a graceful restart");
    }
    let deadline = std::time::Instant::now() + STOP_TIMEOUT;
    while kill(pid, None).is_ok() {
        if std::time::Instant::now() >= deadline {
            // Gone already is fine.
            let _ = kill(pid, Signal::SIGKILL);
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn describe(status: std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(s) => s.to_string(),
        Err(e) => e.to_string(),
    }
}

fn io_error(context: String, source: std::io::Error) -> Error {
    Error::Io { context, source }
}
