//! The real implementations of the plugin driver's outside world: Calico IPAM for this node,
//! and the host's links through netlink.

use std::net::{IpAddr, Ipv6Addr};

use async_trait::async_trait;
use calico_dataplane::endpoint::{plumb, unplumb, WorkloadPlumbing};
use calico_dataplane::netlink::Netlink;
use calico_ipam::{Ipam, IpamError};
use calico_libnetwork::{
    AddressAllocator, AllocError, HostLinks, PortPublisher, PublishedPort, SourceError,
};
use calico_model::{Cidr, Kind, Resource};
use calico_store::resources::{Filter, ResourceStore};
use ipnet::IpNet;

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

/// Published ports before the dataplane programs them: refuses any, accepts none.
pub struct NoPorts;

#[async_trait]
impl PortPublisher for NoPorts {
    async fn publish(&self, _host_if: &str, ports: &[PublishedPort]) -> Result<(), SourceError> {
        if ports.is_empty() {
            Ok(())
        } else {
            Err("published ports are not wired to the dataplane yet".into())
        }
    }
}
