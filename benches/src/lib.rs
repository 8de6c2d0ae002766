//! Shared pieces of the benchmark binaries: a deterministic synthetic cluster (profiles,
//! policies, workload endpoints), timing statistics, `/proc/self/status` memory figures and
//! network namespace helpers.
//!
//! The binaries (see `BENCHMARKS.md` for the commands and the figures):
//! - `calc-nft-scale`: calculation graph + nftables rendering and `nft` apply at scale;
//! - `policy-convergence`: time from `calicoctl apply` returning to the new verdict on the wire,
//!   on one host or on several;
//! - `run-to-reachable`: time from `docker run` returning to the new container answering from
//!   another host.

pub mod tcp_probe;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::Duration;

use calico_model::codec;
use calico_model::Resource;
use serde_json::{json, Value};

/// The label values the synthetic cluster uses.
pub const APPS: usize = 20;
/// `tier` values.
pub const TIERS: [&str; 3] = ["frontend", "backend", "db"];
/// `env` values.
pub const ENVS: [&str; 3] = ["prod", "staging", "dev"];
/// `team` values.
pub const TEAMS: usize = 10;
/// Network profiles; every endpoint has exactly one.
pub const PROFILES: usize = 20;

/// splitmix64: a fixed, seedable mix so every run builds the same cluster.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The synthetic cluster's shape.
#[derive(Clone, Debug)]
pub struct Shape {
    /// Workload endpoints in the whole cluster.
    pub endpoints: usize,
    /// Of which on this host.
    pub local: usize,
    /// Other hosts the remaining endpoints are spread over.
    pub nodes: usize,
    /// Policies.
    pub policies: usize,
    /// This host's name.
    pub node: String,
}

/// The labels of endpoint `i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpLabels {
    /// `app-N`.
    pub app: usize,
    /// Index into [`TIERS`].
    pub tier: usize,
    /// Index into [`ENVS`].
    pub env: usize,
    /// `team-N`.
    pub team: usize,
}

impl Shape {
    /// Whether endpoint `i` is on this host (spread evenly over the index range).
    pub fn is_local(&self, i: usize) -> bool {
        let stride = (self.endpoints / self.local.max(1)).max(1);
        i.is_multiple_of(stride) && i / stride < self.local
    }

    /// Endpoint `i`'s labels as generated.
    pub fn labels(&self, i: usize) -> EpLabels {
        let h = mix(i as u64);
        EpLabels {
            app: (h % APPS as u64) as usize,
            tier: ((h >> 16) % 3) as usize,
            env: ((h >> 24) % 3) as usize,
            team: ((h >> 32) % TEAMS as u64) as usize,
        }
    }

    /// Endpoint `i` (with `labels`) as a v1 resource in JSON form.
    pub fn endpoint_json(&self, i: usize, labels: EpLabels) -> Value {
        let node = if self.is_local(i) {
            self.node.clone()
        } else {
            format!("node-{:02}", i % self.nodes)
        };
        let n = i + 256;
        json!({
            "apiVersion": "v1",
            "kind": "workloadEndpoint",
            "metadata": {
                "node": node,
                "orchestrator": "libnetwork",
                "workload": "libnetwork",
                "name": format!("ep{i:06}"),
                "labels": {
                    "app": format!("app-{}", labels.app),
                    "tier": TIERS[labels.tier],
                    "env": ENVS[labels.env],
                    "team": format!("team-{}", labels.team),
                },
            },
            "spec": {
                "interfaceName": format!("cali{i:011x}"),
                "ipNetworks": [format!("10.{}.{}.{}/32", 1 + n / 65536, (n / 256) % 256, n % 256)],
                "profiles": [format!("net-{:02}", (mix(i as u64) >> 40) % PROFILES as u64)],
            },
        })
    }

    /// Policy `i` with its first ingress rule allowing destination port `port`.
    pub fn policy_json(&self, i: usize, port: u16) -> Value {
        let h = mix(1_000_000 + i as u64);
        let app = (h % APPS as u64) as usize;
        let app2 = (app + 1 + ((h >> 8) % (APPS as u64 - 1)) as usize) % APPS;
        let tier = TIERS[((h >> 16) % 3) as usize];
        let env = ENVS[((h >> 24) % 3) as usize];
        let team = (h >> 32) % TEAMS as u64;
        let selector = match i % 4 {
            0 => format!("app == 'app-{app}' && tier == '{tier}'"),
            1 => format!("app == 'app-{app}' && env == '{env}'"),
            2 => format!("team == 'team-{team}' && tier == '{tier}'"),
            _ => format!("app in {{'app-{app}', 'app-{app2}'}}"),
        };
        let source = if i.is_multiple_of(2) {
            format!("app == 'app-{app2}' && tier == 'frontend'")
        } else {
            format!("team == 'team-{team}' && env == '{env}'")
        };
        json!({
            "apiVersion": "v1",
            "kind": "policy",
            "metadata": {"name": format!("pol-{i:04}")},
            "spec": {
                "order": i,
                "selector": selector,
                "ingress": [
                    {"action": "allow", "protocol": "tcp",
                     "source": {"selector": source},
                     "destination": {"ports": [port]}},
                    {"action": "allow", "protocol": "tcp",
                     "source": {"nets": [format!("10.200.{}.0/24", i % 256)]},
                     "destination": {"ports": [443]}},
                ],
                "egress": [
                    {"action": "allow", "protocol": "tcp",
                     "destination": {"selector": format!("tier == 'db' && env == '{env}'"),
                                     "ports": [5432]}},
                    {"action": "allow", "protocol": "udp",
                     "destination": {"nets": ["10.96.0.10/32"], "ports": [53]}},
                ],
            },
        })
    }

    /// The base destination port of policy `i`'s first rule.
    pub fn policy_port(i: usize) -> u16 {
        8000 + (i % 100) as u16
    }

    /// Network profile `k`: like the libnetwork driver's per-network profile.
    pub fn profile_json(k: usize) -> Value {
        let name = format!("net-{k:02}");
        json!({
            "apiVersion": "v1",
            "kind": "profile",
            "metadata": {"name": name, "tags": [name]},
            "spec": {
                "ingress": [{"action": "allow", "source": {"tag": name}}],
                "egress": [{"action": "allow"}],
            },
        })
    }

    /// Every resource, in the order a datastore listing would give them (kinds grouped):
    /// profiles, policies, endpoints; generated one at a time.
    pub fn for_each_resource(&self, mut f: impl FnMut(Resource)) {
        for k in 0..PROFILES {
            f(resource(&Self::profile_json(k)));
        }
        for i in 0..self.policies {
            f(resource(&self.policy_json(i, Self::policy_port(i))));
        }
        for i in 0..self.endpoints {
            f(resource(&self.endpoint_json(i, self.labels(i))));
        }
    }
}

/// Decodes and validates one resource as calicoctl would.
pub fn resource(value: &Value) -> Resource {
    let mut list = codec::decode(&value.to_string()).expect("generated resources are valid");
    assert_eq!(list.len(), 1);
    list.remove(0)
}

/// Median, 90th percentile, min and max of `samples`.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    /// Number of samples.
    pub n: usize,
    /// Median (mean of the two middle samples for an even count).
    pub median: Duration,
    /// 90th percentile (nearest rank).
    pub p90: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
    /// Smallest.
    pub min: Duration,
    /// Largest.
    pub max: Duration,
}

impl Stats {
    /// Statistics of a non-empty sample.
    pub fn of(samples: &[Duration]) -> Stats {
        let mut s = samples.to_vec();
        s.sort();
        let n = s.len();
        assert!(n > 0);
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2
        };
        let rank = |p: f64| s[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        Stats {
            n,
            median,
            p90: rank(0.90),
            p99: rank(0.99),
            min: s[0],
            max: s[n - 1],
        }
    }
}

/// `what: n=… median … ms, p90 …, p99 …, min …, max …` (or `what: no samples`).
pub fn stats_line(what: &str, samples: &[Duration]) -> String {
    if samples.is_empty() {
        return format!("{what}: no samples");
    }
    let s = Stats::of(samples);
    format!(
        "{what}: n={} median {} ms, p90 {} ms, p99 {} ms, min {} ms, max {} ms",
        s.n,
        ms(s.median),
        ms(s.p90),
        ms(s.p99),
        ms(s.min),
        ms(s.max)
    )
}

/// Milliseconds with three decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// A `Vm*` line of `/proc/<pid>/status` in kB (`pid` "self" for this process).
pub fn vm_kb(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Moves the calling thread into a fresh network namespace (needs root).
pub fn unshare_net() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .expect("unshare(CLONE_NEWNET) needs root");
}

/// Moves the calling thread into the network namespace of process `pid`.
pub fn enter_netns_of(pid: u32) {
    let file = File::open(format!("/proc/{pid}/ns/net")).expect("open the container's netns");
    // SAFETY: setns on a valid namespace fd affects only the calling thread.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}
