//! calico-node's health, as Felix reports its own (libcalico-go's `lib/health`, which Felix 2.6
//! uses): each long-running part registers a reporter saying whether it reports readiness and
//! how long its reports stay valid; the [`Aggregator`] turns the latest reports into a
//! [`Verdict`]: ready when every readiness reporter's latest report says ready, live when every
//! reporter with a timeout has reported within it (a stale reporter is neither live nor ready).
//! A reporter that has not reported since it registered has its initial report: not ready,
//! with why.
//!
//! The verdict is served over HTTP ([`http`]) when `FELIX_HEALTHENABLED` is on, and always
//! written to [`calico_routing::status::HEALTH_FILE`] in the run directory for `calicoctl node
//! status` ([`publish`]). [`datastore`] probes the datastore. See docs/operations.md.

pub mod datastore;
pub mod http;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::config::HealthEndpoint;

/// How often [`publish`] looks at the verdict.
const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);
/// How often [`publish`] rewrites the status file when nothing changed, so that a reader can
/// tell a file calico-node still keeps from one it left behind.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// What a reporter says about itself: ready, or not and why.
pub type Readiness = Result<(), String>;

/// The latest state of one reporter.
#[derive(Clone, Debug)]
struct Reporting {
    /// Whether its readiness counts toward the verdict.
    reports_ready: bool,
    /// How long a report stays valid (liveness); `None`: forever, the reporter reports no
    /// liveness.
    timeout: Option<Duration>,
    latest: Readiness,
    at: Instant,
}

/// The reporters and their latest reports; pure: every call is given the time.
#[derive(Debug, Default)]
pub struct Aggregator {
    reporters: BTreeMap<&'static str, Reporting>,
}

/// The overall health: empty lists are healthy, otherwise each item is one reporter's reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Why calico-node is not ready.
    pub not_ready: Vec<String>,
    /// Why calico-node is not live.
    pub not_live: Vec<String>,
}

impl Verdict {
    /// Whether every readiness reporter is ready.
    pub fn ready(&self) -> bool {
        self.not_ready.is_empty()
    }

    /// Whether every liveness reporter has reported in time.
    pub fn live(&self) -> bool {
        self.not_live.is_empty()
    }

    /// `ready`, or `not ready: <reason>; <reason>`.
    pub fn readiness_line(&self) -> String {
        line("ready", &self.not_ready)
    }

    /// `live`, or `not live: <reason>; <reason>`.
    pub fn liveness_line(&self) -> String {
        line("live", &self.not_live)
    }

    /// The status file's text: `Readiness: <readiness line>` and `Liveness: <liveness line>`.
    pub fn status_text(&self) -> String {
        format!(
            "Readiness: {}\nLiveness: {}\n",
            self.readiness_line(),
            self.liveness_line()
        )
    }
}

fn line(good: &str, reasons: &[String]) -> String {
    if reasons.is_empty() {
        good.to_string()
    } else {
        format!("not {good}: {}", reasons.join("; "))
    }
}

impl Aggregator {
    /// Registers `name` at `now` with its initial report `initial`; it reports readiness when
    /// `reports_ready`, and liveness with reports valid for `timeout` when that is `Some`.
    pub fn register(
        &mut self,
        name: &'static str,
        reports_ready: bool,
        timeout: Option<Duration>,
        initial: Readiness,
        now: Instant,
    ) {
        self.reporters.insert(
            name,
            Reporting {
                reports_ready,
                timeout,
                latest: initial,
                at: now,
            },
        );
    }

    /// Records `name`'s report at `now`.
    pub fn report(&mut self, name: &str, readiness: Readiness, now: Instant) {
        if let Some(reporting) = self.reporters.get_mut(name) {
            reporting.latest = readiness;
            reporting.at = now;
        }
    }

    /// Records that `name` is still running at `now`, its readiness unchanged.
    pub fn beat(&mut self, name: &str, now: Instant) {
        if let Some(reporting) = self.reporters.get_mut(name) {
            reporting.at = now;
        }
    }

    /// The verdict at `now`.
    pub fn verdict(&self, now: Instant) -> Verdict {
        let mut verdict = Verdict {
            not_ready: Vec::new(),
            not_live: Vec::new(),
        };
        for (name, reporting) in &self.reporters {
            let silent = now.saturating_duration_since(reporting.at);
            let stale = reporting.timeout.filter(|timeout| silent > *timeout);
            if let Some(timeout) = stale {
                verdict.not_live.push(format!(
                    "{name}: no report for {} s (timeout {} s)",
                    silent.as_secs(),
                    timeout.as_secs()
                ));
            }
            if !reporting.reports_ready {
                continue;
            }
            match (&reporting.latest, stale) {
                (Err(why), _) => verdict.not_ready.push(format!("{name}: {why}")),
                (Ok(()), Some(_)) => verdict
                    .not_ready
                    .push(format!("{name}: no report for {} s", silent.as_secs())),
                (Ok(()), None) => {}
            }
        }
        verdict
    }
}

/// The aggregator shared by calico-node's tasks.
#[derive(Clone, Debug, Default)]
pub struct Health {
    aggregator: Arc<Mutex<Aggregator>>,
}

impl Health {
    fn lock(&self) -> MutexGuard<'_, Aggregator> {
        // A reporter that panicked mid-update leaves a consistent map: keep using it.
        self.aggregator
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a reporter (see [`Aggregator::register`]) and returns its handle.
    pub fn register(
        &self,
        name: &'static str,
        reports_ready: bool,
        timeout: Option<Duration>,
        initial: Readiness,
    ) -> Reporter {
        self.lock()
            .register(name, reports_ready, timeout, initial, Instant::now());
        Reporter {
            name,
            health: self.clone(),
        }
    }

    /// The verdict now.
    pub fn verdict(&self) -> Verdict {
        self.lock().verdict(Instant::now())
    }
}

/// One reporter's handle on the shared [`Health`].
#[derive(Clone, Debug)]
pub struct Reporter {
    name: &'static str,
    health: Health,
}

impl Reporter {
    /// Reports ready.
    pub fn ready(&self) {
        self.report(Ok(()));
    }

    /// Reports not ready because of `why`.
    pub fn not_ready(&self, why: String) {
        self.report(Err(why));
    }

    fn report(&self, readiness: Readiness) {
        self.health
            .lock()
            .report(self.name, readiness, Instant::now());
    }

    /// Reports that the task is still running, its readiness unchanged.
    pub fn beat(&self) {
        self.health.lock().beat(self.name, Instant::now());
    }
}

/// How long a failing dependency is tolerated before it makes its reporter not ready; pure.
#[derive(Clone, Debug)]
pub struct Outage {
    grace: Duration,
    since: Option<Instant>,
}

impl Outage {
    /// No outage yet; one lasting more than `grace` counts.
    pub fn new(grace: Duration) -> Self {
        Outage { grace, since: None }
    }

    /// Records a failure at `now` because of `why`: the reason to report not ready once the
    /// failures have lasted longer than the grace period, else `None`.
    pub fn failed(&mut self, why: &str, now: Instant) -> Option<String> {
        let since = *self.since.get_or_insert(now);
        let lasted = now.saturating_duration_since(since);
        (lasted > self.grace).then(|| format!("failing for {} s: {why}", lasted.as_secs()))
    }

    /// Records a success: the outage, if any, is over.
    pub fn ended(&mut self) {
        self.since = None;
    }
}

/// Starts what every calico-node runs: [`publish`] into `run_dir`, and the HTTP endpoints on
/// `endpoint` when they are enabled (bound before this returns, so a taken port stops the start).
pub async fn start(endpoint: Option<&HealthEndpoint>, run_dir: &Path) -> Result<Health> {
    let health = Health::default();
    if let Some(HealthEndpoint { host, port }) = endpoint {
        let cannot = || format!("cannot serve the health endpoints on {host}:{port}");
        let address = listen_address(host, *port).await.with_context(cannot)?;
        let listener = TcpListener::bind(address).await.with_context(cannot)?;
        let address = listener
            .local_addr()
            .context("the health listener's address")?;
        info!(%address, "serving /liveness and /readiness");
        tokio::spawn(http::serve(listener, health.clone()));
    }
    tokio::spawn(publish(
        health.clone(),
        run_dir.join(calico_routing::status::HEALTH_FILE),
    ));
    Ok(health)
}

/// The one address a host name listens on, as Go's `net.Listen` (Felix's) picks it: the first
/// IPv4 address it resolves to, else the first address (`localhost` is 127.0.0.1).
async fn listen_address(host: &str, port: u16) -> Result<SocketAddr> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .context("cannot resolve the host")?
        .collect();
    addresses
        .iter()
        .find(|a| a.is_ipv4())
        .or(addresses.first())
        .copied()
        .context("the host has no address")
}

/// Keeps `path` holding the [`Verdict::status_text`] (rewritten when it changes and every
/// [`REFRESH_INTERVAL`]) and logs each change of readiness and liveness. Runs forever.
pub async fn publish(health: Health, path: PathBuf) {
    let mut written: Option<(String, Instant)> = None;
    let mut tick = tokio::time::interval(PUBLISH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<Verdict> = None;
    loop {
        tick.tick().await;
        let verdict = health.verdict();
        log_change(last.as_ref(), &verdict);
        let text = verdict.status_text();
        let due = match &written {
            Some((old, at)) => *old != text || at.elapsed() >= REFRESH_INTERVAL,
            None => true,
        };
        if due {
            let result = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| crate::status_file::write_atomic(&path, &text));
            match result {
                Ok(()) => written = Some((text, Instant::now())),
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "cannot write the health status file")
                }
            }
        }
        last = Some(verdict);
    }
}

fn log_change(before: Option<&Verdict>, now: &Verdict) {
    if before.map(Verdict::readiness_line) != Some(now.readiness_line()) {
        if now.ready() {
            info!("calico-node is ready");
        } else {
            warn!("calico-node is {}", now.readiness_line());
        }
    }
    if before.map(Verdict::liveness_line) != Some(now.liveness_line()) && !now.live() {
        warn!("calico-node is {}", now.liveness_line());
    }
    if before.is_some_and(|b| !b.live()) && now.live() {
        info!("calico-node is live again");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn no_reporters_is_healthy() {
        let verdict = Aggregator::default().verdict(Instant::now());
        assert!(verdict.ready() && verdict.live());
        assert_eq!(verdict.status_text(), "Readiness: ready\nLiveness: live\n");
    }

    #[test]
    fn not_ready_until_every_readiness_reporter_says_ready() {
        let t0 = Instant::now();
        let mut agg = Aggregator::default();
        agg.register(
            "agent",
            true,
            Some(60 * SECOND),
            Err("no sync yet".into()),
            t0,
        );
        agg.register("sockets", true, None, Err("not served".into()), t0);
        agg.register(
            "logger",
            false,
            Some(60 * SECOND),
            Err("ignored".into()),
            t0,
        );
        let verdict = agg.verdict(t0 + SECOND);
        assert_eq!(
            verdict.not_ready,
            vec!["agent: no sync yet", "sockets: not served"]
        );
        assert!(verdict.live(), "{verdict:?}");
        assert_eq!(
            verdict.readiness_line(),
            "not ready: agent: no sync yet; sockets: not served"
        );

        agg.report("sockets", Ok(()), t0 + SECOND);
        assert_eq!(
            agg.verdict(t0 + 2 * SECOND).not_ready,
            vec!["agent: no sync yet"]
        );
        agg.report("agent", Ok(()), t0 + 2 * SECOND);
        assert!(agg.verdict(t0 + 3 * SECOND).ready());
        agg.report("agent", Err("datastore gone".into()), t0 + 4 * SECOND);
        assert_eq!(
            agg.verdict(t0 + 4 * SECOND).not_ready,
            vec!["agent: datastore gone"]
        );
    }

    #[test]
    fn a_reporter_silent_beyond_its_timeout_is_neither_live_nor_ready() {
        let t0 = Instant::now();
        let mut agg = Aggregator::default();
        agg.register("agent", true, Some(20 * SECOND), Ok(()), t0);
        agg.register("sockets", true, None, Ok(()), t0);
        assert_eq!(
            agg.verdict(t0 + 20 * SECOND),
            Verdict {
                not_ready: vec![],
                not_live: vec![]
            }
        );
        let verdict = agg.verdict(t0 + 21 * SECOND);
        assert_eq!(
            verdict.not_live,
            vec!["agent: no report for 21 s (timeout 20 s)"]
        );
        assert_eq!(verdict.not_ready, vec!["agent: no report for 21 s"]);

        // A heartbeat keeps the readiness and makes it live again.
        agg.beat("agent", t0 + 22 * SECOND);
        let verdict = agg.verdict(t0 + 23 * SECOND);
        assert!(verdict.live() && verdict.ready(), "{verdict:?}");
        // Without a timeout, silence is fine forever.
        let verdict = agg.verdict(t0 + 1000 * SECOND);
        assert_eq!(verdict.not_ready, vec!["agent: no report for 978 s"]);
        assert_eq!(verdict.not_live.len(), 1, "{verdict:?}");
    }

    #[test]
    fn reports_for_unknown_names_are_ignored() {
        let t0 = Instant::now();
        let mut agg = Aggregator::default();
        agg.report("nobody", Err("x".into()), t0);
        agg.beat("nobody", t0);
        assert!(agg.verdict(t0).ready());
    }

    #[test]
    fn an_outage_counts_only_beyond_its_grace_period_and_ends_with_a_success() {
        let t0 = Instant::now();
        let mut outage = Outage::new(10 * SECOND);
        assert_eq!(outage.failed("refused", t0), None);
        assert_eq!(outage.failed("refused", t0 + 10 * SECOND), None);
        assert_eq!(
            outage.failed("timed out", t0 + 11 * SECOND).as_deref(),
            Some("failing for 11 s: timed out")
        );
        outage.ended();
        assert_eq!(outage.failed("refused", t0 + 12 * SECOND), None);
        assert_eq!(
            outage.failed("refused", t0 + 23 * SECOND).as_deref(),
            Some("failing for 11 s: refused")
        );
    }

    #[tokio::test]
    async fn a_host_name_listens_on_its_ipv4_address_first() {
        let address = listen_address("localhost", 9099).await.unwrap();
        assert_eq!(address, "127.0.0.1:9099".parse().unwrap());
        let address = listen_address("::1", 0).await.unwrap();
        assert_eq!(address, "[::1]:0".parse().unwrap());
    }

    #[test]
    fn the_shared_handle_reports_through_reporters() {
        let health = Health::default();
        let agent = health.register("agent", true, Some(60 * SECOND), Err("starting".into()));
        assert_eq!(
            health.verdict().readiness_line(),
            "not ready: agent: starting"
        );
        agent.ready();
        assert!(health.verdict().ready());
        agent.not_ready("stuck".into());
        agent.beat();
        assert_eq!(health.verdict().not_ready, vec!["agent: stuck"]);
    }
}
