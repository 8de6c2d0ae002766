//! Calico IPAM: /26 blocks with host affinity in the datastore, compare-and-swap allocation.
//!
//! Addresses come from the enabled `ipPool` resources, in blocks of 64 (IPv4 `/26`, IPv6
//! `/122`). A node claims blocks for itself (affinity) and allocates from them first; a new block
//! is found by walking the pool's blocks from a start picked by the FNV-1a 32 hash of the node
//! name; when no pool has an unclaimed block, addresses are borrowed from any block with room.
//! Every block change is a compare-and-swap on the block key's mod revision, so any number of
//! processes on any number of hosts can allocate concurrently.
//!
//! # Keys
//!
//! CIDRs in keys write the `/` as `-`; node names escape `%` and `/` as in every other key.
//!
//! ```text
//! /calico/ipam/v2/assignment/ipv4/block/<block>     the block (ipv6 likewise)
//! /calico/ipam/v2/host/<node>/ipv4/block/<block>    the node's affinity marker, value {}
//! ```
//!
//! A block's value is Calico's JSON:
//!
//! ```json
//! {"cidr": "192.168.10.64/26", "affinity": "host:node-1", "strictAffinity": false,
//!  "allocations": [0, null, ...64 entries],
//!  "unallocated": [1, 2, ...free ordinals, handed out from the front, released ones appended],
//!  "attributes": [{"handle_id": null,
//!                  "secondary": {"node": "node-1", "allocatedAt": "1700000000"}}]}
//! ```
//!
//! `allocations[o]` indexes `attributes`; identical attributes share an entry and unreferenced
//! ones are removed. A node owns a block when its marker exists and the block's `affinity` is
//! `host:<node>`; claiming writes the marker, then creates the block (create-if-absent). A block
//! that becomes empty is deleted unless it has an affinity. Stored data is checked when read: a
//! malformed block is an [`IpamError::Corrupt`] naming its key, never a panic.

#![warn(missing_docs)]

mod block;
mod error;
mod ipam;
mod keys;
mod net;

pub use error::{IpamError, Result};
pub use ipam::{Allocation, Ipam};
