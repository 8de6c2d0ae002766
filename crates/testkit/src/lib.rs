//! Test support shared by the crates' integration tests: real components started by the
//! tests themselves, on free loopback ports and temporary directories, stopped on drop.
//!
//! - [`etcd`]: a real etcd server per test.
//! - [`cluster`]: simulated Docker hosts (`scripts/cluster`), each with its own dockerd and
//!   calico-node, for end-to-end tests; see docs/harness.md.

pub mod cluster;
pub mod etcd;

pub use cluster::wait_until;
