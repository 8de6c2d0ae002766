//! calico-node's settings, read from Calico's environment variables.

use std::num::IntErrorKind;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use calico_calc::desired::{Failsafe, FailsafePort};
use calico_libnetwork::{DriverConfig, DEFAULT_PLUGIN_DIR};
use calico_model::{AsNumber, Cidr, IpipConfiguration};
use calico_routing::bird;
use calico_store::DatastoreConfig;

use crate::autodetect::Method;

/// The IPv4 pool created when none exists.
pub const DEFAULT_IPV4_POOL: &str = "192.168.0.0/16";

/// Everything calico-node is told by its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's name: `NODENAME`, else `HOSTNAME`, else the kernel hostname.
    pub node_name: String,
    /// The datastore (`DATASTORE_TYPE`, `SQLITE_PATH`, `ETCD_ENDPOINTS`, ...).
    pub datastore: DatastoreConfig,
    /// `IP`: an explicit address (with optional /len), or how to find one.
    pub ip: IpSetting,
    /// `AS`: this node's AS number, if not the global default.
    pub as_number: Option<AsNumber>,
    /// `NO_DEFAULT_POOLS=true` skips creating the default pool.
    pub no_default_pools: bool,
    /// `CALICO_IPV4POOL_CIDR`: the pool created when none exists.
    pub ipv4_pool_cidr: Cidr,
    /// `CALICO_IPV4POOL_NAT_OUTGOING`: whether that pool masquerades traffic leaving the pools
    /// (default true).
    pub ipv4_pool_nat_outgoing: bool,
    /// `CALICO_IPV4POOL_IPIP`: that pool's IPIP mode (default off).
    pub ipv4_pool_ipip: IpipMode,
    /// The plugin driver's settings (`CALICO_LIBNETWORK_*`).
    pub driver: DriverConfig,
    /// `CALICO_PLUGIN_DIR`: where the plugin sockets go (default /run/docker/plugins).
    pub plugin_dir: PathBuf,
    /// `CALICO_RECONCILE_INTERVAL_SECS` (default 30).
    pub reconcile_interval: Duration,
    /// `CALICO_NETWORK_SYNC_INTERVAL_SECS`: how often Calico networks are shared between this
    /// host's dockerd and the datastore (default 2).
    pub network_sync_interval: Duration,
    /// `CALICO_DATAPLANE_RESYNC_INTERVAL_SECS`: how often the nftables table is read back and
    /// repaired if it drifted (default 90, as Felix).
    pub dataplane_resync_interval: Duration,
    /// `CALICO_NETWORKING_BACKEND`: `bird` (default) runs BIRD for BGP routing, `none` routes
    /// nothing (policy only).
    pub run_bird: bool,
    /// `CALICO_BIRD_DIR`: where `bird.cfg` is written (default /var/run/calico).
    pub bird_dir: PathBuf,
    /// `CALICO_BIRD_SOCKET`: BIRD's control socket (default `<CALICO_BIRD_DIR>/bird.ctl`).
    pub bird_socket: PathBuf,
    /// `CALICO_ROUTING_REFRESH_INTERVAL_SECS`: how often the BIRD configuration is re-read
    /// from the datastore even without a change (default 30).
    pub routing_refresh_interval: Duration,
    /// `CALICO_DNS`: answer DNS for workload names on the node's address, port 53 (default
    /// true).
    pub dns: bool,
    /// `CALICO_RUN_DIR`: where calico-node says which Docker Engine it serves, for `calicoctl`
    /// (default /var/run/calico, where `calicoctl node run` keeps the pid file too).
    pub run_dir: PathBuf,
    /// `FELIX_FAILSAFEINBOUNDHOSTPORTS` and `FELIX_FAILSAFEOUTBOUNDHOSTPORTS`: the ports host
    /// endpoint policy never blocks (default [`Failsafe::default`]).
    pub failsafe: Failsafe,
    /// `FELIX_HEALTHENABLED` (default false, as Felix), `FELIX_HEALTHHOST` (default
    /// `localhost`, as Felix 3.2 and later) and `FELIX_HEALTHPORT` (default 9099): where
    /// `/liveness` and `/readiness` are served, if at all.
    pub health: Option<HealthEndpoint>,
    /// `FELIX_PROMETHEUSMETRICSENABLED` (default false, as Felix),
    /// `FELIX_PROMETHEUSMETRICSHOST` (default: the node's IPv4 address) and
    /// `FELIX_PROMETHEUSMETRICSPORT` (default 9091): where `/metrics` is served, if at all.
    pub metrics: Option<MetricsEndpoint>,
}

/// Where the Prometheus metrics are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsEndpoint {
    /// A host name or address to bind to; `None`: the node's IPv4 address.
    pub host: Option<String>,
    /// The TCP port (0: any free port).
    pub port: u16,
}

/// Where the health endpoints listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthEndpoint {
    /// A host name or address to bind to.
    pub host: String,
    /// The TCP port (0: any free port, as Felix allows).
    pub port: u16,
}

/// How calico-node writes its log (`CALICO_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event (the default).
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl LogFormat {
    /// `CALICO_LOG_FORMAT`: `text` (the default when unset or empty) or `json`, in any case.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<LogFormat> {
        let Some(value) = env("CALICO_LOG_FORMAT").filter(|v| !v.trim().is_empty()) else {
            return Ok(LogFormat::Text);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => bail!("CALICO_LOG_FORMAT={value:?}: use text or json"),
        }
    }
}

/// calico-node's run directory unless `CALICO_RUN_DIR` says otherwise.
pub const DEFAULT_RUN_DIR: &str = "/var/run/calico";

/// The inbound failsafe ports' variable (Felix's `FailsafeInboundHostPorts`).
const FAILSAFE_INBOUND: &str = "FELIX_FAILSAFEINBOUNDHOSTPORTS";
/// The outbound failsafe ports' variable (Felix's `FailsafeOutboundHostPorts`).
const FAILSAFE_OUTBOUND: &str = "FELIX_FAILSAFEOUTBOUNDHOSTPORTS";
/// The form of a failsafe port list, for messages.
const FAILSAFE_FORM: &str = "use a comma-separated list of tcp:<port>, udp:<port> or <port> \
                             (tcp), each port 0-65535, or none for no ports";

/// The IPIP mode of the default IPv4 pool, as calico/node v2.6 reads `CALICO_IPV4POOL_IPIP`
/// (any case; empty is `off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpipMode {
    /// No IPIP (`off`, the default): the pool has no `ipip` section.
    Off,
    /// `always`: `ipip: {enabled: true, mode: always}`.
    Always,
    /// `cross-subnet`: `ipip: {enabled: true, mode: cross-subnet}`.
    CrossSubnet,
}

impl IpipMode {
    /// The accepted values, for messages.
    pub const ACCEPTED: &'static str = "off, always or cross-subnet";

    /// The mode `value` names (case is ignored), if it names one.
    pub fn parse(value: &str) -> Option<IpipMode> {
        match value.to_ascii_lowercase().as_str() {
            "off" => Some(IpipMode::Off),
            "always" => Some(IpipMode::Always),
            "cross-subnet" => Some(IpipMode::CrossSubnet),
            _ => None,
        }
    }

    /// The pool's `ipip` section for this mode (none for `off`).
    pub fn configuration(self) -> Option<IpipConfiguration> {
        match self {
            IpipMode::Off => None,
            IpipMode::Always | IpipMode::CrossSubnet => Some(IpipConfiguration {
                enabled: true,
                mode: self.to_string(),
            }),
        }
    }
}

/// `off`, `always` or `cross-subnet`.
impl std::fmt::Display for IpipMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IpipMode::Off => "off",
            IpipMode::Always => "always",
            IpipMode::CrossSubnet => "cross-subnet",
        })
    }
}

/// How the node's IPv4 address is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpSetting {
    /// A fixed address (`IP=10.0.0.5` or `IP=10.0.0.5/24`).
    Fixed(Cidr),
    /// Autodetected (`IP` empty or `autodetect`) with `IP_AUTODETECTION_METHOD`.
    Detect(Method),
}

impl Config {
    /// Reads the settings through `env` (the process environment in production).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let node_name = match var("NODENAME").or_else(|| var("HOSTNAME")) {
            Some(name) => name,
            None => nix::unistd::gethostname()
                .context("cannot read the hostname; set NODENAME")?
                .to_string_lossy()
                .into_owned(),
        };
        let datastore = DatastoreConfig::from_env(&env).context("datastore settings")?;
        let method = match var("IP_AUTODETECTION_METHOD") {
            Some(m) => Method::parse(&m)?,
            None => Method::FirstFound,
        };
        let ip = match var("IP").as_deref() {
            None | Some("autodetect") => IpSetting::Detect(method),
            Some(addr) => IpSetting::Fixed(
                addr.parse()
                    .map_err(|e| anyhow!("IP={addr:?} is not an IPv4 address: {e}"))?,
            ),
        };
        let as_number = var("AS")
            .map(|s| {
                s.parse::<AsNumber>()
                    .map_err(|e| anyhow!("AS={s:?} is not an AS number: {e}"))
            })
            .transpose()?;
        let pool = var("CALICO_IPV4POOL_CIDR").unwrap_or_else(|| DEFAULT_IPV4_POOL.into());
        let ipv4_pool_cidr: Cidr = pool
            .parse()
            .map_err(|e| anyhow!("CALICO_IPV4POOL_CIDR={pool:?} is not a CIDR: {e}"))?;
        let ipv4_pool_ipip = match var("CALICO_IPV4POOL_IPIP") {
            None => IpipMode::Off,
            Some(mode) => IpipMode::parse(&mode).ok_or_else(|| {
                anyhow!(
                    "CALICO_IPV4POOL_IPIP={mode:?} is not an IPIP mode: use {}",
                    IpipMode::ACCEPTED
                )
            })?,
        };
        let run_bird = match var("CALICO_NETWORKING_BACKEND").as_deref() {
            None | Some("bird") => true,
            Some("none") => false,
            Some(other) => bail!("CALICO_NETWORKING_BACKEND={other:?}: use bird or none"),
        };
        let bird_dir: PathBuf = var(bird::BIRD_DIR_ENV)
            .unwrap_or_else(|| bird::DEFAULT_BIRD_DIR.into())
            .into();
        let bird_socket = var(bird::BIRD_SOCKET_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| bird_dir.join(bird::SOCKET_FILE));
        let defaults = Failsafe::default();
        let failsafe = Failsafe {
            inbound: failsafe_ports(&env, FAILSAFE_INBOUND, defaults.inbound)?,
            outbound: failsafe_ports(&env, FAILSAFE_OUTBOUND, defaults.outbound)?,
        };
        let health = flag(&var, "FELIX_HEALTHENABLED", false)?
            .then(|| health_endpoint(&var))
            .transpose()?;
        let metrics = flag(&var, "FELIX_PROMETHEUSMETRICSENABLED", false)?
            .then(|| metrics_endpoint(&var))
            .transpose()?;
        Ok(Config {
            failsafe,
            health,
            metrics,
            run_bird,
            bird_dir,
            bird_socket,
            routing_refresh_interval: duration(&var, "CALICO_ROUTING_REFRESH_INTERVAL_SECS", 30)?,
            node_name: node_name.clone(),
            datastore,
            ip,
            as_number,
            no_default_pools: flag(&var, "NO_DEFAULT_POOLS", false)?,
            dns: flag(&var, "CALICO_DNS", true)?,
            run_dir: var("CALICO_RUN_DIR")
                .unwrap_or_else(|| DEFAULT_RUN_DIR.into())
                .into(),
            ipv4_pool_cidr,
            ipv4_pool_nat_outgoing: flag(&var, "CALICO_IPV4POOL_NAT_OUTGOING", true)?,
            ipv4_pool_ipip,
            driver: DriverConfig {
                ephemeral_ports: calico_libnetwork::kernel_ephemeral_ports(),
                ..DriverConfig::from_lookup(node_name.clone(), &env).context("plugin settings")?
            },
            plugin_dir: var("CALICO_PLUGIN_DIR")
                .unwrap_or_else(|| DEFAULT_PLUGIN_DIR.into())
                .into(),
            reconcile_interval: duration(&var, "CALICO_RECONCILE_INTERVAL_SECS", 30)?,
            network_sync_interval: duration(&var, "CALICO_NETWORK_SYNC_INTERVAL_SECS", 2)?,
            dataplane_resync_interval: duration(&var, "CALICO_DATAPLANE_RESYNC_INTERVAL_SECS", 90)?,
        })
    }
}

/// A boolean: `true` or `false` in any case, or the other spellings calico/node v2.6 reads
/// (`1`/`0`, `yes`/`no`, `y`/`n`, `t`/`f`). Anything else is refused rather than guessed.
fn flag(var: &impl Fn(&str) -> Option<String>, name: &str, default: bool) -> Result<bool> {
    let Some(value) = var(name) else {
        return Ok(default);
    };
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "t" => Ok(true),
        "false" | "0" | "no" | "n" | "f" => Ok(false),
        _ => bail!("{name}={value:?}: use true or false (or 1/0, yes/no, y/n, t/f)"),
    }
}

/// `FELIX_HEALTHHOST` and `FELIX_HEALTHPORT`; the port as Felix's `int(0,65535)`.
fn health_endpoint(var: &impl Fn(&str) -> Option<String>) -> Result<HealthEndpoint> {
    let host = var("FELIX_HEALTHHOST").unwrap_or_else(|| "localhost".into());
    Ok(HealthEndpoint {
        host: host.trim().to_string(),
        port: port(var, "FELIX_HEALTHPORT", 9099)?,
    })
}

/// `FELIX_PROMETHEUSMETRICSHOST` (empty or unset: the node's address) and
/// `FELIX_PROMETHEUSMETRICSPORT`.
fn metrics_endpoint(var: &impl Fn(&str) -> Option<String>) -> Result<MetricsEndpoint> {
    let host = var("FELIX_PROMETHEUSMETRICSHOST")
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty());
    Ok(MetricsEndpoint {
        host,
        port: port(var, "FELIX_PROMETHEUSMETRICSPORT", 9091)?,
    })
}

/// A TCP port setting, as Felix's `int(0,65535)`.
fn port(var: &impl Fn(&str) -> Option<String>, name: &str, default: u16) -> Result<u16> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| anyhow!("{name}={v:?}: use a port number from 0 to 65535")),
    }
}

/// A failsafe port list, read as Felix 2.6 reads `FailsafeInboundHostPorts` and
/// `FailsafeOutboundHostPorts` (`config/param_types.go`, `PortListParam`; `config_params.go`):
/// an empty value is ignored (the default applies), `none` in any case is the empty list, and
/// otherwise the value is split at commas, each item trimmed of spaces, empty items skipped, and
/// each item is `<protocol>:<port>` or `<port>` (tcp), the protocol `tcp` or `udp` in any case,
/// the port a decimal integer from 0 to 65535. Unlike the other settings, a value of only
/// spaces is not "unset": Felix reads it as a list with no items, as here.
fn failsafe_ports(
    env: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: Vec<FailsafePort>,
) -> Result<Vec<FailsafePort>> {
    let raw = match env(name) {
        None => return Ok(default),
        Some(raw) if raw.is_empty() => return Ok(default),
        Some(raw) => raw,
    };
    if raw.to_lowercase() == "none" {
        return Ok(Vec::new());
    }
    raw.split(',')
        .map(|item| item.trim_matches(' '))
        .filter(|item| !item.is_empty())
        .map(|item| {
            failsafe_port(item).map_err(|why| anyhow!("{name}={raw:?}: {why}; {FAILSAFE_FORM}"))
        })
        .collect()
}

/// One item of a failsafe port list, or what is wrong with it.
fn failsafe_port(item: &str) -> std::result::Result<FailsafePort, String> {
    let parts: Vec<&str> = item.split(':').collect();
    let (protocol, port) = match parts[..] {
        [port] => ("tcp".to_string(), port),
        [protocol, port] => (protocol.to_lowercase(), port),
        _ => return Err(format!("{item:?} is not <protocol>:<port> or <port>")),
    };
    let protocol = match protocol.as_str() {
        "tcp" => 6,
        "udp" => 17,
        _ => return Err(format!("{item:?} has an unknown protocol {protocol:?}")),
    };
    // As Go's strconv.Atoi: decimal digits with an optional sign, no spaces.
    let out_of_range = || format!("{item:?} has a port out of the range 0-65535");
    let number: i64 = port
        .parse()
        .map_err(|e: std::num::ParseIntError| match e.kind() {
            IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => out_of_range(),
            _ => format!("{item:?} has a port that is not an integer"),
        })?;
    let port = u16::try_from(number).map_err(|_| out_of_range())?;
    Ok(FailsafePort { protocol, port })
}

/// A duration in seconds; Go-style `5s` is accepted too.
fn duration(var: &impl Fn(&str) -> Option<String>, name: &str, default: u64) -> Result<Duration> {
    match var(name) {
        None => Ok(Duration::from_secs(default)),
        Some(v) => {
            let secs = v.trim().trim_end_matches('s');
            secs.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| anyhow!("{name}={v:?}: expected seconds, e.g. 5 or 5s"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_env(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_calico() {
        let c = config(&[("HOSTNAME", "calico-01")]).unwrap();
        assert_eq!(c.node_name, "calico-01");
        assert_eq!(c.ip, IpSetting::Detect(Method::FirstFound));
        assert_eq!(c.ipv4_pool_cidr.to_string(), "192.168.0.0/16");
        assert!(!c.no_default_pools);
        assert!(c.driver.create_profiles && !c.driver.label_endpoints);
        assert_eq!(c.driver.node, "calico-01");
        assert_eq!(c.reconcile_interval, Duration::from_secs(30));
        assert_eq!(c.plugin_dir, PathBuf::from("/run/docker/plugins"));
        assert!(c.run_bird);
        assert_eq!(c.bird_dir, PathBuf::from("/var/run/calico"));
        assert_eq!(c.bird_socket, PathBuf::from("/var/run/calico/bird.ctl"));
        assert_eq!(c.run_dir, PathBuf::from("/var/run/calico"));
        assert_eq!(c.routing_refresh_interval, Duration::from_secs(30));
        assert!(c.dns);
        assert!(
            !config(&[("NODENAME", "n"), ("CALICO_DNS", "false")])
                .unwrap()
                .dns
        );
    }

    #[test]
    fn routing_settings() {
        let c = config(&[
            ("NODENAME", "n"),
            ("CALICO_NETWORKING_BACKEND", "none"),
            ("CALICO_BIRD_DIR", "/tmp/b"),
        ])
        .unwrap();
        assert!(!c.run_bird);
        assert_eq!(c.bird_socket, PathBuf::from("/tmp/b/bird.ctl"));
        let c = config(&[("NODENAME", "n"), ("CALICO_BIRD_SOCKET", "/s/ctl")]).unwrap();
        assert_eq!(c.bird_dir, PathBuf::from("/var/run/calico"));
        assert_eq!(c.bird_socket, PathBuf::from("/s/ctl"));
        assert!(config(&[("NODENAME", "n"), ("CALICO_NETWORKING_BACKEND", "gobgp")]).is_err());
    }

    #[test]
    fn nodename_wins_and_values_are_checked() {
        let c = config(&[
            ("NODENAME", "n1"),
            ("HOSTNAME", "h"),
            ("IP", "10.0.0.5/24"),
            ("AS", "64513"),
            ("CALICO_LIBNETWORK_LABEL_POLL_TIMEOUT", "2s"),
            ("CALICO_RECONCILE_INTERVAL_SECS", "7"),
        ])
        .unwrap();
        assert_eq!(c.node_name, "n1");
        assert_eq!(c.ip, IpSetting::Fixed("10.0.0.5/24".parse().unwrap()));
        assert_eq!(c.as_number.map(|a| a.0), Some(64513));
        assert_eq!(c.driver.label_poll_timeout, Duration::from_secs(2));
        assert_eq!(c.reconcile_interval, Duration::from_secs(7));
        assert!(config(&[("NODENAME", "n"), ("IP", "nonsense")]).is_err());
        assert!(config(&[("NODENAME", "n"), ("NO_DEFAULT_POOLS", "maybe")]).is_err());
        assert!(config(&[("NODENAME", "n"), ("CALICO_LIBNETWORK_SCOPE", "swarm")]).is_err());
        assert!(config(&[("NODENAME", "n"), ("IP_AUTODETECTION_METHOD", "psychic")]).is_err());
    }

    #[test]
    fn any_published_port_comes_from_the_kernels_range_as_dockers_does() {
        let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
        let bounds: Vec<u16> = text
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        let c = config(&[("NODENAME", "n")]).unwrap();
        assert_eq!(c.driver.ephemeral_ports, bounds[0]..=bounds[1]);
    }

    #[test]
    fn default_pool_nat_outgoing_and_ipip() {
        let c = config(&[("NODENAME", "n")]).unwrap();
        assert!(c.ipv4_pool_nat_outgoing);
        assert_eq!(c.ipv4_pool_ipip, IpipMode::Off);
        for (value, nat) in [
            ("false", false),
            ("F", false),
            ("f", false),
            ("no", false),
            ("N", false),
            ("0", false),
            ("True", true),
            ("t", true),
            ("YES", true),
            ("y", true),
            ("1", true),
        ] {
            let c = config(&[("NODENAME", "n"), ("CALICO_IPV4POOL_NAT_OUTGOING", value)]).unwrap();
            assert_eq!(c.ipv4_pool_nat_outgoing, nat, "{value}");
        }
        let err =
            config(&[("NODENAME", "n"), ("CALICO_IPV4POOL_NAT_OUTGOING", "maybe")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "CALICO_IPV4POOL_NAT_OUTGOING=\"maybe\": use true or false (or 1/0, yes/no, y/n, t/f)"
        );

        for (value, mode) in [
            ("off", IpipMode::Off),
            ("", IpipMode::Off),
            ("always", IpipMode::Always),
            ("Always", IpipMode::Always),
            ("cross-subnet", IpipMode::CrossSubnet),
            ("CROSS-SUBNET", IpipMode::CrossSubnet),
        ] {
            let c = config(&[("NODENAME", "n"), ("CALICO_IPV4POOL_IPIP", value)]).unwrap();
            assert_eq!(c.ipv4_pool_ipip, mode, "{value:?}");
        }
        for value in ["sometimes", "crosssubnet", "never", "true"] {
            let err = config(&[("NODENAME", "n"), ("CALICO_IPV4POOL_IPIP", value)]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "CALICO_IPV4POOL_IPIP={value:?} is not an IPIP mode: use off, always or \
                     cross-subnet"
                )
            );
        }
    }

    fn tcp(port: u16) -> FailsafePort {
        FailsafePort { protocol: 6, port }
    }

    fn udp(port: u16) -> FailsafePort {
        FailsafePort { protocol: 17, port }
    }

    /// The failsafe ports of `FELIX_FAILSAFEINBOUNDHOSTPORTS=value`.
    fn inbound(value: &str) -> Result<Vec<FailsafePort>> {
        config(&[("NODENAME", "n"), (FAILSAFE_INBOUND, value)]).map(|c| c.failsafe.inbound)
    }

    #[test]
    fn failsafe_ports_default_to_the_graphs_and_are_read_as_felix_reads_them() {
        let c = config(&[("NODENAME", "n")]).unwrap();
        assert_eq!(c.failsafe, Failsafe::default());
        assert_eq!(
            inbound("").unwrap(),
            Failsafe::default().inbound,
            "empty is unset"
        );
        for (value, ports) in [
            ("tcp:22,udp:68", vec![tcp(22), udp(68)]),
            ("TCP:22, Udp:53 ,8080", vec![tcp(22), udp(53), tcp(8080)]),
            ("  tcp:1  ,,, udp:0 ,", vec![tcp(1), udp(0)]),
            ("tcp:65535,+7,tcp:007", vec![tcp(65535), tcp(7), tcp(7)]),
            ("udp:53,udp:53", vec![udp(53), udp(53)]),
            ("none", vec![]),
            ("NoNe", vec![]),
            (" ", vec![]),
            (",", vec![]),
        ] {
            assert_eq!(inbound(value).unwrap(), ports, "{value:?}");
        }
        let c = config(&[
            ("NODENAME", "n"),
            (FAILSAFE_OUTBOUND, "udp:53"),
            (FAILSAFE_INBOUND, "none"),
        ])
        .unwrap();
        assert_eq!(
            c.failsafe,
            Failsafe {
                inbound: vec![],
                outbound: vec![udp(53)]
            }
        );
    }

    #[test]
    fn a_bad_failsafe_port_names_the_variable_the_item_and_the_form() {
        let form = "use a comma-separated list of tcp:<port>, udp:<port> or <port> (tcp), each \
                    port 0-65535, or none for no ports";
        for (value, why) in [
            (
                "tcp:22,sctp:9",
                "\"sctp:9\" has an unknown protocol \"sctp\"",
            ),
            (
                "tcp:22:1",
                "\"tcp:22:1\" is not <protocol>:<port> or <port>",
            ),
            ("tcp:ssh", "\"tcp:ssh\" has a port that is not an integer"),
            ("tcp: 22", "\"tcp: 22\" has a port that is not an integer"),
            ("\t22", "\"\\t22\" has a port that is not an integer"),
            ("tcp:", "\"tcp:\" has a port that is not an integer"),
            (" none", "\"none\" has a port that is not an integer"),
            ("tcp :22", "\"tcp :22\" has an unknown protocol \"tcp \""),
            (
                "udp:65536",
                "\"udp:65536\" has a port out of the range 0-65535",
            ),
            ("-1", "\"-1\" has a port out of the range 0-65535"),
            (
                "99999999999999999999",
                "\"99999999999999999999\" has a port out of the range 0-65535",
            ),
        ] {
            let err = inbound(value).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("FELIX_FAILSAFEINBOUNDHOSTPORTS={value:?}: {why}; {form}")
            );
        }
        let err = config(&[("NODENAME", "n"), (FAILSAFE_OUTBOUND, "icmp:8")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("FELIX_FAILSAFEOUTBOUNDHOSTPORTS=\"icmp:8\": \"icmp:8\" has an"),
            "{err}"
        );
    }

    #[test]
    fn ipip_modes_as_pool_sections() {
        assert_eq!(IpipMode::Off.configuration(), None);
        assert_eq!(
            IpipMode::Always.configuration(),
            Some(IpipConfiguration {
                enabled: true,
                mode: "always".into()
            })
        );
        assert_eq!(
            IpipMode::CrossSubnet.configuration(),
            Some(IpipConfiguration {
                enabled: true,
                mode: "cross-subnet".into()
            })
        );
    }

    #[test]
    fn health_is_off_by_default_and_served_on_localhost_9099_when_enabled() {
        assert_eq!(config(&[("NODENAME", "n")]).unwrap().health, None);
        for on in ["true", "TRUE", "1", "yes", "y", "t"] {
            assert_eq!(
                config(&[("NODENAME", "n"), ("FELIX_HEALTHENABLED", on)])
                    .unwrap()
                    .health,
                Some(HealthEndpoint {
                    host: "localhost".into(),
                    port: 9099
                }),
                "{on}"
            );
        }
        for off in ["false", "0", "no", "n", "F"] {
            let c = config(&[("NODENAME", "n"), ("FELIX_HEALTHENABLED", off)]).unwrap();
            assert_eq!(c.health, None, "{off}");
        }
        let c = config(&[
            ("NODENAME", "n"),
            ("FELIX_HEALTHENABLED", "true"),
            ("FELIX_HEALTHHOST", "0.0.0.0"),
            ("FELIX_HEALTHPORT", "19099"),
        ])
        .unwrap();
        assert_eq!(
            c.health,
            Some(HealthEndpoint {
                host: "0.0.0.0".into(),
                port: 19099
            })
        );
    }

    #[test]
    fn metrics_are_off_by_default_and_served_on_the_node_address_port_9091_when_enabled() {
        assert_eq!(config(&[("NODENAME", "n")]).unwrap().metrics, None);
        let on = config(&[
            ("NODENAME", "n"),
            ("FELIX_PROMETHEUSMETRICSENABLED", "true"),
        ]);
        assert_eq!(
            on.unwrap().metrics,
            Some(MetricsEndpoint {
                host: None,
                port: 9091
            })
        );
        let c = config(&[
            ("NODENAME", "n"),
            ("FELIX_PROMETHEUSMETRICSENABLED", "yes"),
            ("FELIX_PROMETHEUSMETRICSHOST", " 127.0.0.1 "),
            ("FELIX_PROMETHEUSMETRICSPORT", "19091"),
        ]);
        assert_eq!(
            c.unwrap().metrics,
            Some(MetricsEndpoint {
                host: Some("127.0.0.1".into()),
                port: 19091
            })
        );
        let err = |pairs: &[(&str, &str)]| format!("{:#}", config(pairs).unwrap_err());
        assert_eq!(
            err(&[("NODENAME", "n"), ("FELIX_PROMETHEUSMETRICSENABLED", "on")]),
            "FELIX_PROMETHEUSMETRICSENABLED=\"on\": use true or false (or 1/0, yes/no, y/n, t/f)"
        );
        assert_eq!(
            err(&[
                ("NODENAME", "n"),
                ("FELIX_PROMETHEUSMETRICSENABLED", "true"),
                ("FELIX_PROMETHEUSMETRICSPORT", "9o91")
            ]),
            "FELIX_PROMETHEUSMETRICSPORT=\"9o91\": use a port number from 0 to 65535"
        );
    }

    #[test]
    fn bad_health_settings_name_the_variable() {
        let err = |pairs: &[(&str, &str)]| format!("{:#}", config(pairs).unwrap_err());
        assert_eq!(
            err(&[("NODENAME", "n"), ("FELIX_HEALTHENABLED", "on")]),
            "FELIX_HEALTHENABLED=\"on\": use true or false (or 1/0, yes/no, y/n, t/f)"
        );
        for port in ["65536", "-1", "http"] {
            assert_eq!(
                err(&[
                    ("NODENAME", "n"),
                    ("FELIX_HEALTHENABLED", "true"),
                    ("FELIX_HEALTHPORT", port)
                ]),
                format!("FELIX_HEALTHPORT={port:?}: use a port number from 0 to 65535")
            );
        }
    }

    #[test]
    fn log_format_is_text_unless_json_and_refuses_anything_else() {
        let format = |value: Option<&str>| {
            LogFormat::from_env(|name| {
                assert_eq!(name, "CALICO_LOG_FORMAT");
                value.map(String::from)
            })
        };
        assert_eq!(format(None).unwrap(), LogFormat::Text);
        assert_eq!(format(Some("")).unwrap(), LogFormat::Text);
        assert_eq!(format(Some("text")).unwrap(), LogFormat::Text);
        assert_eq!(format(Some("json")).unwrap(), LogFormat::Json);
        assert_eq!(format(Some(" JSON ")).unwrap(), LogFormat::Json);
        assert_eq!(
            format!("{:#}", format(Some("logfmt")).unwrap_err()),
            "CALICO_LOG_FORMAT=\"logfmt\": use text or json"
        );
    }
}
