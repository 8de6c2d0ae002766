//! Shared by calico-node's end-to-end test binaries (each has `mod common;`): clusters of
//! simulated Docker hosts running this crate's calico-node. Only what every binary uses is
//! here (anything else would be dead code in some of them); the other shared steps are in
//! `calico_testkit` (`steps`, `truth`, `tutorial`).

use calico_testkit::cluster::{Cluster, Datastore, Options};

/// This crate's calico-node, as Cargo built it for these tests.
pub const CALICO_NODE: &str = env!("CARGO_BIN_EXE_calico-node");

/// `hosts` simulated Docker hosts sharing `datastore`, each running [`CALICO_NODE`].
pub fn cluster(hosts: usize, datastore: Datastore) -> Cluster {
    Cluster::up(Options {
        hosts,
        datastore,
        calico_node: Some(CALICO_NODE.into()),
        ..Options::default()
    })
}
