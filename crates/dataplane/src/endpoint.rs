//! A Docker workload endpoint's host-side plumbing: interface names, then sysctls, routes and
//! static neighbours on the host end of its veth, for the libnetwork plugin and the reconciler.
//!
//! Owned here: for each endpoint, the `cali<id[..11]>` interface (and its `temp<id[..11]>` peer
//! until Docker moves it), one route per workload address and one neighbour per IPv4 address.
//! [`plumb`] needs the interface to exist and be administratively up (the kernel refuses routes
//! through a down device with ENETDOWN) and validates every address before changing anything.
//! IPv6 workloads get no static neighbour, as in Felix: NDP resolves them.

use std::net::IpAddr;

use ipnet::IpNet;
use tracing::info;

use crate::netlink::{host_route, Netlink};
use crate::{sysctl, DataplaneError, Result};

/// Prefix of the host end of every workload veth (Felix's default `InterfacePrefix`).
pub const HOST_INTERFACE_PREFIX: &str = "cali";

/// Prefix of the container end while it is still in the host namespace.
pub const TEMP_INTERFACE_PREFIX: &str = "temp";

/// How many characters of the endpoint id go into an interface name.
const ID_CHARS: usize = 11;

/// The first 11 characters of `endpoint_id`, which must be at least 11 characters of `[0-9a-f]`.
fn id_part(endpoint_id: &str) -> Result<&str> {
    let valid = endpoint_id.len() >= ID_CHARS
        && endpoint_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if valid {
        Ok(&endpoint_id[..ID_CHARS])
    } else {
        Err(DataplaneError::InvalidEndpointId {
            id: endpoint_id.to_string(),
        })
    }
}

/// The host-side veth name for a Docker endpoint: `cali` + the first 11 characters of its id.
pub fn host_interface_name(endpoint_id: &str) -> Result<String> {
    Ok(format!("{HOST_INTERFACE_PREFIX}{}", id_part(endpoint_id)?))
}

/// The container-side veth name before Docker moves it: `temp` + the first 11 id characters.
pub fn temp_interface_name(endpoint_id: &str) -> Result<String> {
    Ok(format!("{TEMP_INTERFACE_PREFIX}{}", id_part(endpoint_id)?))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn names_use_the_first_eleven_characters() {
        assert_eq!(host_interface_name(ID).unwrap(), "cali0123456789a");
        assert_eq!(temp_interface_name(ID).unwrap(), "temp0123456789a");
        assert_eq!(
            host_interface_name("0123456789a").unwrap(),
            "cali0123456789a"
        );
        assert_eq!(host_interface_name(ID).unwrap().len(), 15);
    }

    #[test]
    fn invalid_endpoint_ids_are_rejected() {
        for bad in [
            "",
            "0123456789",
            "0123456789A",
            "0123456789abcdeg",
            "ü123456789abc",
            "0123456789a ",
        ] {
            for name in [host_interface_name(bad), temp_interface_name(bad)] {
                match name {
                    Err(DataplaneError::InvalidEndpointId { id }) => assert_eq!(id, bad),
                    other => panic!("{bad:?}: {other:?}"),
                }
            }
        }
    }
}
