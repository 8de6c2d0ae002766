//! The plugin over its real unix sockets, with fake IPAM, Docker API and host links and a
//! SQLite datastore.

mod docker_api;
mod engine;
mod errors;
mod lifecycle;
mod ports;
mod replay;
mod server;
mod support;
