//! Drift detection: a [`TableFingerprint`] of the live table (from `nft -j list table inet
//! calico`) compared with the one [`super::render_full`] would produce.
//!
//! Rules are not compared by their text, which nft rewrites when it lists them (`meta l4proto
//! 6` comes back as `meta l4proto tcp`, single-element sets lose their braces, …). Instead every
//! rule we write carries a comment holding a hash of the body we rendered, and a chain's
//! fingerprint is its ordered list of comments (as Felix does with its rule-hash comments). Set
//! elements are compared as parsed addresses, map elements as `"key" : verdict`, base chains by
//! type, hook, priority and policy. A rule, set element, chain or any other object added,
//! removed or reordered by someone else therefore shows up as a difference; a rule body edited
//! in place with its comment kept does not.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use calico_calc::desired::Desired;
use ipnet::IpNet;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;

use super::layout::{layout, pool_element, Chain};
use super::names::rule_tag;
use crate::{DataplaneError, Result};

/// What identifies the content of the `inet calico` table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableFingerprint {
    /// Chains by name.
    pub chains: BTreeMap<String, ChainPrint>,
    /// Sets and verdict maps by name.
    pub sets: BTreeMap<String, SetPrint>,
    /// Any other object (flowtables, named counters, …), as `kind name`.
    pub others: BTreeSet<String>,
}

/// One chain's identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainPrint {
    /// For a base chain: `<type> <hook> <priority> <policy>`, e.g. `filter forward -20 accept`.
    pub hook: Option<String>,
    /// Each rule's comment, in order (`None` for a rule without one).
    pub rules: Vec<Option<String>>,
}

/// One set's or map's identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetPrint {
    /// Its type and flags: `ipv4_addr`, `ipv6_addr interval`, or `ifname : verdict` for a
    /// verdict map.
    pub kind: String,
    /// Its elements: addresses in their canonical form, CIDRs as `addr/len` (a host prefix as
    /// its address, as nft prints it), map elements as `"key" : goto chain`.
    pub elements: BTreeSet<String>,
}

impl TableFingerprint {
    /// The names of the objects that differ between `self` and `other` (`chain x`, `set y`, …),
    /// for logging drift.
    pub fn differences(&self, other: &TableFingerprint) -> Vec<String> {
        fn diff<V: PartialEq>(
            kind: &str,
            a: &BTreeMap<String, V>,
            b: &BTreeMap<String, V>,
            out: &mut Vec<String>,
        ) {
            let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for name in names {
                if a.get(name) != b.get(name) {
                    out.push(format!("{kind} {name}"));
                }
            }
        }
        let mut out = Vec::new();
        diff("chain", &self.chains, &other.chains, &mut out);
        diff("set", &self.sets, &other.sets, &mut out);
        out.extend(
            self.others
                .symmetric_difference(&other.others)
                .map(String::clone),
        );
        out
    }
}

/// The fingerprint of the table [`super::render_full`] writes for `desired`.
pub fn fingerprint(desired: &Desired) -> TableFingerprint {
    let layout = layout(desired);
    let mut print = TableFingerprint::default();
    for chain in layout.chains.iter().chain(&layout.base_chains) {
        print.chains.insert(chain.name.clone(), chain_print(chain));
    }
    for set in &layout.sets {
        let elements = set.elements.iter().map(IpAddr::to_string).collect();
        let kind = set.family.set_type().to_string();
        print
            .sets
            .insert(set.name.clone(), SetPrint { kind, elements });
    }
    for set in &layout.pool_sets {
        let elements = set.elements.iter().map(pool_element).collect();
        let kind = format!("{} interval", set.family.set_type());
        print
            .sets
            .insert(set.name.clone(), SetPrint { kind, elements });
    }
    for map in &layout.maps {
        let elements = map
            .elements
            .iter()
            .map(|(key, target)| map_element(key, &format!("goto {target}")))
            .collect();
        let kind = "ifname : verdict".to_string();
        print
            .sets
            .insert(map.name.to_string(), SetPrint { kind, elements });
    }
    print
}

/// The expected identity of one chain.
fn chain_print(chain: &Chain) -> ChainPrint {
    ChainPrint {
        hook: chain
            .hook
            .map(|h| format!("{} {} {} accept", h.kind, h.hook, h.priority)),
        rules: chain
            .rules
            .iter()
            .map(|body| Some(rule_tag(body)))
            .collect(),
    }
}

/// A map element as compared.
fn map_element(key: &str, verdict: &str) -> String {
    format!("\"{key}\" : {verdict}")
}

/// Parses the output of `nft -j list table …`. Items are read into small typed structs (rule
/// expressions are skipped unparsed), so a large table costs little memory to read back.
pub(crate) fn parse_listing(json: &str) -> Result<TableFingerprint> {
    let bad = |reason: String| DataplaneError::NftListing { reason };
    let listing: Listing = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    let mut print = TableFingerprint::default();
    for item in listing.nftables {
        match item {
            Item::Metainfo(_) | Item::Table(_) => {}
            Item::Chain(chain) => {
                let hook = chain.hook.map(|hook| {
                    let prio = chain.prio.map(|p| p.to_string()).unwrap_or_default();
                    let kind = chain.kind.unwrap_or_default();
                    let policy = chain.policy.unwrap_or_default();
                    format!("{kind} {hook} {prio} {policy}")
                });
                print.chains.entry(chain.name).or_default().hook = hook;
            }
            Item::Rule(rule) => print
                .chains
                .entry(rule.chain)
                .or_default()
                .rules
                .push(rule.comment),
            Item::Set(set) => {
                let elements = set.elem.iter().map(set_element).collect();
                let kind = [type_name(Some(&set.kind))]
                    .into_iter()
                    .chain(set.flags)
                    .collect::<Vec<_>>()
                    .join(" ");
                print.sets.insert(set.name, SetPrint { kind, elements });
            }
            Item::Map(map) => {
                let elements = map.elem.iter().map(verdict_element).collect();
                let kind = format!(
                    "{} : {}",
                    type_name(Some(&map.kind)),
                    type_name(map.map.as_ref())
                );
                print.sets.insert(map.name, SetPrint { kind, elements });
            }
            Item::Other(other) => {
                let Some((kind, body)) = other.as_object().and_then(|o| o.iter().next()) else {
                    return Err(bad(format!("unexpected item {other}")));
                };
                print
                    .others
                    .insert(format!("{kind} {}", text(body, "name")));
            }
        }
    }
    Ok(print)
}

/// `nft -j list table` output.
#[derive(Deserialize)]
struct Listing {
    nftables: Vec<Item>,
}

/// One object of the listing; rule expressions and other unneeded fields are skipped.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Item {
    Metainfo(IgnoredAny),
    Table(IgnoredAny),
    Chain(ChainItem),
    Rule(RuleItem),
    Set(SetItem),
    Map(SetItem),
    #[serde(untagged)]
    Other(Value),
}

#[derive(Deserialize)]
struct ChainItem {
    name: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    hook: Option<String>,
    prio: Option<Value>,
    policy: Option<String>,
}

#[derive(Deserialize)]
struct RuleItem {
    chain: String,
    comment: Option<String>,
}

#[derive(Deserialize)]
struct SetItem {
    name: String,
    #[serde(rename = "type")]
    kind: Value,
    map: Option<Value>,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    elem: Vec<Value>,
}

/// A string field of a JSON object, or empty.
fn text(body: &Value, key: &str) -> String {
    body.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A set's or map's type: a plain name, or the JSON of a concatenation.
fn type_name(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// A set element: an address in canonical form, a prefix `{"prefix": {"addr", "len"}}` as
/// `addr/len`, or its JSON.
fn set_element(value: &Value) -> String {
    if let Some(Ok(addr)) = value.as_str().map(str::parse::<IpAddr>) {
        return addr.to_string();
    }
    let prefix = value.get("prefix").and_then(|p| {
        let addr: IpAddr = p.get("addr")?.as_str()?.parse().ok()?;
        let len = u8::try_from(p.get("len")?.as_u64()?).ok()?;
        IpNet::new(addr, len).ok()
    });
    match prefix {
        Some(net) => pool_element(&net),
        None => value.to_string(),
    }
}

/// A verdict-map element `["key", {"goto": {"target": "chain"}}]` as `"key" : goto chain`.
fn verdict_element(value: &Value) -> String {
    let pair = value.as_array().map(Vec::as_slice);
    let Some([Value::String(key), verdict]) = pair else {
        return value.to_string();
    };
    let verdict = verdict
        .as_object()
        .and_then(|o| o.iter().next())
        .and_then(|(kind, arg)| {
            let target = arg.get("target")?.as_str()?;
            Some(format!("{kind} {target}"))
        })
        .unwrap_or_else(|| verdict.to_string());
    map_element(key, &verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
      {"table": {"family": "inet", "name": "calico", "handle": 4}},
      {"set": {"family": "inet", "name": "s6-x", "table": "calico", "type": "ipv6_addr", "handle": 4, "elem": ["fd00:0::1", "fd00::2"]}},
      {"set": {"family": "inet", "name": "s4-x", "table": "calico", "type": "ipv4_addr", "handle": 5}},
      {"set": {"family": "inet", "name": "all-pools4", "table": "calico", "type": "ipv4_addr", "handle": 9, "flags": ["interval"], "elem": ["10.1.2.3", {"prefix": {"addr": "192.168.0.0", "len": 16}}, {"prefix": {"addr": "10.0.0.0", "len": 33}}]}},
      {"map": {"family": "inet", "name": "from-wl", "table": "calico", "type": "ifname", "handle": 6, "map": "verdict", "elem": [["cali1", {"goto": {"target": "fw-cali1"}}]]}},
      {"chain": {"family": "inet", "table": "calico", "name": "fw-cali1", "handle": 1}},
      {"chain": {"family": "inet", "table": "calico", "name": "forward-from-wl", "handle": 3, "type": "filter", "hook": "forward", "prio": -20, "policy": "accept"}},
      {"rule": {"family": "inet", "table": "calico", "chain": "fw-cali1", "handle": 7, "comment": "aa", "expr": [{"drop": null}]}},
      {"rule": {"family": "inet", "table": "calico", "chain": "fw-cali1", "handle": 8, "expr": [{"accept": null}]}},
      {"flowtable": {"family": "inet", "name": "ft", "table": "calico"}}]}"#;

    #[test]
    fn parses_chains_rules_sets_maps_and_others() {
        let print = parse_listing(LISTING).unwrap();
        let fw = &print.chains["fw-cali1"];
        assert_eq!(fw.hook, None);
        assert_eq!(fw.rules, [Some("aa".to_string()), None]);
        assert_eq!(
            print.chains["forward-from-wl"].hook.as_deref(),
            Some("filter forward -20 accept")
        );
        assert_eq!(print.sets["s6-x"].kind, "ipv6_addr");
        let v6: Vec<&str> = print.sets["s6-x"]
            .elements
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(v6, ["fd00::1", "fd00::2"]);
        let pools = &print.sets["all-pools4"];
        assert_eq!(pools.kind, "ipv4_addr interval");
        let pools: Vec<&str> = pools.elements.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            pools,
            [
                "10.1.2.3",
                "192.168.0.0/16",
                r#"{"prefix":{"addr":"10.0.0.0","len":33}}"#
            ]
        );
        assert!(print.sets["s4-x"].elements.is_empty());
        assert_eq!(print.sets["from-wl"].kind, "ifname : verdict");
        assert_eq!(
            print.sets["from-wl"].elements.iter().next().unwrap(),
            "\"cali1\" : goto fw-cali1"
        );
        assert_eq!(print.others, BTreeSet::from(["flowtable ft".to_string()]));
    }

    #[test]
    fn malformed_listings_are_errors() {
        for bad in ["", "[]", "{\"nftables\": 1}", "{\"nftables\": [1]}"] {
            assert!(
                matches!(parse_listing(bad), Err(DataplaneError::NftListing { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn differences_name_the_objects() {
        let live = parse_listing(LISTING).unwrap();
        let mut want = live.clone();
        want.chains.get_mut("fw-cali1").unwrap().rules.pop();
        want.sets.remove("s4-x");
        want.others.clear();
        assert_eq!(
            live.differences(&want),
            ["chain fw-cali1", "set s4-x", "flowtable ft"]
        );
        assert!(live.differences(&live).is_empty());
    }
}
