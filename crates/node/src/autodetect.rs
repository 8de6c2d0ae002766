//! IPv4 address autodetection, as Calico's `IP_AUTODETECTION_METHOD`, and the reading of this
//! host's interfaces and addresses for the host endpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs, UdpSocket};

use anyhow::{anyhow, bail, Context, Result};
use calico_model::endpoint_naming::HOST_INTERFACE_PREFIX;
use calico_model::Cidr;
use ipnet::{IpNet, Ipv4Net};
use regex_lite::Regex;

/// Interfaces `first-found` never picks (Calico's list, plus Docker's `br-` bridges).
const EXCLUDED: &[&str] = &[
    "docker.*",
    "br-.*",
    "cbr.*",
    "dummy.*",
    "virbr.*",
    "lxcbr.*",
    "veth.*",
    "lo",
    "cali.*",
    "tunl.*",
    "flannel.*",
];

/// How to find this node's IPv4 address.
#[derive(Debug, Clone)]
pub enum Method {
    /// The first valid address on the first interface not in the excluded list.
    FirstFound,
    /// The source address the kernel would use to reach this IP or host name.
    CanReach(String),
    /// The first address on the first interface matching any of these patterns.
    Interface(Vec<Regex>),
    /// Like first-found, also skipping interfaces matching these patterns.
    SkipInterface(Vec<Regex>),
}

impl PartialEq for Method {
    fn eq(&self, other: &Self) -> bool {
        let patterns = |p: &[Regex]| p.iter().map(|r| r.as_str().to_string()).collect::<Vec<_>>();
        match (self, other) {
            (Method::FirstFound, Method::FirstFound) => true,
            (Method::CanReach(a), Method::CanReach(b)) => a == b,
            (Method::Interface(a), Method::Interface(b))
            | (Method::SkipInterface(a), Method::SkipInterface(b)) => patterns(a) == patterns(b),
            _ => false,
        }
    }
}

impl Eq for Method {}

impl Method {
    /// Parses `first-found`, `can-reach=<ip or name>`, `interface=<regex,...>` or
    /// `skip-interface=<regex,...>`.
    pub fn parse(text: &str) -> Result<Method> {
        let text = text.trim();
        if text == "first-found" {
            return Ok(Method::FirstFound);
        }
        match text.split_once('=') {
            Some(("can-reach", dest)) if !dest.is_empty() => Ok(Method::CanReach(dest.into())),
            Some(("interface", list)) if !list.is_empty() => Ok(Method::Interface(patterns(list)?)),
            Some(("skip-interface", list)) if !list.is_empty() => {
                Ok(Method::SkipInterface(patterns(list)?))
            }
            _ => bail!(
                "IP_AUTODETECTION_METHOD={text:?}: use first-found, can-reach=<ip or name>, \
                 interface=<regex,...> or skip-interface=<regex,...>"
            ),
        }
    }

    /// Finds the address (with its interface's prefix length) on this host.
    pub fn detect(&self) -> Result<Cidr> {
        let addrs = interface_addresses()?;
        let found = match self {
            Method::FirstFound => first_found(&addrs, &[]),
            Method::SkipInterface(skip) => first_found(&addrs, skip),
            Method::Interface(patterns) => addrs
                .iter()
                .find(|(name, _)| patterns.iter().any(|p| full_match(p, name)))
                .map(|(_, net)| *net),
            Method::CanReach(dest) => {
                let source = source_for(dest)?;
                addrs
                    .iter()
                    .map(|(_, net)| *net)
                    .find(|net| net.addr() == source)
            }
        };
        found
            .map(|net| Cidr::from(IpNet::V4(net)))
            .ok_or_else(|| anyhow!("no IPv4 address found with autodetection method {self:?}"))
    }
}

fn patterns(list: &str) -> Result<Vec<Regex>> {
    list.split(',')
        .map(|p| Regex::new(p.trim()).map_err(|e| anyhow!("bad interface pattern {p:?}: {e}")))
        .collect()
}

fn full_match(pattern: &Regex, name: &str) -> bool {
    pattern
        .find(name)
        .is_some_and(|m| m.start() == 0 && m.end() == name.len())
}

fn first_found(addrs: &[(String, Ipv4Net)], skip: &[Regex]) -> Option<Ipv4Net> {
    let excluded: Vec<Regex> = EXCLUDED.iter().filter_map(|p| Regex::new(p).ok()).collect();
    addrs
        .iter()
        .filter(|(name, _)| !excluded.iter().chain(skip).any(|p| full_match(p, name)))
        .map(|(_, net)| *net)
        .find(|net| usable(net.addr()))
}

fn usable(ip: Ipv4Addr) -> bool {
    !(ip.is_loopback() || ip.is_link_local() || ip.is_unspecified() || ip.is_multicast())
}

/// Every IPv4 address on this host's interfaces, in the kernel's order.
pub(crate) fn interface_addresses() -> Result<Vec<(String, Ipv4Net)>> {
    let mut out = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().context("cannot list interface addresses")? {
        let addr = ifa
            .address
            .as_ref()
            .and_then(|a| a.as_sockaddr_in())
            .map(|a| a.ip());
        let mask = ifa
            .netmask
            .as_ref()
            .and_then(|a| a.as_sockaddr_in())
            .map(|a| a.ip());
        if let (Some(addr), Some(mask)) = (addr, mask) {
            let prefix = u32::from(mask).leading_ones() as u8;
            if let Ok(net) = Ipv4Net::new(addr, prefix) {
                out.push((ifa.interface_name, net));
            }
        }
    }
    Ok(out)
}

/// Every interface of this host but the workloads' (`cali*`), up or down, with its IPv4 and
/// IPv6 addresses (possibly none), as Felix's interface monitor sees them for the host
/// endpoints.
pub(crate) fn host_interfaces() -> Result<BTreeMap<String, BTreeSet<IpAddr>>> {
    let entries = nix::ifaddrs::getifaddrs().context("cannot list interface addresses")?;
    Ok(non_workload(entries.map(|ifa| {
        let address = ifa.address.as_ref().and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| IpAddr::V4(v4.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
        });
        (ifa.interface_name, address)
    })))
}

/// The interfaces of `entries` (one per address, or with none for a link of its own) that are
/// not workloads', with their addresses.
fn non_workload(
    entries: impl Iterator<Item = (String, Option<IpAddr>)>,
) -> BTreeMap<String, BTreeSet<IpAddr>> {
    let mut interfaces: BTreeMap<String, BTreeSet<IpAddr>> = BTreeMap::new();
    for (name, address) in entries {
        if name.starts_with(HOST_INTERFACE_PREFIX) {
            continue;
        }
        let addresses = interfaces.entry(name).or_default();
        addresses.extend(address);
    }
    interfaces
}

/// The local address the kernel would use to reach `dest` (the UDP-connect trick; no packet is sent).
fn source_for(dest: &str) -> Result<Ipv4Addr> {
    let target = (dest, 80)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {dest:?}"))?
        .find(|a| a.is_ipv4())
        .ok_or_else(|| anyhow!("{dest:?} has no IPv4 address"))?;
    let socket = UdpSocket::bind("0.0.0.0:0").context("cannot open a UDP socket")?;
    socket
        .connect(target)
        .with_context(|| format!("no route to {dest}"))?;
    match socket.local_addr()?.ip() {
        IpAddr::V4(ip) => Ok(ip),
        IpAddr::V6(ip) => bail!("route to {dest} uses IPv6 source {ip}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn parses_every_method() {
        assert_eq!(Method::parse("first-found").unwrap(), Method::FirstFound);
        assert_eq!(
            Method::parse("can-reach=8.8.8.8").unwrap(),
            Method::CanReach("8.8.8.8".into())
        );
        assert!(matches!(
            Method::parse("interface=eth.*,ens3").unwrap(),
            Method::Interface(p) if p.len() == 2
        ));
        assert!(Method::parse("interface=").is_err());
        assert!(Method::parse("interface=(").is_err());
        assert!(Method::parse("nearest").is_err());
    }

    #[test]
    fn first_found_skips_excluded_interfaces_and_unusable_addresses() {
        let addrs = vec![
            ("lo".to_string(), net("127.0.0.1/8")),
            ("docker0".to_string(), net("172.17.0.1/16")),
            ("br-1234".to_string(), net("172.18.0.1/16")),
            ("cali1234567890a".to_string(), net("10.9.9.9/32")),
            ("eth9".to_string(), net("169.254.3.3/16")),
            ("eth0".to_string(), net("10.10.0.11/24")),
            ("eth1".to_string(), net("10.20.0.11/24")),
        ];
        assert_eq!(first_found(&addrs, &[]), Some(net("10.10.0.11/24")));
        let skip = patterns("eth0").unwrap();
        assert_eq!(first_found(&addrs, &skip), Some(net("10.20.0.11/24")));
    }

    #[test]
    fn patterns_match_whole_names() {
        let p = Regex::new("eth.*").unwrap();
        assert!(full_match(&p, "eth0"));
        assert!(!full_match(&p, "veth0"));
    }

    #[test]
    fn host_interfaces_leave_out_workloads_and_keep_interfaces_without_addresses() {
        let entry =
            |name: &str, ip: Option<&str>| (name.to_string(), ip.map(|i| i.parse().unwrap()));
        let entries = [
            entry("lo", None),
            entry("lo", Some("127.0.0.1")),
            entry("lo", Some("::1")),
            entry("eth0", None),
            entry("eth0", Some("10.0.0.5")),
            entry("eth0", Some("10.0.0.6")),
            entry("eth0", Some("fe80::1")),
            entry("eth1", None),
            entry("cali0123456789a", None),
            entry("cali0123456789a", Some("fe80::ecee:eeff:feee:eeee")),
        ];
        let ips = |list: &[&str]| list.iter().map(|i| i.parse().unwrap()).collect();
        assert_eq!(
            non_workload(entries.into_iter()),
            BTreeMap::from([
                (
                    "eth0".to_string(),
                    ips(&["10.0.0.5", "10.0.0.6", "fe80::1"])
                ),
                ("eth1".to_string(), BTreeSet::new()),
                ("lo".to_string(), ips(&["127.0.0.1", "::1"])),
            ])
        );
        let here = host_interfaces().unwrap();
        assert!(
            here["lo"].contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "{here:?}"
        );
        assert!(
            !here.keys().any(|name| name.starts_with("cali")),
            "{here:?}"
        );
    }

    #[test]
    fn can_reach_finds_the_loopback_source() {
        assert_eq!(source_for("127.0.0.1").unwrap(), Ipv4Addr::LOCALHOST);
    }
}
