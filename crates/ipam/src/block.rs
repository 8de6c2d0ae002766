//! An allocation block as Calico stores it, and its ordinal bookkeeping.
//!
//! `allocations[o]` is the index into `attributes` of the allocation at ordinal `o`, or null
//! when free; `unallocated` lists the free ordinals in the order they are handed out (released
//! ordinals go to the back). Identical attributes share one entry; an entry no allocation refers
//! to is removed.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::net::{address, is_block, ordinal, BLOCK_SIZE};

/// The prefix of a block's `affinity` naming a host.
const HOST_AFFINITY: &str = "host:";
/// The `secondary` attribute naming the node that made the allocation.
const NODE_ATTR: &str = "node";
/// The `secondary` attribute holding the allocation time, in Unix seconds.
const ALLOCATED_AT_ATTR: &str = "allocatedAt";

/// What is recorded with an allocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Attribute {
    /// Calico's allocation handle (CNI's container ID); this crate writes none.
    #[serde(default)]
    handle_id: Option<String>,
    /// Free-form string attributes.
    #[serde(default)]
    secondary: Option<BTreeMap<String, String>>,
}

impl Attribute {
    /// The attributes of an allocation made by `node` at `allocated_at` (Unix seconds).
    pub(crate) fn new(node: &str, allocated_at: u64) -> Self {
        let secondary = BTreeMap::from([
            (NODE_ATTR.to_owned(), node.to_owned()),
            (ALLOCATED_AT_ATTR.to_owned(), allocated_at.to_string()),
        ]);
        Attribute {
            handle_id: None,
            secondary: Some(secondary),
        }
    }

    /// The node that made the allocation, if recorded.
    pub(crate) fn node(&self) -> Option<&str> {
        self.secondary.as_ref()?.get(NODE_ATTR).map(String::as_str)
    }

    /// When the allocation was made (Unix seconds), if recorded.
    pub(crate) fn allocated_at(&self) -> Option<u64> {
        self.secondary
            .as_ref()?
            .get(ALLOCATED_AT_ATTR)?
            .parse()
            .ok()
    }
}

/// One block of 64 addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Block {
    cidr: IpNet,
    affinity: Option<String>,
    strict_affinity: bool,
    allocations: Vec<Option<usize>>,
    unallocated: Vec<usize>,
    attributes: Vec<Attribute>,
}

/// The stored JSON form (Calico's `model.AllocationBlock`; Python wrote `strict_affinity`).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    cidr: String,
    #[serde(default)]
    affinity: Option<String>,
    #[serde(default, alias = "strict_affinity")]
    strict_affinity: Option<bool>,
    #[serde(default)]
    allocations: Option<Vec<Option<usize>>>,
    #[serde(default)]
    unallocated: Option<Vec<usize>>,
    #[serde(default)]
    attributes: Option<Vec<Attribute>>,
}

impl Block {
    /// An empty block, affine to `node` if given.
    pub(crate) fn new(cidr: IpNet, node: Option<&str>) -> Self {
        Block {
            cidr,
            affinity: node.map(|n| format!("{HOST_AFFINITY}{n}")),
            strict_affinity: false,
            allocations: vec![None; BLOCK_SIZE],
            unallocated: (0..BLOCK_SIZE).collect(),
            attributes: Vec::new(),
        }
    }

    /// Reads a stored block that must be `expected`, checking every internal reference.
    pub(crate) fn decode(bytes: &[u8], expected: IpNet) -> Result<Self, String> {
        let wire: Wire = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
        let cidr: IpNet = wire
            .cidr
            .parse()
            .map_err(|_| format!("cidr {:?} is not an IP network", wire.cidr))?;
        if !is_block(cidr) {
            return Err(format!("cidr {cidr} is not a 64-address block"));
        }
        if cidr != expected {
            return Err(format!("cidr {cidr} does not match its key ({expected})"));
        }
        let allocations = wire.allocations.unwrap_or_default();
        let unallocated = wire.unallocated.unwrap_or_default();
        let attributes = wire.attributes.unwrap_or_default();
        if allocations.len() != BLOCK_SIZE {
            return Err(format!(
                "has {} allocations, expected {BLOCK_SIZE}",
                allocations.len()
            ));
        }
        for (o, attr) in allocations.iter().enumerate() {
            if let Some(i) = attr.filter(|i| *i >= attributes.len()) {
                return Err(format!(
                    "allocation {o} refers to attribute {i} of {}",
                    attributes.len()
                ));
            }
        }
        let mut listed = [false; BLOCK_SIZE];
        for &o in &unallocated {
            match (listed.get(o), allocations.get(o)) {
                (None, _) | (_, None) => {
                    return Err(format!("unallocated ordinal {o} is out of range"))
                }
                (Some(true), _) => return Err(format!("ordinal {o} is listed as free twice")),
                (_, Some(Some(_))) => {
                    return Err(format!("ordinal {o} is listed as free but is allocated"))
                }
                (Some(false), Some(None)) => listed[o] = true,
            }
        }
        if let Some(o) = (0..BLOCK_SIZE).find(|&o| allocations[o].is_none() && !listed[o]) {
            return Err(format!(
                "ordinal {o} is neither allocated nor listed as free"
            ));
        }
        Ok(Block {
            cidr,
            affinity: wire.affinity,
            strict_affinity: wire.strict_affinity.unwrap_or(false),
            allocations,
            unallocated,
            attributes,
        })
    }

    /// The stored JSON form.
    pub(crate) fn encode(&self) -> serde_json::Result<Vec<u8>> {
        let wire = Wire {
            cidr: self.cidr.to_string(),
            affinity: self.affinity.clone(),
            strict_affinity: Some(self.strict_affinity),
            allocations: Some(self.allocations.clone()),
            unallocated: Some(self.unallocated.clone()),
            attributes: Some(self.attributes.clone()),
        };
        serde_json::to_vec(&wire)
    }

    /// The block's network.
    pub(crate) fn cidr(&self) -> IpNet {
        self.cidr
    }

    /// Whether the block's affinity is `host:<node>`.
    pub(crate) fn is_affine_to(&self, node: &str) -> bool {
        self.affinity
            .as_deref()
            .and_then(|a| a.strip_prefix(HOST_AFFINITY))
            == Some(node)
    }

    /// Whether the block has any affinity.
    pub(crate) fn has_affinity(&self) -> bool {
        self.affinity.is_some()
    }

    /// How many addresses are free.
    pub(crate) fn free(&self) -> usize {
        self.unallocated.len()
    }

    /// Whether nothing is allocated.
    pub(crate) fn is_empty(&self) -> bool {
        self.unallocated.len() == BLOCK_SIZE
    }

    /// Allocates the first free ordinal, if any.
    pub(crate) fn auto_assign(&mut self, attribute: Attribute) -> Option<IpAddr> {
        if self.unallocated.is_empty() {
            return None;
        }
        let o = self.unallocated.remove(0);
        self.allocations[o] = Some(self.find_or_add(attribute));
        Some(address(self.cidr, o))
    }

    /// Allocates `ip`; false if it is outside the block or already allocated.
    pub(crate) fn assign(&mut self, ip: IpAddr, attribute: Attribute) -> bool {
        let Some(o) = ordinal(self.cidr, ip) else {
            return false;
        };
        let Some(pos) = self.unallocated.iter().position(|&u| u == o) else {
            return false;
        };
        self.unallocated.remove(pos);
        self.allocations[o] = Some(self.find_or_add(attribute));
        true
    }

    /// Frees `ip`; false if it was not allocated here.
    pub(crate) fn release(&mut self, ip: IpAddr) -> bool {
        let Some(o) = ordinal(self.cidr, ip) else {
            return false;
        };
        let Some(attr) = self.allocations[o].take() else {
            return false;
        };
        self.unallocated.push(o);
        if !self.allocations.contains(&Some(attr)) {
            self.attributes.remove(attr);
            for index in self.allocations.iter_mut().flatten() {
                if *index > attr {
                    *index -= 1;
                }
            }
        }
        true
    }

    /// The index of `attribute`, added if no entry equals it.
    fn find_or_add(&mut self, attribute: Attribute) -> usize {
        match self.attributes.iter().position(|a| *a == attribute) {
            Some(index) => index,
            None => {
                self.attributes.push(attribute);
                self.attributes.len() - 1
            }
        }
    }

    /// The attributes of the allocation holding `ip`, if allocated.
    pub(crate) fn attribute_of(&self, ip: IpAddr) -> Option<&Attribute> {
        let index = (*self.allocations.get(ordinal(self.cidr, ip)?)?)?;
        self.attributes.get(index)
    }

    /// Every allocated address with its attributes, in address order.
    pub(crate) fn allocated(&self) -> impl Iterator<Item = (IpAddr, &Attribute)> {
        self.allocations.iter().enumerate().filter_map(|(o, attr)| {
            let attribute = self.attributes.get((*attr)?)?;
            Some((address(self.cidr, o), attribute))
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn block() -> Block {
        Block::new(net("10.0.0.64/26"), Some("node-a"))
    }

    #[test]
    fn auto_assign_hands_out_ordinals_in_order_then_released_ones_last() {
        let mut b = block();
        let attr = Attribute::new("node-a", 100);
        assert_eq!(b.auto_assign(attr.clone()), Some(ip("10.0.0.64")));
        assert_eq!(b.auto_assign(attr.clone()), Some(ip("10.0.0.65")));
        assert!(b.release(ip("10.0.0.64")));
        assert_eq!(b.auto_assign(attr.clone()), Some(ip("10.0.0.66")));
        for _ in 3..BLOCK_SIZE {
            assert!(b.auto_assign(attr.clone()).is_some());
        }
        assert_eq!(b.auto_assign(attr.clone()), Some(ip("10.0.0.64")));
        assert_eq!(b.free(), 0);
        assert_eq!(b.auto_assign(attr), None);
        assert_eq!(b.unallocated, Vec::<usize>::new());
    }

    #[test]
    fn assign_takes_a_specific_ordinal_once() {
        let mut b = block();
        let attr = Attribute::new("node-a", 1);
        assert!(b.assign(ip("10.0.0.70"), attr.clone()));
        assert!(!b.assign(ip("10.0.0.70"), attr.clone()));
        assert!(!b.assign(ip("10.0.0.1"), attr.clone()));
        assert!(!b.unallocated.contains(&6));
        assert_eq!(b.attribute_of(ip("10.0.0.70")), Some(&attr));
        assert_eq!(b.attribute_of(ip("10.0.0.71")), None);
        assert_eq!(b.free(), BLOCK_SIZE - 1);
    }

    #[test]
    fn identical_attributes_share_an_entry_and_unused_ones_are_collected() {
        let mut b = block();
        let a = Attribute::new("node-a", 1);
        let c = Attribute::new("node-b", 2);
        b.auto_assign(a.clone());
        b.auto_assign(c.clone());
        b.auto_assign(a.clone());
        assert_eq!(b.attributes, vec![a.clone(), c.clone()]);
        assert_eq!(b.allocations[..3], [Some(0), Some(1), Some(0)]);
        assert!(b.release(ip("10.0.0.64")));
        assert_eq!(b.attributes.len(), 2);
        assert!(b.release(ip("10.0.0.66")));
        assert_eq!(b.attributes, vec![c.clone()]);
        assert_eq!(b.allocations[1], Some(0));
        assert_eq!(b.attribute_of(ip("10.0.0.65")), Some(&c));
        assert!(!b.release(ip("10.0.0.66")));
        assert!(b.release(ip("10.0.0.65")));
        assert!(b.is_empty());
        assert!(b.attributes.is_empty());
    }

    #[test]
    fn encodes_calicos_json() {
        let mut b = block();
        b.auto_assign(Attribute::new("node-a", 1_700_000_000));
        let value: serde_json::Value = serde_json::from_slice(&b.encode().unwrap()).unwrap();
        assert_eq!(value["cidr"], "10.0.0.64/26");
        assert_eq!(value["affinity"], "host:node-a");
        assert_eq!(value["strictAffinity"], false);
        assert_eq!(value["allocations"][0], 0);
        assert_eq!(value["allocations"][1], serde_json::Value::Null);
        assert_eq!(value["allocations"].as_array().unwrap().len(), 64);
        assert_eq!(value["unallocated"][0], 1);
        assert_eq!(
            value["attributes"],
            json!([{"handle_id": null, "secondary": {"node": "node-a", "allocatedAt": "1700000000"}}])
        );
        assert_eq!(Block::decode(&b.encode().unwrap(), b.cidr()), Ok(b));
        let unowned = Block::new(net("fd00::40/122"), None);
        let value: serde_json::Value = serde_json::from_slice(&unowned.encode().unwrap()).unwrap();
        assert_eq!(value["affinity"], serde_json::Value::Null);
        assert_eq!(value["cidr"], "fd00::40/122");
    }

    #[test]
    fn decodes_go_and_python_spellings() {
        let cidr = net("10.0.0.0/26");
        let mut allocations = vec![serde_json::Value::Null; 64];
        allocations[3] = json!(0);
        let unallocated: Vec<usize> = (0..64).filter(|o| *o != 3).collect();
        let go = json!({"cidr": "10.0.0.0/26", "affinity": "host:h", "strictAffinity": false,
            "allocations": allocations, "unallocated": unallocated,
            "attributes": [{"handle_id": "abc", "secondary": null}]});
        let b = Block::decode(go.to_string().as_bytes(), cidr).unwrap();
        assert!(b.is_affine_to("h"));
        assert_eq!(b.attribute_of(ip("10.0.0.3")).unwrap().node(), None);
        let python = json!({"cidr": "10.0.0.0/26", "affinity": null, "strict_affinity": true,
            "allocations": vec![serde_json::Value::Null; 64], "unallocated": (0..64).collect::<Vec<_>>(),
            "attributes": null});
        let b = Block::decode(python.to_string().as_bytes(), cidr).unwrap();
        assert!(b.strict_affinity && !b.has_affinity() && b.is_empty());
    }

    #[test]
    fn rejects_inconsistent_blocks() {
        let cidr = net("10.0.0.0/26");
        let base = || {
            json!({"cidr": "10.0.0.0/26", "affinity": null,
                "allocations": vec![serde_json::Value::Null; 64],
                "unallocated": (0..64).collect::<Vec<_>>(), "attributes": []})
        };
        let cases: Vec<(serde_json::Value, &str)> = vec![
            (json!({"cidr": "10.0.0.0/24"}), "not a 64-address block"),
            (json!({"cidr": "nonsense"}), "not an IP network"),
            (json!({"cidr": "10.0.1.0/26"}), "does not match its key"),
            (json!({"allocations": [null]}), "has 1 allocations"),
            (json!({"allocations": null}), "has 0 allocations"),
            (json!({"unallocated": [0, 0]}), "listed as free twice"),
            (json!({"unallocated": [64]}), "out of range"),
            (json!({"unallocated": [-1]}), "invalid JSON"),
            (json!({"unallocated": [1]}), "ordinal 0 is neither"),
        ];
        for (patch, expected) in cases {
            let mut value = base();
            for (k, v) in patch.as_object().unwrap() {
                value[k] = v.clone();
            }
            let err = Block::decode(value.to_string().as_bytes(), cidr).unwrap_err();
            assert!(err.contains(expected), "{patch}: {err}");
        }
        let mut value = base();
        value["allocations"][0] = json!(0);
        let err = Block::decode(value.to_string().as_bytes(), cidr).unwrap_err();
        assert!(err.contains("refers to attribute 0 of 0"), "{err}");
        value["attributes"] = json!([{"handle_id": null, "secondary": null}]);
        let err = Block::decode(value.to_string().as_bytes(), cidr).unwrap_err();
        assert!(err.contains("listed as free but is allocated"), "{err}");
        for bad in [&b"not json"[..], b"[]", b"{}", b"null", &[0xff, 0xfe]] {
            assert!(Block::decode(bad, cidr).is_err());
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Auto(usize),
        Assign(usize, usize),
        Release(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0usize..3).prop_map(Op::Auto),
            (0usize..64, 0usize..3).prop_map(|(o, n)| Op::Assign(o, n)),
            (0usize..64).prop_map(Op::Release),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn block_matches_a_model(ops in proptest::collection::vec(op(), 0..300)) {
            let cidr = net("10.0.0.64/26");
            let mut b = Block::new(cidr, None);
            let mut owner: Vec<Option<usize>> = vec![None; BLOCK_SIZE];
            let mut free: Vec<usize> = (0..BLOCK_SIZE).collect();
            let attr = |n: usize| Attribute::new(&format!("node-{n}"), n as u64);
            for op in ops {
                match op {
                    Op::Auto(n) => {
                        let got = b.auto_assign(attr(n));
                        let want = (!free.is_empty()).then(|| free.remove(0));
                        prop_assert_eq!(got, want.map(|o| address(cidr, o)));
                        if let Some(o) = want { owner[o] = Some(n); }
                    }
                    Op::Assign(o, n) => {
                        let ok = b.assign(address(cidr, o), attr(n));
                        prop_assert_eq!(ok, owner[o].is_none());
                        if ok { owner[o] = Some(n); free.retain(|f| *f != o); }
                    }
                    Op::Release(o) => {
                        let ok = b.release(address(cidr, o));
                        prop_assert_eq!(ok, owner[o].is_some());
                        if ok { owner[o] = None; free.push(o); }
                    }
                }
                prop_assert_eq!(&b.unallocated, &free);
                for (o, n) in owner.iter().enumerate() {
                    let got = b.attribute_of(address(cidr, o)).map(|a| a.node().map(str::to_owned));
                    prop_assert_eq!(got, n.map(|n| Some(format!("node-{n}"))));
                }
                let mut used: Vec<usize> = b.allocations.iter().flatten().copied().collect();
                used.sort();
                used.dedup();
                prop_assert_eq!(used, (0..b.attributes.len()).collect::<Vec<_>>());
                prop_assert_eq!(Block::decode(&b.encode().unwrap(), cidr), Ok(b.clone()));
            }
        }
    }
}
