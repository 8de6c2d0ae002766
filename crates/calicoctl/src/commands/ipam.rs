//! `calicoctl ipam show|release --ip=<IP>`: inspect and free single addresses.

use std::net::IpAddr;
use std::path::Path;

use anyhow::{anyhow, Result};
use calico_ipam::Ipam;

use super::{resources::connect, Outcome};

/// `calicoctl ipam show --ip=<IP>`: who holds the address, or that nobody does.
pub async fn show(config: Option<&Path>, ip: &str) -> Outcome {
    let ip = match parse_ip(ip) {
        Ok(ip) => ip,
        Err(e) => return Outcome::fail(e.to_string()),
    };
    let ipam = match connect(config).await {
        Ok(store) => Ipam::new(store),
        Err(outcome) => return outcome,
    };
    match ipam.allocation(ip).await {
        Ok(None) => Outcome::ok(format!("IP {ip} is not assigned\n")),
        Ok(Some(a)) => {
            let mut out = format!("IP {ip} is assigned in block {}\n", a.block);
            match (&a.node, a.allocated_at) {
                (None, None) => out.push_str(&format!("No attributes defined for IP {ip}\n")),
                (node, at) => {
                    if let Some(node) = node {
                        out.push_str(&format!("  node: {node}\n"));
                    }
                    if let Some(at) = at {
                        out.push_str(&format!("  allocatedAt: {at}\n"));
                    }
                }
            }
            Outcome::ok(out)
        }
        Err(e) => Outcome::fail(format!("Failed to read IPAM data: {e}")),
    }
}

/// `calicoctl ipam release --ip=<IP>`: frees an address a lost workload left behind.
pub async fn release(config: Option<&Path>, ip: &str) -> Outcome {
    let ip = match parse_ip(ip) {
        Ok(ip) => ip,
        Err(e) => return Outcome::fail(e.to_string()),
    };
    let ipam = match connect(config).await {
        Ok(store) => Ipam::new(store),
        Err(outcome) => return outcome,
    };
    match ipam.release(ip).await {
        Ok(true) => Outcome::ok(format!("Successfully released IP address {ip}\n")),
        Ok(false) => Outcome::fail(format!("IP address {ip} is not assigned")),
        Err(e) => Outcome::fail(format!("Failed to release IP address {ip}: {e}")),
    }
}

fn parse_ip(text: &str) -> Result<IpAddr> {
    text.parse()
        .map_err(|_| anyhow!("Invalid IP address specified: {text}"))
}
