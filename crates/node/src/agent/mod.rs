//! The policy agent: follows the datastore (profiles, policies, IP pools, every host's
//! workload and host endpoints), hands each change to its consumers ([`feed`]: the calculation
//! graph, the DNS name table), and programs the [`PolicyDataplane`] with only what changed.
//! Nothing is written before the first complete listing; on start, a dataplane that already
//! matches is left untouched. A failed apply or a lost watch starts it over from a new listing.
//! Two inputs come from this host instead of the datastore, and are given to the graph again
//! after every listing and whenever they change: the ports published to local endpoints, from
//! the plugin driver ([`Published`]), and the host's interfaces and their addresses
//! ([`HostAddresses`]), which place the host endpoints that name only their expected IPs. The
//! failsafe ports are fixed at start.
//!
//! With [`Agent::with_health`] it reports readiness once a complete listing is programmed, not
//! ready when its syncs have failed for longer than [`SYNC_GRACE`], and a heartbeat every
//! [`HEARTBEAT`] from its loop (see `crate::health`).

pub mod feed;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use calico_calc::desired::{Failsafe, PublishedPort};
use calico_calc::CalcGraph;
use calico_dataplane::nft::counted_rules;
use calico_dataplane::PolicyDataplane;
use calico_store::keys::RESOURCES_PREFIX;
use calico_store::{Datastore, Watch, WatchEvent};
use tokio::sync::{mpsc, watch};
use tracing::{info, instrument, warn};

use crate::health::{Outage, Reporter};
use crate::metrics::{AgentMetrics, CounterRequest, TxKind};
use feed::{decode_event, decode_put, Consumer, Dispatcher, GraphFeed, Relisting, SyncStatus};

/// Changes applied together at most, so a burst becomes a few transactions, not thousands.
const BATCH: usize = 256;
/// How long the agent waits before starting over after an error.
const RESTART_DELAY: Duration = Duration::from_secs(1);
/// The agent's health reporter.
pub const HEALTH_NAME: &str = "policy agent";
/// How often the agent's loop reports that it runs.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// How long the agent may go without a heartbeat before calico-node is not live: longer than
/// the longest legitimate pass without one (a listing and the watch's start, each up to the
/// etcd request timeout of 10 s, the restart delay and a full dataplane sync).
pub const LIVENESS_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the agent's syncs may keep failing before it reports not ready.
pub const SYNC_GRACE: Duration = Duration::from_secs(10);

/// The ports published to this host's endpoints, by host interface (what the plugin driver
/// was asked for with `docker run -p`).
pub type Published = BTreeMap<String, Vec<PublishedPort>>;

/// This host's interfaces other than the workloads' `cali*` ones, each with its IPv4 and IPv6
/// addresses (possibly none).
pub type HostAddresses = BTreeMap<String, BTreeSet<IpAddr>>;

/// Follows the datastore and keeps this host's policy dataplane in line with it.
pub struct Agent<D> {
    ds: Arc<dyn Datastore>,
    dataplane: D,
    published: watch::Receiver<Published>,
    host_addresses: watch::Receiver<HostAddresses>,
    feeds: Dispatcher,
    resync_interval: Duration,
    restart_delay: Duration,
    /// Host endpoint interfaces this host does not have, as last logged.
    absent: BTreeSet<String>,
    health: Option<SyncHealth>,
    metrics: Option<AgentMetrics>,
    /// Requests for the table's rule counters (for `/metrics`), if metrics are served.
    counter_requests: Option<mpsc::Receiver<CounterRequest>>,
}

/// The agent's health reporter and how long its syncs have been failing.
struct SyncHealth {
    reporter: Reporter,
    outage: Outage,
}

/// Why one round of following the datastore ended.
enum RoundEnd {
    /// The datastore's history is gone: list again now.
    Relist,
}

/// Why the agent reads the whole dataplane back.
#[derive(Clone, Copy, Debug)]
enum Why {
    /// A complete listing has just been fed to the graph.
    Listed,
    /// The periodic check for changes made behind the agent's back.
    DriftCheck,
}

/// Runs a short blocking call (an `nft` or `iptables` process) without stalling other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

impl<D: PolicyDataplane> Agent<D> {
    /// An agent for `node` reading `ds`, `published` and `host_addresses` and programming
    /// `dataplane`, which it reads back every `resync_interval` to repair drift; host endpoint
    /// policy never blocks the ports of `failsafe`.
    pub fn new(
        node: &str,
        ds: Arc<dyn Datastore>,
        published: watch::Receiver<Published>,
        host_addresses: watch::Receiver<HostAddresses>,
        failsafe: Failsafe,
        dataplane: D,
        resync_interval: Duration,
    ) -> Self {
        Agent {
            ds,
            dataplane,
            published,
            host_addresses,
            feeds: Dispatcher::new(GraphFeed::new(node, failsafe)),
            resync_interval,
            restart_delay: RESTART_DELAY,
            absent: BTreeSet::new(),
            health: None,
            metrics: None,
            counter_requests: None,
        }
    }

    /// Also reports its health through `reporter` (registered with [`LIVENESS_TIMEOUT`]).
    pub fn with_health(mut self, reporter: Reporter) -> Self {
        self.health = Some(SyncHealth {
            reporter,
            outage: Outage::new(SYNC_GRACE),
        });
        self
    }

    /// Also records its work in `metrics` and answers `counter_requests` with the table's
    /// rule counters.
    pub fn with_metrics(
        mut self,
        metrics: AgentMetrics,
        counter_requests: mpsc::Receiver<CounterRequest>,
    ) -> Self {
        self.metrics = Some(metrics);
        self.counter_requests = Some(counter_requests);
        self
    }

    /// Also hands every change to `consumer` (after the calculation graph).
    pub fn with_consumer(mut self, consumer: Box<dyn Consumer>) -> Self {
        self.feeds.add(consumer);
        self
    }

    /// Runs forever: list, program, then follow changes; lists again when the watch says so,
    /// and starts over after an error.
    pub async fn run(mut self) {
        loop {
            self.beat();
            match self.sync_and_follow().await {
                Ok(RoundEnd::Relist) => {
                    info!("the datastore asked for a relist; listing again");
                    self.record(AgentMetrics::relist);
                }
                Err(e) => {
                    self.record(AgentMetrics::datastore_error);
                    let error = format!("{e:#}");
                    if let Some(health) = &mut self.health {
                        if let Some(why) = health.outage.failed(&error, Instant::now()) {
                            health.reporter.not_ready(why);
                        }
                    }
                    warn!(error = %error, "policy agent restarting its sync");
                    tokio::time::sleep(self.restart_delay).await;
                }
            }
        }
    }

    /// One full sync followed by incremental updates until the watch ends.
    async fn sync_and_follow(&mut self) -> Result<RoundEnd> {
        let listing = self
            .ds
            .list(RESOURCES_PREFIX)
            .await
            .context("listing resources")?;
        self.feeds.status(SyncStatus::Resyncing);
        let updates: Vec<_> = listing.items.iter().filter_map(decode_put).collect();
        self.feeds.updates(updates);
        self.feeds.status(SyncStatus::InSync);
        self.give_published();
        self.give_host_addresses();
        let graph = self.feeds.graph();
        graph.take_changes();
        self.full_sync(Why::Listed)?;
        if let Some(health) = &mut self.health {
            health.outage.ended();
            health.reporter.ready();
        }
        let mut watch = self
            .ds
            .watch(RESOURCES_PREFIX, listing.revision)
            .await
            .context("watching resources")?;
        let mut resync = tokio::time::interval(self.resync_interval);
        resync.tick().await;
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                _ = heartbeat.tick() => self.beat(),
                event = watch.next() => {
                    let Some(event) = event else {
                        anyhow::bail!("the datastore watch ended");
                    };
                    if let Some(end) = self.follow(event, &mut watch)? {
                        return Ok(end);
                    }
                }
                _ = resync.tick() => self.full_sync(Why::DriftCheck)?,
                Some(reply) = next_request(&mut self.counter_requests) => self.answer_counters(reply),
                () = changed(&mut self.published) => {
                    self.give_published();
                    self.apply_changes()?;
                }
                () = changed(&mut self.host_addresses) => {
                    self.give_host_addresses();
                    self.apply_changes()?;
                    self.report_absent_interfaces();
                }
            }
        }
    }

    /// Records in the metrics, if there are any.
    fn record(&self, what: impl FnOnce(&AgentMetrics)) {
        if let Some(metrics) = &self.metrics {
            what(metrics);
        }
    }

    /// Sends the table's rule counters to `reply` (none when they cannot be read).
    fn answer_counters(&mut self, reply: CounterRequest) {
        let index = counted_rules(self.feeds.graph().desired());
        let counts = blocking(|| self.dataplane.rule_counters(&index)).unwrap_or_else(|e| {
            warn!(error = %e, "cannot read the rule counters of the nftables table");
            Vec::new()
        });
        let _ = reply.send(counts);
    }

    /// Reports that the loop runs, if it reports its health.
    fn beat(&self) {
        if let Some(health) = &self.health {
            health.reporter.beat();
        }
    }

    /// Feeds `first` and what else the watch has buffered (up to [`BATCH`] events) to the
    /// consumers, then applies what changed; ends the round when the watch asks for a relist.
    fn follow(&mut self, first: WatchEvent, watch: &mut Watch) -> Result<Option<RoundEnd>> {
        let mut updates = Vec::new();
        let mut event = Some(first);
        let mut taken = 0;
        while let Some(next) = event {
            match decode_event(next) {
                Ok(update) => updates.extend(update),
                Err(Relisting) => return Ok(Some(RoundEnd::Relist)),
            }
            taken += 1;
            event = if taken < BATCH {
                watch.try_next()
            } else {
                None
            };
        }
        self.record(|m| m.watch_events(taken));
        self.feeds.updates(updates);
        self.apply_changes()?;
        Ok(None)
    }

    /// Gives the graph the published ports as they are now.
    fn give_published(&mut self) {
        let published = self.published.borrow_and_update().clone();
        let graph = self.feeds.graph();
        let gone: Vec<String> = graph
            .desired()
            .published
            .keys()
            .filter(|iface| !published.contains_key(*iface))
            .cloned()
            .collect();
        for iface in gone {
            graph.set_published(&iface, Vec::new());
        }
        for (iface, ports) in published {
            graph.set_published(&iface, ports);
        }
    }

    /// Gives the graph this host's interfaces and addresses as they are now.
    fn give_host_addresses(&mut self) {
        let addresses = self.host_addresses.borrow_and_update().clone();
        self.feeds.graph().set_host_addresses(addresses);
    }

    /// Applies the graph's pending changes, if any.
    #[instrument(name = "dataplane_apply", skip_all)]
    fn apply_changes(&mut self) -> Result<()> {
        let graph = self.feeds.graph();
        let changes = graph.take_changes();
        if changes.is_empty() {
            return Ok(());
        }
        let desired = graph.desired();
        let dataplane = &mut self.dataplane;
        let started = Instant::now();
        let applied = blocking(|| dataplane.apply_changes(desired, &changes));
        if let Some(metrics) = &self.metrics {
            match &applied {
                Ok(size) => metrics.transaction(TxKind::Incremental, *size, started.elapsed()),
                Err(_) => metrics.failure(),
            }
            metrics.graph_sizes(desired);
        }
        let size = applied.context("applying policy changes")?;
        tracing::debug!(?size, "applied policy changes");
        if !changes.host_endpoints_changed.is_empty() || !changes.host_endpoints_removed.is_empty()
        {
            self.report_absent_interfaces();
        }
        Ok(())
    }

    /// Logs, once each, the host endpoint interfaces this host does not have (their policy
    /// applies as soon as they appear) and those that appeared since.
    fn report_absent_interfaces(&mut self) {
        let addresses = self.host_addresses.borrow();
        let absent = absent_interfaces(&self.feeds.graph().desired().host_endpoints, &addresses);
        for iface in absent.difference(&self.absent) {
            info!(
                interface = %iface,
                "a host endpoint names an interface this host does not have (yet); its policy \
                 applies as soon as it appears"
            );
        }
        for iface in self.absent.difference(&absent) {
            if addresses.contains_key(iface) {
                info!(interface = %iface, "a host endpoint's interface appeared; its policy applies");
            }
        }
        drop(addresses);
        self.absent = absent;
    }

    /// Makes the dataplane equal the desired state, writing nothing when it already is: after
    /// a listing (`Why::Listed`) or on the periodic drift check (`Why::DriftCheck`).
    #[instrument(name = "dataplane_full_sync", skip(self))]
    fn full_sync(&mut self, why: Why) -> Result<()> {
        self.admit_policed_traffic();
        let wrote = self.resync(why).with_context(|| match why {
            Why::Listed => "programming the policy dataplane",
            Why::DriftCheck => "repairing the policy dataplane",
        })?;
        self.report_absent_interfaces();
        match (why, wrote) {
            (Why::Listed, true) => info!("nftables table programmed from the datastore"),
            (Why::Listed, false) => {
                info!("nftables table already matches the datastore; nothing to write")
            }
            (Why::DriftCheck, true) => {
                warn!("the nftables table had drifted from the desired state; rewrote it")
            }
            (Why::DriftCheck, false) => {}
        }
        Ok(())
    }

    /// [`PolicyDataplane::resync`] to the graph's desired state; true when it wrote.
    fn resync(&mut self, why: Why) -> calico_dataplane::Result<bool> {
        let graph: &CalcGraph = self.feeds.graph();
        let dataplane = &mut self.dataplane;
        let started = Instant::now();
        let resynced = blocking(|| dataplane.resync(graph.desired()));
        if let Some(metrics) = &self.metrics {
            match &resynced {
                Ok(written) => {
                    let repaired = written.is_some() && matches!(why, Why::DriftCheck);
                    metrics.full_resync(repaired);
                    if let Some(size) = written {
                        metrics.transaction(TxKind::Full, *size, started.elapsed());
                    }
                }
                Err(_) => metrics.failure(),
            }
            metrics.graph_sizes(graph.desired());
        }
        resynced.map(|written| written.is_some())
    }

    /// Lets allowed workload traffic past Docker's own FORWARD policy (a drop in any table is
    /// final); a failure is logged, as the table still polices everything.
    fn admit_policed_traffic(&mut self) {
        match blocking(|| self.dataplane.admit_policed_traffic()) {
            Ok(0) => {}
            Ok(n) => info!(
                rules = n,
                "added DOCKER-USER accept rules for cali* interfaces"
            ),
            Err(e) => warn!(error = %e, "cannot check Docker's DOCKER-USER chain"),
        }
    }
}

/// The next request of `requests`; never, when there are none to wait for.
async fn next_request(
    requests: &mut Option<mpsc::Receiver<CounterRequest>>,
) -> Option<CounterRequest> {
    match requests {
        Some(requests) => match requests.recv().await {
            Some(request) => Some(request),
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Returns when `input` changes; never, once nobody can change it any more.
async fn changed<T>(input: &mut watch::Receiver<T>) {
    if input.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The interfaces of `host_endpoints` that `addresses` (this host's interfaces) lacks.
fn absent_interfaces<V>(
    host_endpoints: &BTreeMap<String, V>,
    addresses: &HostAddresses,
) -> BTreeSet<String> {
    host_endpoints
        .keys()
        .filter(|iface| !addresses.contains_key(*iface))
        .cloned()
        .collect()
}
