//! BGP routing: keeps a supervised BIRD running with the configuration the datastore implies
//! for this node (see docs/routing.md).
//!
//! The [`Routing`] task reads [`calico_routing::read_inputs`], renders the configuration and
//! starts BIRD the first time (`Bird::start`), reloading it afterwards (`Bird::reload`, which
//! does nothing for an unchanged text). It does so again whenever something under one of
//! [`watched_prefixes`] changes (after [`DEBOUNCE`], so a burst is one reload), every refresh
//! interval, and after a failure (every [`RETRY`]). Failures are logged, never fatal: the plugin
//! sockets and the policy agent do not depend on routing.
//!
//! Each pass also takes the pools with `ipip` enabled (from the same listing of the pools,
//! [`calico_routing::Inputs::ipip_pools`]). calico-docker routes them without
//! encapsulation, so whenever that set changes (and at start) the task logs one error saying
//! which pools and why ([`calico_routing::ipip`]), and keeps the same line in
//! `<config dir>/ipip` for `calicoctl node status` (removed when no pool has `ipip` enabled, and
//! when the task stops).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use calico_ipam::Ipam;
use calico_model::Kind;
use calico_routing::ipip::{self, IpipChange, IpipReport};
use calico_routing::pool_overlap::OverlapReport;
use calico_routing::Bird;
use calico_store::keys::{self, kind_prefix};
use calico_store::resources::ResourceStore;
use calico_store::{Datastore, Watch, WatchEvent};
use ipnet::Ipv4Net;
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};
use tracing::{debug, error, info, warn};

/// Changes gathered after the first one before BIRD is reconfigured.
pub const DEBOUNCE: Duration = Duration::from_millis(100);
/// Delay before trying again after a failure.
pub const RETRY: Duration = Duration::from_secs(2);
/// Every key under these prefixes is watched; anything else is ignored.
const WATCH_ROOT: &str = "/calico/";

/// The key prefixes whose changes shape this node's BIRD configuration.
pub fn watched_prefixes() -> Vec<String> {
    vec![
        kind_prefix(Kind::Node),
        kind_prefix(Kind::BgpPeer),
        kind_prefix(Kind::IpPool),
        keys::IPAM_PREFIX.to_string(),
        keys::BGP_GLOBAL_PREFIX.to_string(),
    ]
}

/// Runs BIRD for one node.
pub struct Routing {
    /// This node's name.
    pub node: String,
    /// The datastore, through the resource layer.
    pub store: ResourceStore,
    /// IPAM on the same datastore (for this node's blocks).
    pub ipam: Ipam,
    /// Where `bird.cfg` goes.
    pub config_dir: PathBuf,
    /// BIRD's control socket.
    pub socket: PathBuf,
    /// How often the configuration is re-read without any change.
    pub refresh: Duration,
}

/// What one pass did.
#[derive(Debug, PartialEq, Eq)]
enum Pass {
    Ok,
    Failed,
    /// Another host's BIRD holds the socket: try again at the next refresh, not every RETRY.
    Blocked,
}

impl Routing {
    /// Runs until `stop` turns true, then stops BIRD (waiting for it to withdraw its routes).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let ds = self.store.datastore().clone();
        let prefixes = watched_prefixes();
        let mut bird: Option<Bird> = None;
        let mut changes: Option<Watch> = None;
        let mut ipip_report = IpipReport::new();
        let mut overlap = OverlapReport::new();
        loop {
            if changes.is_none() {
                changes = match start_watch(&ds).await {
                    Ok(w) => Some(w),
                    Err(e) => {
                        warn!(error = %e, "routing: cannot watch the datastore; retrying");
                        None
                    }
                };
            }
            let pass = self.sync(&mut bird, &mut overlap, &mut ipip_report).await;
            let wait = if pass == Pass::Failed || changes.is_none() {
                RETRY
            } else {
                self.refresh
            };
            let deadline = Instant::now() + wait;
            // Wait for a relevant change, the deadline, or the stop signal.
            loop {
                tokio::select! {
                    _ = stopped(&mut stop) => {
                        if let Some(bird) = bird.take() {
                            info!("stopping BIRD");
                            bird.stop().await;
                        }
                        self.remove_ipip_status();
                        return;
                    }
                    _ = sleep_until(deadline) => break,
                    event = next_event(&mut changes) => {
                        match event {
                            Some(WatchEvent::Relist) | None => {
                                debug!("routing: the datastore watch ended; watching again");
                                changes = None;
                                break;
                            }
                            Some(event) if relevant(&prefixes, &event) => {
                                tokio::time::sleep(DEBOUNCE).await;
                                let mut relist = false;
                                if let Some(w) = changes.as_mut() {
                                    while let Some(event) = w.try_next() {
                                        if matches!(event, WatchEvent::Relist) {
                                            relist = true;
                                            break;
                                        }
                                    }
                                }
                                if relist {
                                    changes = None;
                                }
                                break;
                            }
                            Some(_) => {}
                        }
                    }
                }
            }
        }
    }

    /// Reads the inputs and makes BIRD run with them (or not run, for a node without a BGP
    /// address); warns when `overlap` says the pools overlapping the host's network changed,
    /// and reports the pools with `ipip` enabled to `ipip`.
    async fn sync(
        &self,
        bird: &mut Option<Bird>,
        overlap: &mut OverlapReport,
        ipip: &mut IpipReport,
    ) -> Pass {
        let inputs = match calico_routing::read_inputs(&self.store, &self.ipam, &self.node).await {
            Ok(inputs) => inputs,
            Err(e) => {
                warn!(error = %e, "routing: cannot read the BGP settings; retrying");
                return Pass::Failed;
            }
        };
        self.report_ipip(ipip, inputs.ipip_pools).await;
        let Some(inputs) = inputs.bird else {
            if let Some(running) = bird.take() {
                info!(node = %self.node, "the node has no IPv4 BGP address any more; stopping BIRD");
                running.stop().await;
            } else {
                debug!(node = %self.node, "the node has no IPv4 BGP address; not running BIRD");
            }
            return Pass::Ok;
        };
        if let Some(text) = overlap.update(inputs.address, &inputs.pools) {
            warn!("{text}");
        }
        let config = calico_routing::render(&inputs);
        match bird {
            Some(running) => match running.reload(&config).await {
                Ok(true) => {
                    info!("BIRD reconfigured");
                    Pass::Ok
                }
                Ok(false) => Pass::Ok,
                Err(e) => {
                    warn!(error = %e, "cannot reconfigure BIRD; retrying");
                    Pass::Failed
                }
            },
            None => {
                if let Err(why) = tokio::task::block_in_place(|| claim_socket(&self.socket)) {
                    error!("not starting BIRD: {why}");
                    return Pass::Blocked;
                }
                match Bird::start(&self.config_dir, &self.socket, &config).await {
                    Ok(started) => {
                        info!(
                            socket = %self.socket.display(),
                            config = %self.config_dir.join(calico_routing::bird::CONFIG_FILE).display(),
                            pid = started.pid(),
                            "BIRD started"
                        );
                        *bird = Some(started);
                        Pass::Ok
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot start BIRD; retrying");
                        Pass::Failed
                    }
                }
            }
        }
    }

    /// Says, once per change of the set of pools with `ipip` enabled (`pools`), that they are
    /// routed without encapsulation and why (see the module's documentation).
    async fn report_ipip(&self, report: &mut IpipReport, pools: Vec<Ipv4Net>) {
        match report.update(pools) {
            None => {}
            Some(IpipChange::Enabled(pools)) => {
                let kernel = ipip::probe_kernel().await;
                if let ipip::KernelIpip::Unknown(why) = &kernel {
                    debug!("cannot tell whether this kernel has IPIP: {why}");
                }
                let line = ipip::notice(&pools, &kernel);
                let path = self.ipip_status_path();
                if let Err(e) = std::fs::create_dir_all(&self.config_dir)
                    .and_then(|()| crate::status_file::write_atomic(&path, &format!("{line}\n")))
                {
                    warn!(path = %path.display(), error = %e, "cannot write the IPIP status file");
                }
                error!("{line}");
            }
            Some(IpipChange::None { before }) => {
                self.remove_ipip_status();
                if !before.is_empty() {
                    info!("no pool has ipip enabled any more");
                }
            }
        }
    }

    fn ipip_status_path(&self) -> PathBuf {
        self.config_dir.join(ipip::STATUS_FILE)
    }

    fn remove_ipip_status(&self) {
        let path = self.ipip_status_path();
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                warn!(path = %path.display(), error = %e, "cannot remove the IPIP status file")
            }
            _ => {}
        }
    }
}

async fn start_watch(ds: &Arc<dyn Datastore>) -> anyhow::Result<Watch> {
    // Any small listing gives the revision to watch from; the sync that follows reads a state
    // at least that new, so no change is missed.
    let revision = ds
        .list(calico_store::keys::GLOBAL_AS_NUMBER)
        .await?
        .revision;
    Ok(ds.watch(WATCH_ROOT, revision).await?)
}

/// Whether `socket` here and `socket` as process `pid` sees it are one file.
fn same_file(socket: &Path, pid: i32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(ours) = std::fs::metadata(socket) else {
        return false;
    };
    let Ok(rel) = socket.strip_prefix("/") else {
        return false;
    };
    let theirs = Path::new(&format!("/proc/{pid}/root")).join(rel);
    std::fs::metadata(theirs).is_ok_and(|t| t.dev() == ours.dev() && t.ino() == ours.ino())
}

/// Returns once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

async fn next_event(changes: &mut Option<Watch>) -> Option<WatchEvent> {
    match changes.as_mut() {
        Some(w) => w.next().await,
        None => std::future::pending().await,
    }
}

fn relevant(prefixes: &[String], event: &WatchEvent) -> bool {
    let key = match event {
        WatchEvent::Put(kv) => &kv.key,
        WatchEvent::Delete { key, .. } => key,
        WatchEvent::Relist => return true,
    };
    prefixes.iter().any(|p| key.starts_with(p.as_str()))
}

/// Checks that no other BIRD serves `socket`. A `bird` process whose control socket is this very
/// file (the same inode, seen through its own mount namespace) in another network namespace
/// (another host sharing this filesystem, e.g. in the test harness when `CALICO_BIRD_DIR` is not
/// private to each host) is an error; one in this network namespace is an orphan of an earlier
/// calico-node (killed with SIGKILL) and is stopped, its routes kept (graceful restart).
fn claim_socket(socket: &Path) -> Result<(), String> {
    let own_netns = std::fs::read_link("/proc/self/ns/net").ok();
    let socket_arg = socket.as_os_str().as_encoded_bytes();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Ok(());
    };
    let mut orphans = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else {
            continue;
        };
        if comm.trim() != "bird" {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let serves = args.windows(2).any(|w| w[0] == b"-s" && w[1] == socket_arg);
        if !serves || !same_file(socket, pid) {
            continue;
        }
        let netns = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
        if netns.is_some() && netns == own_netns {
            orphans.push(pid);
        } else {
            return Err(format!(
                "BIRD pid {pid} in another network namespace already uses {}; \
                 give each host its own CALICO_BIRD_DIR",
                socket.display()
            ));
        }
    }
    for pid in orphans {
        warn!(
            pid,
            "stopping a BIRD left behind by an earlier calico-node (graceful restart)"
        );
        calico_routing::bird::stop_orphan(pid, socket);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use calico_store::KeyValue;

    fn put(key: &str) -> WatchEvent {
        WatchEvent::Put(KeyValue {
            key: key.into(),
            value: vec![],
            create_revision: 1,
            mod_revision: 1,
        })
    }

    #[test]
    fn only_routing_keys_are_relevant() {
        let p = watched_prefixes();
        for key in [
            "/calico/resources/v1/node/calico-01",
            "/calico/resources/v1/bgppeer/global/10.0.0.1",
            "/calico/resources/v1/ippool/192.168.0.0-16",
            "/calico/ipam/v2/assignment/ipv4/block/192.168.1.0-26",
            "/calico/ipam/v2/host/calico-01/ipv4/block/192.168.1.0-26",
            "/calico/bgp/v1/global/node_mesh",
            "/calico/bgp/v1/global/as_num",
        ] {
            assert!(relevant(&p, &put(key)), "{key}");
            assert!(
                relevant(
                    &p,
                    &WatchEvent::Delete {
                        key: key.into(),
                        revision: 2
                    }
                ),
                "{key}"
            );
        }
        for key in [
            "/calico/resources/v1/profile/net1",
            "/calico/resources/v1/workloadendpoint/calico-01/libnetwork/x/y",
            "/calico/v1/config/CalicoVersion",
        ] {
            assert!(!relevant(&p, &put(key)), "{key}");
        }
        assert!(relevant(&p, &WatchEvent::Relist));
    }

    #[test]
    fn an_unused_socket_is_free() {
        assert!(claim_socket(Path::new("/nonexistent/calico-test/bird.ctl")).is_ok());
    }
}
