//! The real implementations of the plugin driver's outside world: Calico IPAM for this node,
//! the host's links through netlink, and published ports through the policy agent.

use std::net::{IpAddr, Ipv6Addr};

use async_trait::async_trait;
use calico_calc::desired;
use calico_dataplane::endpoint::{plumb, unplumb, WorkloadPlumbing};
use calico_dataplane::netlink::Netlink;
use calico_ipam::{Ipam, IpamError};
use calico_libnetwork::{
    AddressAllocator, AllocError, HostLinks, PortPublisher, PublishedPort, SourceError,
};
use calico_model::{Cidr, Kind, Resource};
use calico_store::resources::{Filter, ResourceStore};
use ipnet::IpNet;

use crate::agent::Published;

/// Calico IPAM, allocating on behalf of one node.
pub struct NodeIpam {
    /// The IPAM client.
    pub ipam: Ipam,
    /// The pools' source.
    pub store: ResourceStore,
    /// This node's name.
    pub node: String,
}

#[async_trait]
impl AddressAllocator for NodeIpam {
    async fn pool_cidrs(&self, version: u8) -> Result<Vec<Cidr>, SourceError> {
        let pools = self.store.list(Kind::IpPool, &Filter::default()).await?;
        Ok(pools
            .into_iter()
            .filter_map(|r| match r {
                Resource::IpPool(p) if !p.spec.disabled => p.metadata.cidr,
                _ => None,
            })
            .filter(|c| c.version() == version)
            .collect())
    }

    async fn auto_assign(&self, version: u8, pool: Option<Cidr>) -> Result<IpAddr, AllocError> {
        self.ipam
            .auto_assign(&self.node, version, pool)
            .await
            .map_err(alloc_error)
    }

    async fn assign(&self, ip: IpAddr) -> Result<(), AllocError> {
        self.ipam.assign(&self.node, ip).await.map_err(alloc_error)
    }

    async fn release(&self, ip: IpAddr) -> Result<(), AllocError> {
        self.ipam.release(ip).await.map(drop).map_err(alloc_error)
    }
}

fn alloc_error(e: IpamError) -> AllocError {
    match e {
        IpamError::PoolNotFound(_) | IpamError::PoolDisabled(_) => AllocError::PoolNotFound,
        other => AllocError::Other(Box::new(other)),
    }
}

/// Workload interfaces in this host's network namespace.
pub struct NetlinkLinks {
    /// The netlink handle.
    pub netlink: Netlink,
}

#[async_trait]
impl HostLinks for NetlinkLinks {
    async fn create_veth(
        &self,
        host_if: &str,
        temp_if: &str,
        mtu: Option<u32>,
    ) -> Result<(), SourceError> {
        Ok(self.netlink.create_veth(host_if, temp_if, mtu).await?)
    }

    async fn plumb(&self, host_if: &str, addrs: &[IpNet], mac: [u8; 6]) -> Result<(), SourceError> {
        let plumbing = WorkloadPlumbing {
            iface: host_if.to_string(),
            addrs: addrs.to_vec(),
            mac,
        };
        Ok(plumb(&self.netlink, &plumbing).await?)
    }

    async fn remove(&self, host_if: &str, addrs: &[IpNet]) -> Result<(), SourceError> {
        Ok(unplumb(&self.netlink, host_if, addrs).await?)
    }

    async fn ipv6_link_local(&self, host_if: &str) -> Result<Option<Ipv6Addr>, SourceError> {
        Err(format!(
            "IPv6 gateways are not supported yet: calico-node does not read the link-local \
             address of {host_if}"
        )
        .into())
    }
}

/// Published ports, handed to the policy agent, which programs them in the calico table (the
/// driver answers Docker before the DNAT is written, as it does before the policy is).
pub struct AgentPorts {
    /// The agent's input.
    pub published: tokio::sync::watch::Sender<Published>,
}

#[async_trait]
impl PortPublisher for AgentPorts {
    async fn publish(&self, host_if: &str, ports: &[PublishedPort]) -> Result<(), SourceError> {
        let ports: Vec<desired::PublishedPort> = ports
            .iter()
            .map(|p| desired::PublishedPort {
                protocol: p.protocol,
                host_ip: p.host_ip,
                host_port: p.host_port,
                endpoint_ip: p.container_ip,
                endpoint_port: p.container_port,
            })
            .collect();
        self.published.send_if_modified(|published| {
            let before = published.get(host_if).cloned();
            if ports.is_empty() {
                published.remove(host_if);
            } else {
                published.insert(host_if.to_owned(), ports);
            }
            published.get(host_if) != before.as_ref()
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn published_ports_reach_the_agent_once_per_change() {
        let (published, mut agent) = tokio::sync::watch::channel(Published::new());
        let ports = AgentPorts { published };
        let port = PublishedPort {
            protocol: 6,
            host_ip: None,
            host_port: 8080,
            container_ip: "10.65.0.5".parse().unwrap(),
            container_port: 80,
        };
        ports
            .publish("cali1", std::slice::from_ref(&port))
            .await
            .unwrap();
        assert!(agent.has_changed().unwrap());
        let seen = agent.borrow_and_update().clone();
        assert_eq!(seen["cali1"][0].endpoint_ip, port.container_ip);
        assert_eq!(seen["cali1"][0].endpoint_port, 80);
        ports.publish("cali1", &[port]).await.unwrap();
        assert!(!agent.has_changed().unwrap());
        ports.publish("cali1", &[]).await.unwrap();
        assert!(agent.has_changed().unwrap());
        assert!(agent.borrow_and_update().is_empty());
    }
}
