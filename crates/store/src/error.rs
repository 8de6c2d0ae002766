//! The one error type of the datastore layer.

/// What can go wrong talking to a datastore; every message names the key, file or endpoint involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// `create` found the key already present.
    #[error("key {0} already exists")]
    AlreadyExists(String),
    /// The key does not exist.
    #[error("key {0} not found")]
    NotFound(String),
    /// The key's mod revision differs from the expected one (someone else wrote it first).
    #[error("key {0} was modified concurrently (revision mismatch)")]
    Conflict(String),
    /// The backend could not be reached or failed; the message names the backend and the cause.
    #[error("datastore unavailable: {0}")]
    Unavailable(String),
    /// The backend refused the client: wrong or missing credentials, or no permission for a key.
    #[error("datastore access denied: {0}")]
    AccessDenied(String),
    /// The backend holds data this code cannot read (bad row, bad key encoding, newer schema).
    #[error("datastore corrupt: {0}")]
    Corrupt(String),
    /// A caller passed an argument the datastore rejects (empty key, future revision).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The datastore configuration (environment or config file) is invalid.
    #[error("invalid datastore configuration: {0}")]
    Config(String),
}
