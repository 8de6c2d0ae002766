//! The `IpamDriver` calls: pools are Calico's pools, addresses come from Calico IPAM.

use std::collections::BTreeMap;
use std::net::IpAddr;

use calico_model::Cidr;
use ipnet::IpNet;
use tracing::instrument;

use super::{Driver, DriverError};
use crate::traits::AllocError;
use crate::wire::{
    AddressSpacesResponse, Empty, IpamCapabilitiesResponse, ReleaseAddressRequest,
    ReleasePoolRequest, RequestAddressRequest, RequestAddressResponse, RequestPoolRequest,
    RequestPoolResponse, GATEWAY_KEY, GLOBAL_ADDRESS_SPACE, LOCAL_ADDRESS_SPACE, POOL_ID_V4,
    POOL_ID_V6, REQUEST_ADDRESS_TYPE, SENTINEL_GATEWAY_V4, SENTINEL_GATEWAY_V6,
};

impl Driver {
    /// `IpamDriver.GetCapabilities`: no MAC needed.
    #[instrument(name = "IpamDriver.GetCapabilities", skip_all)]
    pub fn ipam_capabilities(&self) -> IpamCapabilitiesResponse {
        IpamCapabilitiesResponse {
            requires_mac_address: false,
        }
    }

    /// `IpamDriver.GetDefaultAddressSpaces`: Calico's two address spaces.
    #[instrument(name = "IpamDriver.GetDefaultAddressSpaces", skip_all)]
    pub fn default_address_spaces(&self) -> AddressSpacesResponse {
        AddressSpacesResponse {
            local_default_address_space: LOCAL_ADDRESS_SPACE.to_owned(),
            global_default_address_space: GLOBAL_ADDRESS_SPACE.to_owned(),
        }
    }

    /// `IpamDriver.RequestPool`: "all Calico pools" (`0.0.0.0/0`), or with `--subnet` exactly
    /// one existing Calico pool. `Data` carries the sentinel gateway, so Docker never asks
    /// for a gateway address and `CreateNetwork` can tell Calico IPAM is in use.
    #[instrument(name = "IpamDriver.RequestPool", skip_all, fields(pool = %req.pool, v6 = req.v6))]
    pub async fn request_pool(
        &self,
        req: RequestPoolRequest,
    ) -> Result<RequestPoolResponse, DriverError> {
        if !req.sub_pool.is_empty() {
            return Err(DriverError::SubPool);
        }
        if !req.options.is_empty() {
            return Err(DriverError::PoolOptions);
        }
        let (mut pool_id, mut pool, gateway) = if req.v6 {
            (POOL_ID_V6, "::/0", SENTINEL_GATEWAY_V6)
        } else {
            (POOL_ID_V4, "0.0.0.0/0", SENTINEL_GATEWAY_V4)
        };
        if !req.pool.is_empty() {
            let subnet: IpNet = req.pool.parse().map_err(|_| DriverError::InvalidSubnet)?;
            let version = if matches!(subnet, IpNet::V4(_)) { 4 } else { 6 };
            let pools = self
                .inner
                .ipam
                .pool_cidrs(version)
                .await
                .map_err(DriverError::PoolList)?;
            if !pools.iter().any(|p| p.network().ip_net() == subnet.trunc()) {
                return Err(DriverError::NotAPool);
            }
            pool_id = &req.pool;
            pool = &req.pool;
        }
        Ok(RequestPoolResponse {
            pool_id: pool_id.to_owned(),
            pool: pool.to_owned(),
            data: BTreeMap::from([(GATEWAY_KEY.to_owned(), gateway.to_owned())]),
        })
    }

    /// `IpamDriver.ReleasePool`: nothing; pools are Calico's.
    #[instrument(name = "IpamDriver.ReleasePool", skip_all, fields(pool_id = %req.pool_id))]
    pub async fn release_pool(&self, req: ReleasePoolRequest) -> Result<Empty, DriverError> {
        Ok(Empty {})
    }

    /// `IpamDriver.RequestAddress`: any free address of the network's pool(s), or exactly the
    /// `--ip` address (from any Calico pool).
    #[instrument(name = "IpamDriver.RequestAddress", skip_all, fields(pool_id = %req.pool_id, address = %req.address))]
    pub async fn request_address(
        &self,
        req: RequestAddressRequest,
    ) -> Result<RequestAddressResponse, DriverError> {
        if req.options.get(REQUEST_ADDRESS_TYPE).map(String::as_str) == Some(GATEWAY_KEY) {
            return Err(DriverError::GatewayRequest);
        }
        let ipam = &self.inner.ipam;
        let ip = if req.address.is_empty() {
            let (version, pool) = match req.pool_id.as_str() {
                POOL_ID_V4 => (4, None),
                POOL_ID_V6 => (6, None),
                cidr => {
                    let pool: IpNet = cidr.parse().map_err(|e: ipnet::AddrParseError| {
                        DriverError::InvalidPoolId {
                            pool_id: cidr.to_owned(),
                            reason: format!(
                                "{e}: expected {POOL_ID_V4}, {POOL_ID_V6} or a pool CIDR"
                            ),
                        }
                    })?;
                    let version = if matches!(pool, IpNet::V4(_)) { 4 } else { 6 };
                    (version, Some(Cidr::new(pool.trunc())))
                }
            };
            match ipam.auto_assign(version, pool).await {
                Ok(ip) => ip,
                Err(AllocError::PoolNotFound) if pool.is_some() => {
                    return Err(DriverError::PoolDeleted)
                }
                Err(AllocError::PoolNotFound) => {
                    return Err(DriverError::Assign(
                        format!("no configured Calico IPv{version} pools").into(),
                    ))
                }
                Err(AllocError::Other(e)) => return Err(DriverError::Assign(e)),
            }
        } else {
            let ip: IpAddr = req.address.parse().map_err(|_| {
                DriverError::Assign(
                    format!(
                        "'{}' is not an IP address (expected e.g. 192.168.1.50)",
                        req.address
                    )
                    .into(),
                )
            })?;
            ipam.assign(ip).await.map_err(|e| match e {
                AllocError::PoolNotFound => DriverError::Assign(
                    format!("{ip} is not in any configured Calico IP pool").into(),
                ),
                AllocError::Other(e) => DriverError::Assign(e),
            })?;
            ip
        };
        let prefix = if ip.is_ipv4() { 32 } else { 128 };
        Ok(RequestAddressResponse {
            address: format!("{ip}/{prefix}"),
            data: BTreeMap::new(),
        })
    }

    /// `IpamDriver.ReleaseAddress`: releases the address. Docker's sentinel gateway
    /// (`0.0.0.0`, `::`) and addresses Calico does not hold are released silently.
    #[instrument(name = "IpamDriver.ReleaseAddress", skip_all, fields(pool_id = %req.pool_id, address = %req.address))]
    pub async fn release_address(&self, req: ReleaseAddressRequest) -> Result<Empty, DriverError> {
        let text = req
            .address
            .split_once('/')
            .map_or(req.address.as_str(), |(ip, _)| ip);
        let ip: IpAddr = text.parse().map_err(|_| DriverError::Release {
            ip: req.address.clone(),
            source: "not an IP address (expected e.g. 192.168.1.50)".into(),
        })?;
        if ip.is_unspecified() {
            return Ok(Empty {});
        }
        match self.inner.ipam.release(ip).await {
            Ok(()) | Err(AllocError::PoolNotFound) => Ok(Empty {}),
            Err(AllocError::Other(source)) => Err(DriverError::Release {
                ip: ip.to_string(),
                source,
            }),
        }
    }
}
