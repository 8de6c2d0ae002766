//! The parsed expression tree, its evaluation and its canonical string.

use std::fmt;
use std::hash::{Hash, Hasher};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha224};

use crate::Labels;

#[derive(Debug, Clone)]
pub(crate) enum Node {
    All,
    Global,
    Has(String),
    Eq(String, String),
    Ne(String, String),
    Contains(String, String),
    StartsWith(String, String),
    EndsWith(String, String),
    /// Values are sorted by bytes and de-duplicated.
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
}

impl Node {
    fn eval(&self, labels: &dyn Labels) -> bool {
        match self {
            Node::All | Node::Global => true,
            Node::Has(k) => labels.get_label(k).is_some(),
            Node::Eq(k, v) => labels.get_label(k) == Some(v.as_str()),
            Node::Ne(k, v) => labels.get_label(k) != Some(v.as_str()),
            Node::Contains(k, s) => labels.get_label(k).is_some_and(|v| v.contains(s.as_str())),
            Node::StartsWith(k, s) => labels
                .get_label(k)
                .is_some_and(|v| v.starts_with(s.as_str())),
            Node::EndsWith(k, s) => labels.get_label(k).is_some_and(|v| v.ends_with(s.as_str())),
            Node::In(k, set) => labels.get_label(k).is_some_and(|v| in_set(set, v)),
            Node::NotIn(k, set) => !labels.get_label(k).is_some_and(|v| in_set(set, v)),
            Node::Not(n) => !n.eval(labels),
            Node::And(ns) => ns.iter().all(|n| n.eval(labels)),
            Node::Or(ns) => ns.iter().any(|n| n.eval(labels)),
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            Node::All => out.push_str("all()"),
            Node::Global => out.push_str("global()"),
            Node::Has(k) => {
                out.push_str("has(");
                out.push_str(k);
                out.push(')');
            }
            Node::Eq(k, v) => comparison(out, k, " == ", v),
            Node::Ne(k, v) => comparison(out, k, " != ", v),
            Node::Contains(k, v) => comparison(out, k, " contains ", v),
            Node::StartsWith(k, v) => comparison(out, k, " starts with ", v),
            Node::EndsWith(k, v) => comparison(out, k, " ends with ", v),
            Node::In(k, set) => membership(out, k, " in {", set),
            Node::NotIn(k, set) => membership(out, k, " not in {", set),
            Node::Not(n) => {
                out.push('!');
                n.write(out);
            }
            Node::And(ns) => group(out, ns, " && "),
            Node::Or(ns) => group(out, ns, " || "),
        }
    }
}

fn in_set(set: &[String], value: &str) -> bool {
    set.binary_search_by(|probe| probe.as_str().cmp(value))
        .is_ok()
}

/// Double quotes unless the value itself holds one.
fn quoted(out: &mut String, value: &str) {
    let q = if value.contains('"') { '\'' } else { '"' };
    out.push(q);
    out.push_str(value);
    out.push(q);
}

fn comparison(out: &mut String, key: &str, op: &str, value: &str) {
    out.push_str(key);
    out.push_str(op);
    quoted(out, value);
}

fn membership(out: &mut String, key: &str, op: &str, set: &[String]) {
    out.push_str(key);
    out.push_str(op);
    for (i, v) in set.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        quoted(out, v);
    }
    out.push('}');
}

fn group(out: &mut String, nodes: &[Node], op: &str) {
    out.push('(');
    for (i, n) in nodes.iter().enumerate() {
        if i > 0 {
            out.push_str(op);
        }
        n.write(out);
    }
    out.push(')');
}

/// A parsed selector with its canonical string and UID; equal when the canonical forms are.
#[derive(Debug, Clone)]
pub struct Selector {
    root: Node,
    canonical: String,
    uid: String,
}

impl Selector {
    pub(crate) fn new(root: Node) -> Self {
        let mut canonical = String::new();
        root.write(&mut canonical);
        let uid = uid_of(&canonical);
        Selector {
            root,
            canonical,
            uid,
        }
    }

    /// The selector that matches everything, `all()`.
    pub fn all() -> Self {
        Selector::new(Node::All)
    }

    /// True when the labels satisfy the expression.
    pub fn matches(&self, labels: &impl Labels) -> bool {
        self.root.eval(labels)
    }

    /// Calico's normalised text of the expression.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// `s:` + unpadded base64url of SHA-224 over `s:` + canonical: the IP set identity.
    pub fn uid(&self) -> &str {
        &self.uid
    }
}

fn uid_of(canonical: &str) -> String {
    let mut hasher = Sha224::new();
    hasher.update(b"s:");
    hasher.update(canonical.as_bytes());
    format!("s:{}", URL_SAFE_NO_PAD.encode(hasher.finalize()))
}

impl PartialEq for Selector {
    fn eq(&self, other: &Self) -> bool {
        self.canonical == other.canonical
    }
}

impl Eq for Selector {}

impl Hash for Selector {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.canonical.hash(state);
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}
