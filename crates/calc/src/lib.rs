//! The calculation graph: datastore state to the desired policy state of this host's endpoints
//! (no I/O).
//!
//! Feed a [`CalcGraph`] the profiles, policies, workload and host endpoints and IP pools of the
//! whole cluster, as they are created, changed and deleted; after every call,
//! [`CalcGraph::desired`] is what this host's dataplane should hold ([`Desired`]) and
//! [`CalcGraph::take_changes`] tells exactly what changed since the previous report
//! ([`Changes`]).
//!
//! ```
//! use calico_calc::CalcGraph;
//! use calico_model::codec;
//!
//! let yaml = "
//! - apiVersion: v1
//!   kind: profile
//!   metadata: {name: web, tags: [web]}
//!   spec:
//!     ingress: [{action: allow, source: {tag: web}}]
//!     egress: [{action: allow}]
//! - apiVersion: v1
//!   kind: workloadEndpoint
//!   metadata: {node: host1, orchestrator: libnetwork, workload: libnetwork, name: ep1}
//!   spec: {interfaceName: cali1, ipNetworks: [10.0.0.1/32], profiles: [web]}
//! ";
//! let mut graph = CalcGraph::new("host1");
//! for resource in codec::decode(yaml).unwrap() {
//!     graph.upsert(resource);
//! }
//! let desired = graph.desired();
//! assert_eq!(desired.endpoints["cali1"].ingress.profiles, ["web"]);
//! let set = &desired.profiles["web"].ingress[0].source.in_sets[0];
//! assert_eq!(desired.ip_sets[set].len(), 1);
//! assert!(graph.take_changes().endpoints_changed.contains("cali1"));
//! assert!(graph.take_changes().is_empty());
//! ```
//!
//! Modules: `compile` (rules), `labels` (inheritance), `index` (IP set membership), `output`
//! (the desired state and its change journal) and `graph` (the indexes tying them together).

#![warn(missing_docs)]

mod compile;
pub mod desired;
mod graph;
mod index;
mod labels;
mod output;

pub use desired::{Changes, Desired};
pub use graph::CalcGraph;
