//! Per-kind checks: metadata names and labels, specs, and Calico's struct-level rules.

use std::collections::BTreeSet;

use super::{list, rule, Checker};
use crate::resources::{BgpPeer, HostEndpoint, IpPool, Node, Policy, Profile, WorkloadEndpoint};
use crate::rule::Rule;
use crate::values::Cidr;

fn rules(c: &mut Checker, path: &str, rules: &[Rule]) {
    for (i, r) in rules.iter().enumerate() {
        rule::rule(c, &format!("{path}[{i}]"), r);
    }
}

fn profiles(c: &mut Checker, path: &str, profiles: &[String]) {
    for (i, p) in profiles.iter().enumerate() {
        if p.is_empty() {
            c.report(format!("{path}[{i}]"), p, "empty profile name");
        } else {
            c.namespaced_name(&format!("{path}[{i}]"), p);
        }
    }
}

pub(super) fn profile(c: &mut Checker, p: &Profile) {
    c.namespaced_name("metadata.name", &p.metadata.name);
    for (i, tag) in p.metadata.tags.iter().enumerate() {
        c.tag(&format!("metadata.tags[{i}]"), tag);
    }
    c.labels("metadata.labels", &p.metadata.labels);
    rules(c, "spec.ingress", &p.spec.ingress);
    rules(c, "spec.egress", &p.spec.egress);
}

pub(super) fn policy(c: &mut Checker, p: &Policy) {
    let spec = &p.spec;
    c.namespaced_name("metadata.name", &p.metadata.name);
    if let Some(order) = spec.order {
        if !order.is_finite() {
            c.report("spec.order", order, "order must be a finite number");
        }
    }
    c.selector("spec.selector", &spec.selector);
    rules(c, "spec.ingress", &spec.ingress);
    rules(c, "spec.egress", &spec.egress);

    let mut seen = BTreeSet::new();
    for (i, t) in spec.types.iter().enumerate() {
        if t != "ingress" && t != "egress" {
            c.report(
                format!("spec.types[{i}]"),
                t,
                "invalid policy type: use ingress or egress",
            );
        } else if !seen.insert(t.as_str()) {
            c.report(
                format!("spec.types[{i}]"),
                t,
                format!("'{t}' type specified more than once"),
            );
        }
    }
    if !spec.types.is_empty() {
        for (kind, rules) in [("ingress", &spec.ingress), ("egress", &spec.egress)] {
            if !rules.is_empty() && !seen.contains(kind) {
                c.report(
                    "spec.types",
                    list(&spec.types),
                    format!("'{kind}' must be specified when policy has {kind} rules"),
                );
            }
        }
    }
    if spec.do_not_track && spec.pre_dnat {
        c.report(
            "spec.preDNAT",
            true,
            "preDNAT and doNotTrack cannot both be true",
        );
    }
    if spec.pre_dnat && !spec.egress.is_empty() {
        c.report(
            "spec.egress",
            format!("{} rules", spec.egress.len()),
            "a preDNAT policy cannot have egress rules",
        );
    }
    if spec.pre_dnat && seen.contains("egress") {
        c.report(
            "spec.types",
            list(&spec.types),
            "a preDNAT policy cannot have the 'egress' type",
        );
    }
}

pub(super) fn workload_endpoint(c: &mut Checker, w: &WorkloadEndpoint) {
    let (meta, spec) = (&w.metadata, &w.spec);
    c.namespaced_name("metadata.name", &meta.name);
    c.namespaced_name("metadata.workload", &meta.workload);
    c.namespaced_name("metadata.orchestrator", &meta.orchestrator);
    c.name("metadata.node", &meta.node);
    c.name("metadata.activeInstanceID", &meta.active_instance_id);
    c.labels("metadata.labels", &meta.labels);

    for (i, net) in spec.ip_networks.iter().enumerate() {
        if net.prefix_len() != if net.version() == 4 { 32 } else { 128 } {
            c.report(
                format!("spec.ipNetworks[{i}]"),
                net,
                "IP network contains multiple addresses; use a /32 (IPv4) or /128 (IPv6) network",
            );
        }
    }
    for (i, nat) in spec.ip_nats.iter().enumerate() {
        if nat.internal_ip.is_ipv4() != nat.external_ip.is_ipv4() {
            c.report(
                format!("spec.ipNATs[{i}].externalIP"),
                nat.external_ip,
                "mismatched IP versions: internal and external IPs must both be IPv4 or IPv6",
            );
        }
        if !spec
            .ip_networks
            .iter()
            .any(|n| n.ip_net().contains(&nat.internal_ip))
        {
            c.report(
                format!("spec.ipNATs[{i}].internalIP"),
                nat.internal_ip,
                "NAT is not in the endpoint networks: the internal IP must be one of ipNetworks",
            );
        }
    }
    if let Some(gw) = spec.ipv4_gateway.filter(|gw| !gw.is_ipv4()) {
        c.report(
            "spec.ipv4Gateway",
            gw,
            "invalid IPv4 gateway address specified",
        );
    }
    if let Some(gw) = spec.ipv6_gateway.filter(|gw| !gw.is_ipv6()) {
        c.report(
            "spec.ipv6Gateway",
            gw,
            "invalid IPv6 gateway address specified",
        );
    }
    profiles(c, "spec.profiles", &spec.profiles);
    c.interface("spec.interfaceName", &spec.interface_name);
}

pub(super) fn host_endpoint(c: &mut Checker, h: &HostEndpoint) {
    let (meta, spec) = (&h.metadata, &h.spec);
    c.namespaced_name("metadata.name", &meta.name);
    c.name("metadata.node", &meta.node);
    c.labels("metadata.labels", &meta.labels);
    if spec.interface_name.is_empty() {
        if spec.expected_ips.is_empty() {
            c.report(
                "spec.interfaceName",
                "",
                "no interface or expected IPs have been specified; set interfaceName and/or expectedIPs",
            );
        }
    } else {
        c.interface("spec.interfaceName", &spec.interface_name);
    }
    profiles(c, "spec.profiles", &spec.profiles);
}

pub(super) fn ip_pool(c: &mut Checker, p: &IpPool) {
    if let Some(ipip) = &p.spec.ipip {
        if !matches!(ipip.mode.as_str(), "" | "always" | "cross-subnet") {
            c.report(
                "spec.ipip.mode",
                &ipip.mode,
                "invalid IPIP mode: use always or cross-subnet",
            );
        }
    }
    let Some(cidr) = p.metadata.cidr else {
        return;
    };
    let v6 = cidr.version() == 6;
    if v6 && p.spec.ipip.as_ref().is_some_and(|i| i.enabled) {
        c.report(
            "spec.ipip.enabled",
            true,
            "IPIP is not supported on an IPv6 IP pool",
        );
    }
    if !p.spec.disabled {
        match (v6, cidr.prefix_len()) {
            (false, len) if len > 26 => c.report(
                "metadata.cidr",
                cidr,
                "IP pool size is too small (min /26) for use with Calico IPAM",
            ),
            (true, len) if len > 122 => c.report(
                "metadata.cidr",
                cidr,
                "IP pool size is too small (min /122) for use with Calico IPAM",
            ),
            _ => {}
        }
    }
    if !cidr.is_network() {
        c.report(
            "metadata.cidr",
            cidr,
            format!(
                "IP pool CIDR is not strictly masked; use {}",
                cidr.network()
            ),
        );
    }
    let (link_local, reason) = if v6 {
        (
            "fe80::/10",
            "IP pool range overlaps with IPv6 Link Local range fe80::/10",
        )
    } else {
        (
            "169.254.0.0/16",
            "IP pool range overlaps with IPv4 Link Local range 169.254.0.0/16",
        )
    };
    if link_local
        .parse::<Cidr>()
        .is_ok_and(|ll| ll.overlaps(&cidr))
    {
        c.report("metadata.cidr", cidr, reason);
    }
}

pub(super) fn node(c: &mut Checker, n: &Node) {
    c.name("metadata.name", &n.metadata.name);
    let Some(bgp) = &n.spec.bgp else {
        return;
    };
    if bgp.ipv4_address.is_none() && bgp.ipv6_address.is_none() {
        c.report(
            "spec.bgp.ipv4Address",
            "",
            "no BGP IP address and subnet specified; set ipv4Address and/or ipv6Address",
        );
    }
    if let Some(addr) = bgp.ipv4_address.filter(|a| a.version() != 4) {
        c.report(
            "spec.bgp.ipv4Address",
            addr,
            "invalid IPv4 address and subnet specified",
        );
    }
    if let Some(addr) = bgp.ipv6_address.filter(|a| a.version() != 6) {
        c.report(
            "spec.bgp.ipv6Address",
            addr,
            "invalid IPv6 address and subnet specified",
        );
    }
}

pub(super) fn bgp_peer(c: &mut Checker, p: &BgpPeer) {
    let meta = &p.metadata;
    match meta.scope.as_str() {
        "global" if !meta.node.is_empty() => c.report(
            "metadata.node",
            &meta.node,
            "no BGP Peer node name should be specified when scope is global",
        ),
        "node" if meta.node.is_empty() => c.report(
            "metadata.node",
            "",
            "a node name is required when scope is node",
        ),
        "global" | "node" => {}
        other => c.report("metadata.scope", other, "invalid scope: use global or node"),
    }
    c.name("metadata.node", &meta.node);
}
