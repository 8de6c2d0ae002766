//! Published ports (`docker run -p`): which bindings one endpoint gets. Pure: no I/O.
//!
//! The protocol, as dockerd 20.10 and 28 speak it to a remote driver:
//!
//! - `ProgramExternalConnectivity` (after `Join`, at every container start) carries
//!   `com.docker.network.portmap`, a list of `{Proto, IP, Port, HostIP, HostPort, HostPortEnd}`
//!   in the order Docker sorted them, and `com.docker.network.endpoint.exposedports`, a list
//!   of `{Proto, Port}` (Docker 28 adds `com.docker.network.driver.private.no_proxy_6to4`,
//!   ignored). `Proto` is the IANA number (6 TCP, 17 UDP, 132 SCTP); `IP` is empty.
//!   `HostPort` 0 with `HostPortEnd` 0 means "any free port" (`-P`, `-p 80`);
//!   `HostPort`..`HostPortEnd` "the first free port of the range" (`-p 8000-8010:80`);
//!   `HostPortEnd` 0 after a non-zero `HostPort` means the same as `HostPort`, as moby's bridge
//!   reads it.
//! - `RevokeExternalConnectivity` (at container stop, before `Leave`) takes them away.
//! - `EndpointOperInfo` is answered with the bindings made, as the bridge driver answers it
//!   ([`crate::wire::EndpointOperInfo`]).
//!
//! Docker's port allocator picks "any free port" from the kernel's
//! `/proc/sys/net/ipv4/ip_local_port_range` (32768-60999 by default), and from 49153-65535
//! only when it cannot read that file; [`crate::DriverConfig::ephemeral_ports`] holds the
//! range the driver uses. Within a range this module takes the lowest free port (Docker's
//! allocator goes round-robin from the last port it gave out).
//!
//! A binding conflicts with a binding of any endpoint on this host with the same protocol and
//! host port whose host addresses overlap: an empty `HostIP` overlaps every address,
//! `0.0.0.0` every IPv4 address, `::` every IPv6 address, and an address itself. A conflict
//! refuses the whole request with moby's port allocator text
//! (`Bind for 0.0.0.0:8080 failed: port is already allocated`). Only Calico endpoints are
//! known here: ports that dockerd's bridge networks or host processes use are not.
//!
//! Each binding goes to the endpoint's IPv4 address for an IPv4 `HostIP`, to its IPv6 address
//! for an IPv6 `HostIP`, and to both (those it has) for an empty `HostIP`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;

use calico_model::Protocol;

use crate::traits::PublishedPort;
use crate::wire::PortBinding;

/// Docker's range for "any free port" when the kernel's cannot be read.
pub(crate) const DOCKER_FALLBACK_EPHEMERAL: RangeInclusive<u16> = 49153..=65535;

/// The host addresses a binding takes its port on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HostScope {
    /// `HostIP` empty: every address.
    Any,
    /// `0.0.0.0`: every IPv4 address.
    AnyV4,
    /// `::`: every IPv6 address.
    AnyV6,
    /// One address.
    Addr(IpAddr),
}

impl HostScope {
    fn parse(text: &str) -> Result<Self, PortError> {
        if text.is_empty() {
            return Ok(HostScope::Any);
        }
        let ip: IpAddr = text.parse().map_err(|_| PortError::BadHostIp {
            host_ip: text.to_owned(),
        })?;
        Ok(match ip {
            IpAddr::V4(v4) if v4.is_unspecified() => HostScope::AnyV4,
            IpAddr::V6(v6) if v6.is_unspecified() => HostScope::AnyV6,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => HostScope::Addr(IpAddr::V4(v4)),
                None => HostScope::Addr(ip),
            },
            IpAddr::V4(_) => HostScope::Addr(ip),
        })
    }

    fn overlaps(self, other: HostScope) -> bool {
        use HostScope::*;
        match (self, other) {
            (Any, _) | (_, Any) => true,
            (AnyV4, AnyV4) | (AnyV6, AnyV6) => true,
            (AnyV4, Addr(ip)) | (Addr(ip), AnyV4) => ip.is_ipv4(),
            (AnyV6, Addr(ip)) | (Addr(ip), AnyV6) => ip.is_ipv6(),
            (Addr(a), Addr(b)) => a == b,
            (AnyV4, AnyV6) | (AnyV6, AnyV4) => false,
        }
    }

    /// The address as moby's allocator names it in its errors.
    fn shown(self) -> String {
        match self {
            HostScope::Any | HostScope::AnyV4 => Ipv4Addr::UNSPECIFIED.to_string(),
            HostScope::AnyV6 => Ipv6Addr::UNSPECIFIED.to_string(),
            HostScope::Addr(ip) => ip.to_string(),
        }
    }
}

/// One host port an endpoint holds, for conflicts between endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Claim {
    protocol: u8,
    scope: HostScope,
    port: u16,
}

impl Claim {
    fn conflicts(&self, other: &Claim) -> bool {
        self.protocol == other.protocol
            && self.port == other.port
            && self.scope.overlaps(other.scope)
    }
}

/// The endpoint's addresses, where bindings go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Targets {
    pub(crate) v4: Option<Ipv4Addr>,
    pub(crate) v6: Option<Ipv6Addr>,
}

/// The bindings decided for one endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Decision {
    /// For the [`crate::PortPublisher`].
    pub(crate) published: Vec<PublishedPort>,
    /// The host ports held.
    pub(crate) claims: Vec<Claim>,
}

impl Decision {
    /// For `EndpointOperInfo`: one binding per published port, as the bridge driver reports
    /// it: the container's address, and the host port chosen as `HostPort` and `HostPortEnd`;
    /// a port on every host address shows `0.0.0.0` or `::` (the container address's family).
    pub(crate) fn reported(&self) -> Vec<PortBinding> {
        self.published
            .iter()
            .map(|p| {
                let host_ip = match (p.host_ip, p.container_ip) {
                    (Some(ip), _) => ip,
                    (None, IpAddr::V4(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    (None, IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                };
                PortBinding {
                    proto: p.protocol,
                    ip: p.container_ip.to_string(),
                    port: p.container_port,
                    host_ip: host_ip.to_string(),
                    host_port: p.host_port,
                    host_port_end: p.host_port,
                }
            })
            .collect()
    }
}

/// Why the bindings asked for cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// A protocol other than TCP, UDP and SCTP.
    #[error(
        "port binding {index} ({port}): protocol {proto} is not supported; \
         expected 6 (tcp), 17 (udp) or 132 (sctp)"
    )]
    Protocol {
        /// The binding's place in the request, from 0.
        index: usize,
        /// Its container port.
        port: u16,
        /// Its protocol number.
        proto: u8,
    },
    /// Container port 0.
    #[error("port binding {index}: container port 0 is not a port; expected 1-65535")]
    ContainerPort {
        /// The binding's place in the request, from 0.
        index: usize,
    },
    /// A host port range that is not one.
    #[error(
        "port binding {index} ({port}/{proto}): host ports {start}-{end} are not a range; \
         expected HostPort 1-65535 and HostPortEnd 0 or from HostPort to 65535, or both 0 for any port"
    )]
    HostRange {
        /// The binding's place in the request, from 0.
        index: usize,
        /// Its container port.
        port: u16,
        /// Its protocol's name.
        proto: &'static str,
        /// `HostPort`.
        start: u16,
        /// `HostPortEnd`.
        end: u16,
    },
    /// A `HostIP` that is not an IP address.
    #[error(
        "HostIP {host_ip:?} is not an IP address such as 127.0.0.1 or fd00::1 (or empty for all)"
    )]
    BadHostIp {
        /// As Docker sent it.
        host_ip: String,
    },
    /// An IPv6 loopback `HostIP`: the kernel never forwards a packet from `::1` to another
    /// interface, so no DNAT can publish there.
    #[error(
        "Bind for [{host_ip}]:{port} failed: a Calico network cannot publish on the IPv6 \
         loopback address (the kernel does not forward from it); publish on 127.0.0.1 or on \
         every address"
    )]
    LoopbackV6 {
        /// The host address.
        host_ip: String,
        /// The host port asked for (0: any).
        port: u16,
    },
    /// A `HostIP` of a family the endpoint has no address of.
    #[error("Bind for {host_ip}:{port} failed: the endpoint has no IPv{version} address to forward it to")]
    NoTarget {
        /// The host address.
        host_ip: String,
        /// The host port asked for (0: any).
        port: u16,
        /// 4 or 6.
        version: u8,
    },
    /// The host port is taken (moby's text).
    #[error("Bind for {host_ip}:{port} failed: port is already allocated")]
    Allocated {
        /// The host address, as moby shows it.
        host_ip: String,
        /// The host port.
        port: u16,
    },
    /// Every port of the range is taken (moby's "all ports are allocated").
    #[error("Bind for {host_ip}:{start}-{end} failed: all ports are allocated")]
    Exhausted {
        /// The host address, as moby shows it.
        host_ip: String,
        /// The range's first port.
        start: u16,
        /// The range's last port.
        end: u16,
    },
}

/// The protocols Docker publishes ports for, by their names in [`Protocol::NAMES`].
const PUBLISHABLE: [&str; 3] = ["tcp", "udp", "sctp"];

/// The name of a protocol ports can be published for, by its IANA number (6 is `tcp`).
pub(crate) fn publishable_name(proto: u8) -> Option<&'static str> {
    Protocol::NAMES
        .iter()
        .find(|(name, number)| *number == proto && PUBLISHABLE.contains(name))
        .map(|(name, _)| *name)
}

/// The IANA number of a protocol ports can be published for, by its name as Docker writes it
/// in `80/tcp`.
pub(crate) fn publishable_number(name: &str) -> Option<u8> {
    Protocol::NAMES
        .iter()
        .find(|(known, _)| *known == name && PUBLISHABLE.contains(known))
        .map(|(_, number)| *number)
}

/// Decides the bindings of `requested` for an endpoint with addresses `targets`, given the
/// host ports other endpoints hold (`taken`) and the range of "any free port". All or nothing:
/// the first binding that cannot be made refuses the request.
pub(crate) fn decide<'a>(
    requested: &[PortBinding],
    targets: Targets,
    taken: impl IntoIterator<Item = &'a Claim>,
    ephemeral: RangeInclusive<u16>,
) -> Result<Decision, PortError> {
    let mut held: Vec<Claim> = taken.into_iter().copied().collect();
    let mut decision = Decision::default();
    for (index, binding) in requested.iter().enumerate() {
        let proto = publishable_name(binding.proto).ok_or(PortError::Protocol {
            index,
            port: binding.port,
            proto: binding.proto,
        })?;
        if binding.port == 0 {
            return Err(PortError::ContainerPort { index });
        }
        let (start, end) = (binding.host_port, binding.host_port_end);
        let candidates = match (start, end) {
            (0, 0) => ephemeral.clone(),
            (0, _) => {
                return Err(PortError::HostRange {
                    index,
                    port: binding.port,
                    proto,
                    start,
                    end,
                })
            }
            (start, 0) => start..=start,
            (start, end) if end < start => {
                return Err(PortError::HostRange {
                    index,
                    port: binding.port,
                    proto,
                    start,
                    end,
                })
            }
            (start, end) => start..=end,
        };
        let scope = HostScope::parse(&binding.host_ip)?;
        if let HostScope::Addr(IpAddr::V6(v6)) = scope {
            if v6.is_loopback() {
                return Err(PortError::LoopbackV6 {
                    host_ip: v6.to_string(),
                    port: start,
                });
            }
        }
        let to: Vec<(IpAddr, Option<IpAddr>)> = match scope {
            HostScope::Any => {
                let both: Vec<_> = [targets.v4.map(IpAddr::V4), targets.v6.map(IpAddr::V6)]
                    .into_iter()
                    .flatten()
                    .map(|ip| (ip, None))
                    .collect();
                if both.is_empty() {
                    return Err(PortError::NoTarget {
                        host_ip: scope.shown(),
                        port: start,
                        version: 4,
                    });
                }
                both
            }
            HostScope::AnyV4 | HostScope::Addr(IpAddr::V4(_)) => {
                let v4 = targets.v4.ok_or_else(|| PortError::NoTarget {
                    host_ip: scope.shown(),
                    port: start,
                    version: 4,
                })?;
                vec![(IpAddr::V4(v4), host_addr(scope))]
            }
            HostScope::AnyV6 | HostScope::Addr(IpAddr::V6(_)) => {
                let v6 = targets.v6.ok_or_else(|| PortError::NoTarget {
                    host_ip: scope.shown(),
                    port: start,
                    version: 6,
                })?;
                vec![(IpAddr::V6(v6), host_addr(scope))]
            }
        };
        let free = |port: u16| {
            let claim = Claim {
                protocol: binding.proto,
                scope,
                port,
            };
            (!held.iter().any(|h| h.conflicts(&claim))).then_some(claim)
        };
        let fixed = candidates.start() == candidates.end();
        let claim = candidates.clone().find_map(free).ok_or_else(|| {
            if fixed {
                PortError::Allocated {
                    host_ip: scope.shown(),
                    port: *candidates.start(),
                }
            } else {
                PortError::Exhausted {
                    host_ip: scope.shown(),
                    start: *candidates.start(),
                    end: *candidates.end(),
                }
            }
        })?;
        held.push(claim);
        decision.claims.push(claim);
        for (container_ip, host_ip) in to {
            decision.published.push(PublishedPort {
                protocol: binding.proto,
                host_ip,
                host_port: claim.port,
                container_ip,
                container_port: binding.port,
            });
        }
    }
    Ok(decision)
}

fn host_addr(scope: HostScope) -> Option<IpAddr> {
    match scope {
        HostScope::Addr(ip) => Some(ip),
        HostScope::Any | HostScope::AnyV4 | HostScope::AnyV6 => None,
    }
}

/// Parses the kernel's `ip_local_port_range` (`"32768\t60999\n"`); `None` unless it is two
/// ports, the first not above the second.
pub(crate) fn parse_port_range(text: &str) -> Option<RangeInclusive<u16>> {
    let mut fields = text.split_whitespace();
    let start: u16 = fields.next()?.parse().ok()?;
    let end: u16 = fields.next()?.parse().ok()?;
    (fields.next().is_none() && start >= 1 && start <= end).then_some(start..=end)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: u8 = 6;
    const UDP: u8 = 17;

    fn bind(
        proto: u8,
        port: u16,
        host_ip: &str,
        host_port: u16,
        host_port_end: u16,
    ) -> PortBinding {
        PortBinding {
            proto,
            ip: String::new(),
            port,
            host_ip: host_ip.into(),
            host_port,
            host_port_end,
        }
    }

    fn v4() -> Targets {
        Targets {
            v4: Some("192.168.1.2".parse().expect("v4")),
            v6: None,
        }
    }

    fn dual() -> Targets {
        Targets {
            v4: Some("192.168.1.2".parse().expect("v4")),
            v6: Some("fd00::2".parse().expect("v6")),
        }
    }

    fn ok(requested: &[PortBinding], targets: Targets, taken: &[Claim]) -> Decision {
        decide(requested, targets, taken, 49153..=65535).expect("decided")
    }

    fn err(requested: &[PortBinding], targets: Targets, taken: &[Claim]) -> String {
        decide(requested, targets, taken, 49153..=65535)
            .expect_err("refused")
            .to_string()
    }

    fn host_ports(d: &Decision) -> Vec<u16> {
        d.published.iter().map(|p| p.host_port).collect()
    }

    #[test]
    fn the_recorded_request_is_decided_in_order() {
        // `-p 8080:80 -p 127.0.0.1:9000-9001:9000-9001/udp --expose 7000 -P`, as Docker sends it.
        let requested = [
            bind(UDP, 9001, "127.0.0.1", 9001, 9001),
            bind(UDP, 9000, "127.0.0.1", 9000, 9000),
            bind(TCP, 80, "", 8080, 8080),
            bind(TCP, 7000, "", 0, 0),
        ];
        let d = ok(&requested, v4(), &[]);
        let ip: IpAddr = "192.168.1.2".parse().expect("ip");
        let lo: IpAddr = "127.0.0.1".parse().expect("ip");
        assert_eq!(
            d.published,
            vec![
                PublishedPort {
                    protocol: UDP,
                    host_ip: Some(lo),
                    host_port: 9001,
                    container_ip: ip,
                    container_port: 9001
                },
                PublishedPort {
                    protocol: UDP,
                    host_ip: Some(lo),
                    host_port: 9000,
                    container_ip: ip,
                    container_port: 9000
                },
                PublishedPort {
                    protocol: TCP,
                    host_ip: None,
                    host_port: 8080,
                    container_ip: ip,
                    container_port: 80
                },
                PublishedPort {
                    protocol: TCP,
                    host_ip: None,
                    host_port: 49153,
                    container_ip: ip,
                    container_port: 7000
                },
            ]
        );
        let reported = d.reported();
        assert_eq!(
            reported[2],
            PortBinding {
                proto: TCP,
                ip: "192.168.1.2".into(),
                port: 80,
                host_ip: "0.0.0.0".into(),
                host_port: 8080,
                host_port_end: 8080
            }
        );
        assert_eq!(reported[0].host_ip, "127.0.0.1");
        assert_eq!(reported[3].host_port_end, 49153);
        assert_eq!(d.claims.len(), 4);
    }

    #[test]
    fn an_empty_request_publishes_nothing() {
        assert_eq!(ok(&[], v4(), &[]), Decision::default());
    }

    #[test]
    fn host_port_end_zero_means_the_host_port() {
        let d = ok(&[bind(TCP, 80, "", 8080, 0)], v4(), &[]);
        assert_eq!(host_ports(&d), vec![8080]);
    }

    #[test]
    fn a_range_takes_its_first_free_port() {
        let first = ok(&[bind(TCP, 80, "", 8000, 8002)], v4(), &[]);
        assert_eq!(host_ports(&first), vec![8000]);
        let second = ok(&[bind(TCP, 81, "", 8000, 8002)], v4(), &first.claims);
        assert_eq!(host_ports(&second), vec![8001]);
        let taken: Vec<Claim> = first.claims.iter().chain(&second.claims).copied().collect();
        let third = ok(&[bind(TCP, 82, "", 8000, 8002)], v4(), &taken);
        assert_eq!(host_ports(&third), vec![8002]);
        let taken: Vec<Claim> = taken.iter().chain(&third.claims).copied().collect();
        assert_eq!(
            err(&[bind(TCP, 83, "", 8000, 8002)], v4(), &taken),
            "Bind for 0.0.0.0:8000-8002 failed: all ports are allocated"
        );
    }

    #[test]
    fn any_port_comes_from_the_ephemeral_range_and_skips_taken_ones() {
        let taken = ok(&[bind(TCP, 80, "", 40000, 0)], v4(), &[]).claims;
        let d = decide(&[bind(TCP, 7000, "", 0, 0)], v4(), &taken, 40000..=40001).expect("decided");
        assert_eq!(host_ports(&d), vec![40001]);
        let taken: Vec<Claim> = taken.iter().chain(&d.claims).copied().collect();
        assert_eq!(
            decide(&[bind(TCP, 7001, "", 0, 0)], v4(), &taken, 40000..=40001)
                .expect_err("full")
                .to_string(),
            "Bind for 0.0.0.0:40000-40001 failed: all ports are allocated"
        );
    }

    #[test]
    fn a_taken_port_refuses_with_dockers_text() {
        let taken = ok(&[bind(TCP, 80, "", 8080, 8080)], v4(), &[]).claims;
        assert_eq!(
            err(&[bind(TCP, 81, "", 8080, 8080)], v4(), &taken),
            "Bind for 0.0.0.0:8080 failed: port is already allocated"
        );
        assert_eq!(
            err(&[bind(TCP, 81, "10.0.0.1", 8080, 8080)], v4(), &taken),
            "Bind for 10.0.0.1:8080 failed: port is already allocated"
        );
        // Within one request too; nothing of it is decided.
        assert_eq!(
            err(
                &[bind(TCP, 80, "", 9090, 0), bind(TCP, 81, "", 9090, 0)],
                v4(),
                &[]
            ),
            "Bind for 0.0.0.0:9090 failed: port is already allocated"
        );
    }

    #[test]
    fn conflicts_need_the_same_protocol_port_and_overlapping_host_addresses() {
        let claim = |proto, host_ip: &str, port| {
            ok(&[bind(proto, 1, host_ip, port, port)], dual(), &[]).claims[0]
        };
        let cases = [
            // (held, asked, conflict)
            (claim(TCP, "", 80), claim(UDP, "", 80), false),
            (claim(TCP, "", 80), claim(TCP, "", 81), false),
            (claim(TCP, "", 80), claim(TCP, "127.0.0.1", 80), true),
            (claim(TCP, "", 80), claim(TCP, "fd00::1", 80), true),
            (claim(TCP, "127.0.0.1", 80), claim(TCP, "", 80), true),
            (
                claim(TCP, "127.0.0.1", 80),
                claim(TCP, "127.0.0.2", 80),
                false,
            ),
            (
                claim(TCP, "127.0.0.1", 80),
                claim(TCP, "127.0.0.1", 80),
                true,
            ),
            (claim(TCP, "0.0.0.0", 80), claim(TCP, "127.0.0.1", 80), true),
            (claim(TCP, "0.0.0.0", 80), claim(TCP, "fd00::1", 80), false),
            (claim(TCP, "0.0.0.0", 80), claim(TCP, "::", 80), false),
            (claim(TCP, "::", 80), claim(TCP, "fd00::1", 80), true),
            (claim(TCP, "::", 80), claim(TCP, "10.0.0.1", 80), false),
            (
                claim(TCP, "::ffff:10.0.0.1", 80),
                claim(TCP, "10.0.0.1", 80),
                true,
            ),
            (claim(TCP, "fd00::1", 80), claim(TCP, "FD00:0::1", 80), true),
        ];
        for (held, asked, conflict) in cases {
            assert_eq!(held.conflicts(&asked), conflict, "{held:?} vs {asked:?}");
            assert_eq!(asked.conflicts(&held), conflict, "{asked:?} vs {held:?}");
        }
    }

    #[test]
    fn targets_follow_the_host_address_family() {
        let d = ok(
            &[
                bind(TCP, 80, "", 8080, 0),
                bind(TCP, 81, "fd00::7", 8081, 0),
                bind(TCP, 82, "0.0.0.0", 8082, 0),
                bind(TCP, 83, "::", 8083, 0),
            ],
            dual(),
            &[],
        );
        let to: Vec<(Option<IpAddr>, u16, String)> = d
            .published
            .iter()
            .map(|p| (p.host_ip, p.host_port, p.container_ip.to_string()))
            .collect();
        let one6: IpAddr = "fd00::7".parse().expect("ip");
        assert_eq!(
            to,
            vec![
                (None, 8080, "192.168.1.2".into()),
                (None, 8080, "fd00::2".into()),
                (Some(one6), 8081, "fd00::2".into()),
                (None, 8082, "192.168.1.2".into()),
                (None, 8083, "fd00::2".into()),
            ]
        );
        let reported = d.reported();
        let hosts: Vec<&str> = reported.iter().map(|b| b.host_ip.as_str()).collect();
        assert_eq!(hosts, vec!["0.0.0.0", "::", "fd00::7", "0.0.0.0", "::"]);
        assert_eq!(d.claims.len(), 4, "one claim per binding asked for");

        let v6_only = Targets {
            v4: None,
            v6: Some("fd00::2".parse().expect("v6")),
        };
        let d = ok(&[bind(TCP, 80, "", 8080, 0)], v6_only, &[]);
        assert_eq!(d.published.len(), 1);
        assert!(d.published[0].container_ip.is_ipv6());
    }

    #[test]
    fn a_host_address_of_a_family_the_endpoint_lacks_is_refused() {
        assert_eq!(
            err(&[bind(TCP, 80, "fd00::9", 8080, 0)], v4(), &[]),
            "Bind for fd00::9:8080 failed: the endpoint has no IPv6 address to forward it to"
        );
        assert_eq!(
            err(&[bind(TCP, 80, "::1", 8080, 0)], v4(), &[]),
            "Bind for [::1]:8080 failed: a Calico network cannot publish on the IPv6 loopback \
             address (the kernel does not forward from it); publish on 127.0.0.1 or on every address"
        );
        let v6_only = Targets {
            v4: None,
            v6: Some("fd00::2".parse().expect("v6")),
        };
        assert_eq!(
            err(&[bind(TCP, 80, "127.0.0.1", 8080, 0)], v6_only, &[]),
            "Bind for 127.0.0.1:8080 failed: the endpoint has no IPv4 address to forward it to"
        );
        assert_eq!(
            err(&[bind(TCP, 80, "", 8080, 0)], Targets::default(), &[]),
            "Bind for 0.0.0.0:8080 failed: the endpoint has no IPv4 address to forward it to"
        );
    }

    #[test]
    fn malformed_bindings_are_refused_with_what_is_wrong() {
        let cases = [
            (
                bind(1, 80, "", 8080, 0),
                "port binding 0 (80): protocol 1 is not supported; expected 6 (tcp), 17 (udp) or 132 (sctp)",
            ),
            (
                bind(TCP, 0, "", 8080, 0),
                "port binding 0: container port 0 is not a port; expected 1-65535",
            ),
            (
                bind(UDP, 53, "", 8080, 8000),
                "port binding 0 (53/udp): host ports 8080-8000 are not a range; expected HostPort 1-65535 and HostPortEnd 0 or from HostPort to 65535, or both 0 for any port",
            ),
            (
                bind(TCP, 80, "", 0, 8000),
                "port binding 0 (80/tcp): host ports 0-8000 are not a range; expected HostPort 1-65535 and HostPortEnd 0 or from HostPort to 65535, or both 0 for any port",
            ),
            (
                bind(TCP, 80, "localhost", 8080, 0),
                "HostIP \"localhost\" is not an IP address such as 127.0.0.1 or fd00::1 (or empty for all)",
            ),
        ];
        for (binding, text) in cases {
            assert_eq!(
                err(std::slice::from_ref(&binding), v4(), &[]),
                text,
                "{binding:?}"
            );
        }
        let sctp = ok(&[bind(132, 9, "", 9, 0)], v4(), &[]);
        assert_eq!(sctp.published[0].protocol, 132);
        // The second binding is bad: nothing is decided.
        assert!(decide(
            &[bind(TCP, 80, "", 8080, 0), bind(99, 81, "", 8081, 0)],
            v4(),
            &[],
            DOCKER_FALLBACK_EPHEMERAL
        )
        .is_err());
    }

    #[test]
    fn tcp_udp_and_sctp_are_the_publishable_protocols() {
        for (name, number) in [("tcp", 6), ("udp", 17), ("sctp", 132)] {
            assert_eq!(publishable_name(number), Some(name));
            assert_eq!(publishable_number(name), Some(number));
        }
        for (name, number) in [("icmp", 1), ("udplite", 136)] {
            assert_eq!(publishable_name(number), None, "{name}");
            assert_eq!(publishable_number(name), None, "{name}");
        }
        assert_eq!(publishable_number("6"), None);
        assert_eq!(publishable_number("TCP"), None);
    }

    #[test]
    fn the_kernel_port_range_is_parsed() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some(32768..=60999));
        assert_eq!(parse_port_range("1024 1024"), Some(1024..=1024));
        assert_eq!(parse_port_range("60999 32768"), None);
        assert_eq!(parse_port_range("0 100"), None);
        assert_eq!(parse_port_range("32768"), None);
        assert_eq!(parse_port_range("1 2 3"), None);
        assert_eq!(parse_port_range("a b"), None);
        assert_eq!(parse_port_range("1 70000"), None);
    }
}
