//! A Docker workload endpoint's host-side plumbing: sysctls, routes and static neighbours on the
//! host end of its veth, for the libnetwork plugin and the reconciler.
//!
//! Owned here: for each endpoint, the `cali…` interface (and its `temp…` peer until Docker moves
//! it; the names are `calico_model::endpoint_naming`'s), one route per workload address and one
//! neighbour per IPv4 address.
//! [`plumb`] needs the interface to exist and be administratively up (the kernel refuses routes
//! through a down device with ENETDOWN) and validates every address before changing anything.
//! IPv6 workloads get no static neighbour, as in Felix: NDP resolves them.

use std::net::IpAddr;

use ipnet::IpNet;
use tracing::info;

use crate::netlink::{host_route, Netlink};
use crate::{sysctl, Result};

/// What the host needs to know to route to one workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadPlumbing {
    /// Host end of the workload's veth, e.g. `cali0123456789a`.
    pub iface: String,
    /// The workload's addresses, each a /32 or /128.
    pub addrs: Vec<IpNet>,
    /// The MAC of the workload's interface (the container end).
    pub mac: [u8; 6],
}

/// Idempotently applies interface sysctls, a route per address and a neighbour per IPv4 address.
pub async fn plumb(nl: &Netlink, p: &WorkloadPlumbing) -> Result<()> {
    for addr in &p.addrs {
        host_route(*addr)?;
    }
    nl.require_index(&p.iface).await?;
    sysctl::configure_workload_interface(&p.iface)?;
    for addr in &p.addrs {
        nl.ensure_route(*addr, &p.iface).await?;
        if let IpAddr::V4(ip) = addr.addr() {
            nl.ensure_neighbour(ip.into(), p.mac, &p.iface).await?;
        }
    }
    info!(iface = %p.iface, addrs = ?p.addrs, "plumbed workload");
    Ok(())
}

/// Idempotently removes our routes to `addrs` via `iface`, then `iface` and so its veth peer.
pub async fn unplumb(nl: &Netlink, iface: &str, addrs: &[IpNet]) -> Result<()> {
    for addr in addrs {
        nl.remove_route_on(*addr, iface).await?;
    }
    let deleted = nl.delete_link(iface).await?;
    info!(iface, ?addrs, deleted, "unplumbed workload");
    Ok(())
}
