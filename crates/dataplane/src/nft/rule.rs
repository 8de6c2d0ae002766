//! One calculation-graph [`Rule`] as nft rule bodies (match expressions and a verdict).
//!
//! A rule renders to at most one line per IP family, as in Felix, which renders every rule once
//! for IPv4 and once for IPv6:
//! - a rule with no family-specific criterion (no nets, IP sets or ICMP match) renders once,
//!   with `meta nfproto` only when `ip_version` restricts it;
//! - otherwise each family gets its own line (`ip saddr …` / `ip6 saddr …`, `@s4-…` / `@s6-…`,
//!   `icmp` / `icmpv6`), and a family is skipped when filtering a non-empty `nets` or `not_nets`
//!   list to that family leaves it empty (Felix's `filterNets` rule);
//! - a rule that can never match (ports with a protocol that has none, an ICMP match with a
//!   non-ICMP protocol, only inverted port ranges, an unknown `ip_version`) renders to nothing.
//!
//! Lists are OR-ed inside one match (anonymous sets) and matches are AND-ed. Ports without a
//! protocol are restricted to the protocols that have ports (tcp, udp, sctp, udplite).

use std::net::IpAddr;

use calico_calc::desired::{IcmpMatch, PortRange, ProtocolNumber, Rule, SideMatch};
use ipnet::IpNet;

use super::names::{object_name, SET_V4, SET_V6};

const ICMP: ProtocolNumber = 1;
const ICMPV6: ProtocolNumber = 58;
/// Protocols whose header starts with 16-bit source and destination ports.
const PORT_PROTOCOLS: [ProtocolNumber; 4] = [6, 17, 132, 136];

/// An IP family of the `inet` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    V4,
    V6,
}

impl Family {
    /// Both families, IPv4 first.
    pub(crate) const BOTH: [Family; 2] = [Family::V4, Family::V6];

    /// The payload protocol keyword for addresses (`ip` / `ip6`).
    pub(crate) fn payload(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        }
    }

    /// The `meta nfproto` value.
    pub(crate) fn nfproto(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }

    /// The ICMP header keyword of this family.
    fn icmp(self) -> &'static str {
        match self {
            Family::V4 => "icmp",
            Family::V6 => "icmpv6",
        }
    }

    /// The nft set element type.
    pub(crate) fn set_type(self) -> &'static str {
        match self {
            Family::V4 => "ipv4_addr",
            Family::V6 => "ipv6_addr",
        }
    }

    /// The name of this family's half of IP set `id`.
    pub(crate) fn set_name(self, id: &str) -> String {
        match self {
            Family::V4 => object_name(SET_V4, id),
            Family::V6 => object_name(SET_V6, id),
        }
    }

    /// The name of this family's pool set `base` ([`super::names::ALL_POOLS`], …): `base4`.
    pub(crate) fn pool_set_name(self, base: &str) -> String {
        match self {
            Family::V4 => format!("{base}4"),
            Family::V6 => format!("{base}6"),
        }
    }

    /// The family of `ip`.
    pub(crate) fn of(ip: &IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// True when `net` belongs to this family.
    pub(crate) fn holds(self, net: &IpNet) -> bool {
        matches!(
            (self, net),
            (Family::V4, IpNet::V4(_)) | (Family::V6, IpNet::V6(_))
        )
    }

    /// `<payload> <field> <op><value>`, e.g. `ip saddr != @s4-x`.
    fn addr(self, field: &str, op: &str, value: &str) -> String {
        format!("{} {field} {op}{value}", self.payload())
    }
}

/// The IP sets `rule` refers to, in order of appearance (possibly repeated).
pub(crate) fn referenced_sets(rule: &Rule) -> impl Iterator<Item = &String> {
    [&rule.source, &rule.destination]
        .into_iter()
        .flat_map(|side| side.in_sets.iter().chain(&side.not_in_sets))
}

/// The nft rule bodies for `rule`, each ending with `verdict` (which may be empty).
pub(crate) fn render_rule(rule: &Rule, verdict: &str) -> Vec<String> {
    let families: &[Family] = match rule.ip_version {
        None => &Family::BOTH,
        Some(4) => &Family::BOTH[..1],
        Some(6) => &Family::BOTH[1..],
        Some(_) => &[],
    };
    if family_specific(rule) {
        families
            .iter()
            .filter_map(|family| line(rule, Some(*family), verdict))
            .collect()
    } else {
        let family = match families {
            [] => return Vec::new(),
            [only] => Some(*only),
            _ => None,
        };
        line(rule, family, verdict)
            .map(|body| match family {
                Some(f) => format!("meta nfproto {} {body}", f.nfproto()),
                None => body,
            })
            .into_iter()
            .collect()
    }
}

/// True when the rule needs different expressions per family.
fn family_specific(rule: &Rule) -> bool {
    let side = |s: &SideMatch| {
        !(s.nets.is_empty()
            && s.not_nets.is_empty()
            && s.in_sets.is_empty()
            && s.not_in_sets.is_empty())
    };
    side(&rule.source) || side(&rule.destination) || rule.icmp.is_some() || rule.not_icmp.is_some()
}

/// One line of `rule` for `family` (`None`: no address criterion to render), or `None` when it
/// cannot match.
fn line(rule: &Rule, family: Option<Family>, verdict: &str) -> Option<String> {
    let has_ports = [&rule.source, &rule.destination]
        .iter()
        .any(|s| !s.ports.is_empty() || !s.not_ports.is_empty());
    let mut parts = Vec::new();
    match rule.protocol {
        Some(p) if has_ports && !PORT_PROTOCOLS.contains(&p) => return None,
        Some(p) => parts.push(format!("meta l4proto {p}")),
        None if has_ports => parts.push(format!("meta l4proto {}", list(&PORT_PROTOCOLS))),
        None => {}
    }
    if let Some(p) = rule.not_protocol {
        parts.push(format!("meta l4proto != {p}"));
    }
    side(&mut parts, &rule.source, family, "saddr", "sport")?;
    side(&mut parts, &rule.destination, family, "daddr", "dport")?;
    if let Some(family) = family {
        icmp(&mut parts, rule, family)?;
    }
    if !verdict.is_empty() {
        parts.push(verdict.to_string());
    }
    Some(parts.join(" "))
}

/// Appends one side's address, set and port matches; `None` when the side cannot match.
fn side(
    parts: &mut Vec<String>,
    side: &SideMatch,
    family: Option<Family>,
    addr_field: &str,
    port_field: &str,
) -> Option<()> {
    if let Some(family) = family {
        for (nets, op) in [(&side.nets, ""), (&side.not_nets, "!= ")] {
            if nets.is_empty() {
                continue;
            }
            let ours: Vec<IpNet> = nets.iter().copied().filter(|n| family.holds(n)).collect();
            let merged = IpNet::aggregate(&ours);
            if merged.is_empty() {
                return None;
            }
            parts.push(family.addr(addr_field, op, &list(&merged)));
        }
        for (ids, op) in [(&side.in_sets, ""), (&side.not_in_sets, "!= ")] {
            for id in ids {
                let set = format!("@{}", family.set_name(id));
                parts.push(family.addr(addr_field, op, &set));
            }
        }
    }
    if !side.ports.is_empty() {
        let ranges = merge_ports(&side.ports);
        if ranges.is_empty() {
            return None;
        }
        parts.push(format!("th {port_field} {}", list(&ranges)));
    }
    let excluded = merge_ports(&side.not_ports);
    if !excluded.is_empty() {
        parts.push(format!("th {port_field} != {}", list(&excluded)));
    }
    Some(())
}

/// Appends the ICMP type/code matches for `family`; `None` when they cannot match.
fn icmp(parts: &mut Vec<String>, rule: &Rule, family: Family) -> Option<()> {
    if rule.icmp.is_none() && rule.not_icmp.is_none() {
        return Some(());
    }
    let fits = match rule.protocol {
        None => true,
        Some(ICMP) => family == Family::V4,
        Some(ICMPV6) => family == Family::V6,
        Some(_) => false,
    };
    if !fits {
        return None;
    }
    let proto = family.icmp();
    if let Some(IcmpMatch { icmp_type, code }) = rule.icmp {
        parts.push(format!("{proto} type {icmp_type}"));
        if let Some(code) = code {
            parts.push(format!("{proto} code {code}"));
        }
    }
    match rule.not_icmp {
        Some(IcmpMatch {
            icmp_type,
            code: None,
        }) => parts.push(format!("{proto} type != {icmp_type}")),
        Some(IcmpMatch {
            icmp_type,
            code: Some(code),
        }) => parts.push(format!(
            "{proto} type . {proto} code != {{ {icmp_type} . {code} }}"
        )),
        None => {}
    }
    Some(())
}

/// Sorted, coalesced port ranges, without inverted (`first > last`) ones.
fn merge_ports(ranges: &[PortRange]) -> Vec<PortRange> {
    let mut sorted: Vec<PortRange> = ranges
        .iter()
        .copied()
        .filter(|r| r.first <= r.last)
        .collect();
    sorted.sort();
    let mut merged: Vec<PortRange> = Vec::with_capacity(sorted.len());
    for range in sorted {
        match merged.last_mut() {
            Some(last) if u32::from(range.first) <= u32::from(last.last) + 1 => {
                last.last = last.last.max(range.last);
            }
            _ => merged.push(range),
        }
    }
    merged
}

/// A value that nft can print as a set element or a single match value.
trait Element {
    fn element(&self) -> String;
}

impl Element for IpNet {
    fn element(&self) -> String {
        self.to_string()
    }
}

impl Element for PortRange {
    fn element(&self) -> String {
        if self.first == self.last {
            self.first.to_string()
        } else {
            format!("{}-{}", self.first, self.last)
        }
    }
}

impl Element for ProtocolNumber {
    fn element(&self) -> String {
        self.to_string()
    }
}

/// One value bare, several as an anonymous set `{ a, b }`.
fn list<T: Element>(values: &[T]) -> String {
    match values {
        [one] => one.element(),
        _ => {
            let items: Vec<String> = values.iter().map(Element::element).collect();
            format!("{{ {} }}", items.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use calico_calc::desired::Action;

    use super::*;

    fn rule() -> Rule {
        Rule::new(Action::Allow)
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ports(list: &[(u16, u16)]) -> Vec<PortRange> {
        list.iter()
            .map(|&(first, last)| PortRange { first, last })
            .collect()
    }

    fn render(r: &Rule) -> Vec<String> {
        render_rule(r, "accept")
    }

    #[test]
    fn empty_rule_matches_everything_once() {
        assert_eq!(render(&rule()), ["accept"]);
        assert_eq!(render_rule(&rule(), ""), [""]);
    }

    #[test]
    fn ip_version_restricts_the_family() {
        let v4 = Rule {
            ip_version: Some(4),
            ..rule()
        };
        assert_eq!(render(&v4), ["meta nfproto ipv4 accept"]);
        let v6 = Rule {
            ip_version: Some(6),
            protocol: Some(6),
            ..rule()
        };
        assert_eq!(render(&v6), ["meta nfproto ipv6 meta l4proto 6 accept"]);
        let bad = Rule {
            ip_version: Some(5),
            ..rule()
        };
        assert!(render(&bad).is_empty());
    }

    #[test]
    fn protocols_and_negation() {
        let r = Rule {
            protocol: Some(17),
            not_protocol: Some(6),
            ..rule()
        };
        assert_eq!(render(&r), ["meta l4proto 17 meta l4proto != 6 accept"]);
    }

    #[test]
    fn ports_are_merged_and_negatable() {
        let mut r = Rule {
            protocol: Some(6),
            ..rule()
        };
        r.destination.ports = ports(&[(443, 443), (80, 80), (8000, 8080), (8081, 8090)]);
        r.destination.not_ports = ports(&[(8085, 8085)]);
        r.source.ports = ports(&[(1024, 65535), (2000, 3000)]);
        assert_eq!(
            render(&r),
            ["meta l4proto 6 th sport 1024-65535 th dport { 80, 443, 8000-8090 } th dport != 8085 accept"]
        );
    }

    #[test]
    fn ports_without_protocol_imply_port_protocols() {
        let mut r = rule();
        r.destination.ports = ports(&[(53, 53)]);
        assert_eq!(
            render(&r),
            ["meta l4proto { 6, 17, 132, 136 } th dport 53 accept"]
        );
        r.protocol = Some(ICMP);
        assert!(render(&r).is_empty(), "icmp has no ports");
        r.protocol = Some(17);
        r.destination.ports = ports(&[(9, 1)]);
        assert!(
            render(&r).is_empty(),
            "only an inverted range: nothing matches"
        );
        r.destination.ports.clear();
        r.destination.not_ports = ports(&[(9, 1)]);
        assert_eq!(render(&r), ["meta l4proto 17 accept"]);
    }

    #[test]
    fn nets_split_by_family() {
        let mut r = rule();
        r.source.nets = nets(&["10.0.0.0/8", "10.1.0.0/16", "fd00::/64", "192.168.1.7/24"]);
        r.destination.not_nets = nets(&["10.65.0.5/32", "fd00::5/128"]);
        assert_eq!(
            render(&r),
            [
                "ip saddr { 10.0.0.0/8, 192.168.1.0/24 } ip daddr != 10.65.0.5/32 accept",
                "ip6 saddr fd00::/64 ip6 daddr != fd00::5/128 accept",
            ]
        );
    }

    #[test]
    fn a_net_list_without_the_family_skips_that_family() {
        let mut r = rule();
        r.source.nets = nets(&["10.0.0.0/8"]);
        assert_eq!(render(&r), ["ip saddr 10.0.0.0/8 accept"]);
        let mut r = rule();
        r.destination.not_nets = nets(&["fd00::/8"]);
        assert_eq!(render(&r), ["ip6 daddr != fd00::/8 accept"]);
        let mut r = Rule {
            ip_version: Some(6),
            ..rule()
        };
        r.source.nets = nets(&["10.0.0.0/8"]);
        assert!(render(&r).is_empty());
    }

    #[test]
    fn ip_sets_are_anded_and_negatable() {
        let mut r = rule();
        r.source.in_sets = vec!["s:a".into(), "tagged".into()];
        r.destination.not_in_sets = vec!["s:b".into()];
        let (a4, a6) = (Family::V4.set_name("s:a"), Family::V6.set_name("s:a"));
        let (b4, b6) = (Family::V4.set_name("s:b"), Family::V6.set_name("s:b"));
        assert_eq!(
            render(&r),
            [
                format!("ip saddr @{a4} ip saddr @s4-tagged ip daddr != @{b4} accept"),
                format!("ip6 saddr @{a6} ip6 saddr @s6-tagged ip6 daddr != @{b6} accept"),
            ]
        );
        let ids: Vec<&String> = referenced_sets(&r).collect();
        assert_eq!(ids, ["s:a", "tagged", "s:b"]);
    }

    #[test]
    fn icmp_type_and_code() {
        let r = Rule {
            protocol: Some(ICMP),
            icmp: Some(IcmpMatch {
                icmp_type: 8,
                code: Some(0),
            }),
            ..rule()
        };
        assert_eq!(
            render(&r),
            ["meta l4proto 1 icmp type 8 icmp code 0 accept"]
        );
        let r = Rule {
            protocol: Some(ICMPV6),
            not_icmp: Some(IcmpMatch {
                icmp_type: 128,
                code: None,
            }),
            ..rule()
        };
        assert_eq!(render(&r), ["meta l4proto 58 icmpv6 type != 128 accept"]);
        let r = Rule {
            not_icmp: Some(IcmpMatch {
                icmp_type: 3,
                code: Some(4),
            }),
            ..rule()
        };
        assert_eq!(
            render(&r),
            [
                "icmp type . icmp code != { 3 . 4 } accept",
                "icmpv6 type . icmpv6 code != { 3 . 4 } accept",
            ]
        );
        let r = Rule {
            protocol: Some(6),
            icmp: Some(IcmpMatch {
                icmp_type: 8,
                code: None,
            }),
            ..rule()
        };
        assert!(render(&r).is_empty());
    }
}
