//! The one error type of IPAM, worded as Calico words it where Calico has a message.

use std::net::IpAddr;

use calico_model::Cidr;
use calico_store::resources::ResourceError;
use calico_store::StoreError;

/// Why an IPAM operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// No enabled pool of the requested IP version exists.
    #[error("No configured Calico pools")]
    NoPools,
    /// The pool an auto-assignment was restricted to does not exist.
    #[error("The given pool ({0}) does not exist")]
    PoolNotFound(Cidr),
    /// The pool an auto-assignment was restricted to is disabled.
    #[error("The given pool ({0}) is disabled")]
    PoolDisabled(Cidr),
    /// Every address of the candidate pools is allocated.
    #[error("There are no available IP addresses in the configured Calico IP pools")]
    Exhausted,
    /// A specific address lies outside every enabled pool.
    #[error("The provided IP address is not in a configured pool")]
    NotInPool(IpAddr),
    /// A specific address is already allocated.
    #[error("Address already assigned in block {block}: {ip}")]
    AlreadyAssigned {
        /// The address.
        ip: IpAddr,
        /// Its block.
        block: Cidr,
    },
    /// The arguments cannot be served (IP version, pool version, empty node name).
    #[error("invalid IPAM request: {0}")]
    InvalidRequest(String),
    /// Concurrent writers kept changing the named key until the retry budget ran out.
    #[error("Max retries hit: {0} kept changing under concurrent writers")]
    TooManyRetries(String),
    /// Stored IPAM data at the key cannot be read.
    #[error("IPAM data at {key} is unreadable: {reason}")]
    Corrupt {
        /// The datastore key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The IP pools could not be read.
    #[error(transparent)]
    Pools(#[from] ResourceError),
    /// The datastore failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Result of every IPAM operation.
pub type Result<T, E = IpamError> = std::result::Result<T, E>;
