//! The table columns of each kind: calicoctl's headings and what each cell shows.

use calico_model::{Kind, Resource};

/// Facts outside the resources that some cells need.
pub struct Context {
    /// The global default AS number, shown in parentheses for nodes that inherit it.
    pub global_as_number: String,
}

/// The default ps (or wide) headings of a kind.
pub fn default_headings(kind: Kind, wide: bool) -> &'static [&'static str] {
    match (kind, wide) {
        (Kind::Profile, false) | (Kind::Policy, false) | (Kind::Node, false) => &["NAME"],
        (Kind::Profile, true) => &["NAME", "TAGS"],
        (Kind::Policy, true) => &["NAME", "ORDER", "SELECTOR"],
        (Kind::Node, true) => &["NAME", "ASN", "IPV4", "IPV6"],
        (Kind::WorkloadEndpoint, false) => &["NODE", "ORCHESTRATOR", "WORKLOAD", "NAME"],
        (Kind::WorkloadEndpoint, true) => &[
            "NODE",
            "ORCHESTRATOR",
            "WORKLOAD",
            "NAME",
            "NETWORKS",
            "NATS",
            "INTERFACE",
            "PROFILES",
        ],
        (Kind::HostEndpoint, false) => &["NODE", "NAME"],
        (Kind::HostEndpoint, true) => &["NODE", "NAME", "INTERFACE", "IPS", "PROFILES"],
        (Kind::IpPool, false) => &["CIDR"],
        (Kind::IpPool, true) => &["CIDR", "NAT", "IPIP"],
        (Kind::BgpPeer, _) => &["SCOPE", "PEERIP", "NODE", "ASN"],
    }
}

/// Every heading a kind accepts in `custom-columns`.
pub fn all_headings(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::WorkloadEndpoint => &[
            "NODE",
            "ORCHESTRATOR",
            "WORKLOAD",
            "NAME",
            "NETWORKS",
            "NATS",
            "INTERFACE",
            "PROFILES",
            "MAC",
            "IPV4GATEWAY",
            "IPV6GATEWAY",
        ],
        other => default_headings(other, true),
    }
}

/// The text of one cell; headings are checked beforehand, so an unknown one is blank.
pub fn cell(resource: &Resource, heading: &str, ctx: &Context) -> String {
    match (resource, heading) {
        (Resource::Profile(r), "NAME") => r.metadata.name.clone(),
        (Resource::Profile(r), "TAGS") => r.metadata.tags.join(","),
        (Resource::Policy(r), "NAME") => r.metadata.name.clone(),
        (Resource::Policy(r), "ORDER") => r.spec.order.map(|o| o.to_string()).unwrap_or_default(),
        (Resource::Policy(r), "SELECTOR") => r.spec.selector.clone(),
        (Resource::Node(r), "NAME") => r.metadata.name.clone(),
        (Resource::Node(r), "ASN") => match &r.spec.bgp {
            None => String::new(),
            Some(bgp) => match bgp.as_number {
                Some(asn) => asn.to_string(),
                None => format!("({})", ctx.global_as_number),
            },
        },
        (Resource::Node(r), "IPV4") => opt(r.spec.bgp.as_ref().and_then(|b| b.ipv4_address)),
        (Resource::Node(r), "IPV6") => opt(r.spec.bgp.as_ref().and_then(|b| b.ipv6_address)),
        (Resource::WorkloadEndpoint(r), h) => match h {
            "NODE" => r.metadata.node.clone(),
            "ORCHESTRATOR" => r.metadata.orchestrator.clone(),
            "WORKLOAD" => r.metadata.workload.clone(),
            "NAME" => r.metadata.name.clone(),
            "NETWORKS" => join(&r.spec.ip_networks),
            "NATS" => r
                .spec
                .ip_nats
                .iter()
                .map(|n| format!("{}:{}", n.internal_ip, n.external_ip))
                .collect::<Vec<_>>()
                .join(","),
            "INTERFACE" => r.spec.interface_name.clone(),
            "PROFILES" => r.spec.profiles.join(","),
            "MAC" => opt(r.spec.mac.as_ref()),
            "IPV4GATEWAY" => opt(r.spec.ipv4_gateway),
            "IPV6GATEWAY" => opt(r.spec.ipv6_gateway),
            _ => String::new(),
        },
        (Resource::HostEndpoint(r), h) => match h {
            "NODE" => r.metadata.node.clone(),
            "NAME" => r.metadata.name.clone(),
            "INTERFACE" => r.spec.interface_name.clone(),
            "IPS" => join(&r.spec.expected_ips),
            "PROFILES" => r.spec.profiles.join(","),
            _ => String::new(),
        },
        (Resource::IpPool(r), h) => match h {
            "CIDR" => opt(r.metadata.cidr),
            "NAT" => r.spec.nat_outgoing.to_string(),
            "IPIP" => r.spec.ipip.as_ref().is_some_and(|i| i.enabled).to_string(),
            _ => String::new(),
        },
        (Resource::BgpPeer(r), h) => match h {
            "SCOPE" => r.metadata.scope.clone(),
            "PEERIP" => opt(r.metadata.peer_ip),
            "NODE" => r.metadata.node.clone(),
            "ASN" => r.spec.as_number.to_string(),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
