//! [`DriverConfig`]: the driver's settings, with Calico's environment variables.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use super::ports::{parse_port_range, DOCKER_FALLBACK_EPHEMERAL};

/// The scope the network driver reports to Docker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Networks live on one daemon; create them on every host (Docker 23 and later have no
    /// other kind outside swarm).
    #[default]
    Local,
    /// Networks live in the daemons' shared cluster store (Docker 20.10 and older with
    /// `--cluster-store` only).
    Global,
}

impl Scope {
    /// `local` or `global`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Local => "local",
            Scope::Global => "global",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(Scope::Local),
            "global" => Ok(Scope::Global),
            _ => Err(ConfigError {
                variable: SCOPE_ENV,
                value: s.to_owned(),
                expected: "local or global",
            }),
        }
    }
}

/// An environment variable with a value the driver cannot use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {variable}={value:?}: expected {expected}")]
pub struct ConfigError {
    variable: &'static str,
    value: String,
    expected: &'static str,
}

/// `false` (any case) stops the driver creating a profile per network.
pub const CREATE_PROFILES_ENV: &str = "CALICO_LIBNETWORK_CREATE_PROFILES";
/// `true` (any case) copies `org.projectcalico.label.*` container labels onto endpoints.
pub const LABEL_ENDPOINTS_ENV: &str = "CALICO_LIBNETWORK_LABEL_ENDPOINTS";
/// How long to look for an endpoint's container, as a Go duration (`5s`, `500ms`).
pub const LABEL_POLL_TIMEOUT_ENV: &str = "CALICO_LIBNETWORK_LABEL_POLL_TIMEOUT";
/// Name prefix of the interface inside containers.
pub const IFPREFIX_ENV: &str = "CALICO_LIBNETWORK_IFPREFIX";
/// MTU of the veth pairs; unset or 0 means the kernel default.
pub const VETH_MTU_ENV: &str = "CALICO_LIBNETWORK_VETH_MTU";
/// `local` or `global`: the scope reported to Docker.
pub const SCOPE_ENV: &str = "CALICO_LIBNETWORK_SCOPE";
/// Where Docker's port allocator (and [`DriverConfig::from_env`]) reads the range of "any
/// free port".
const KERNEL_PORT_RANGE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// The range Docker takes "any" published port from: the kernel's `ip_local_port_range`, or
/// 49153-65535 (logged) when it cannot be read.
pub fn kernel_ephemeral_ports() -> RangeInclusive<u16> {
    match std::fs::read_to_string(KERNEL_PORT_RANGE) {
        Ok(text) => parse_port_range(&text).unwrap_or_else(|| {
            tracing::warn!(
                path = KERNEL_PORT_RANGE,
                text,
                "not a port range; published ports asked for as any come from 49153-65535"
            );
            DOCKER_FALLBACK_EPHEMERAL
        }),
        Err(e) => {
            tracing::warn!(path = KERNEL_PORT_RANGE, error = %e, "published ports asked for as any come from 49153-65535");
            DOCKER_FALLBACK_EPHEMERAL
        }
    }
}

/// How the driver behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverConfig {
    /// This host's Calico node name (owner of the workload endpoints written).
    pub node: String,
    /// Create a profile per network (named after it) and attach endpoints to it.
    pub create_profiles: bool,
    /// Copy `org.projectcalico.label.*` container labels (prefix stripped) onto endpoints.
    pub label_endpoints: bool,
    /// How long to look for the container behind a joined endpoint.
    pub label_poll_timeout: Duration,
    /// How long to wait for a new network to become visible in Docker (to name its profile).
    pub network_poll_timeout: Duration,
    /// Pause between two Docker API polls.
    pub poll_interval: Duration,
    /// Name prefix of the interface inside containers (Docker appends an index: `cali0`).
    pub container_ifprefix: String,
    /// MTU of the veth pairs; `None` for the kernel default.
    pub veth_mtu: Option<u32>,
    /// The scope reported to Docker.
    pub scope: Scope,
    /// Where a published port asked for as "any" (`-P`, `-p 80`) is taken from.
    pub ephemeral_ports: RangeInclusive<u16>,
}

impl DriverConfig {
    /// The defaults, for node `node`: profiles on, labels off, 5 s poll timeouts every 50 ms,
    /// prefix `cali`, kernel MTU, `local` scope, "any" published ports from 49153-65535
    /// (Docker's range when it cannot read the kernel's).
    pub fn new(node: impl Into<String>) -> Self {
        DriverConfig {
            node: node.into(),
            create_profiles: true,
            label_endpoints: false,
            label_poll_timeout: Duration::from_secs(5),
            network_poll_timeout: Duration::from_secs(5),
            poll_interval: Duration::from_millis(50),
            container_ifprefix: "cali".to_owned(),
            veth_mtu: None,
            scope: Scope::Local,
            ephemeral_ports: DOCKER_FALLBACK_EPHEMERAL,
        }
    }

    /// The defaults overridden by the `CALICO_LIBNETWORK_*` variables of this process, with
    /// "any" published ports from the kernel's `ip_local_port_range`, as Docker takes them.
    pub fn from_env(node: impl Into<String>) -> Result<Self, ConfigError> {
        let mut config = Self::from_lookup(node, |name| std::env::var(name).ok())?;
        config.ephemeral_ports = kernel_ephemeral_ports();
        Ok(config)
    }

    /// Like [`DriverConfig::from_env`], reading variables through `lookup`.
    pub fn from_lookup(
        node: impl Into<String>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config = DriverConfig::new(node);
        let bad = |variable: &'static str, value: &str, expected: &'static str| ConfigError {
            variable,
            value: value.to_owned(),
            expected,
        };
        if let Some(v) = lookup(CREATE_PROFILES_ENV) {
            config.create_profiles = !v.eq_ignore_ascii_case("false");
        }
        if let Some(v) = lookup(LABEL_ENDPOINTS_ENV) {
            config.label_endpoints = v.eq_ignore_ascii_case("true");
        }
        if let Some(v) = lookup(LABEL_POLL_TIMEOUT_ENV).filter(|v| !v.is_empty()) {
            config.label_poll_timeout = parse_go_duration(&v).ok_or_else(|| {
                bad(
                    LABEL_POLL_TIMEOUT_ENV,
                    &v,
                    "a duration such as 5s, 500ms or 1m30s",
                )
            })?;
        }
        if let Some(v) = lookup(IFPREFIX_ENV).filter(|v| !v.is_empty()) {
            let ok = v.len() <= 12
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                return Err(bad(
                    IFPREFIX_ENV,
                    &v,
                    "1-12 characters from a-z, A-Z, 0-9, '_', '-'",
                ));
            }
            config.container_ifprefix = v;
        }
        if let Some(v) = lookup(VETH_MTU_ENV).filter(|v| !v.is_empty()) {
            let mtu: u16 = v
                .parse()
                .map_err(|_| bad(VETH_MTU_ENV, &v, "an MTU from 0 to 65535"))?;
            config.veth_mtu = (mtu != 0).then_some(u32::from(mtu));
        }
        if let Some(v) = lookup(SCOPE_ENV).filter(|v| !v.is_empty()) {
            config.scope = v.parse()?;
        }
        Ok(config)
    }
}

/// Parses a Go `time.Duration` string: one or more `<decimal><unit>` with units `ns`, `us`,
/// `µs`, `ms`, `s`, `m`, `h` (`1m30s`, `1.5s`, `500ms`), or `0`.
fn parse_go_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * seconds_per_unit;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<DriverConfig, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        DriverConfig::from_lookup("host1", |k| vars.get(k).cloned())
    }

    #[test]
    fn defaults_match_calicos() {
        let c = config(&[]).expect("defaults");
        assert_eq!(c, DriverConfig::new("host1"));
        assert!(c.create_profiles);
        assert!(!c.label_endpoints);
        assert_eq!(c.label_poll_timeout, Duration::from_secs(5));
        assert_eq!(c.container_ifprefix, "cali");
        assert_eq!(c.veth_mtu, None);
        assert_eq!(c.scope, Scope::Local);
    }

    #[test]
    fn variables_override_the_defaults() {
        let c = config(&[
            (CREATE_PROFILES_ENV, "FALSE"),
            (LABEL_ENDPOINTS_ENV, "True"),
            (LABEL_POLL_TIMEOUT_ENV, "1m30s"),
            (IFPREFIX_ENV, "eth"),
            (VETH_MTU_ENV, "1440"),
            (SCOPE_ENV, "global"),
        ])
        .expect("valid");
        assert!(!c.create_profiles);
        assert!(c.label_endpoints);
        assert_eq!(c.label_poll_timeout, Duration::from_secs(90));
        assert_eq!(c.container_ifprefix, "eth");
        assert_eq!(c.veth_mtu, Some(1440));
        assert_eq!(c.scope, Scope::Global);
        // Go semantics: only the exact opposite word flips a flag.
        let c = config(&[(CREATE_PROFILES_ENV, "no"), (LABEL_ENDPOINTS_ENV, "1")]).expect("valid");
        assert!(c.create_profiles);
        assert!(!c.label_endpoints);
        assert_eq!(
            config(&[(VETH_MTU_ENV, "0")]).expect("valid").veth_mtu,
            None
        );
    }

    #[test]
    fn bad_values_name_the_variable_and_the_expected_form() {
        for (var, value) in [
            (LABEL_POLL_TIMEOUT_ENV, "5"),
            (LABEL_POLL_TIMEOUT_ENV, "5 s"),
            (VETH_MTU_ENV, "70000"),
            (IFPREFIX_ENV, "ca/li"),
            (SCOPE_ENV, "swarm"),
        ] {
            let err = config(&[(var, value)]).expect_err(value).to_string();
            assert!(err.starts_with(&format!("invalid {var}=")), "{err}");
            assert!(err.contains("expected"), "{err}");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("s"), None);
        assert_eq!(parse_go_duration("-1s"), None);
    }
}
