//! The agent loop against a scripted datastore and a fake dataplane: batching, relisting,
//! starting over after an apply error, drift repair, published ports, host addresses, health.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use calico_calc::desired::{Changes, Desired, Failsafe, PublishedPort};
use calico_dataplane::nft::{CounterIndex, RuleCount, TxSize};
use calico_dataplane::DataplaneError;
use calico_model::{codec, Resource};
use calico_store::keys::key_path;
use calico_store::{KeyValue, Listing, StoreError};
use tokio::sync::watch;

use super::*;

/// What the fake dataplane was asked to do.
#[derive(Clone, Debug, PartialEq)]
enum Call {
    /// `resync`, with the interfaces of the desired state.
    Resync(BTreeSet<String>),
    /// `apply_changes`, with how many endpoints changed and the interfaces of the desired state.
    Apply {
        changed: usize,
        endpoints: BTreeSet<String>,
    },
    /// `admit_policed_traffic`.
    Admit,
    /// The interfaces with published ports, after a `resync` or an `apply_changes` whose
    /// report says they changed (only when there are some, or they changed).
    Published(BTreeSet<String>),
    /// The interfaces with host endpoints, likewise.
    HostEndpoints(BTreeSet<String>),
    /// `rule_counters`, with the rules asked for.
    Counters(CounterIndex),
}

/// Records every call; fails the first `failing_applies` applies; reports drift on every resync.
struct FakeDataplane {
    calls: watch::Sender<Vec<Call>>,
    failing_applies: usize,
}

fn interfaces(desired: &Desired) -> BTreeSet<String> {
    desired.endpoints.keys().cloned().collect()
}

fn published(desired: &Desired) -> Call {
    Call::Published(desired.published.keys().cloned().collect())
}

fn host_endpoints(desired: &Desired) -> Call {
    Call::HostEndpoints(desired.host_endpoints.keys().cloned().collect())
}

impl PolicyDataplane for FakeDataplane {
    fn apply_changes(
        &mut self,
        desired: &Desired,
        changes: &Changes,
    ) -> calico_dataplane::Result<TxSize> {
        self.calls.send_modify(|calls| {
            calls.push(Call::Apply {
                changed: changes.endpoints_changed.len(),
                endpoints: interfaces(desired),
            });
            if changes.published_changed {
                calls.push(published(desired));
            }
            if !changes.host_endpoints_changed.is_empty()
                || !changes.host_endpoints_removed.is_empty()
            {
                calls.push(host_endpoints(desired));
            }
        });
        if self.failing_applies > 0 {
            self.failing_applies -= 1;
            return Err(DataplaneError::Nft {
                op: "apply",
                message: "injected failure".into(),
                line: None,
            });
        }
        Ok(TxSize::default())
    }

    fn resync(&mut self, desired: &Desired) -> calico_dataplane::Result<Option<TxSize>> {
        self.calls.send_modify(|calls| {
            calls.push(Call::Resync(interfaces(desired)));
            if !desired.published.is_empty() {
                calls.push(published(desired));
            }
            if !desired.host_endpoints.is_empty() {
                calls.push(host_endpoints(desired));
            }
        });
        Ok(Some(TxSize::default()))
    }

    fn admit_policed_traffic(&mut self) -> calico_dataplane::Result<usize> {
        self.calls.send_modify(|calls| calls.push(Call::Admit));
        Ok(0)
    }

    fn rule_counters(&self, index: &CounterIndex) -> calico_dataplane::Result<Vec<RuleCount>> {
        self.calls
            .send_modify(|calls| calls.push(Call::Counters(index.clone())));
        Ok(Vec::new())
    }
}

/// One listing and the watch events that follow it.
struct Round {
    listing: Vec<KeyValue>,
    events: Vec<WatchEvent>,
}

/// Answers `list` and `watch` from its rounds, one round per listing; once they are used up,
/// the datastore is unavailable.
struct ScriptedStore {
    rounds: Mutex<VecDeque<Round>>,
    events: Mutex<Vec<WatchEvent>>,
}

/// What the scripted store does not do.
fn unsupported() -> StoreError {
    StoreError::InvalidArgument("not scripted".into())
}

#[async_trait]
impl Datastore for ScriptedStore {
    async fn get(&self, _: &str) -> calico_store::Result<Option<KeyValue>> {
        Err(unsupported())
    }

    async fn list(&self, _: &str) -> calico_store::Result<Listing> {
        let round = self.rounds.lock().unwrap().pop_front();
        let round = round.ok_or_else(|| StoreError::Unavailable("script ended".into()))?;
        *self.events.lock().unwrap() = round.events;
        Ok(Listing {
            items: round.listing,
            revision: 1,
        })
    }

    async fn create(&self, _: &str, _: &[u8]) -> calico_store::Result<i64> {
        Err(unsupported())
    }

    async fn update(&self, _: &str, _: &[u8], _: i64) -> calico_store::Result<i64> {
        Err(unsupported())
    }

    async fn delete(&self, _: &str, _: Option<i64>) -> calico_store::Result<i64> {
        Err(unsupported())
    }

    /// Buffers every scripted event before returning (the first 256 synchronously, so the
    /// agent finds them all waiting), then keeps the watch open.
    async fn watch(&self, _: &str, _: i64) -> calico_store::Result<Watch> {
        let events = std::mem::take(&mut *self.events.lock().unwrap());
        Ok(Watch::spawn(move |tx| {
            let mut events = events.into_iter();
            for event in events.by_ref().take(BATCH) {
                tx.try_send(event).expect("the watch buffers a whole batch");
            }
            async move {
                for event in events {
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
                tx.closed().await;
            }
        }))
    }
}

const PROFILE: &str = "\
apiVersion: v1
kind: profile
metadata:
  name: net1
spec:
  ingress:
  - action: allow
";

/// A workload endpoint of this host on net1, with interface `cali<n as 11 hex digits>`.
fn endpoint(n: u32) -> Resource {
    let yaml = format!(
        "apiVersion: v1
kind: workloadEndpoint
metadata:
  name: ep-{n}
  workload: workload-{n}
  orchestrator: libnetwork
  node: calico-01
spec:
  ipNetworks: [10.65.{}.{}/32]
  profiles: [net1]
  interfaceName: {}
",
        n / 256,
        n % 256,
        interface(n)
    );
    codec::decode(&yaml).unwrap().remove(0)
}

fn interface(n: u32) -> String {
    format!("cali{n:011x}")
}

fn stored(resource: &Resource) -> KeyValue {
    KeyValue {
        key: key_path(&resource.key().unwrap()),
        value: serde_json::to_vec(resource).unwrap(),
        create_revision: 1,
        mod_revision: 1,
    }
}

fn profile() -> KeyValue {
    stored(&codec::decode(PROFILE).unwrap().remove(0))
}

fn put(resource: &Resource) -> WatchEvent {
    WatchEvent::Put(stored(resource))
}

fn names(ns: impl IntoIterator<Item = u32>) -> BTreeSet<String> {
    ns.into_iter().map(interface).collect()
}

/// A host endpoint of this host named `name` that names no interface: it covers those that
/// have one of `expected_ips`.
fn host_endpoint(name: &str, expected_ips: &[&str]) -> Resource {
    let yaml = format!(
        "{{apiVersion: v1, kind: hostEndpoint, metadata: {{name: {name}, node: calico-01}}, \
         spec: {{expectedIPs: [{}]}}}}",
        expected_ips.join(", ")
    );
    codec::decode(&yaml).unwrap().remove(0)
}

/// Host addresses of `(interface, addresses)`.
fn addresses(interfaces: &[(&str, &[&str])]) -> HostAddresses {
    interfaces
        .iter()
        .map(|(name, ips)| {
            let ips = ips.iter().map(|ip| ip.parse().unwrap()).collect();
            (name.to_string(), ips)
        })
        .collect()
}

/// Runs an agent over `rounds` until the fake dataplane's calls satisfy `done`; returns them.
/// Nobody publishes ports, and the host has no interfaces.
async fn run_until(
    rounds: Vec<Round>,
    failing_applies: usize,
    resync_interval: Duration,
    done: impl Fn(&[Call]) -> bool,
) -> Vec<Call> {
    let (_, no_ports) = watch::channel(Published::new());
    let (_, no_interfaces) = watch::channel(HostAddresses::new());
    let inputs = (no_ports, no_interfaces);
    run_with(rounds, failing_applies, resync_interval, inputs, done).await
}

/// [`run_until`] with the published ports and host addresses of `(ports, addresses)`.
async fn run_with(
    rounds: Vec<Round>,
    failing_applies: usize,
    resync_interval: Duration,
    inputs: (watch::Receiver<Published>, watch::Receiver<HostAddresses>),
    done: impl Fn(&[Call]) -> bool,
) -> Vec<Call> {
    let configure = |agent| agent;
    run_configured(
        rounds,
        failing_applies,
        resync_interval,
        inputs,
        configure,
        done,
    )
    .await
}

/// [`run_with`], the agent configured by `configure` before it runs.
async fn run_configured(
    rounds: Vec<Round>,
    failing_applies: usize,
    resync_interval: Duration,
    (ports, addresses): (watch::Receiver<Published>, watch::Receiver<HostAddresses>),
    configure: impl FnOnce(Agent<FakeDataplane>) -> Agent<FakeDataplane>,
    done: impl Fn(&[Call]) -> bool,
) -> Vec<Call> {
    let (calls, mut seen) = watch::channel(Vec::new());
    let store = ScriptedStore {
        rounds: Mutex::new(rounds.into()),
        events: Mutex::new(Vec::new()),
    };
    let dataplane = FakeDataplane {
        calls,
        failing_applies,
    };
    let mut agent = Agent::new(
        "calico-01",
        Arc::new(store),
        ports,
        addresses,
        Failsafe::default(),
        dataplane,
        resync_interval,
    );
    agent.restart_delay = Duration::from_millis(10);
    let running = tokio::spawn(configure(agent).run());
    let waited = tokio::time::timeout(Duration::from_secs(10), seen.wait_for(|c| done(c)))
        .await
        .is_ok();
    running.abort();
    let calls = seen.borrow().clone();
    assert!(waited, "timed out; calls so far: {calls:?}");
    calls
}

/// The calls other than `Admit`.
fn programming(calls: &[Call]) -> Vec<Call> {
    calls
        .iter()
        .filter(|c| **c != Call::Admit)
        .cloned()
        .collect()
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_changes_is_applied_in_batches() {
    let burst: Vec<_> = (1..=300).map(|n| put(&endpoint(n))).collect();
    let rounds = vec![Round {
        listing: vec![profile(), stored(&endpoint(0))],
        events: burst,
    }];
    let calls = run_until(rounds, 0, HOUR, |calls| {
        calls
            .iter()
            .any(|c| matches!(c, Call::Apply { endpoints, .. } if endpoints.len() == 301))
    })
    .await;
    let calls = programming(&calls);
    assert_eq!(calls[0], Call::Resync(names([0])));
    assert_eq!(
        calls[1],
        Call::Apply {
            changed: BATCH,
            endpoints: names(0..=BATCH as u32)
        }
    );
    let applies = calls.len() - 1;
    assert!(
        (2..=1 + 300 - BATCH).contains(&applies),
        "{applies} applies"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_record_the_work_and_counter_requests_are_answered_from_the_loop() {
    let rounds = vec![Round {
        listing: vec![profile(), stored(&endpoint(1))],
        events: vec![put(&endpoint(2))],
    }];
    let metrics = crate::metrics::Metrics::new();
    let (requests, received) = mpsc::channel(1);
    let (reply, answer) = tokio::sync::oneshot::channel();
    requests.send(reply).await.unwrap();
    let (_, no_ports) = watch::channel(Published::new());
    let (_, no_interfaces) = watch::channel(HostAddresses::new());
    let agent_metrics = metrics.agent();
    let calls = run_configured(
        rounds,
        0,
        HOUR,
        (no_ports, no_interfaces),
        |agent| agent.with_metrics(agent_metrics, received),
        |calls| {
            calls.iter().any(|c| matches!(c, Call::Counters(_)))
                && calls.iter().any(|c| matches!(c, Call::Apply { .. }))
        },
    )
    .await;
    assert_eq!(answer.await.unwrap(), Vec::new());
    assert!(calls.iter().any(|c| matches!(c, Call::Counters(_))));
    let text = metrics.encode();
    for line in [
        "calico_dataplane_transactions_total{kind=\"full\"} 1",
        "calico_dataplane_transactions_total{kind=\"incremental\"} 1",
        "calico_dataplane_full_resyncs_total 1",
        "calico_dataplane_drift_repairs_total 0",
        "calico_datastore_watch_events_total 1",
        "calico_local_endpoints 2",
        "calico_active_profiles 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relist_starts_from_a_new_listing_and_resyncs() {
    let rounds = vec![
        Round {
            listing: vec![profile(), stored(&endpoint(1))],
            events: vec![put(&endpoint(2)), WatchEvent::Relist],
        },
        Round {
            listing: vec![profile(), stored(&endpoint(3))],
            events: vec![],
        },
    ];
    let calls = run_until(rounds, 0, HOUR, |calls| programming(calls).len() >= 2).await;
    assert_eq!(
        programming(&calls),
        [Call::Resync(names([1])), Call::Resync(names([3]))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_apply_starts_over_with_a_full_resync() {
    let rounds = vec![
        Round {
            listing: vec![profile(), stored(&endpoint(1))],
            events: vec![put(&endpoint(2))],
        },
        Round {
            listing: vec![profile(), stored(&endpoint(1)), stored(&endpoint(2))],
            events: vec![put(&endpoint(3))],
        },
    ];
    let calls = run_until(rounds, 1, HOUR, |calls| programming(calls).len() >= 4).await;
    assert_eq!(
        programming(&calls),
        [
            Call::Resync(names([1])),
            Call::Apply {
                changed: 1,
                endpoints: names([1, 2])
            },
            Call::Resync(names([1, 2])),
            Call::Apply {
                changed: 1,
                endpoints: names([1, 2, 3])
            },
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_checked_and_docker_user_kept_on_every_resync_tick() {
    let rounds = vec![Round {
        listing: vec![profile(), stored(&endpoint(1))],
        events: vec![],
    }];
    let calls = run_until(rounds, 0, Duration::from_millis(5), |calls| {
        calls.len() >= 6
    })
    .await;
    let expected = [Call::Admit, Call::Resync(names([1]))];
    for pair in calls.chunks_exact(2) {
        assert_eq!(pair, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_ports_are_applied_and_survive_a_relist() {
    let port = PublishedPort {
        protocol: 6,
        host_ip: None,
        host_port: 8080,
        endpoint_ip: "10.65.0.1".parse().unwrap(),
        endpoint_port: 80,
    };
    let (ports, receiver) = watch::channel(Published::from([(interface(1), vec![port])]));
    let rounds = vec![
        Round {
            listing: vec![profile(), stored(&endpoint(1))],
            events: vec![WatchEvent::Relist],
        },
        Round {
            listing: vec![profile(), stored(&endpoint(1))],
            events: vec![],
        },
    ];
    let sender = ports.clone();
    let (_, no_interfaces) = watch::channel(HostAddresses::new());
    let calls = run_with(rounds, 0, HOUR, (receiver, no_interfaces), move |calls| {
        let programmed = programming(calls);
        if programmed.len() == 4 {
            // after both listings: the driver takes the ports away
            sender.send_replace(Published::new());
        }
        programmed.len() >= 6
    })
    .await;
    assert_eq!(
        programming(&calls),
        [
            Call::Resync(names([1])),
            Call::Published(names([1])),
            Call::Resync(names([1])),
            Call::Published(names([1])),
            Call::Apply {
                changed: 0,
                endpoints: names([1])
            },
            Call::Published(BTreeSet::new()),
        ]
    );
    drop(ports);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_addresses_place_host_endpoints_and_survive_a_relist() {
    let by_ip = host_endpoint("by-ip", &["10.0.0.1"]);
    let (host, receiver) = watch::channel(addresses(&[("eth0", &["10.0.0.1"]), ("lo", &[])]));
    let rounds = vec![
        Round {
            listing: vec![profile(), stored(&by_ip)],
            events: vec![WatchEvent::Relist],
        },
        Round {
            listing: vec![profile(), stored(&by_ip)],
            events: vec![],
        },
    ];
    let sender = host.clone();
    let (_, no_ports) = watch::channel(Published::new());
    let calls = run_with(rounds, 0, HOUR, (no_ports, receiver), move |calls| {
        let programmed = programming(calls);
        if programmed.len() == 4 {
            // after both listings: the address moves to another interface
            sender.send_replace(addresses(&[("eth1", &["10.0.0.1"]), ("eth0", &[])]));
        }
        programmed.len() >= 6
    })
    .await;
    let eth = |name: &str| Call::HostEndpoints(BTreeSet::from([name.to_string()]));
    assert_eq!(
        programming(&calls),
        [
            Call::Resync(BTreeSet::new()),
            eth("eth0"),
            Call::Resync(BTreeSet::new()),
            eth("eth0"),
            Call::Apply {
                changed: 0,
                endpoints: BTreeSet::new()
            },
            eth("eth1"),
        ]
    );
    drop(host);
}

#[test]
fn absent_interfaces_are_the_host_endpoints_this_host_lacks() {
    let hosts = BTreeMap::from([("eth0".to_string(), ()), ("eth9".to_string(), ())]);
    let addresses = HostAddresses::from([("eth0".to_string(), BTreeSet::new())]);
    assert_eq!(
        super::absent_interfaces(&hosts, &addresses),
        BTreeSet::from(["eth9".to_string()])
    );
}

/// An agent over `rounds` that reports to a new [`Health`](crate::health::Health), its syncs
/// failing without a grace period; returns the health and the agent, not yet running.
fn reporting_agent(rounds: Vec<Round>) -> (crate::health::Health, Agent<FakeDataplane>) {
    let health = crate::health::Health::default();
    let reporter = health.register(
        HEALTH_NAME,
        true,
        Some(LIVENESS_TIMEOUT),
        Err("no full sync yet".into()),
    );
    let (calls, _) = watch::channel(Vec::new());
    let (_, no_ports) = watch::channel(Published::new());
    let (_, no_interfaces) = watch::channel(HostAddresses::new());
    let store = ScriptedStore {
        rounds: Mutex::new(rounds.into()),
        events: Mutex::new(Vec::new()),
    };
    let dataplane = FakeDataplane {
        calls,
        failing_applies: 0,
    };
    let mut agent = Agent::new(
        "calico-01",
        Arc::new(store),
        no_ports,
        no_interfaces,
        Failsafe::default(),
        dataplane,
        HOUR,
    )
    .with_health(reporter);
    agent.restart_delay = Duration::from_millis(10);
    if let Some(health) = &mut agent.health {
        health.outage = Outage::new(Duration::ZERO);
    }
    (health, agent)
}

/// Waits up to 10 s for the verdict of `health` to satisfy `done`; returns it.
async fn verdict_when(
    health: &crate::health::Health,
    done: impl Fn(&crate::health::Verdict) -> bool,
) -> crate::health::Verdict {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let verdict = health.verdict();
        if done(&verdict) {
            return verdict;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out; verdict so far: {verdict:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_is_ready_once_its_first_listing_is_programmed() {
    let rounds = vec![Round {
        listing: vec![profile(), stored(&endpoint(1))],
        events: vec![],
    }];
    let (health, agent) = reporting_agent(rounds);
    assert_eq!(
        health.verdict().not_ready,
        vec!["policy agent: no full sync yet"]
    );
    let running = tokio::spawn(agent.run());
    let verdict = verdict_when(&health, |v| v.ready()).await;
    assert!(verdict.live(), "{verdict:?}");
    running.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_is_not_ready_while_its_syncs_fail_past_the_grace_period() {
    let (health, agent) = reporting_agent(Vec::new());
    let running = tokio::spawn(agent.run());
    let verdict = verdict_when(&health, |v| {
        v.not_ready
            .iter()
            .any(|why| why.starts_with("policy agent: failing for 0 s: listing resources: "))
    })
    .await;
    assert_eq!(verdict.not_ready.len(), 1, "{verdict:?}");
    assert!(verdict.live(), "{verdict:?}");
    running.abort();
}
