//! The calculation graph: datastore state to the desired policy state of this host's endpoints (no I/O)

pub mod desired;
