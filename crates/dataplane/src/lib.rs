//! The host's kernel state for Docker workload endpoints: veth pairs, `/32`/`/128` routes, static
//! neighbour entries, per-interface sysctls and the nftables policy table.
//!
//! What this crate owns on a host (everything else is left alone):
//! - links whose names it is given, in practice `cali<11 hex>` host ends and their `temp<11 hex>`
//!   peers until Docker moves the peer into the container ([`endpoint`]);
//! - routes in the main table carrying protocol [`netlink::ROUTE_PROTOCOL`] (80), one per
//!   workload address, `dev cali… scope link` ([`netlink`]);
//! - permanent neighbour entries for workload IPv4 addresses on those interfaces;
//! - the sysctls Felix sets on workload interfaces, and the global forwarding switches
//!   ([`sysctl`]);
//! - the nftables table `inet calico` and two accept rules in Docker's `DOCKER-USER` chain
//!   ([`nft`]), programmed through the [`PolicyDataplane`] trait.
//!
//! Namespaces: netlink operations act on the namespace of the thread that called
//! [`netlink::Netlink::connect`] (the socket is bound then, whichever thread later polls it);
//! [`sysctl`] functions act on the namespace of the calling thread, because the kernel resolves
//! `/proc/sys/net` against the task that opens the path (not the namespace `/proc` was mounted
//! from, and not the main thread as `/proc/net` → `/proc/self/net` does). Threads spawned after an
//! `unshare` inherit the new namespace. So never `unshare`/`setns` a tokio worker thread.

#![warn(missing_docs)]

mod error;

pub mod endpoint;
pub mod netlink;
pub mod nft;
pub mod policy;
pub mod sysctl;

pub use error::{DataplaneError, Result};
pub use policy::PolicyDataplane;
