//! The one error type of the client.

use std::path::PathBuf;
use std::time::Duration;

/// Why a Docker API call failed; every message names the socket or the request involved.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// `DOCKER_HOST` names something other than a unix socket.
    #[error(
        "unsupported DOCKER_HOST '{0}': only unix sockets are supported, \
         e.g. unix:///var/run/docker.sock"
    )]
    UnsupportedHost(String),
    /// The daemon's socket could not be reached.
    #[error("cannot connect to the Docker daemon at unix://{}: {source}", socket.display())]
    Connect {
        /// The socket path.
        socket: PathBuf,
        /// The connect error.
        #[source]
        source: std::io::Error,
    },
    /// The request could not be put together (an argument no URI or JSON body can carry).
    #[error("cannot build Docker API request {method} {path}: {reason}")]
    Request {
        /// HTTP method.
        method: &'static str,
        /// Request path, with the API version prefix.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The HTTP exchange broke off (connection reset, malformed response, ...).
    #[error("Docker API {method} {path} failed: {source}")]
    Transport {
        /// HTTP method.
        method: &'static str,
        /// Request path, with the API version prefix.
        path: String,
        /// The HTTP error.
        #[source]
        source: hyper::Error,
    },
    /// The daemon did not answer in time.
    #[error("Docker API {method} {path} got no answer within {timeout:?}")]
    Timeout {
        /// HTTP method.
        method: &'static str,
        /// Request path, with the API version prefix.
        path: String,
        /// The limit that passed.
        timeout: Duration,
    },
    /// The daemon answered with an error status.
    #[error("Docker API {method} {path} returned HTTP {status}: {message}")]
    Api {
        /// HTTP method.
        method: &'static str,
        /// Request path, with the API version prefix.
        path: String,
        /// HTTP status code.
        status: u16,
        /// Docker's `message`, or the raw body when it has none.
        message: String,
    },
    /// The daemon answered with a body that is not the JSON this client expects.
    #[error("Docker API {method} {path} returned an unexpected body: {source}")]
    Decode {
        /// HTTP method.
        method: &'static str,
        /// Request path, with the API version prefix.
        path: String,
        /// What did not decode.
        #[source]
        source: serde_json::Error,
    },
}

impl DockerError {
    /// The HTTP status Docker answered with, for [`DockerError::Api`].
    pub fn status(&self) -> Option<u16> {
        match self {
            DockerError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}
