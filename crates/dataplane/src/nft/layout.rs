//! What the `inet calico` table holds for a [`Desired`] state, as plain objects (sets, chains
//! with rule bodies, verdict maps) that [`super::render`] writes as nft text and
//! [`super::readback`] turns into the expected fingerprint.
//!
//! Chains, in the order they are defined:
//! - `pi-<policy>` / `po-<policy>`, `pri-<profile>` / `pro-<profile>`: the rules of a policy or
//!   profile for ingress / egress. `allow` is `accept`, `deny` is `drop`, `log` is
//!   `log prefix "calico-packet"` and the next rule; `pass` in a policy sets [`PASS_MARK`] and
//!   returns, in a profile it just returns (ends that profile). No match: fall off the end
//!   (return). A policy or profile an endpoint names but [`Desired`] lacks gets a placeholder:
//!   an empty policy, or a profile that drops everything (fail closed). Every rule of these
//!   chains has a `counter` before its verdict (see [`super::counters`]).
//! - `fw-<iface>` (egress, from the workload) / `tw-<iface>` (ingress, to the workload):
//!   conntrack established/related accept, invalid drop, anti-spoofing (egress only: the source
//!   must be one of the endpoint's addresses), then the policies: clear [`PASS_MARK`], jump to
//!   each policy chain while the mark is clear, drop if none allowed or passed, clear the mark
//!   again; then jump to each profile chain; then drop (both drops counted). An `accept` anywhere ends the base
//!   chain, so each direction is decided on its own.
//! - base chains, `policy accept`, hooked before Docker's iptables-nft filter chains
//!   (priority 0): `forward-from-wl` (forward, -20) looks up `iifname` in map `from-wl` and
//!   goes to the endpoint's `fw-` chain; `forward-to-wl` (forward, -10) does the same with
//!   `oifname`, map `to-wl` and `tw-` chains; `input-from-wl` (input, -10) allows IPv6
//!   neighbour discovery and MLD from workloads, then uses `from-wl` too. After a lookup miss a
//!   `cali*` interface is dropped. Traffic between two local workloads thus passes the sender's
//!   egress and then the receiver's ingress chain; host-to-workload traffic (output) is not
//!   policed, and workload-to-host traffic that egress policy accepts goes on to the host's own
//!   input rules (Felix's `DefaultEndpointToHostAction=RETURN`).
//!
//! - host endpoints, each with five chains (see [`host_endpoint_chains`]) and an element in
//!   each of five maps ([`HOST_MAPS`]), as Felix 2.6 does it: `raw-prerouting` / `raw-output`
//!   (prerouting / output, -300 = raw, before conntrack) clear our mark bits on every packet,
//!   then send traffic arriving on / leaving by a host endpoint to its `doNotTrack` chain
//!   (`ufh-`, `uth-`), where an allow sets [`ACCEPT_MARK`] and `notrack`; `pre-dnat`
//!   (prerouting, -150, before DNAT) sends arriving traffic to its `preDNAT` chain (`pfh-`),
//!   where an allow sets the mark too; `input-from-hep` / `output-to-hep` (input / output, -5)
//!   accept what carries the mark and send the rest to the normal chains (`fh-`, `th-`: policies,
//!   profiles, then drop); `forward-from-hep` (-6) and `forward-to-hep` (-4) police traffic
//!   forwarded between two host interfaces against both endpoints (the incoming one unless the
//!   mark is set). Traffic to or from a `cali*` interface never meets a host endpoint chain, and
//!   every host endpoint chain accepts the failsafe ports first.
//! - `dnat-prerouting` (nat, prerouting, -100 = dstnat) and `dnat-output` (nat, output, -100):
//!   published ports (`docker run -p`). A packet to one of the host's addresses (`fib daddr
//!   type local`, or the one address a port is published on) and a published port is DNATed to
//!   the endpoint; prerouting serves traffic from outside and from workloads, output traffic
//!   from the host itself, 127.0.0.1 included (workload interfaces have `route_localnet`;
//!   `::1` is left out: the kernel never forwards from it). The endpoint's ingress policy then
//!   sees the real source address (the host's own for loopback). `raw-prerouting` drops what a
//!   workload sends to 127.0.0.0/8, so `route_localnet` never lets one reach the host's loopback
//!   services (CVE-2020-8558).
//! - `nat-outgoing` (nat, postrouting, priority 100 = srcnat): first the host's loopback
//!   traffic DNATed to a workload is masqueraded, then hairpin (a workload reaching its own
//!   published port is masqueraded, or its reply would never meet the DNAT again), then
//!   nat-outgoing as Felix does it.
//!   A packet from an address in a pool with NAT outgoing to an address in no pool is
//!   masqueraded to the host's address; traffic between workloads of any host and pool keeps
//!   its source. Only a connection's first packet meets a nat chain, so a pool change applies to
//!   the next new connection.
//!
//! Sets: `s4-<id>` (`ipv4_addr`) and `s6-<id>` (`ipv6_addr`) per IP set, holding the members of
//! that family; an IP set a rule names but [`Desired`] lacks is created empty. Pool sets, with
//! `flags interval`: `all-pools4`/`all-pools6` (every pool's CIDR) and
//! `masq-pools4`/`masq-pools6` (the CIDRs of the pools with NAT outgoing), each aggregated
//! (nested and adjacent CIDRs merged, as an interval set requires).
//!
//! Endpoints whose interface name cannot be written safely (see [`usable_interface`]) are left
//! out: their traffic meets the unknown-interface drop.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use calico_calc::desired::{
    Action, Desired, DirectionPlan, FailsafePort, HostEndpointPlan, LocalEndpoint, PublishedPort,
    Rule, Rules,
};

use super::names::{
    object_name, usable_interface, ALL_POOLS, FROM_ENDPOINT, FROM_HOST, MASQ_POOLS, POLICY_EGRESS,
    POLICY_INGRESS, PRE_DNAT_FROM_HOST, PROFILE_EGRESS, PROFILE_INGRESS, TO_ENDPOINT, TO_HOST,
    UNTRACKED_FROM_HOST, UNTRACKED_TO_HOST,
};
use super::rule::{referenced_sets, render_rule, Family};
use calico_model::endpoint_naming::HOST_INTERFACE_PREFIX;

/// The packet mark bit a policy sets on `pass`; cleared before and after an endpoint's
/// policies, so it never leaves the table set.
pub const PASS_MARK: u32 = 0x0002_0000;

/// The packet mark bit a `doNotTrack` or `preDNAT` allow sets, so the host endpoint's normal
/// policy accepts the packet without evaluating it (Felix's accept mark); cleared for every
/// packet when it enters the raw hooks.
pub const ACCEPT_MARK: u32 = 0x0001_0000;

/// Prefix of Felix's log lines for `log` rules.
const LOG_PREFIX: &str = "calico-packet";

/// ICMPv6 router solicitation, neighbour solicitation/advertisement and MLD, which a workload
/// must be able to send to its host whatever its egress policy (as in Felix's
/// `cali-wl-to-host`).
const ICMPV6_TO_HOST: &str = "130, 131, 132, 133, 135, 136";

/// The map of workload egress chains, keyed by `iifname`.
pub(crate) const FROM_MAP: &str = "from-wl";
/// The map of workload ingress chains, keyed by `oifname`.
pub(crate) const TO_MAP: &str = "to-wl";
/// The maps of a host endpoint's chains, in the order of [`host_endpoint_chains`]: normal
/// policy for traffic arriving (`iifname`) and leaving (`oifname`), `doNotTrack` arriving and
/// leaving, `preDNAT` arriving.
pub(crate) const HOST_MAPS: [&str; 5] = [
    "from-hep",
    "to-hep",
    "raw-from-hep",
    "raw-to-hep",
    "pre-dnat-hep",
];

/// Both of our mark bits, cleared.
const CLEAR_MARKS: u32 = !(PASS_MARK | ACCEPT_MARK);

/// A netfilter hook a base chain is attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hook {
    /// The chain type: `filter` or `nat`.
    pub kind: &'static str,
    /// `prerouting`, `input`, `forward`, `output` or `postrouting`.
    pub hook: &'static str,
    /// The chain's priority (Docker's iptables-nft filter chains use 0).
    pub priority: i32,
}

/// One chain: its name, its hook if it is a base chain (type filter, policy accept), and its
/// rule bodies in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Chain {
    pub name: String,
    pub hook: Option<Hook>,
    pub rules: Vec<String>,
}

/// One family's half of an IP set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Set {
    pub name: String,
    pub family: Family,
    pub elements: Vec<IpAddr>,
}

/// One family's half of a pool set: CIDRs, in an interval set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PoolSet {
    pub name: String,
    pub family: Family,
    pub elements: Vec<IpNet>,
}

/// A verdict map from interface name to the chain that packets go to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Map {
    pub name: &'static str,
    pub elements: Vec<(String, String)>,
}

/// The whole table, in definition order (sets, pool sets, policy and profile chains, endpoint
/// chains, maps, base chains).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub sets: Vec<Set>,
    pub pool_sets: Vec<PoolSet>,
    pub chains: Vec<Chain>,
    pub maps: Vec<Map>,
    pub base_chains: Vec<Chain>,
}

/// The table for `desired`.
pub(crate) fn layout(desired: &Desired) -> Layout {
    let endpoints: Vec<(&String, &LocalEndpoint)> = desired
        .endpoints
        .iter()
        .filter(|(iface, _)| usable_interface(iface))
        .collect();
    let hosts: Vec<(&String, &HostEndpointPlan)> = desired
        .host_endpoints
        .iter()
        .filter(|(iface, _)| usable_interface(iface))
        .collect();
    let mut policies: BTreeSet<&str> = desired.policies.keys().map(String::as_str).collect();
    let mut profiles: BTreeSet<&str> = desired.profiles.keys().map(String::as_str).collect();
    for (_, ep) in &endpoints {
        for plan in [&ep.ingress, &ep.egress] {
            policies.extend(plan.policies.iter().map(String::as_str));
            profiles.extend(plan.profiles.iter().map(String::as_str));
        }
    }
    for (_, plan) in &hosts {
        policies.extend(host_policy_names(plan).map(String::as_str));
        profiles.extend(host_profile_names(plan).map(String::as_str));
    }
    let mut chains = Vec::new();
    for name in policies {
        chains.extend(policy_chains(desired, name));
    }
    for name in profiles {
        chains.extend(profile_chains(desired, name));
    }
    let mut set_ids: BTreeSet<&str> = desired.ip_sets.keys().map(String::as_str).collect();
    set_ids.extend(
        [&desired.policies, &desired.profiles]
            .into_iter()
            .flat_map(BTreeMap::values)
            .flat_map(|rules| rules.ingress.iter().chain(&rules.egress))
            .flat_map(referenced_sets)
            .map(String::as_str),
    );
    let sets = set_ids
        .into_iter()
        .flat_map(|id| set_pair(id, desired.ip_sets.get(id).into_iter().flatten()))
        .collect();
    let mut from = Vec::new();
    let mut to = Vec::new();
    for (iface, ep) in endpoints {
        chains.extend(endpoint_chains(iface, ep));
        let [f, t] = map_elements(iface);
        from.push(f);
        to.push(t);
    }
    let mut maps = vec![
        Map {
            name: FROM_MAP,
            elements: from,
        },
        Map {
            name: TO_MAP,
            elements: to,
        },
    ];
    let first_host_map = maps.len();
    maps.extend(HOST_MAPS.map(|name| Map {
        name,
        elements: Vec::new(),
    }));
    for (iface, plan) in hosts {
        chains.extend(host_endpoint_chains(iface, plan, desired));
        for (i, element) in host_map_elements(iface).into_iter().enumerate() {
            maps[first_host_map + i].elements.push(element);
        }
    }
    Layout {
        sets,
        pool_sets: pool_sets(desired),
        chains,
        maps,
        base_chains: base_chains(desired),
    }
}

/// Every policy a host endpoint's plan names.
pub(crate) fn host_policy_names(plan: &HostEndpointPlan) -> impl Iterator<Item = &String> {
    [
        &plan.ingress.policies,
        &plan.egress.policies,
        &plan.untracked_ingress,
        &plan.untracked_egress,
        &plan.pre_dnat_ingress,
    ]
    .into_iter()
    .flatten()
}

/// Every profile a host endpoint's plan names.
pub(crate) fn host_profile_names(plan: &HostEndpointPlan) -> impl Iterator<Item = &String> {
    [&plan.ingress.profiles, &plan.egress.profiles]
        .into_iter()
        .flatten()
}

/// The IPv4 and IPv6 halves of IP set `id`, with `members` split by family and sorted.
pub(crate) fn set_pair<'a>(id: &str, members: impl Iterator<Item = &'a IpAddr>) -> [Set; 2] {
    let mut sorted: Vec<IpAddr> = members.copied().collect();
    sorted.sort();
    sorted.dedup();
    let (v4, v6) = sorted.into_iter().partition(IpAddr::is_ipv4);
    [(Family::V4, v4), (Family::V6, v6)].map(|(family, elements)| Set {
        name: family.set_name(id),
        family,
        elements,
    })
}

/// The pool sets: every pool's CIDR, then those with NAT outgoing, each split by family and
/// aggregated.
pub(crate) fn pool_sets(desired: &Desired) -> Vec<PoolSet> {
    let all: Vec<IpNet> = desired.pools.keys().copied().collect();
    let masq: Vec<IpNet> = desired
        .pools
        .iter()
        .filter(|(_, pool)| pool.nat_outgoing)
        .map(|(cidr, _)| *cidr)
        .collect();
    let mut sets = Vec::new();
    for (base, nets) in [(ALL_POOLS, all), (MASQ_POOLS, masq)] {
        let nets = IpNet::aggregate(&nets);
        for family in Family::BOTH {
            sets.push(PoolSet {
                name: family.pool_set_name(base),
                family,
                elements: nets.iter().copied().filter(|n| family.holds(n)).collect(),
            });
        }
    }
    sets
}

/// A pool set element as nft prints it back: a host prefix as its address, else `addr/len`.
pub(crate) fn pool_element(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.trunc().to_string()
    }
}

/// The ingress and egress chains of policy `name` (empty if `desired` lacks it).
pub(crate) fn policy_chains(desired: &Desired, name: &str) -> [Chain; 2] {
    let rules = desired.policies.get(name);
    rule_chains(name, rules, [POLICY_INGRESS, POLICY_EGRESS], true)
}

/// The ingress and egress chains of profile `name` (drop everything if `desired` lacks it).
pub(crate) fn profile_chains(desired: &Desired, name: &str) -> [Chain; 2] {
    let rules = desired.profiles.get(name);
    rule_chains(name, rules, [PROFILE_INGRESS, PROFILE_EGRESS], false)
}

/// Chains for a policy or profile; a missing policy is empty, a missing profile drops.
fn rule_chains(
    name: &str,
    rules: Option<&Rules>,
    [ingress_prefix, egress_prefix]: [&str; 2],
    is_policy: bool,
) -> [Chain; 2] {
    let chain = |prefix: &str, list: Option<&Vec<Rule>>| Chain {
        name: object_name(prefix, name),
        hook: None,
        rules: match list {
            Some(list) => rule_lines(list, is_policy)
                .into_iter()
                .map(|(_, body)| body)
                .collect(),
            None if is_policy => Vec::new(),
            None => vec!["drop".to_string()],
        },
    };
    [
        chain(ingress_prefix, rules.map(|r| &r.ingress)),
        chain(egress_prefix, rules.map(|r| &r.egress)),
    ]
}

/// The lines of a policy's or profile's rule list, each with the index of the rule it renders
/// (a rule renders to no line, one, or one per IP family). Every line counts its packets.
pub(crate) fn rule_lines(list: &[Rule], is_policy: bool) -> Vec<(usize, String)> {
    list.iter()
        .enumerate()
        .flat_map(|(index, rule)| {
            let verdict = format!("counter {}", verdict(rule.action, is_policy));
            render_rule(rule, &verdict)
                .into_iter()
                .map(move |body| (index, body))
        })
        .collect()
}

/// The verdict of a matching rule with `action`, inside a policy or a profile chain.
fn verdict(action: Action, in_policy: bool) -> String {
    match action {
        Action::Allow => "accept".to_string(),
        Action::AllowUntracked => {
            format!("meta mark set meta mark | {ACCEPT_MARK:#010x} notrack accept")
        }
        Action::AllowPreDnat => format!("meta mark set meta mark | {ACCEPT_MARK:#010x} accept"),
        Action::Deny => "drop".to_string(),
        Action::Log => format!("log prefix \"{LOG_PREFIX}\""),
        Action::Pass if in_policy => format!("meta mark set meta mark | {PASS_MARK:#010x} return"),
        Action::Pass => "return".to_string(),
    }
}

/// The egress (`fw-`) and ingress (`tw-`) chains of the endpoint on `iface`.
pub(crate) fn endpoint_chains(iface: &str, ep: &LocalEndpoint) -> [Chain; 2] {
    let mut egress = conntrack_rules();
    for family in Family::BOTH {
        let mut own: Vec<String> = ep
            .addrs
            .iter()
            .filter(|net| family.holds(net))
            .map(|net| net.addr().to_string())
            .collect();
        own.sort();
        own.dedup();
        egress.push(match own.as_slice() {
            [] => format!("meta nfproto {} drop", family.nfproto()),
            [one] => format!("{} saddr != {one} drop", family.payload()),
            many => format!(
                "{} saddr != {{ {} }} drop",
                family.payload(),
                many.join(", ")
            ),
        });
    }
    plan_rules(&mut egress, &ep.egress, POLICY_EGRESS, PROFILE_EGRESS);
    let mut ingress = conntrack_rules();
    plan_rules(&mut ingress, &ep.ingress, POLICY_INGRESS, PROFILE_INGRESS);
    [
        Chain {
            name: object_name(FROM_ENDPOINT, iface),
            hook: None,
            rules: egress,
        },
        Chain {
            name: object_name(TO_ENDPOINT, iface),
            hook: None,
            rules: ingress,
        },
    ]
}

/// The first rules of every endpoint chain.
fn conntrack_rules() -> Vec<String> {
    vec![
        "ct state established,related accept".to_string(),
        "ct state invalid drop".to_string(),
    ]
}

/// Appends the policy and profile part of an endpoint chain, then the final drop.
fn plan_rules(rules: &mut Vec<String>, plan: &DirectionPlan, policy: &str, profile: &str) {
    policy_rules(rules, &plan.policies, policy, true);
    for name in &plan.profiles {
        rules.push(format!("jump {}", object_name(profile, name)));
    }
    rules.push(END_DROP.to_string());
}

/// The last rule of an endpoint chain: what no profile allowed (or no policy passed to a
/// profile that did) is dropped and counted.
pub(crate) const END_DROP: &str = "counter drop";

/// The rule after an endpoint's policies that drops and counts what none of them allowed or
/// passed.
pub(crate) fn policies_drop() -> String {
    format!("meta mark & {PASS_MARK:#010x} == 0 counter drop")
}

/// Appends the jumps to `policies` (chains `prefix<name>`) while none has passed; then, when
/// `deciding`, the drop of a packet none allowed or passed.
fn policy_rules(rules: &mut Vec<String>, policies: &[String], prefix: &str, deciding: bool) {
    if policies.is_empty() {
        return;
    }
    let clear = format!("meta mark set meta mark & {:#010x}", !PASS_MARK);
    rules.push(clear.clone());
    for name in policies {
        let chain = object_name(prefix, name);
        rules.push(format!("meta mark & {PASS_MARK:#010x} == 0 jump {chain}"));
    }
    if deciding {
        rules.push(policies_drop());
    }
    rules.push(clear);
}

/// The chains of the host endpoint on `iface`, in the order of [`HOST_MAPS`]:
/// - `fh-` (traffic arriving, to the host or forwarded) and `th-` (leaving, from the host or
///   forwarded): conntrack, the failsafe ports, normal policies, profiles, drop;
/// - `ufh-` / `uth-` (before connection tracking): the failsafe ports (and their replies, which
///   must stay tracked), then the `doNotTrack` policies; no verdict at the end;
/// - `pfh-` (arriving, before DNAT): conntrack, what the raw hook already accepted, the
///   inbound failsafe ports, then the `preDNAT` policies; no verdict at the end.
pub(crate) fn host_endpoint_chains(
    iface: &str,
    plan: &HostEndpointPlan,
    desired: &Desired,
) -> [Chain; 5] {
    let failsafe = &desired.failsafe;
    let mut from = conntrack_rules();
    from.extend(failsafe_rules(&failsafe.inbound, "dport"));
    plan_rules(&mut from, &plan.ingress, POLICY_INGRESS, PROFILE_INGRESS);
    let mut to = conntrack_rules();
    to.extend(failsafe_rules(&failsafe.outbound, "dport"));
    plan_rules(&mut to, &plan.egress, POLICY_EGRESS, PROFILE_EGRESS);
    let mut raw_from = failsafe_rules(&failsafe.inbound, "dport");
    raw_from.extend(failsafe_rules(&failsafe.outbound, "sport"));
    policy_rules(
        &mut raw_from,
        &plan.untracked_ingress,
        POLICY_INGRESS,
        false,
    );
    let mut raw_to = failsafe_rules(&failsafe.outbound, "dport");
    raw_to.extend(failsafe_rules(&failsafe.inbound, "sport"));
    policy_rules(&mut raw_to, &plan.untracked_egress, POLICY_EGRESS, false);
    let mut pre_dnat = conntrack_rules();
    pre_dnat.push(format!("meta mark & {ACCEPT_MARK:#010x} != 0 accept"));
    pre_dnat.extend(failsafe_rules(&failsafe.inbound, "dport"));
    policy_rules(&mut pre_dnat, &plan.pre_dnat_ingress, POLICY_INGRESS, false);
    let chain = |prefix: &str, rules| Chain {
        name: object_name(prefix, iface),
        hook: None,
        rules,
    };
    [
        chain(FROM_HOST, from),
        chain(TO_HOST, to),
        chain(UNTRACKED_FROM_HOST, raw_from),
        chain(UNTRACKED_TO_HOST, raw_to),
        chain(PRE_DNAT_FROM_HOST, pre_dnat),
    ]
}

/// Accepts the `ports` as the packet's `side` port (`dport` or `sport`), one rule per
/// protocol.
fn failsafe_rules(ports: &[FailsafePort], side: &str) -> Vec<String> {
    let mut by_protocol: BTreeMap<u8, BTreeSet<u16>> = BTreeMap::new();
    for port in ports {
        by_protocol
            .entry(port.protocol)
            .or_default()
            .insert(port.port);
    }
    by_protocol
        .into_iter()
        .map(|(protocol, ports)| {
            let list: Vec<String> = ports.iter().map(u16::to_string).collect();
            format!(
                "meta l4proto {protocol} th {side} {{ {} }} accept",
                list.join(", ")
            )
        })
        .collect()
}

/// The verdict-map elements of the host endpoint on `iface`, in the order of [`HOST_MAPS`].
pub(crate) fn host_map_elements(iface: &str) -> [(String, String); 5] {
    [
        FROM_HOST,
        TO_HOST,
        UNTRACKED_FROM_HOST,
        UNTRACKED_TO_HOST,
        PRE_DNAT_FROM_HOST,
    ]
    .map(|prefix| (iface.to_string(), object_name(prefix, iface)))
}

/// The verdict-map elements of the endpoint on `iface`: for `from-wl`, then for `to-wl`.
pub(crate) fn map_elements(iface: &str) -> [(String, String); 2] {
    [
        (iface.to_string(), object_name(FROM_ENDPOINT, iface)),
        (iface.to_string(), object_name(TO_ENDPOINT, iface)),
    ]
}

/// The base chains: three filter chains for workload traffic, seven for host endpoints, then
/// the nat chains.
fn base_chains(desired: &Desired) -> Vec<Chain> {
    let unknown = |dir: &str| format!("{dir} \"{HOST_INTERFACE_PREFIX}*\" drop");
    let [from_hep, to_hep, raw_from_hep, raw_to_hep, pre_dnat_hep] = HOST_MAPS;
    let base = |name: &str, hook: &'static str, priority: i32, rules: Vec<String>| Chain {
        name: name.to_string(),
        hook: Some(Hook {
            kind: "filter",
            hook,
            priority,
        }),
        rules,
    };
    let clear = format!("meta mark set meta mark & {CLEAR_MARKS:#010x}");
    let accepted = format!("meta mark & {ACCEPT_MARK:#010x} != 0");
    let workload = |dir: &str| format!("{dir} \"{HOST_INTERFACE_PREFIX}*\" return");
    let host_endpoints = [
        base(
            "raw-prerouting",
            "prerouting",
            -300,
            vec![
                clear.clone(),
                // Workload interfaces have route_localnet (for published ports on 127.0.0.1):
                // a workload must never reach the host's loopback services (CVE-2020-8558).
                format!("iifname \"{HOST_INTERFACE_PREFIX}*\" ip daddr 127.0.0.0/8 drop"),
                format!("iifname vmap @{raw_from_hep}"),
            ],
        ),
        base(
            "raw-output",
            "output",
            -300,
            vec![clear, format!("oifname vmap @{raw_to_hep}")],
        ),
        base(
            "pre-dnat",
            "prerouting",
            -150,
            vec![format!("iifname vmap @{pre_dnat_hep}")],
        ),
        base(
            "input-from-hep",
            "input",
            -5,
            vec![
                format!("{accepted} accept"),
                format!("iifname vmap @{from_hep}"),
            ],
        ),
        base(
            "output-to-hep",
            "output",
            -5,
            vec![
                format!("{accepted} accept"),
                format!("oifname vmap @{to_hep}"),
            ],
        ),
        base(
            "forward-from-hep",
            "forward",
            -6,
            vec![
                workload("iifname"),
                workload("oifname"),
                format!("{accepted} return"),
                format!("iifname vmap @{from_hep}"),
            ],
        ),
        base(
            "forward-to-hep",
            "forward",
            -4,
            vec![
                workload("iifname"),
                workload("oifname"),
                format!("oifname vmap @{to_hep}"),
            ],
        ),
    ];
    vec![
        Chain {
            name: "forward-from-wl".to_string(),
            hook: Some(Hook {
                kind: "filter",
                hook: "forward",
                priority: -20,
            }),
            rules: vec![format!("iifname vmap @{FROM_MAP}"), unknown("iifname")],
        },
        Chain {
            name: "forward-to-wl".to_string(),
            hook: Some(Hook {
                kind: "filter",
                hook: "forward",
                priority: -10,
            }),
            rules: vec![format!("oifname vmap @{TO_MAP}"), unknown("oifname")],
        },
        Chain {
            name: "input-from-wl".to_string(),
            hook: Some(Hook {
                kind: "filter",
                hook: "input",
                priority: -10,
            }),
            rules: vec![
                format!(
                    "iifname \"{HOST_INTERFACE_PREFIX}*\" icmpv6 type {{ {ICMPV6_TO_HOST} }} accept"
                ),
                format!("iifname vmap @{FROM_MAP}"),
                unknown("iifname"),
            ],
        },
    ]
    .into_iter()
    .chain(host_endpoints)
    .chain(nat_chains(desired))
    .collect()
}

/// The nat chains: published ports' DNAT (prerouting, output), then hairpin and nat-outgoing.
pub(crate) fn nat_chains(desired: &Desired) -> [Chain; 3] {
    let ports: BTreeSet<&PublishedPort> = desired.published.values().flatten().collect();
    let dnat = ports.iter().filter_map(|p| dnat_rule(p, false)).collect();
    let output = ports.iter().filter_map(|p| dnat_rule(p, true)).collect();
    let targets: BTreeSet<IpAddr> = ports.iter().map(|p| p.endpoint_ip).collect();
    // Traffic from the host's loopback DNATed to a workload leaves with the host's address, or
    // the workload would answer its own loopback.
    let mut postrouting = vec![format!(
        "oifname \"{HOST_INTERFACE_PREFIX}*\" ct status dnat ip saddr 127.0.0.0/8 masquerade"
    )];
    postrouting.extend(targets.iter().map(|ip| {
        let addr = Family::of(ip).payload();
        format!("ct status dnat {addr} saddr {ip} {addr} daddr {ip} masquerade")
    }));
    postrouting.extend(Family::BOTH.into_iter().map(|family| {
        let masq = family.pool_set_name(MASQ_POOLS);
        let all = family.pool_set_name(ALL_POOLS);
        let addr = family.payload();
        format!("{addr} saddr @{masq} {addr} daddr != @{all} masquerade")
    }));
    let nat = |name: &str, hook: &'static str, priority: i32, rules: Vec<String>| Chain {
        name: name.to_string(),
        hook: Some(Hook {
            kind: "nat",
            hook,
            priority,
        }),
        rules,
    };
    [
        nat("dnat-prerouting", "prerouting", -100, dnat),
        nat("dnat-output", "output", -100, output),
        nat("nat-outgoing", "postrouting", 100, postrouting),
    ]
}

/// The DNAT rule of one published port, for traffic from the host itself when `from_host` (`::1`
/// left out); `None` when its host address and endpoint address are of
/// different families (the driver never asks for that).
fn dnat_rule(port: &PublishedPort, from_host: bool) -> Option<String> {
    let family = Family::of(&port.endpoint_ip);
    let to = match port.endpoint_ip {
        IpAddr::V4(ip) => format!("{ip}:{}", port.endpoint_port),
        IpAddr::V6(ip) => format!("[{ip}]:{}", port.endpoint_port),
    };
    let destination = match port.host_ip {
        Some(host) if Family::of(&host) != family => return None,
        Some(host) => format!("{} daddr {host}", family.payload()),
        None => {
            // IPv4 loopback works (route_localnet, then the masquerade in `nat-outgoing`);
            // the kernel never forwards from ::1.
            let loopback = match family {
                Family::V6 if from_host => " ip6 daddr != ::1",
                _ => "",
            };
            format!(
                "meta nfproto {} fib daddr type local{loopback}",
                family.nfproto()
            )
        }
    };
    Some(format!(
        "{destination} meta l4proto {} th dport {} dnat {} to {to}",
        port.protocol,
        port.host_port,
        family.payload()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(host_ip: Option<&str>, endpoint_ip: &str) -> PublishedPort {
        PublishedPort {
            protocol: 6,
            host_ip: host_ip.map(|ip| ip.parse().unwrap()),
            host_port: 8080,
            endpoint_ip: endpoint_ip.parse().unwrap(),
            endpoint_port: 80,
        }
    }

    #[test]
    fn dnat_rules_per_family_and_host_address() {
        assert_eq!(
            dnat_rule(&port(None, "fd00::5"), true).unwrap(),
            "meta nfproto ipv6 fib daddr type local ip6 daddr != ::1 meta l4proto 6 th dport 8080 \
             dnat ip6 to [fd00::5]:80"
        );
        assert_eq!(
            dnat_rule(&port(Some("10.0.0.1"), "10.65.0.5"), true).unwrap(),
            "ip daddr 10.0.0.1 meta l4proto 6 th dport 8080 dnat ip to 10.65.0.5:80"
        );
        assert_eq!(dnat_rule(&port(Some("10.0.0.1"), "fd00::5"), false), None);
        assert_eq!(
            dnat_rule(&port(None, "10.65.0.5"), true).unwrap(),
            "meta nfproto ipv4 fib daddr type local meta l4proto 6 th dport 8080 dnat ip to \
             10.65.0.5:80",
            "the host's own 127.0.0.1 included"
        );
    }

    #[test]
    fn loopback_then_each_published_endpoint_gets_one_hairpin_rule_before_nat_outgoing() {
        let mut desired = Desired::default();
        desired.published.insert(
            "cali1".into(),
            vec![port(None, "10.65.0.5"), port(Some("10.0.0.1"), "10.65.0.5")],
        );
        let [prerouting, output, postrouting] = nat_chains(&desired);
        assert_eq!(prerouting.rules.len(), 2);
        assert_eq!(output.rules.len(), 2);
        assert_eq!(
            postrouting.rules[..2],
            [
                "oifname \"cali*\" ct status dnat ip saddr 127.0.0.0/8 masquerade",
                "ct status dnat ip saddr 10.65.0.5 ip daddr 10.65.0.5 masquerade"
            ]
        );
        assert_eq!(postrouting.rules.len(), 4);
    }
}
