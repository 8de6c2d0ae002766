//! Test support shared by the crates' integration tests: real components started by the
//! tests themselves, on free loopback ports and temporary directories, stopped on drop.
//!
//! - [`etcd`]: a real etcd server per test.
//! - [`cluster`]: simulated Docker hosts (`scripts/cluster`), each with its own dockerd and
//!   calico-node, for end-to-end tests; see docs/harness.md.
//! - [`outside`]: the cluster's outside namespace (no route to any pool) and a server there
//!   that reports the address it was reached from.
//! - [`verdict`]: the expected verdict of a probe between Calico endpoints, from Calico's
//!   documented policy semantics (an oracle independent of the agent's own code).
//! - [`truth`]: truth tables of real probes between containers of a [`cluster::Cluster`].
//! - [`steps`]: what end-to-end tests repeat on a cluster: Calico networks, busybox workloads,
//!   their addresses, waiting for their endpoints.
//! - [`tutorial`]: the documents of Calico's tutorials that the tests replay.

#![warn(missing_docs)]

pub mod cluster;
pub mod etcd;
pub mod outside;
pub mod steps;
pub mod truth;
pub mod tutorial;
pub mod verdict;

pub use cluster::wait_until;
