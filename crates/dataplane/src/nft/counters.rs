//! Per-rule packet and byte counters, for metrics: which policy or profile rule accepted or
//! dropped how much, and how much an endpoint dropped because nothing allowed it.
//!
//! Every line of a policy or profile chain carries a `counter`, as do the two implicit drops of
//! an endpoint chain (after the policies, when none allowed or passed; at the end, when no
//! profile allowed). [`counted_rules`] says, for a [`Desired`] state, which rule each such line
//! is, by chain and rule tag (the hash comment of [`super::readback`]); [`parse_counters`]
//! reads `nft -j list table inet calico` and sums the lines of each rule (a rule renders to one
//! line per IP family). A chain rewritten by a change starts its counters at zero, which
//! Prometheus reads as a counter reset.

use std::collections::BTreeMap;

use calico_calc::desired::{Action, Desired, DirectionPlan};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;

use super::layout::{policies_drop, rule_lines, END_DROP};
use super::names::{
    object_name, rule_tag, usable_interface, FROM_ENDPOINT, FROM_HOST, POLICY_EGRESS,
    POLICY_INGRESS, PROFILE_EGRESS, PROFILE_INGRESS, TO_ENDPOINT, TO_HOST,
};
use crate::{DataplaneError, Result};

/// What owns a counted rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CountedKind {
    /// A policy's rule.
    Policy,
    /// A profile's rule.
    Profile,
    /// An implicit drop of a workload endpoint (named by its host interface).
    WorkloadEndpoint,
    /// An implicit drop of a host endpoint (named by its interface).
    HostEndpoint,
}

impl CountedKind {
    /// The kind as a metric label: `policy`, `profile`, `workload-endpoint`, `host-endpoint`.
    pub fn as_str(self) -> &'static str {
        match self {
            CountedKind::Policy => "policy",
            CountedKind::Profile => "profile",
            CountedKind::WorkloadEndpoint => "workload-endpoint",
            CountedKind::HostEndpoint => "host-endpoint",
        }
    }
}

/// Which traffic, from the endpoint's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Arriving at the endpoint.
    Ingress,
    /// Leaving the endpoint.
    Egress,
}

impl Direction {
    /// `ingress` or `egress`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// The rule of an endpoint chain that drops what no policy allowed or passed.
pub const NO_POLICY_ALLOWED: &str = "no-policy-allowed";
/// The rule of an endpoint chain that drops what no profile allowed.
pub const NO_PROFILE_ALLOWED: &str = "no-profile-allowed";

/// One counted rule.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CountedRule {
    /// Its owner's kind.
    pub kind: CountedKind,
    /// The policy, profile or interface name.
    pub name: String,
    /// The direction of the rule list.
    pub direction: Direction,
    /// The rule's index in its list (from 0, as Felix numbers rules), or
    /// [`NO_POLICY_ALLOWED`] / [`NO_PROFILE_ALLOWED`] for an endpoint's implicit drops.
    pub rule: String,
    /// What the rule does when it matches: `allow`, `deny`, `log`, `pass`.
    pub action: &'static str,
}

/// A counted rule with its counters, summed over its lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleCount {
    /// Which rule.
    pub rule: CountedRule,
    /// Packets it matched.
    pub packets: u64,
    /// Bytes it matched.
    pub bytes: u64,
}

/// The counted rules of a [`Desired`] state, by chain and rule tag (a tag repeats only for
/// identical lines of one chain, listed in chain order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CounterIndex {
    lines: BTreeMap<(String, String), Vec<CountedRule>>,
}

/// The action's name as a user writes it.
fn action_name(action: Action) -> &'static str {
    match action {
        Action::Allow | Action::AllowUntracked | Action::AllowPreDnat => "allow",
        Action::Deny => "deny",
        Action::Log => "log",
        Action::Pass => "pass",
    }
}

impl CounterIndex {
    fn add(&mut self, chain: String, body: &str, rule: CountedRule) {
        self.lines
            .entry((chain, rule_tag(body)))
            .or_default()
            .push(rule);
    }

    /// Adds the rules of one policy or profile list.
    fn add_list(
        &mut self,
        kind: CountedKind,
        name: &str,
        direction: Direction,
        rules: &[calico_calc::desired::Rule],
    ) {
        let (prefix, is_policy) = match (kind, direction) {
            (CountedKind::Policy, Direction::Ingress) => (POLICY_INGRESS, true),
            (CountedKind::Policy, Direction::Egress) => (POLICY_EGRESS, true),
            (_, Direction::Ingress) => (PROFILE_INGRESS, false),
            (_, Direction::Egress) => (PROFILE_EGRESS, false),
        };
        let chain = object_name(prefix, name);
        for (index, body) in rule_lines(rules, is_policy) {
            let rule = CountedRule {
                kind,
                name: name.to_string(),
                direction,
                rule: index.to_string(),
                action: action_name(rules[index].action),
            };
            self.add(chain.clone(), &body, rule);
        }
    }

    /// Adds the implicit drops of one endpoint chain.
    fn add_endpoint(
        &mut self,
        kind: CountedKind,
        iface: &str,
        direction: Direction,
        chain: String,
        plan: &DirectionPlan,
    ) {
        let drop = |rule: &str| CountedRule {
            kind,
            name: iface.to_string(),
            direction,
            rule: rule.to_string(),
            action: "deny",
        };
        if !plan.policies.is_empty() {
            self.add(chain.clone(), &policies_drop(), drop(NO_POLICY_ALLOWED));
        }
        self.add(chain, END_DROP, drop(NO_PROFILE_ALLOWED));
    }
}

/// Which rule each counted line of the table for `desired` is.
pub fn counted_rules(desired: &Desired) -> CounterIndex {
    let mut index = CounterIndex::default();
    for (kind, lists) in [
        (CountedKind::Policy, &desired.policies),
        (CountedKind::Profile, &desired.profiles),
    ] {
        for (name, rules) in lists {
            index.add_list(kind, name, Direction::Ingress, &rules.ingress);
            index.add_list(kind, name, Direction::Egress, &rules.egress);
        }
    }
    for (iface, ep) in desired
        .endpoints
        .iter()
        .filter(|(i, _)| usable_interface(i))
    {
        let kind = CountedKind::WorkloadEndpoint;
        index.add_endpoint(
            kind,
            iface,
            Direction::Egress,
            object_name(FROM_ENDPOINT, iface),
            &ep.egress,
        );
        index.add_endpoint(
            kind,
            iface,
            Direction::Ingress,
            object_name(TO_ENDPOINT, iface),
            &ep.ingress,
        );
    }
    for (iface, plan) in desired
        .host_endpoints
        .iter()
        .filter(|(i, _)| usable_interface(i))
    {
        let kind = CountedKind::HostEndpoint;
        index.add_endpoint(
            kind,
            iface,
            Direction::Ingress,
            object_name(FROM_HOST, iface),
            &plan.ingress,
        );
        index.add_endpoint(
            kind,
            iface,
            Direction::Egress,
            object_name(TO_HOST, iface),
            &plan.egress,
        );
    }
    index
}

/// The counters of the rules of `index` in the listing `json` (`nft -j list table …`), sorted
/// by rule; a rule the table lacks is left out, a line the index does not know is ignored.
pub fn parse_counters(json: &str, index: &CounterIndex) -> Result<Vec<RuleCount>> {
    let listing: Listing = serde_json::from_str(json).map_err(|e| DataplaneError::NftListing {
        reason: e.to_string(),
    })?;
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut sums: BTreeMap<&CountedRule, (u64, u64)> = BTreeMap::new();
    for item in listing.nftables {
        let Item::Rule(rule) = item else { continue };
        let Some(comment) = rule.comment else {
            continue;
        };
        let Some((packets, bytes)) = rule.expr.iter().find_map(counter_of) else {
            continue;
        };
        let key = (rule.chain, comment);
        let Some(owners) = index.lines.get(&key) else {
            continue;
        };
        let nth = seen.entry(key).or_default();
        let owner = &owners[(*nth).min(owners.len() - 1)];
        *nth += 1;
        let sum = sums.entry(owner).or_default();
        sum.0 += packets;
        sum.1 += bytes;
    }
    Ok(sums
        .into_iter()
        .map(|(rule, (packets, bytes))| RuleCount {
            rule: rule.clone(),
            packets,
            bytes,
        })
        .collect())
}

/// The packets and bytes of a `{"counter": {"packets": …, "bytes": …}}` expression.
fn counter_of(expr: &Value) -> Option<(u64, u64)> {
    let counter = expr.get("counter")?;
    Some((
        counter.get("packets")?.as_u64()?,
        counter.get("bytes")?.as_u64()?,
    ))
}

/// `nft -j list table` output, rules only.
#[derive(Deserialize)]
struct Listing {
    nftables: Vec<Item>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Item {
    Rule(RuleItem),
    #[serde(untagged)]
    Other(IgnoredAny),
}

#[derive(Deserialize)]
struct RuleItem {
    chain: String,
    comment: Option<String>,
    #[serde(default)]
    expr: Vec<Value>,
}

#[cfg(test)]
mod tests {
    use calico_calc::desired::{LocalEndpoint, Rule, Rules, SideMatch};
    use serde_json::json;

    use super::*;

    fn desired() -> Desired {
        let mut desired = Desired::default();
        let mut v4_and_v6 = Rule::new(Action::Allow);
        v4_and_v6.source = SideMatch {
            nets: vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()],
            ..SideMatch::default()
        };
        desired.policies.insert(
            "db".into(),
            Rules {
                ingress: vec![v4_and_v6, Rule::new(Action::Deny)],
                egress: Vec::new(),
            },
        );
        desired.profiles.insert("net1".into(), Rules::default());
        desired.endpoints.insert(
            "cali1".into(),
            LocalEndpoint {
                interface: "cali1".into(),
                addrs: vec!["10.0.0.1/32".parse().unwrap()],
                ingress: DirectionPlan {
                    policies: vec!["db".into()],
                    profiles: vec!["net1".into()],
                },
                egress: DirectionPlan {
                    policies: Vec::new(),
                    profiles: vec!["net1".into()],
                },
            },
        );
        desired
    }

    /// A listed rule of `chain` with comment `tag` and a counter.
    fn listed(chain: &str, tag: &str, packets: u64, bytes: u64) -> Value {
        json!({"rule": {"family": "inet", "table": "calico", "chain": chain, "handle": 1,
            "comment": tag, "expr": [{"match": {}}, {"counter": {"packets": packets, "bytes": bytes}}, {"accept": null}]}})
    }

    fn tags(index: &CounterIndex, chain: &str) -> Vec<String> {
        index
            .lines
            .keys()
            .filter(|(c, _)| c == chain)
            .map(|(_, t)| t.clone())
            .collect()
    }

    #[test]
    fn each_rule_sums_its_family_lines_and_implicit_drops_are_named() {
        let desired = desired();
        let index = counted_rules(&desired);
        let pi = tags(&index, "pi-db");
        assert_eq!(
            pi.len(),
            3,
            "two lines for the dual-family rule, one for the deny"
        );
        let [drop_all, end] = [rule_tag(&policies_drop()), rule_tag(END_DROP)];
        let mut items: Vec<Value> = pi.iter().map(|t| listed("pi-db", t, 2, 200)).collect();
        items.push(listed("tw-cali1", &drop_all, 5, 500));
        items.push(listed("tw-cali1", &end, 1, 100));
        items.push(listed("fw-cali1", &end, 7, 700));
        items.push(listed("fw-cali1", "unknown", 9, 900));
        items.push(json!({"chain": {"name": "pi-db"}}));
        let json = json!({"nftables": items}).to_string();
        let counts = parse_counters(&json, &index).unwrap();
        let find = |name: &str, direction: Direction, rule: &str| {
            counts
                .iter()
                .find(|c| {
                    c.rule.name == name && c.rule.direction == direction && c.rule.rule == rule
                })
                .map(|c| (c.packets, c.bytes, c.rule.action))
        };
        let allow = rule_lines(&desired.policies["db"].ingress, true);
        let allow_lines = allow.iter().filter(|(i, _)| *i == 0).count() as u64;
        assert_eq!(
            find("db", Direction::Ingress, "0"),
            Some((2 * allow_lines, 200 * allow_lines, "allow"))
        );
        assert_eq!(find("db", Direction::Ingress, "1"), Some((2, 200, "deny")));
        assert_eq!(
            find("cali1", Direction::Ingress, NO_POLICY_ALLOWED),
            Some((5, 500, "deny"))
        );
        assert_eq!(
            find("cali1", Direction::Ingress, NO_PROFILE_ALLOWED),
            Some((1, 100, "deny"))
        );
        assert_eq!(
            find("cali1", Direction::Egress, NO_PROFILE_ALLOWED),
            Some((7, 700, "deny"))
        );
        assert_eq!(
            find("cali1", Direction::Egress, NO_POLICY_ALLOWED),
            None,
            "no egress policies"
        );
        assert_eq!(counts.len(), 5);
    }

    #[test]
    fn a_listing_that_is_not_json_is_an_error() {
        assert!(parse_counters("{", &CounterIndex::default()).is_err());
    }
}
