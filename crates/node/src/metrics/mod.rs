//! Prometheus metrics of calico-node, served on `/metrics` when
//! `FELIX_PROMETHEUSMETRICSENABLED` is true (as Felix; off by default), in the OpenMetrics text
//! format that Prometheus scrapes. Names follow Prometheus conventions: a `calico_` prefix,
//! units in the name, `_total` on counters.
//!
//! Most metrics are recorded as things happen (plugin requests, dataplane transactions,
//! datastore events, DNS queries); the rest are read when scraped ([`scrape`]): IPAM from the
//! datastore, BGP sessions from BIRD, and the per-rule counters from the nftables table (through
//! the policy agent, which holds the state the table was rendered from). The list with what
//! each means is in `docs/operations.md`.

mod http;
mod scrape;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use calico_calc::desired::Desired;
use calico_dataplane::nft::{RuleCount, TxSize};
use calico_dns::{QueryObserver, QueryResult};
use calico_libnetwork::CallObserver;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tracing::info;

pub use scrape::{CounterRequest, Scraper};

/// A counter of events of one kind, by label set.
type Counters<L> = Family<L, Counter>;
/// A gauge that may exceed `i64` (an IPv6 pool's size), by label set.
type FloatGauges<L> = Family<L, Gauge<f64, std::sync::atomic::AtomicU64>>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    kind: String,
    name: String,
    direction: String,
    rule: String,
    action: String,
}

/// A latency histogram, by label set.
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// A latency histogram with buckets from 0.5 ms to about 16 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// An empty family of latency histograms.
fn histograms<L: Clone + std::hash::Hash + Eq>() -> Histograms<L> {
    Family::new_with_constructor(latency_histogram as fn() -> Histogram)
}

/// Every metric of calico-node; cheap to clone (each metric is shared).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    plugin_requests: Counters<CallLabels>,
    plugin_seconds: Histograms<MethodLabels>,
    agent: AgentMetrics,
    dns_queries: Counters<ResultLabels>,
    ipam: IpamGauges,
    bgp_sessions: Family<StateLabels, Gauge>,
    rules: Arc<RuleCounters>,
}

/// What the policy agent records: its transactions, its calculation graph's sizes and its
/// datastore events.
#[derive(Clone, Debug)]
pub struct AgentMetrics {
    transactions: Counters<KindLabels>,
    transaction_bytes: Counter,
    transaction_seconds: Histograms<KindLabels>,
    failures: Counter,
    full_resyncs: Counter,
    drift_repairs: Counter,
    local_endpoints: Gauge,
    host_endpoints: Gauge,
    policies: Gauge,
    profiles: Gauge,
    ip_sets: Gauge,
    ip_set_members: Gauge,
    watch_events: Counter,
    relists: Counter,
    datastore_errors: Counter,
}

/// The IPAM gauges, set at each scrape.
#[derive(Clone, Debug, Default)]
struct IpamGauges {
    pool_size: FloatGauges<PoolLabels>,
    in_use: FloatGauges<PoolLabels>,
    free: FloatGauges<PoolLabels>,
    blocks: Family<PoolLabels, Gauge>,
}

impl IpamGauges {
    /// Removes every series.
    fn clear(&self) {
        for family in [&self.pool_size, &self.in_use, &self.free] {
            family.clear();
        }
        self.blocks.clear();
    }
}

/// The per-rule counters as last read from the table, encoded as constant counters.
#[derive(Debug, Default)]
struct RuleCounters {
    last: Mutex<Vec<RuleCount>>,
}

impl Collector for RuleCounters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        for (name, help, value) in [
            (
                "rule_packets",
                "Packets matched by a policy or profile rule, or dropped by an endpoint because no policy or profile allowed them",
                (|c: &RuleCount| c.packets) as fn(&RuleCount) -> u64,
            ),
            (
                "rule_bytes",
                "Bytes matched by a policy or profile rule, or dropped by an endpoint because no policy or profile allowed them",
                |c: &RuleCount| c.bytes,
            ),
        ] {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                None,
                MetricType::Counter,
            )?;
            for count in last.iter() {
                let labels = RuleLabels {
                    kind: count.rule.kind.as_str().into(),
                    name: count.rule.name.clone(),
                    direction: count.rule.direction.as_str().into(),
                    rule: count.rule.rule.clone(),
                    action: count.rule.action.into(),
                };
                ConstCounter::new(value(count)).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered.
    pub fn new() -> Metrics {
        let agent = AgentMetrics {
            transactions: Counters::default(),
            transaction_bytes: Counter::default(),
            transaction_seconds: histograms(),
            failures: Counter::default(),
            full_resyncs: Counter::default(),
            drift_repairs: Counter::default(),
            local_endpoints: Gauge::default(),
            host_endpoints: Gauge::default(),
            policies: Gauge::default(),
            profiles: Gauge::default(),
            ip_sets: Gauge::default(),
            ip_set_members: Gauge::default(),
            watch_events: Counter::default(),
            relists: Counter::default(),
            datastore_errors: Counter::default(),
        };
        let (plugin_requests, plugin_seconds) = (Counters::default(), histograms());
        let (dns_queries, ipam, bgp_sessions) = (
            Counters::default(),
            IpamGauges::default(),
            Family::default(),
        );
        let rules = Arc::new(RuleCounters::default());
        let mut r = Registry::with_prefix("calico");
        let a = &agent;
        r.register(
            "plugin_requests",
            "Docker plugin requests answered, by method and result (ok or error)",
            plugin_requests.clone(),
        );
        r.register(
            "plugin_request_duration_seconds",
            "How long Docker plugin requests took, by method",
            plugin_seconds.clone(),
        );
        r.register(
            "dataplane_transactions",
            "nftables transactions applied, by kind (full or incremental)",
            a.transactions.clone(),
        );
        r.register(
            "dataplane_transaction_bytes",
            "Bytes of nftables transactions applied",
            a.transaction_bytes.clone(),
        );
        r.register(
            "dataplane_transaction_duration_seconds",
            "How long applying an nftables transaction took, by kind",
            a.transaction_seconds.clone(),
        );
        r.register(
            "dataplane_failures",
            "nftables transactions or read-backs that failed",
            a.failures.clone(),
        );
        r.register(
            "dataplane_full_resyncs",
            "Times the whole table was read back and compared with the desired state",
            a.full_resyncs.clone(),
        );
        r.register("dataplane_drift_repairs", "Periodic read-backs that found the table changed behind calico-node's back and rewrote it", a.drift_repairs.clone());
        r.register(
            "local_endpoints",
            "Workload endpoints of this host being policed",
            a.local_endpoints.clone(),
        );
        r.register(
            "host_endpoints",
            "Host endpoints of this host being policed",
            a.host_endpoints.clone(),
        );
        r.register(
            "active_policies",
            "Policies that apply to an endpoint of this host",
            a.policies.clone(),
        );
        r.register(
            "active_profiles",
            "Profiles that apply to an endpoint of this host",
            a.profiles.clone(),
        );
        r.register(
            "ipsets",
            "IP sets the active rules refer to",
            a.ip_sets.clone(),
        );
        r.register(
            "ipset_members",
            "Members of those IP sets, summed",
            a.ip_set_members.clone(),
        );
        r.register(
            "datastore_watch_events",
            "Datastore watch events received by the policy agent",
            a.watch_events.clone(),
        );
        r.register("datastore_relists", "Complete listings of the datastore by the policy agent after the first, because the datastore asked", a.relists.clone());
        r.register("datastore_errors", "Policy agent syncs that failed (listing, watching or programming) and were started over", a.datastore_errors.clone());
        r.register(
            "dns_queries",
            "DNS queries for workload names, by result",
            dns_queries.clone(),
        );
        r.register(
            "ipam_pool_size",
            "Addresses in an IP pool",
            ipam.pool_size.clone(),
        );
        r.register(
            "ipam_allocations_in_use",
            "Addresses of an IP pool allocated, by any host",
            ipam.in_use.clone(),
        );
        r.register(
            "ipam_addresses_free",
            "Addresses of an IP pool not allocated",
            ipam.free.clone(),
        );
        r.register(
            "ipam_blocks",
            "Blocks of an IP pool this host owns",
            ipam.blocks.clone(),
        );
        r.register(
            "bgp_sessions",
            "BGP sessions of this host's BIRD, by BIRD protocol state (up, start, down, ...)",
            bgp_sessions.clone(),
        );
        r.register_collector(Box::new(rules.clone()));
        Metrics {
            registry: Arc::new(r),
            plugin_requests,
            plugin_seconds,
            agent,
            dns_queries,
            ipam,
            bgp_sessions,
            rules,
        }
    }

    /// What the plugin server tells of each request.
    pub fn plugin_observer(&self) -> CallObserver {
        let (requests, seconds) = (self.plugin_requests.clone(), self.plugin_seconds.clone());
        Arc::new(move |method, ok, elapsed: Duration| {
            let result = if ok { "ok" } else { "error" };
            requests
                .get_or_create(&CallLabels {
                    method: method.into(),
                    result: result.into(),
                })
                .inc();
            seconds
                .get_or_create(&MethodLabels {
                    method: method.into(),
                })
                .observe(elapsed.as_secs_f64());
        })
    }

    /// What the DNS server tells of each query.
    pub fn dns_observer(&self) -> QueryObserver {
        let queries = self.dns_queries.clone();
        Arc::new(move |result: QueryResult| {
            queries
                .get_or_create(&ResultLabels {
                    result: result.as_str().into(),
                })
                .inc();
        })
    }

    /// The policy agent's metrics.
    pub fn agent(&self) -> AgentMetrics {
        self.agent.clone()
    }

    /// The metrics as OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// Replaces the per-rule counters.
    fn set_rule_counts(&self, counts: Vec<RuleCount>) {
        *self
            .rules
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = counts;
    }
}

/// Whether a transaction wrote the whole table or only changes.
#[derive(Clone, Copy, Debug)]
pub enum TxKind {
    /// The whole table (after a listing, or repairing drift).
    Full,
    /// Only what a change report names.
    Incremental,
}

impl AgentMetrics {
    /// Records a transaction of `size` applied in `elapsed`.
    pub fn transaction(&self, kind: TxKind, size: TxSize, elapsed: Duration) {
        let kind = KindLabels {
            kind: match kind {
                TxKind::Full => "full",
                TxKind::Incremental => "incremental",
            }
            .into(),
        };
        self.transactions.get_or_create(&kind).inc();
        self.transaction_bytes.inc_by(size.bytes as u64);
        self.transaction_seconds
            .get_or_create(&kind)
            .observe(elapsed.as_secs_f64());
    }

    /// Records a failed transaction or read-back.
    pub fn failure(&self) {
        self.failures.inc();
    }

    /// Records a full read-back; `repaired` when it was a periodic check that rewrote the table.
    pub fn full_resync(&self, repaired: bool) {
        self.full_resyncs.inc();
        if repaired {
            self.drift_repairs.inc();
        }
    }

    /// Records the sizes of the desired state.
    pub fn graph_sizes(&self, desired: &Desired) {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.local_endpoints.set(count(desired.endpoints.len()));
        self.host_endpoints.set(count(desired.host_endpoints.len()));
        self.policies.set(count(desired.policies.len()));
        self.profiles.set(count(desired.profiles.len()));
        self.ip_sets.set(count(desired.ip_sets.len()));
        self.ip_set_members
            .set(count(desired.ip_sets.values().map(|s| s.len()).sum()));
    }

    /// Records `n` watch events.
    pub fn watch_events(&self, n: usize) {
        self.watch_events.inc_by(n as u64);
    }

    /// Records a relist the datastore asked for.
    pub fn relist(&self) {
        self.relists.inc();
    }

    /// Records a sync that failed and starts over.
    pub fn datastore_error(&self) {
        self.datastore_errors.inc();
    }
}

/// Serves `/metrics` on `host:port` (`host` defaults to `node_address`), with `scraper`
/// refreshing what is read at scrape time; writes the address it listens on to
/// `<run_dir>/metrics-address`. Binds before it returns, so a taken port stops the start.
pub async fn start(
    host: Option<&str>,
    port: u16,
    node_address: std::net::IpAddr,
    run_dir: &Path,
    scraper: Scraper,
) -> Result<MetricsServer> {
    let host = host.map_or_else(|| node_address.to_string(), str::to_string);
    let cannot = || format!("cannot serve the Prometheus metrics on {host}:{port}");
    let address: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .with_context(cannot)?
        .find(SocketAddr::is_ipv4)
        .with_context(|| format!("{host} has no IPv4 address"))
        .with_context(cannot)?;
    let listener = TcpListener::bind(address).await.with_context(cannot)?;
    let address = listener
        .local_addr()
        .context("the metrics listener's address")?;
    let file = run_dir.join(calico_routing::status::METRICS_ADDRESS_FILE);
    crate::status_file::write_atomic(&file, &format!("{address}\n"))
        .with_context(|| format!("cannot write {}", file.display()))?;
    info!(%address, "serving Prometheus metrics on /metrics");
    let task = tokio::spawn(http::serve(listener, scraper));
    Ok(MetricsServer { task, file })
}

/// The running metrics server; [`MetricsServer::stop`] stops it and removes the address file.
pub struct MetricsServer {
    task: tokio::task::JoinHandle<()>,
    file: PathBuf,
}

impl MetricsServer {
    /// Stops serving and removes the address file.
    pub fn stop(self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calico_dataplane::nft::{CountedKind, CountedRule, Direction};
    use calico_store::resources::ResourceStore;
    use calico_store::SqliteStore;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Starts the server on `host` (none: the node address 127.0.0.2), any port, and returns
    /// the address it wrote, the answer to `GET /metrics` there, and the run directory.
    async fn serve_on(host: Option<&str>) -> (String, String, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteStore::open(dir.path().join("calico.db")).unwrap();
        let ipam = calico_ipam::Ipam::new(ResourceStore::new(Arc::new(db)));
        let (requests, mut received) = tokio::sync::mpsc::channel::<CounterRequest>(1);
        tokio::spawn(async move {
            while let Some(reply) = received.recv().await {
                let _ = reply.send(Vec::new());
            }
        });
        let scraper = Scraper::new(Metrics::new(), ipam, "n".into(), None, requests);
        let node: std::net::IpAddr = "127.0.0.2".parse().unwrap();
        let server = start(host, 0, node, dir.path(), scraper).await.unwrap();
        let file = dir
            .path()
            .join(calico_routing::status::METRICS_ADDRESS_FILE);
        let address = std::fs::read_to_string(&file).unwrap().trim().to_string();
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        server.stop();
        assert!(!file.exists(), "stop removes the address file");
        (address, answer, dir)
    }

    #[tokio::test]
    async fn serves_on_the_node_address_unless_a_host_is_given() {
        let (address, answer, _dir) = serve_on(None).await;
        assert!(address.starts_with("127.0.0.2:"), "{address}");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("# EOF\n"), "{answer}");
        let (address, answer, _dir) = serve_on(Some("127.0.0.3")).await;
        assert!(address.starts_with("127.0.0.3:"), "{address}");
        assert!(
            answer.contains("calico_dataplane_full_resyncs_total 0"),
            "{answer}"
        );
    }

    #[test]
    fn recorded_events_show_in_the_text() {
        let metrics = Metrics::new();
        let observe = metrics.plugin_observer();
        observe(
            "NetworkDriver.CreateEndpoint",
            true,
            Duration::from_millis(3),
        );
        observe(
            "NetworkDriver.CreateEndpoint",
            false,
            Duration::from_millis(3),
        );
        metrics.dns_observer()(QueryResult::NxDomain);
        let agent = metrics.agent();
        agent.transaction(
            TxKind::Incremental,
            TxSize {
                bytes: 120,
                lines: 3,
            },
            Duration::from_millis(7),
        );
        agent.full_resync(true);
        metrics.set_rule_counts(vec![RuleCount {
            rule: CountedRule {
                kind: CountedKind::Policy,
                name: "db".into(),
                direction: Direction::Ingress,
                rule: "0".into(),
                action: "allow",
            },
            packets: 4,
            bytes: 240,
        }]);
        let text = metrics.encode();
        for line in [
            "calico_plugin_requests_total{method=\"NetworkDriver.CreateEndpoint\",result=\"ok\"} 1",
            "calico_plugin_requests_total{method=\"NetworkDriver.CreateEndpoint\",result=\"error\"} 1",
            "calico_plugin_request_duration_seconds_count{method=\"NetworkDriver.CreateEndpoint\"} 2",
            "calico_dns_queries_total{result=\"nxdomain\"} 1",
            "calico_dataplane_transactions_total{kind=\"incremental\"} 1",
            "calico_dataplane_transaction_bytes_total 120",
            "calico_dataplane_drift_repairs_total 1",
            "calico_dataplane_full_resyncs_total 1",
            "calico_rule_packets_total{kind=\"policy\",name=\"db\",direction=\"ingress\",rule=\"0\",action=\"allow\"} 4",
            "calico_rule_bytes_total{kind=\"policy\",name=\"db\",direction=\"ingress\",rule=\"0\",action=\"allow\"} 240",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
