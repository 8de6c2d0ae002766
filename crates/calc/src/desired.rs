//! What the calculation graph asks of the dataplane: the contract between `calico-calc` and the
//! nftables renderer in `calico-dataplane`. Plain data, no behaviour.
//!
//! Names are stable identities the dataplane may use in chain and set names:
//! - an IP set is named by the UID of the selector that defines it (`s:…`, see
//!   `calico_selector::Selector::uid`); a rule's `tag: X` is the selector `has(X)`;
//! - a policy by its name, a profile by its name;
//! - an endpoint by its host interface name (`cali…`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

/// A rule's verdict when it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Accept (for this endpoint and direction).
    Allow,
    /// Accept without connection tracking, and skip the host endpoint's normal policy: `allow`
    /// in a `doNotTrack` policy.
    AllowUntracked,
    /// Accept, and skip the host endpoint's normal policy for traffic arriving on it: `allow`
    /// in a `preDNAT` policy.
    AllowPreDnat,
    /// Drop.
    Deny,
    /// Log with prefix `calico-packet`, then go on with the next rule.
    Log,
    /// Skip the remaining policies; go to the endpoint's profiles.
    Pass,
}

/// A protocol by number (names are resolved by the calculation graph: tcp 6, udp 17, icmp 1,
/// icmpv6 58, sctp 132, udplite 136).
pub type ProtocolNumber = u8;

/// An inclusive port range (a single port has `first == last`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port.
    pub last: u16,
}

/// ICMP type with optional code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IcmpMatch {
    /// ICMP type.
    pub icmp_type: u8,
    /// ICMP code, if the rule gives one.
    pub code: Option<u8>,
}

/// Match criteria on one side (source or destination) of a packet. Every non-empty field must
/// hold; values inside one list are alternatives.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SideMatch {
    /// The address is in one of these networks.
    pub nets: Vec<IpNet>,
    /// The address is in none of these networks.
    pub not_nets: Vec<IpNet>,
    /// The port is in one of these ranges (only with tcp/udp).
    pub ports: Vec<PortRange>,
    /// The port is in none of these ranges.
    pub not_ports: Vec<PortRange>,
    /// The address is in every one of these IP sets (selector and tags, ANDed).
    pub in_sets: Vec<String>,
    /// The address is in none of these IP sets (notSelector and notTag).
    pub not_in_sets: Vec<String>,
}

/// One rule, with names resolved to numbers and selectors to IP set IDs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    /// What happens when everything matches.
    pub action: Action,
    /// Only IPv4 (4) or IPv6 (6) packets, if set.
    pub ip_version: Option<u8>,
    /// Only this protocol, if set.
    pub protocol: Option<ProtocolNumber>,
    /// Not this protocol, if set.
    pub not_protocol: Option<ProtocolNumber>,
    /// ICMP type/code, if set (the protocol is icmp or icmpv6).
    pub icmp: Option<IcmpMatch>,
    /// Not this ICMP type/code, if set.
    pub not_icmp: Option<IcmpMatch>,
    /// Criteria on the packet's source.
    pub source: SideMatch,
    /// Criteria on the packet's destination.
    pub destination: SideMatch,
}

impl Rule {
    /// A rule with `action` and no criteria: it matches every packet.
    pub fn new(action: Action) -> Self {
        Rule {
            action,
            ip_version: None,
            protocol: None,
            not_protocol: None,
            icmp: None,
            not_icmp: None,
            source: SideMatch::default(),
            destination: SideMatch::default(),
        }
    }
}

/// The rules of a policy or profile for one direction, in order.
pub type RuleList = Vec<Rule>;

/// A policy's or profile's rules, by direction (from the endpoint's point of view).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rules {
    /// Applied to traffic arriving at the endpoint.
    pub ingress: RuleList,
    /// Applied to traffic leaving the endpoint.
    pub egress: RuleList,
}

/// What applies to one local endpoint in one direction, in evaluation order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct DirectionPlan {
    /// Policies (names) that select the endpoint and govern this direction, in `order` then
    /// name order. When non-empty and none allows or passes, the packet is dropped.
    pub policies: Vec<String>,
    /// The endpoint's profiles (names), in its order; each must be present in
    /// [`Desired::profiles`] — a missing profile is replaced by the calculation graph with a
    /// deny-all entry, so the endpoint fails closed.
    pub profiles: Vec<String>,
}

/// One endpoint on this host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LocalEndpoint {
    /// Its host interface (`cali…`).
    pub interface: String,
    /// Its addresses (/32, /128): the only sources it may send from.
    pub addrs: Vec<IpNet>,
    /// Traffic arriving at it.
    pub ingress: DirectionPlan,
    /// Traffic leaving it.
    pub egress: DirectionPlan,
}

/// One host endpoint of this host: what polices the host's own traffic on one interface (to
/// and from the host, and forwarded between host interfaces; never traffic to or from a local
/// workload).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct HostEndpointPlan {
    /// Normal policies, then the endpoint's profiles, for traffic arriving on the interface.
    pub ingress: DirectionPlan,
    /// Normal policies, then the endpoint's profiles, for traffic leaving by the interface.
    pub egress: DirectionPlan,
    /// `doNotTrack` policies for traffic arriving, before connection tracking (no profiles).
    pub untracked_ingress: Vec<String>,
    /// `doNotTrack` policies for traffic the host sends out of the interface.
    pub untracked_egress: Vec<String>,
    /// `preDNAT` policies for traffic arriving, before published ports' DNAT (no profiles).
    pub pre_dnat_ingress: Vec<String>,
}

/// A protocol and port that host endpoint policy never blocks (Felix's failsafe ports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FailsafePort {
    /// tcp (6) or udp (17).
    pub protocol: ProtocolNumber,
    /// The destination port (of the host's inbound or outbound traffic).
    pub port: u16,
}

/// The failsafe ports of the host endpoints: inbound to the host, outbound from it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Failsafe {
    /// Ports the host can always be reached on.
    pub inbound: Vec<FailsafePort>,
    /// Ports the host can always reach.
    pub outbound: Vec<FailsafePort>,
}

impl Default for Failsafe {
    /// Felix 3.x's defaults (2.6's plus BGP and etcd's ports): inbound tcp 22, udp 68,
    /// tcp 179, 2379, 2380, 6666, 6667; outbound udp 53, 67, tcp 179, 2379, 2380, 6666, 6667.
    fn default() -> Self {
        let port = |protocol, port| FailsafePort { protocol, port };
        let tcp = [179, 2379, 2380, 6666, 6667].map(|p| port(6, p));
        Failsafe {
            inbound: [port(6, 22), port(17, 68)].into_iter().chain(tcp).collect(),
            outbound: [port(17, 53), port(17, 67)]
                .into_iter()
                .chain(tcp)
                .collect(),
        }
    }
}

/// The whole desired state for this host. The calculation graph keeps it up to date and
/// reports what changed (see `calico_calc::Changes`); the dataplane renders it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    /// Local endpoints by interface name.
    pub endpoints: BTreeMap<String, LocalEndpoint>,
    /// Policies used by at least one local endpoint, by name.
    pub policies: BTreeMap<String, Rules>,
    /// Profiles used by at least one local endpoint, by name.
    pub profiles: BTreeMap<String, Rules>,
    /// IP sets referenced by at least one active rule, by ID, with their members (endpoint
    /// addresses of every host).
    pub ip_sets: BTreeMap<String, BTreeSet<IpAddr>>,
    /// Every IP pool of the cluster, by CIDR (its network address), enabled or not.
    pub pools: BTreeMap<IpNet, Pool>,
    /// Host ports published to local endpoints (`docker run -p`), by host interface; given by
    /// the plugin driver, not by the datastore.
    pub published: BTreeMap<String, Vec<PublishedPort>>,
    /// This host's host endpoints, by the interface they cover.
    pub host_endpoints: BTreeMap<String, HostEndpointPlan>,
    /// The ports host endpoint policy never blocks.
    pub failsafe: Failsafe,
}

/// One host port DNATed to a port of a local endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublishedPort {
    /// tcp (6), udp (17) or sctp (132).
    pub protocol: ProtocolNumber,
    /// The host address it is published on; `None`: every address of the host.
    pub host_ip: Option<IpAddr>,
    /// The host port.
    pub host_port: u16,
    /// The endpoint's address traffic is sent to (of the same family as `host_ip`).
    pub endpoint_ip: IpAddr,
    /// The endpoint's port.
    pub endpoint_port: u16,
}

/// What the dataplane needs of one IP pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Pool {
    /// Traffic from the pool to any address in no pool is masqueraded to the host's address.
    pub nat_outgoing: bool,
}

/// What changed in [`Desired`] since the previous report: enough for the dataplane to write
/// one transaction holding only the changed set elements and chains.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// IP sets that now exist and did not before (their members are all in `members_added`).
    pub sets_created: BTreeSet<String>,
    /// IP sets no longer referenced.
    pub sets_deleted: BTreeSet<String>,
    /// Members added to existing or created sets.
    pub members_added: BTreeMap<String, BTreeSet<IpAddr>>,
    /// Members removed from sets that still exist.
    pub members_removed: BTreeMap<String, BTreeSet<IpAddr>>,
    /// Policies added or whose rules changed.
    pub policies_changed: BTreeSet<String>,
    /// Policies no longer used by a local endpoint.
    pub policies_removed: BTreeSet<String>,
    /// Profiles added or whose rules changed.
    pub profiles_changed: BTreeSet<String>,
    /// Profiles no longer used by a local endpoint.
    pub profiles_removed: BTreeSet<String>,
    /// Local endpoints added or whose addresses or plans changed (by interface).
    pub endpoints_changed: BTreeSet<String>,
    /// Local endpoints gone (by interface).
    pub endpoints_removed: BTreeSet<String>,
    /// Host endpoints added or whose plans changed, or all of them when the failsafe ports
    /// changed (by interface).
    pub host_endpoints_changed: BTreeSet<String>,
    /// Host endpoints gone (by interface).
    pub host_endpoints_removed: BTreeSet<String>,
    /// A pool was added, removed, or its NAT setting changed.
    pub pools_changed: bool,
    /// The published ports changed.
    pub published_changed: bool,
}

impl Changes {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self == &Changes::default()
    }
}
