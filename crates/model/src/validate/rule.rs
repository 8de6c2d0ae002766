//! Rule checks (`validateRule`, `validateICMPFields`, `validateProtocol`, `validatePort`).

use super::{list, Checker};
use crate::rule::{EntityRule, IcmpFields, Rule};
use crate::values::{Cidr, Port, Protocol};

const PORTS_NEED_PROTOCOL: &str = "protocol does not support ports; set protocol to tcp or udp";

/// Checks one rule at `path` (e.g. `spec.ingress[0]`).
pub(super) fn rule(c: &mut Checker, path: &str, rule: &Rule) {
    if !matches!(rule.action.as_str(), "allow" | "deny" | "log" | "pass") {
        c.report(
            format!("{path}.action"),
            &rule.action,
            "invalid action: use allow, deny, log or pass",
        );
    }
    if let Some(version) = rule.ip_version {
        if version != 4 && version != 6 {
            c.report(
                format!("{path}.ipVersion"),
                version,
                "invalid IP version: use 4 or 6",
            );
        }
    }
    if let Some(p) = &rule.protocol {
        protocol(c, &format!("{path}.protocol"), p);
    }
    if let Some(p) = &rule.not_protocol {
        protocol(c, &format!("{path}.notProtocol"), p);
    }
    if let Some(icmp) = &rule.icmp {
        icmp_fields(c, &format!("{path}.icmp"), icmp);
    }
    if let Some(icmp) = &rule.not_icmp {
        icmp_fields(c, &format!("{path}.notICMP"), icmp);
    }
    entity(c, &format!("{path}.source"), &rule.source);
    entity(c, &format!("{path}.destination"), &rule.destination);

    if !rule.protocol.as_ref().is_some_and(Protocol::supports_ports) {
        for (field, ports) in [
            ("source.ports", &rule.source.ports),
            ("source.notPorts", &rule.source.not_ports),
            ("destination.ports", &rule.destination.ports),
            ("destination.notPorts", &rule.destination.not_ports),
        ] {
            if !ports.is_empty() {
                c.report(format!("{path}.{field}"), list(ports), PORTS_NEED_PROTOCOL);
            }
        }
    }
    nets(c, path, rule);
}

fn protocol(c: &mut Checker, path: &str, p: &Protocol) {
    match p {
        Protocol::Number(0) => c.report(path, p, "protocol number invalid: use 1-255"),
        Protocol::Name(_) if p.number().is_none() => c.report(
            path,
            p,
            "protocol name invalid: use tcp, udp, icmp, icmpv6, sctp, udplite or a number 1-255",
        ),
        _ => {}
    }
}

fn icmp_fields(c: &mut Checker, path: &str, icmp: &IcmpFields) {
    if let Some(t) = icmp.icmp_type {
        if !(0..=254).contains(&t) {
            c.report(format!("{path}.type"), t, "invalid ICMP type: use 0-254");
        }
    }
    if let Some(code) = icmp.code {
        if !(0..=255).contains(&code) {
            c.report(format!("{path}.code"), code, "invalid ICMP code: use 0-255");
        }
        if icmp.icmp_type.is_none() {
            c.report(
                format!("{path}.code"),
                code,
                "ICMP code specified without an ICMP type; set type as well",
            );
        }
    }
}

fn entity(c: &mut Checker, path: &str, e: &EntityRule) {
    for (field, tag) in [("tag", &e.tag), ("notTag", &e.not_tag)] {
        if !tag.is_empty() {
            c.tag(&format!("{path}.{field}"), tag);
        }
    }
    for (field, selector) in [("selector", &e.selector), ("notSelector", &e.not_selector)] {
        if !selector.is_empty() {
            c.selector(&format!("{path}.{field}"), selector);
        }
    }
    for (field, ports) in [("ports", &e.ports), ("notPorts", &e.not_ports)] {
        for (i, port) in ports.iter().enumerate() {
            port_range(c, &format!("{path}.{field}[{i}]"), port);
        }
    }
}

fn port_range(c: &mut Checker, path: &str, port: &Port) {
    if port.min > port.max {
        c.report(
            path,
            port,
            "port range invalid: the minimum port is greater than the maximum",
        );
    }
    if port.min == 0 {
        c.report(path, port, "port range invalid: ports must be 1-65535");
    }
}

/// The networks of a rule with their field paths, in Calico's scan order.
fn rule_nets<'r>(path: &str, rule: &'r Rule) -> Vec<(String, &'r Cidr)> {
    let mut out = Vec::new();
    for (side, e) in [("source", &rule.source), ("destination", &rule.destination)] {
        for (field, list, single) in [
            ("nets", &e.nets, &e.net),
            ("notNets", &e.not_nets, &e.not_net),
        ] {
            out.extend(
                list.iter()
                    .enumerate()
                    .map(|(i, n)| (format!("{path}.{side}.{field}[{i}]"), n)),
            );
            if let Some(n) = single {
                let singular = field.trim_end_matches('s');
                out.push((format!("{path}.{side}.{singular}"), n));
            }
        }
    }
    out
}

/// `net` vs `nets`, and IP-version consistency of networks and ICMP protocols.
fn nets(c: &mut Checker, path: &str, rule: &Rule) {
    let singles = [
        ("source.net", rule.source.net),
        ("source.notNet", rule.source.not_net),
        ("destination.net", rule.destination.net),
        ("destination.notNet", rule.destination.not_net),
    ];
    let has_list = [&rule.source, &rule.destination]
        .iter()
        .any(|e| !e.nets.is_empty() || !e.not_nets.is_empty());
    if let Some((field, Some(net))) = singles.iter().find(|(_, n)| n.is_some()) {
        if has_list {
            c.report(
                format!("{path}.{field}"),
                net,
                "only one of net/notNet and nets/notNets may be used in a rule; use nets/notNets",
            );
        }
    }

    let declared = rule.ip_version.filter(|v| *v == 4 || *v == 6);
    let nets = rule_nets(path, rule);
    let mut seen: Option<u8> = None;
    for (net_path, net) in &nets {
        let version = net.version();
        match declared {
            Some(v) if v != i64::from(version) => c.report(
                net_path,
                net,
                format!("rule IP version doesn't match CIDR version: the rule has ipVersion {v}"),
            ),
            Some(_) => {}
            None if seen.is_some_and(|s| s != version) => c.report(
                net_path,
                net,
                "rule contains both IPv4 and IPv6 CIDRs; split it into one rule per IP version",
            ),
            None => seen = seen.or(Some(version)),
        }
    }

    let effective = declared.or(seen.map(i64::from));
    if let (Some(version), Some(p)) = (effective, &rule.protocol) {
        let reason = match (p.number(), version) {
            (Some(1), 6) => "protocol icmp is IPv4-only but the rule is IPv6; use icmpv6",
            (Some(58), 4) => "protocol icmpv6 is IPv6-only but the rule is IPv4; use icmp",
            _ => return,
        };
        c.report(format!("{path}.protocol"), p, reason);
    }
}
