//! Test support shared by the crates' integration tests: real components started by the
//! tests themselves, on free loopback ports and temporary directories, stopped on drop.

pub mod etcd;
