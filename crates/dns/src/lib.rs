//! A small DNS server for container names.
//!
//! Docker's embedded DNS resolves `<container>.<network>` only for containers on its own host.
//! calico-node runs this server on the host's address, port 53, and answers, for the workloads
//! of every host (as the datastore lists them):
//!
//! - `<container>.<network>`: the IPv4 addresses of that container's endpoints on that network;
//! - `<container>`: the IPv4 addresses of that container's endpoints on any network.
//!
//! It is authoritative for `*.<network>` of every known network: an unknown container there gets
//! NXDOMAIN at once, so such lookups never wait on an unreachable upstream. Every other query is
//! forwarded, byte for byte, to the host's own resolvers (from `/etc/resolv.conf`).
//!
//! It is not an open resolver: it answers and forwards only for the clients its [`Clients`]
//! admits (calico-node: its host's workloads and the host itself), and sends nothing at all to
//! anyone else.
//!
//! The pieces:
//!
//! - [`Clients`]: who may use the server (the seam; calico-node supplies the real one);
//! - [`wire`]: parsing queries and building responses (pure, RFC 1035);
//! - [`Names`]: the table of workload names (pure);
//! - [`upstreams`]: the resolvers to forward to, from a `resolv.conf` text (pure);
//! - [`DnsServer`]: the UDP and TCP server (tokio).

#![warn(missing_docs)]

pub mod admission;
pub mod name_table;
pub mod resolv;
pub mod server;
pub mod wire;

use std::net::SocketAddr;

pub use admission::Clients;
pub use name_table::{Lookup, Names};
pub use resolv::upstreams;
pub use server::{DnsServer, QueryObserver, QueryResult};

/// Why a DNS message could not be parsed as a query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Fewer than the 12 bytes of a header.
    #[error("message shorter than a DNS header")]
    TooShort,
    /// The QR bit is set: the message is a response, not a query.
    #[error("message is a response, not a query")]
    NotQuery,
    /// The question count is not 1.
    #[error("question count is {0}, expected 1")]
    QuestionCount(u16),
    /// The question runs past the end of the message.
    #[error("question truncated")]
    Truncated,
    /// The question's name uses a compression pointer.
    #[error("compression pointer in the question")]
    Compression,
    /// A label is longer than 63 bytes (or uses a reserved label type).
    #[error("label length {0} over 63")]
    LabelTooLong(u8),
    /// The question's name is longer than 255 bytes.
    #[error("name longer than 255 bytes")]
    NameTooLong,
}

/// Why the DNS server could not start.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// Binding the UDP or TCP socket failed.
    #[error("cannot bind the DNS {protocol} socket on {addr}: {source}")]
    Bind {
        /// `UDP` or `TCP`.
        protocol: &'static str,
        /// The address that could not be bound.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}
