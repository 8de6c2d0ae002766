//! What is read when `/metrics` is scraped rather than recorded as it happens: IPAM usage from
//! the datastore, the BGP sessions from BIRD, and the per-rule counters from the nftables table
//! (asked of the policy agent, which knows which rule each counted line is). Each part has
//! [`PART_TIMEOUT`]; a part that fails or times out is left out of that scrape (its series
//! disappear rather than go stale) and logged.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use calico_dataplane::nft::RuleCount;
use calico_ipam::Ipam;
use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;
use tracing::warn;

use super::{Metrics, PoolLabels, StateLabels};

/// How long each part of a scrape may take.
pub const PART_TIMEOUT: Duration = Duration::from_secs(3);

/// A request to the policy agent for the rule counters of its table.
pub type CounterRequest = oneshot::Sender<Vec<RuleCount>>;

/// Refreshes the scrape-time metrics and encodes them all.
pub struct Scraper {
    metrics: Metrics,
    ipam: Ipam,
    node: String,
    bird_socket: Option<PathBuf>,
    counters: mpsc::Sender<CounterRequest>,
}

impl Scraper {
    /// A scraper of `metrics` for `node`, reading IPAM through `ipam`, BIRD on `bird_socket`
    /// (none: BIRD does not run) and the rule counters through `counters`.
    pub fn new(
        metrics: Metrics,
        ipam: Ipam,
        node: String,
        bird_socket: Option<PathBuf>,
        counters: mpsc::Sender<CounterRequest>,
    ) -> Scraper {
        Scraper {
            metrics,
            ipam,
            node,
            bird_socket,
            counters,
        }
    }

    /// Refreshes every scrape-time part (at the same time) and returns the whole text.
    pub async fn scrape(&self) -> String {
        tokio::join!(self.ipam(), self.bgp(), self.rules());
        self.metrics.encode()
    }

    async fn ipam(&self) {
        let gauges = &self.metrics.ipam;
        let read = async {
            let pools = self.ipam.pools().await?;
            let blocks = self.ipam.affine_blocks(&self.node).await?;
            let allocations = self.ipam.allocations(None).await?;
            Ok::<_, calico_ipam::IpamError>((pools, blocks, allocations))
        };
        let (pools, blocks, allocations) = match bounded(read).await {
            Ok(read) => read,
            Err(why) => {
                warn!(error = %why, "metrics: cannot read IPAM; leaving it out");
                gauges.clear();
                return;
            }
        };
        let pool_of = |net: &IpNet| pools.iter().map(|(p, _)| p).find(|p| p.contains(net));
        let mut in_use: BTreeMap<IpNet, f64> = BTreeMap::new();
        for (ip, _) in &allocations {
            if let Some(pool) = pool_of(&IpNet::from(*ip)) {
                *in_use.entry(*pool).or_default() += 1.0;
            }
        }
        let mut owned: BTreeMap<IpNet, i64> = BTreeMap::new();
        for block in &blocks {
            if let Some(pool) = pool_of(&block.ip_net()) {
                *owned.entry(*pool).or_default() += 1;
            }
        }
        gauges.clear();
        for (pool, _) in &pools {
            let labels = PoolLabels {
                pool: pool.to_string(),
            };
            let size = 2f64.powi(i32::from(pool.max_prefix_len() - pool.prefix_len()));
            let used = in_use.get(pool).copied().unwrap_or_default();
            gauges.pool_size.get_or_create(&labels).set(size);
            gauges.in_use.get_or_create(&labels).set(used);
            gauges.free.get_or_create(&labels).set(size - used);
            gauges
                .blocks
                .get_or_create(&labels)
                .set(owned.get(pool).copied().unwrap_or_default());
        }
    }

    async fn bgp(&self) {
        let sessions = &self.metrics.bgp_sessions;
        let Some(socket) = &self.bird_socket else {
            return;
        };
        let peers = match bounded(calico_routing::bird::show_protocols(socket)).await {
            Ok(peers) => peers,
            Err(why) => {
                warn!(error = %why, "metrics: cannot ask BIRD for its sessions; leaving them out");
                sessions.clear();
                return;
            }
        };
        let mut by_state: BTreeMap<String, i64> = BTreeMap::new();
        for peer in peers {
            *by_state.entry(peer.state).or_default() += 1;
        }
        sessions.clear();
        for (state, count) in by_state {
            sessions.get_or_create(&StateLabels { state }).set(count);
        }
    }

    async fn rules(&self) {
        let ask = async {
            let (reply, answer) = oneshot::channel();
            let gone = "the policy agent is not running";
            self.counters.send(reply).await.map_err(|_| gone)?;
            answer.await.map_err(|_| gone)
        };
        match bounded(ask).await {
            Ok(counts) => self.metrics.set_rule_counts(counts),
            Err(why) => {
                warn!(error = %why, "metrics: no rule counters from the policy agent (it may be syncing); leaving them out");
                self.metrics.set_rule_counts(Vec::new());
            }
        }
    }
}

/// Runs one part of a scrape with [`PART_TIMEOUT`]; what went wrong as text.
async fn bounded<T, E: std::fmt::Display>(
    part: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match timeout(PART_TIMEOUT, part).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("timed out after {} s", PART_TIMEOUT.as_secs())),
    }
}
