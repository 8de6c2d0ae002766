//! An independent oracle for Calico policy: what *should* happen to one probe between two Calico
//! workload endpoints, computed straight from the documented semantics
//! (`/work/shared/reference/felix-policy.md` §3), not from the agent's own calculation code.
//! End-to-end tests use it to write truth tables ([`crate::truth`]) that the real dataplane must
//! reproduce.
//!
//! A probe is allowed when the sender's **egress** and the receiver's **ingress** both allow
//! it. For each direction of one endpoint:
//!
//! 1. The policies that select the endpoint (on its effective labels) and govern the direction
//!    (`types` contains it; empty `types` means both) run in order: `order` ascending, a missing
//!    order last, ties by name. Each policy's first matching rule decides: `allow` (or an empty
//!    action) allows, `deny` denies, `log` goes on with the next rule, `pass` (`next-tier`)
//!    skips the remaining policies and goes to the profiles. A policy with no matching rule
//!    hands over to the next policy. If at least one policy applied and none allowed or passed,
//!    the packet is denied and profiles are not consulted.
//! 2. Then the endpoint's profiles, in its order, with the same first-match rule (a `pass`
//!    ends that profile). A profile that does not exist denies (Felix's fail-closed stand-in).
//! 3. Nothing allowed: denied.
//!
//! Effective labels: the endpoint's own labels first, then each profile in order, its labels
//! then its tags (tag `X` reads as `X=""`). The first hit wins.
//!
//! Rule criteria, all of which must hold: `ipVersion`; `protocol` / `notProtocol` (names or
//! numbers); `icmp` / `notICMP` (a ping is an echo request, ICMP type 8 code 0, or ICMPv6
//! type 128; the reply is conntrack's business and always passes); and on each side, `source`
//! applied to the sender and `destination` to the receiver, whichever endpoint is being
//! evaluated: `nets` / `net` / `notNets` / `notNet` against that side's address, `selector` /
//! `notSelector` / `tag` / `notTag` against its effective labels, `ports` / `notPorts` against
//! its port. For the destination that is the probe's port. The source port is ephemeral and
//! unknown, so a source `ports` criterion matches only if it covers all of 1024–65535, and a
//! source `notPorts` criterion matches only if none of its ranges touches 1024–65535. A
//! protocol without ports (ICMP) never matches a `ports` or `notPorts` criterion.
//! `doNotTrack` and `preDNAT` policies apply to host endpoints only and are ignored here.
//!
//! ```
//! use calico_model::codec;
//! use calico_testkit::verdict::{Probe, Verdict, World};
//!
//! let world = World::from_resources(&codec::decode("
//! - apiVersion: v1
//!   kind: profile
//!   metadata: {name: net1, tags: [net1]}
//!   spec:
//!     egress: [{action: allow}]
//!     ingress: [{action: allow, source: {tag: net1}}]
//! - apiVersion: v1
//!   kind: workloadEndpoint
//!   metadata: {name: ep-a, workload: wa, orchestrator: libnetwork, node: calico-01}
//!   spec: {ipNetworks: [192.168.0.1/32], profiles: [net1], interfaceName: cali1}
//! - apiVersion: v1
//!   kind: workloadEndpoint
//!   metadata: {name: ep-b, workload: wb, orchestrator: libnetwork, node: calico-01}
//!   spec: {ipNetworks: [192.168.0.2/32], profiles: [net1], interfaceName: cali2}
//! ").unwrap());
//! assert_eq!(world.verdict(&Probe::tcp("wa", "wb", 80)), Verdict::Allow);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use calico_model::{Cidr, EntityRule, IcmpFields, Policy, Port, Profile, Resource, Rule};
use calico_selector::Labels;

/// What a probe sends: a ping, or a connection to a TCP or UDP port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    /// An ICMP echo request (ping).
    Icmp,
    /// A TCP connection to this port.
    Tcp(u16),
    /// A UDP request to this port, expecting an answer.
    Udp(u16),
}

/// One probe: traffic from one endpoint (by name) to another.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Probe {
    /// The sender's endpoint (container) name.
    pub from: String,
    /// The receiver's endpoint (container) name.
    pub to: String,
    /// What is sent.
    pub proto: Proto,
}

impl Probe {
    /// A ping from `from` to `to`.
    pub fn icmp(from: &str, to: &str) -> Probe {
        Probe::new(from, to, Proto::Icmp)
    }

    /// A TCP connection from `from` to `to`'s `port`.
    pub fn tcp(from: &str, to: &str, port: u16) -> Probe {
        Probe::new(from, to, Proto::Tcp(port))
    }

    /// A UDP request/response from `from` to `to`'s `port`.
    pub fn udp(from: &str, to: &str, port: u16) -> Probe {
        Probe::new(from, to, Proto::Udp(port))
    }

    /// A ping from `from` to `to`, then a TCP connection to each of `tcp_ports`, then a UDP
    /// request to each of `udp_ports`.
    pub fn every_kind(from: &str, to: &str, tcp_ports: &[u16], udp_ports: &[u16]) -> Vec<Probe> {
        let mut probes = vec![Probe::icmp(from, to)];
        probes.extend(tcp_ports.iter().map(|port| Probe::tcp(from, to, *port)));
        probes.extend(udp_ports.iter().map(|port| Probe::udp(from, to, *port)));
        probes
    }

    /// [`Probe::every_kind`] from each of `senders` to each of `receivers` other than itself.
    ///
    /// ```
    /// use calico_testkit::verdict::Probe;
    ///
    /// let probes = Probe::between(&["wa", "wb"], &["wa"], &[80], &[53]);
    /// assert_eq!(probes, Probe::every_kind("wb", "wa", &[80], &[53]));
    /// let names: Vec<String> = probes.iter().map(Probe::to_string).collect();
    /// assert_eq!(names, ["wb -> wa icmp", "wb -> wa tcp/80", "wb -> wa udp/53"]);
    /// ```
    pub fn between(
        senders: &[&str],
        receivers: &[&str],
        tcp_ports: &[u16],
        udp_ports: &[u16],
    ) -> Vec<Probe> {
        let mut probes = Vec::new();
        for from in senders {
            for to in receivers.iter().filter(|to| *to != from) {
                probes.extend(Probe::every_kind(from, to, tcp_ports, udp_ports));
            }
        }
        probes
    }

    fn new(from: &str, to: &str, proto: Proto) -> Probe {
        Probe {
            from: from.to_owned(),
            to: to.to_owned(),
            proto,
        }
    }
}

impl fmt::Display for Probe {
    /// `wa -> wb icmp`, `wa -> wb tcp/80`, `wa -> wb udp/53`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {} ", self.from, self.to)?;
        match self.proto {
            Proto::Icmp => f.write_str("icmp"),
            Proto::Tcp(port) => write!(f, "tcp/{port}"),
            Proto::Udp(port) => write!(f, "udp/{port}"),
        }
    }
}

/// Whether a probe gets through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The probe is delivered (and answered).
    Allow,
    /// The probe is dropped (or, for a real probe, gets no answer).
    Deny,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
        })
    }
}

/// A Calico workload endpoint as policy sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EndpointInfo {
    /// The name probes use: the workload (container) name.
    pub name: String,
    /// The node hosting it.
    pub node: String,
    /// Its addresses.
    pub ips: Vec<IpAddr>,
    /// Its own labels.
    pub labels: BTreeMap<String, String>,
    /// Its profiles, in order.
    pub profiles: Vec<String>,
}

/// Everything policy depends on: endpoints, profiles and policies.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct World {
    /// The workload endpoints.
    pub endpoints: Vec<EndpointInfo>,
    /// The profiles (looked up by name).
    pub profiles: Vec<Profile>,
    /// The policies (in any order).
    pub policies: Vec<Policy>,
}

impl World {
    /// Collects workload endpoints, profiles and policies; other kinds are ignored. An
    /// endpoint is named after its workload (the container name, for the Docker plugin), or
    /// after its endpoint name when it has no workload.
    pub fn from_resources(resources: &[Resource]) -> World {
        let mut world = World::default();
        for resource in resources {
            match resource {
                Resource::WorkloadEndpoint(wep) => {
                    let m = &wep.metadata;
                    let name = if m.workload.is_empty() {
                        &m.name
                    } else {
                        &m.workload
                    };
                    world.endpoints.push(EndpointInfo {
                        name: name.clone(),
                        node: m.node.clone(),
                        ips: wep.spec.ip_networks.iter().map(|n| n.addr()).collect(),
                        labels: m.labels.clone(),
                        profiles: wep.spec.profiles.clone(),
                    });
                }
                Resource::Profile(profile) => world.profiles.push(profile.clone()),
                Resource::Policy(policy) => world.policies.push(policy.clone()),
                _ => {}
            }
        }
        world
    }

    /// The expected verdict of `probe`: the sender's egress and the receiver's ingress.
    ///
    /// The probe goes to the receiver's first IPv4 address (its first address if it has no
    /// IPv4 one), from the sender's first address of the same family. A probe from an endpoint
    /// to itself never leaves it and is allowed. Panics if an endpoint is unknown, has no
    /// usable address, or if a selector or action is invalid (test input should be valid).
    pub fn verdict(&self, probe: &Probe) -> Verdict {
        if probe.from == probe.to {
            return Verdict::Allow;
        }
        let from = self.endpoint(&probe.from);
        let to = self.endpoint(&probe.to);
        let dst_ip = to
            .ips
            .iter()
            .find(|ip| ip.is_ipv4())
            .or(to.ips.first())
            .copied()
            .unwrap_or_else(|| panic!("endpoint {} has no address", to.name));
        let src_ip = from
            .ips
            .iter()
            .find(|ip| ip.is_ipv4() == dst_ip.is_ipv4())
            .copied()
            .unwrap_or_else(|| panic!("endpoint {} has no address like {dst_ip}", from.name));
        let packet = Packet {
            src: Side {
                endpoint: from,
                ip: src_ip,
            },
            dst: Side {
                endpoint: to,
                ip: dst_ip,
            },
            proto: probe.proto,
        };
        if self.decide(from, Direction::Egress, &packet) == Verdict::Allow
            && self.decide(to, Direction::Ingress, &packet) == Verdict::Allow
        {
            Verdict::Allow
        } else {
            Verdict::Deny
        }
    }

    /// Each probe with its expected verdict: a truth table for [`crate::truth::check`].
    pub fn table(&self, probes: &[Probe]) -> Vec<(Probe, Verdict)> {
        probes
            .iter()
            .map(|probe| (probe.clone(), self.verdict(probe)))
            .collect()
    }

    fn endpoint(&self, name: &str) -> &EndpointInfo {
        self.endpoints
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no endpoint named {name}"))
    }

    fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.metadata.name == name)
    }

    /// One endpoint's verdict for one direction: policies, then profiles, default deny.
    fn decide(&self, endpoint: &EndpointInfo, direction: Direction, packet: &Packet) -> Verdict {
        let labels = EffectiveLabels {
            world: self,
            endpoint,
        };
        let mut policies: Vec<&Policy> = self
            .policies
            .iter()
            .filter(|p| !p.spec.do_not_track && !p.spec.pre_dnat)
            .filter(|p| governs(p, direction))
            .filter(|p| selector(&p.spec.selector).matches(&labels))
            .collect();
        policies.sort_by(|a, b| {
            let order = |p: &Policy| p.spec.order.unwrap_or(f64::INFINITY);
            order(a)
                .total_cmp(&order(b))
                .then_with(|| a.metadata.name.cmp(&b.metadata.name))
        });
        if !policies.is_empty() {
            let mut passed = false;
            for policy in policies {
                let rules = match direction {
                    Direction::Ingress => &policy.spec.ingress,
                    Direction::Egress => &policy.spec.egress,
                };
                match self.first_match(rules, packet) {
                    Some(Action::Allow) => return Verdict::Allow,
                    Some(Action::Deny) => return Verdict::Deny,
                    Some(Action::Pass) => {
                        passed = true;
                        break;
                    }
                    None => {}
                }
            }
            if !passed {
                return Verdict::Deny;
            }
        }
        for name in &endpoint.profiles {
            let Some(profile) = self.profile(name) else {
                return Verdict::Deny;
            };
            let rules = match direction {
                Direction::Ingress => &profile.spec.ingress,
                Direction::Egress => &profile.spec.egress,
            };
            match self.first_match(rules, packet) {
                Some(Action::Allow) => return Verdict::Allow,
                Some(Action::Deny) => return Verdict::Deny,
                Some(Action::Pass) | None => {}
            }
        }
        Verdict::Deny
    }

    /// The action of the first matching rule that decides something (`log` never does).
    fn first_match(&self, rules: &[Rule], packet: &Packet) -> Option<Action> {
        rules
            .iter()
            .filter(|rule| self.rule_matches(rule, packet))
            .find_map(|rule| match rule.action.as_str() {
                "" | "allow" => Some(Action::Allow),
                "deny" => Some(Action::Deny),
                "pass" | "next-tier" => Some(Action::Pass),
                "log" => None,
                other => panic!("invalid rule action {other:?}"),
            })
    }

    fn rule_matches(&self, rule: &Rule, packet: &Packet) -> bool {
        let v4 = packet.dst.ip.is_ipv4();
        let number = packet.protocol_number();
        rule.ip_version.is_none_or(|v| v == if v4 { 4 } else { 6 })
            && rule
                .protocol
                .as_ref()
                .is_none_or(|p| p.number() == Some(number))
            && rule
                .not_protocol
                .as_ref()
                .is_none_or(|p| p.number() != Some(number))
            && rule.icmp.is_none_or(|icmp| packet.is_icmp(&icmp))
            && rule.not_icmp.is_none_or(|icmp| !packet.is_icmp(&icmp))
            && self.entity_matches(&rule.source, &packet.src, PortKnowledge::Ephemeral, packet)
            && self.entity_matches(
                &rule.destination,
                &packet.dst,
                PortKnowledge::Exact(packet.dst_port()),
                packet,
            )
    }

    fn entity_matches(
        &self,
        entity: &EntityRule,
        side: &Side,
        port: PortKnowledge,
        packet: &Packet,
    ) -> bool {
        let labels = EffectiveLabels {
            world: self,
            endpoint: side.endpoint,
        };
        let same_family = |nets: Vec<Cidr>| -> Option<Vec<_>> {
            let all = nets.len();
            let kept: Vec<_> = nets
                .iter()
                .map(|c| c.ip_net())
                .filter(|n| n.addr().is_ipv4() == side.ip.is_ipv4())
                .collect();
            // A CIDR field left empty by the family filter makes the rule skip this family.
            (all == 0 || !kept.is_empty()).then_some(kept)
        };
        let (Some(nets), Some(not_nets)) = (
            same_family(entity.all_nets()),
            same_family(entity.all_not_nets()),
        ) else {
            return false;
        };
        (nets.is_empty() || nets.iter().any(|n| n.contains(&side.ip)))
            && !not_nets.iter().any(|n| n.contains(&side.ip))
            && (entity.tag.is_empty() || labels.get_label(&entity.tag).is_some())
            && (entity.not_tag.is_empty() || labels.get_label(&entity.not_tag).is_none())
            && (entity.selector.is_empty() || selector(&entity.selector).matches(&labels))
            && (entity.not_selector.is_empty() || !selector(&entity.not_selector).matches(&labels))
            && ports_match(&entity.ports, &entity.not_ports, port, packet)
    }
}

/// Whether the `ports` and `notPorts` criteria of one side hold.
fn ports_match(ports: &[Port], not_ports: &[Port], port: PortKnowledge, packet: &Packet) -> bool {
    if ports.is_empty() && not_ports.is_empty() {
        return true;
    }
    if !matches!(packet.proto, Proto::Tcp(_) | Proto::Udp(_)) {
        return false;
    }
    match port {
        PortKnowledge::Exact(p) => {
            let inside = |list: &[Port]| list.iter().any(|r| (r.min..=r.max).contains(&p));
            (ports.is_empty() || inside(ports)) && !inside(not_ports)
        }
        PortKnowledge::Ephemeral => {
            (ports.is_empty() || covers_ephemeral(ports))
                && not_ports.iter().all(|r| r.max < EPHEMERAL_MIN)
        }
    }
}

/// Whether the ranges together cover every possible source port (1024..=65535).
fn covers_ephemeral(ranges: &[Port]) -> bool {
    let mut ranges = ranges.to_vec();
    ranges.sort_by_key(|r| r.min);
    let mut next = u32::from(EPHEMERAL_MIN);
    for r in ranges {
        if u32::from(r.min) <= next && u32::from(r.max) >= next {
            next = u32::from(r.max) + 1;
        }
    }
    next > u32::from(u16::MAX)
}

/// The lowest port a source port may be (see the module doc).
const EPHEMERAL_MIN: u16 = 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

enum Action {
    Allow,
    Deny,
    Pass,
}

/// What is known about one side's port.
#[derive(Clone, Copy)]
enum PortKnowledge {
    /// Exactly this port (0 for protocols without ports).
    Exact(u16),
    /// Some port in 1024..=65535.
    Ephemeral,
}

struct Side<'w> {
    endpoint: &'w EndpointInfo,
    ip: IpAddr,
}

struct Packet<'w> {
    src: Side<'w>,
    dst: Side<'w>,
    proto: Proto,
}

impl Packet<'_> {
    fn protocol_number(&self) -> u8 {
        match self.proto {
            Proto::Icmp if self.dst.ip.is_ipv4() => 1,
            Proto::Icmp => 58,
            Proto::Tcp(_) => 6,
            Proto::Udp(_) => 17,
        }
    }

    fn dst_port(&self) -> u16 {
        match self.proto {
            Proto::Icmp => 0,
            Proto::Tcp(port) | Proto::Udp(port) => port,
        }
    }

    /// Whether this is an ICMP packet of `fields`' type and code (an echo request: 8/0, or
    /// 128/0 for ICMPv6).
    fn is_icmp(&self, fields: &IcmpFields) -> bool {
        let echo_request = if self.dst.ip.is_ipv4() { 8 } else { 128 };
        self.proto == Proto::Icmp
            && fields.icmp_type.is_none_or(|t| t == echo_request)
            && fields.code.is_none_or(|c| c == 0)
    }
}

fn governs(policy: &Policy, direction: Direction) -> bool {
    let types = &policy.spec.types;
    let name = match direction {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    };
    types.is_empty() || types.iter().any(|t| t == name)
}

fn selector(expression: &str) -> calico_selector::Selector {
    calico_selector::parse(expression)
        .unwrap_or_else(|e| panic!("invalid selector {expression:?}: {e}"))
}

/// An endpoint's labels, then each profile's labels and tags, in order.
struct EffectiveLabels<'w> {
    world: &'w World,
    endpoint: &'w EndpointInfo,
}

impl Labels for EffectiveLabels<'_> {
    fn get_label(&self, key: &str) -> Option<&str> {
        if let Some(value) = self.endpoint.labels.get(key) {
            return Some(value);
        }
        self.endpoint
            .profiles
            .iter()
            .filter_map(|name| self.world.profile(name))
            .find_map(|p| {
                p.metadata
                    .labels
                    .get(key)
                    .map(String::as_str)
                    .or_else(|| p.metadata.tags.iter().any(|t| t == key).then_some(""))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calico_model::codec;

    /// wa (client, 10.0.0.1) and wb (server, 10.0.0.2) use profile `open`; wc (admin,
    /// 10.1.0.3) uses `open` then `other`. `open` allows everything both ways.
    const BASE: &str = "
- apiVersion: v1
  kind: profile
  metadata: {name: open, labels: {tier: open}, tags: [opentag, zone]}
  spec:
    ingress: [{action: allow}]
    egress: [{action: allow}]
- apiVersion: v1
  kind: profile
  metadata: {name: other, labels: {tier: other, zone: z1, t1: labelled}, tags: [t1]}
- apiVersion: v1
  kind: workloadEndpoint
  metadata: {name: ep-a, workload: wa, orchestrator: libnetwork, node: n1, labels: {role: client}}
  spec: {ipNetworks: [10.0.0.1/32], profiles: [open], interfaceName: cali-a}
- apiVersion: v1
  kind: workloadEndpoint
  metadata: {name: ep-b, workload: wb, orchestrator: libnetwork, node: n1, labels: {role: server}}
  spec: {ipNetworks: [10.0.0.2/32], profiles: [open], interfaceName: cali-b}
- apiVersion: v1
  kind: workloadEndpoint
  metadata: {name: ep-c, workload: wc, orchestrator: libnetwork, node: n2, labels: {role: admin}}
  spec: {ipNetworks: [10.1.0.3/32], profiles: [open, other], interfaceName: cali-c}
";

    fn world(extra: &str) -> World {
        let text = format!("{BASE}{extra}");
        World::from_resources(&codec::decode(&text).unwrap_or_else(|e| panic!("{e}\n{text}")))
    }

    fn verdict(extra: &str, probe: &Probe) -> Verdict {
        world(extra).verdict(probe)
    }

    fn policy(name: &str, body: &str) -> String {
        format!("- apiVersion: v1\n  kind: policy\n  metadata: {{name: {name}}}\n  spec:\n{body}")
    }

    /// Whether `rule` (a YAML flow mapping without the action) matches `probe` as the only
    /// ingress rule of a policy on wb: an allow rule that matches allows, otherwise the policy
    /// denies at its end.
    fn ingress_rule_matches(rule: &str, probe: &Probe) -> bool {
        let p = policy(
            "under-test",
            &format!("    selector: role == 'server'\n    ingress: [{{action: allow, {rule}}}]\n"),
        );
        verdict(&p, probe) == Verdict::Allow
    }

    #[test]
    fn rule_criteria() {
        let a_tcp80 = Probe::tcp("wa", "wb", 80);
        let a_udp80 = Probe::udp("wa", "wb", 80);
        let a_ping = Probe::icmp("wa", "wb");
        let c_tcp80 = Probe::tcp("wc", "wb", 80);
        let cases: &[(&str, &Probe, bool)] = &[
            // protocol / notProtocol, by name and number
            ("protocol: tcp", &a_tcp80, true),
            ("protocol: tcp", &a_udp80, false),
            ("protocol: tcp", &a_ping, false),
            ("protocol: 6", &a_tcp80, true),
            ("protocol: 17", &a_udp80, true),
            ("protocol: 17", &a_tcp80, false),
            ("protocol: icmp", &a_ping, true),
            ("protocol: 1", &a_ping, true),
            ("protocol: sctp", &a_tcp80, false),
            ("notProtocol: tcp", &a_tcp80, false),
            ("notProtocol: tcp", &a_udp80, true),
            ("notProtocol: 6", &a_ping, true),
            ("notProtocol: icmp", &a_ping, false),
            // icmp / notICMP: a ping is type 8 code 0
            ("protocol: icmp, icmp: {type: 8}", &a_ping, true),
            ("protocol: icmp, icmp: {type: 8, code: 0}", &a_ping, true),
            ("protocol: icmp, icmp: {type: 8, code: 1}", &a_ping, false),
            ("protocol: icmp, icmp: {type: 0}", &a_ping, false),
            ("protocol: icmp, notICMP: {type: 8}", &a_ping, false),
            ("protocol: icmp, notICMP: {type: 0}", &a_ping, true),
            ("protocol: icmp, notICMP: {type: 8, code: 3}", &a_ping, true),
            // destination ports / notPorts: the probe's port
            ("protocol: tcp, destination: {ports: [80]}", &a_tcp80, true),
            (
                "protocol: tcp, destination: {ports: [81, 443]}",
                &a_tcp80,
                false,
            ),
            (
                "protocol: tcp, destination: {ports: ['1:100']}",
                &a_tcp80,
                true,
            ),
            (
                "protocol: udp, destination: {ports: ['79:80']}",
                &a_udp80,
                true,
            ),
            (
                "protocol: udp, destination: {ports: ['81:90']}",
                &a_udp80,
                false,
            ),
            (
                "protocol: tcp, destination: {notPorts: [80]}",
                &a_tcp80,
                false,
            ),
            (
                "protocol: tcp, destination: {notPorts: [22]}",
                &a_tcp80,
                true,
            ),
            (
                "protocol: tcp, destination: {ports: ['1:100'], notPorts: [80]}",
                &a_tcp80,
                false,
            ),
            // source ports: ephemeral, so only a criterion covering 1024-65535 matches
            ("protocol: tcp, source: {ports: [80]}", &a_tcp80, false),
            (
                "protocol: tcp, source: {ports: ['1024:65535']}",
                &a_tcp80,
                true,
            ),
            (
                "protocol: tcp, source: {ports: ['1:65535']}",
                &a_tcp80,
                true,
            ),
            (
                "protocol: tcp, source: {ports: ['1024:40000', '40001:65535']}",
                &a_tcp80,
                true,
            ),
            (
                "protocol: tcp, source: {ports: ['40001:65535', '1000:40000']}",
                &a_tcp80,
                true,
            ),
            (
                "protocol: tcp, source: {ports: ['1024:40000', '40002:65535']}",
                &a_tcp80,
                false,
            ),
            (
                "protocol: tcp, source: {ports: ['1025:65535']}",
                &a_tcp80,
                false,
            ),
            (
                "protocol: tcp, source: {notPorts: [22, '100:1023']}",
                &a_tcp80,
                true,
            ),
            (
                "protocol: tcp, source: {notPorts: ['30000:40000']}",
                &a_tcp80,
                false,
            ),
            // nets / net / notNets / notNet against the side's address
            ("source: {nets: [10.0.0.0/24]}", &a_tcp80, true),
            ("source: {nets: [10.0.0.0/24]}", &c_tcp80, false),
            (
                "source: {nets: [192.168.0.0/16, 10.1.0.0/16]}",
                &c_tcp80,
                true,
            ),
            ("source: {net: 10.0.0.1/32}", &a_tcp80, true),
            ("source: {net: 10.0.0.9/32}", &a_tcp80, false),
            ("source: {notNets: [10.0.0.0/24]}", &a_tcp80, false),
            ("source: {notNets: [10.0.0.0/24]}", &c_tcp80, true),
            ("source: {notNet: 10.1.0.0/16}", &c_tcp80, false),
            ("source: {notNet: 10.1.0.0/16}", &a_tcp80, true),
            ("destination: {nets: [10.0.0.2/32]}", &a_tcp80, true),
            ("destination: {notNets: [10.0.0.2/32]}", &a_tcp80, false),
            // a family filter that empties a CIDR field skips the rule
            ("source: {nets: ['fd00::/64']}", &a_tcp80, false),
            ("source: {notNets: ['fd00::/64']}", &a_tcp80, false),
            ("source: {notNets: [192.168.0.0/16]}", &a_tcp80, true),
            // selector / notSelector / tag / notTag on effective labels
            ("source: {selector: role == 'client'}", &a_tcp80, true),
            ("source: {selector: role == 'client'}", &c_tcp80, false),
            ("source: {selector: tier == 'open'}", &c_tcp80, true),
            ("source: {selector: has(opentag)}", &a_tcp80, true),
            ("source: {selector: all()}", &a_tcp80, true),
            ("source: {selector: '!has(t1)'}", &a_tcp80, true),
            ("source: {notSelector: role == 'client'}", &a_tcp80, false),
            ("source: {notSelector: role == 'client'}", &c_tcp80, true),
            ("source: {tag: opentag}", &a_tcp80, true),
            ("source: {tag: t1}", &a_tcp80, false),
            ("source: {tag: t1}", &c_tcp80, true),
            ("source: {tag: role}", &a_tcp80, true), // tags alias labels
            ("source: {notTag: t1}", &a_tcp80, true),
            ("source: {notTag: t1}", &c_tcp80, false),
            (
                "source: {tag: t1, selector: role == 'client'}",
                &c_tcp80,
                false,
            ),
            (
                "source: {tag: t1, selector: role == 'admin'}",
                &c_tcp80,
                true,
            ),
            ("destination: {selector: role == 'server'}", &a_tcp80, true),
            ("destination: {selector: role == 'client'}", &a_tcp80, false),
            ("destination: {notTag: opentag}", &a_tcp80, false),
            // ipVersion
            ("ipVersion: 4", &a_tcp80, true),
            ("ipVersion: 6", &a_tcp80, false),
            // every criterion must hold
            (
                "protocol: tcp, source: {tag: t1}, destination: {ports: [80]}",
                &c_tcp80,
                true,
            ),
            (
                "protocol: tcp, source: {tag: t1}, destination: {ports: [80]}",
                &a_tcp80,
                false,
            ),
        ];
        let mut wrong = Vec::new();
        for (rule, probe, expected) in cases {
            if ingress_rule_matches(rule, probe) != *expected {
                wrong.push(format!("{rule} for {probe}: expected match={expected}"));
            }
        }
        assert!(wrong.is_empty(), "wrong:\n{}", wrong.join("\n"));
    }

    #[test]
    fn egress_rules_match_source_on_the_sender_and_destination_on_the_receiver() {
        let on_wa = |rule: &str| {
            policy(
                "egress",
                &format!("    selector: role == 'client'\n    types: [egress]\n    egress: [{{action: allow, {rule}}}]\n"),
            )
        };
        let probe = Probe::tcp("wa", "wb", 80);
        for (rule, expected) in [
            ("destination: {selector: role == 'server'}", Verdict::Allow),
            ("destination: {nets: [10.0.0.2/32]}", Verdict::Allow),
            ("destination: {nets: [10.0.0.1/32]}", Verdict::Deny),
            ("source: {selector: role == 'client'}", Verdict::Allow),
            ("source: {nets: [10.0.0.1/32]}", Verdict::Allow),
            ("protocol: tcp, destination: {ports: [443]}", Verdict::Deny),
        ] {
            assert_eq!(verdict(&on_wa(rule), &probe), expected, "{rule}");
        }
    }

    #[test]
    fn effective_labels_endpoint_then_profiles_in_order_labels_then_tags() {
        let w = world(
            "
- apiVersion: v1
  kind: profile
  metadata: {name: first, labels: {k: first, same: label}, tags: [fromtag, same]}
- apiVersion: v1
  kind: profile
  metadata: {name: second, labels: {k: second, fromtag: label2, only2: x}}
- apiVersion: v1
  kind: workloadEndpoint
  metadata: {name: ep-d, workload: wd, orchestrator: libnetwork, node: n1, labels: {own: yes, k: own}}
  spec: {ipNetworks: [10.0.0.4/32], profiles: [first, ghost, second], interfaceName: cali-d}
",
        );
        let labels = EffectiveLabels {
            world: &w,
            endpoint: w.endpoint("wd"),
        };
        for (key, expected) in [
            ("own", Some("yes")),
            ("k", Some("own")),      // the endpoint's label beats every profile
            ("same", Some("label")), // a profile's label beats its own tag
            ("fromtag", Some("")),   // an earlier profile's tag beats a later label
            ("only2", Some("x")),    // a missing profile in between is skipped
            ("absent", None),
        ] {
            assert_eq!(labels.get_label(key), expected, "{key}");
        }
        assert_eq!(
            EffectiveLabels {
                world: &w,
                endpoint: w.endpoint("wc")
            }
            .get_label("tier"),
            Some("open"),
            "an earlier profile's label beats a later one's"
        );
    }

    #[test]
    fn policy_ordering() {
        let tcp = Probe::tcp("wa", "wb", 80);
        let on_wb = |name: &str, order: &str, action: &str| {
            policy(
                name,
                &format!(
                    "    selector: role == 'server'\n{order}    ingress: [{{action: {action}}}]\n"
                ),
            )
        };
        let cases: &[(&str, String, Verdict)] = &[
            (
                "lower order first",
                on_wb("x", "    order: 10\n", "deny") + &on_wb("y", "    order: 20\n", "allow"),
                Verdict::Deny,
            ),
            (
                "lower order first, other way round",
                on_wb("x", "    order: 20\n", "deny") + &on_wb("y", "    order: 10\n", "allow"),
                Verdict::Allow,
            ),
            (
                "orders compare as numbers",
                on_wb("x", "    order: 9\n", "deny") + &on_wb("y", "    order: 10.5\n", "allow"),
                Verdict::Deny,
            ),
            (
                "a missing order is last",
                on_wb("a", "", "allow") + &on_wb("b", "    order: 1000\n", "deny"),
                Verdict::Deny,
            ),
            (
                "equal orders: by name",
                on_wb("b", "    order: 5\n", "allow") + &on_wb("a", "    order: 5\n", "deny"),
                Verdict::Deny,
            ),
            (
                "equal orders: by name, other way round",
                on_wb("a", "    order: 5\n", "allow") + &on_wb("b", "    order: 5\n", "deny"),
                Verdict::Allow,
            ),
            (
                "two missing orders: by name",
                on_wb("m2", "", "allow") + &on_wb("m1", "", "deny"),
                Verdict::Deny,
            ),
            (
                "a policy whose rules match nothing hands over to the next",
                policy(
                    "x",
                    "    order: 1\n    selector: role == 'server'\n    ingress: [{action: deny, protocol: udp}]\n",
                ) + &on_wb("y", "    order: 2\n", "allow"),
                Verdict::Allow,
            ),
            (
                "policies applied but none allowed: denied, profiles not consulted",
                policy(
                    "x",
                    "    selector: role == 'server'\n    ingress: [{action: allow, protocol: udp}]\n",
                ),
                Verdict::Deny,
            ),
            (
                "pass skips the remaining policies and goes to the profiles",
                on_wb("x", "    order: 1\n", "pass") + &on_wb("y", "    order: 2\n", "deny"),
                Verdict::Allow,
            ),
            (
                "pass after a matching-nothing policy",
                policy(
                    "x",
                    "    order: 1\n    selector: role == 'server'\n    ingress: [{action: deny, protocol: udp}]\n",
                ) + &on_wb("y", "    order: 2\n", "pass"),
                Verdict::Allow,
            ),
            (
                "log goes on with the next rule",
                policy(
                    "x",
                    "    selector: role == 'server'\n    ingress: [{action: log}, {action: deny}]\n",
                ),
                Verdict::Deny,
            ),
            (
                "log alone decides nothing: the policy denies at its end",
                on_wb("x", "", "log"),
                Verdict::Deny,
            ),
            (
                "first matching rule wins",
                policy(
                    "x",
                    "    selector: role == 'server'\n    ingress: [{action: allow, protocol: tcp}, {action: deny}]\n",
                ),
                Verdict::Allow,
            ),
            (
                "a policy not selecting the endpoint does not apply",
                policy("x", "    selector: role == 'nobody'\n    ingress: [{action: deny}]\n"),
                Verdict::Allow,
            ),
            (
                "an empty selector selects every endpoint",
                policy("x", "    selector: ''\n    ingress: [{action: deny}]\n"),
                Verdict::Deny,
            ),
            (
                "policy selectors see inherited labels",
                policy("x", "    selector: has(opentag)\n    ingress: [{action: deny}]\n"),
                Verdict::Deny,
            ),
        ];
        let mut wrong = Vec::new();
        for (what, extra, expected) in cases {
            let got = verdict(extra, &tcp);
            if got != *expected {
                wrong.push(format!("{what}: expected {expected}, got {got}"));
            }
        }
        assert!(wrong.is_empty(), "wrong:\n{}", wrong.join("\n"));
    }

    /// Cases the API's validation refuses, so built by editing a decoded world.
    #[test]
    fn empty_actions_allow_and_host_endpoint_policies_are_ignored() {
        let tcp = Probe::tcp("wa", "wb", 80);
        let deny_all = policy("x", "    selector: all()\n    ingress: [{action: deny}]\n");
        let mut w = world(&deny_all);
        assert_eq!(w.verdict(&tcp), Verdict::Deny);
        w.policies[0].spec.ingress[0].action.clear();
        assert_eq!(w.verdict(&tcp), Verdict::Allow, "an empty action allows");

        for edit in [
            |p: &mut Policy| p.spec.do_not_track = true,
            |p: &mut Policy| p.spec.pre_dnat = true,
        ] {
            let mut w = world(&deny_all);
            edit(&mut w.policies[0]);
            assert_eq!(w.verdict(&tcp), Verdict::Allow);
        }
    }

    #[test]
    fn policy_types() {
        let tcp = Probe::tcp("wa", "wb", 80);
        // on the sender, wa: only ingress rules
        let on_wa = |types: &str| {
            policy(
                "x",
                &format!("    selector: role == 'client'\n    types: {types}\n    ingress: [{{action: allow}}]\n"),
            )
        };
        assert_eq!(
            verdict(&on_wa("[ingress]"), &tcp),
            Verdict::Allow,
            "egress left alone"
        );
        assert_eq!(
            verdict(&on_wa("[ingress, egress]"), &tcp),
            Verdict::Deny,
            "egress governed without egress rules"
        );
        let mut w = world(&on_wa("[ingress]"));
        w.policies[0].spec.types.clear();
        assert_eq!(
            w.verdict(&tcp),
            Verdict::Deny,
            "empty types govern both directions"
        );

        let egress_deny_on_wb = policy(
            "x",
            "    selector: role == 'server'\n    types: [egress]\n    egress: [{action: deny}]\n",
        );
        assert_eq!(
            verdict(&egress_deny_on_wb, &tcp),
            Verdict::Allow,
            "ingress left alone"
        );
        assert_eq!(
            verdict(&egress_deny_on_wb, &Probe::tcp("wb", "wa", 80)),
            Verdict::Deny
        );
    }

    #[test]
    fn profiles() {
        let endpoint = |profiles: &str| {
            format!(
                "
- apiVersion: v1
  kind: profile
  metadata: {{name: denier}}
  spec:
    ingress: [{{action: deny}}]
- apiVersion: v1
  kind: profile
  metadata: {{name: passer}}
  spec:
    ingress: [{{action: pass}}, {{action: deny}}]
- apiVersion: v1
  kind: profile
  metadata: {{name: quiet}}
  spec:
    ingress: [{{action: allow, protocol: udp}}]
- apiVersion: v1
  kind: workloadEndpoint
  metadata: {{name: ep-d, workload: wd, orchestrator: libnetwork, node: n1}}
  spec: {{ipNetworks: [10.0.0.4/32], profiles: {profiles}, interfaceName: cali-d}}
"
            )
        };
        let tcp = Probe::tcp("wa", "wd", 80);
        for (profiles, expected) in [
            ("[open]", Verdict::Allow),
            ("[]", Verdict::Deny),
            ("[quiet]", Verdict::Deny),
            ("[quiet, open]", Verdict::Allow),
            ("[denier, open]", Verdict::Deny),
            ("[open, denier]", Verdict::Allow),
            ("[passer, open]", Verdict::Allow),
            ("[passer]", Verdict::Deny),
            ("[ghost, open]", Verdict::Deny),
            ("[open, ghost]", Verdict::Allow),
        ] {
            assert_eq!(
                verdict(&endpoint(profiles), &tcp),
                expected,
                "profiles {profiles}"
            );
        }
    }

    #[test]
    fn docker_network_profiles_isolate_networks() {
        let w = World::from_resources(
            &codec::decode(
                "
- apiVersion: v1
  kind: profile
  metadata: {name: net1, tags: [net1]}
  spec:
    egress: [{action: allow}]
    ingress: [{action: allow, source: {tag: net1}}]
- apiVersion: v1
  kind: profile
  metadata: {name: net2, tags: [net2]}
  spec:
    egress: [{action: allow}]
    ingress: [{action: allow, source: {tag: net2}}]
- apiVersion: v1
  kind: workloadEndpoint
  metadata: {name: e1, workload: w1, orchestrator: libnetwork, node: n1}
  spec: {ipNetworks: [192.168.0.1/32], profiles: [net1], interfaceName: cali1}
- apiVersion: v1
  kind: workloadEndpoint
  metadata: {name: e2, workload: w2, orchestrator: libnetwork, node: n1}
  spec: {ipNetworks: [192.168.0.2/32], profiles: [net1], interfaceName: cali2}
- apiVersion: v1
  kind: workloadEndpoint
  metadata: {name: e3, orchestrator: libnetwork, node: n1}
  spec: {ipNetworks: [192.168.0.3/32], profiles: [net2], interfaceName: cali3}
",
            )
            .unwrap(),
        );
        let probes = [
            Probe::icmp("w1", "w2"),
            Probe::udp("w2", "w1", 53),
            Probe::tcp("w1", "e3", 80),
            Probe::icmp("e3", "w2"),
            Probe::icmp("e3", "e3"),
        ];
        let table: Vec<String> = w
            .table(&probes)
            .iter()
            .map(|(p, v)| format!("{p}: {v}"))
            .collect();
        assert_eq!(
            table,
            [
                "w1 -> w2 icmp: allow",
                "w2 -> w1 udp/53: allow",
                "w1 -> e3 tcp/80: deny",
                "e3 -> w2 icmp: deny",
                "e3 -> e3 icmp: allow",
            ]
        );
    }

    #[test]
    fn ipv6_endpoints_are_probed_over_ipv6() {
        let text = BASE
            .replace("10.0.0.1/32", "'fd00::1/128'")
            .replace("10.0.0.2/32", "'fd00::2/128'");
        let w = World::from_resources(&codec::decode(&format!(
            "{text}{}",
            policy(
                "x",
                "    selector: role == 'server'\n    ingress: [{action: allow, protocol: icmpv6, icmp: {type: 128}}]\n"
            )
        )).unwrap());
        assert_eq!(w.verdict(&Probe::icmp("wa", "wb")), Verdict::Allow);
        assert_eq!(w.verdict(&Probe::tcp("wa", "wb", 80)), Verdict::Deny);
    }

    #[test]
    #[should_panic(expected = "no endpoint named nobody")]
    fn unknown_endpoints_panic() {
        world("").verdict(&Probe::icmp("wa", "nobody"));
    }
}
