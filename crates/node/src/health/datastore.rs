//! Whether the datastore answers. The policy agent's etcd watch re-establishes itself quietly
//! while etcd is away, so the agent alone would never notice an outage: this task reads one
//! small key every [`PROBE_INTERVAL`] and reports not ready once the reads have failed for
//! longer than [`GRACE`], and ready again at the first read that works.

use std::sync::Arc;
use std::time::{Duration, Instant};

use calico_store::keys::CLUSTER_VERSION;
use calico_store::Datastore;

use super::{Outage, Reporter};

/// The reporter's name.
pub const NAME: &str = "datastore";
/// How often the datastore is read.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// How long one read may take before it counts as a failure.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the reads may fail before calico-node is not ready: a brief etcd leader election
/// or restart is no reason to fail readiness.
pub const GRACE: Duration = Duration::from_secs(10);
/// The reporter's liveness timeout: several probe rounds, each at most a probe timeout long.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Probes `ds` forever, reporting through `reporter` (registered with [`TIMEOUT`]).
pub async fn probe(ds: Arc<dyn Datastore>, reporter: Reporter) {
    let mut outage = Outage::new(GRACE);
    let mut tick = tokio::time::interval(PROBE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let failure = match tokio::time::timeout(PROBE_TIMEOUT, ds.get(CLUSTER_VERSION)).await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(format!("unreachable: {e}")),
            Err(_) => Some(format!(
                "unreachable: no answer within {} s",
                PROBE_TIMEOUT.as_secs()
            )),
        };
        match failure {
            None => {
                outage.ended();
                reporter.ready();
            }
            Some(why) => match outage.failed(&why, Instant::now()) {
                Some(reason) => reporter.not_ready(reason),
                None => reporter.beat(),
            },
        }
    }
}
