//! The plugin's HTTP/1.1 server on two unix sockets, as Docker's legacy plugin discovery finds
//! them: `<dir>/calico.sock` (network and IPAM driver, so `--ipam-driver calico` works) and
//! `<dir>/calico-ipam.sock` (IPAM driver only).
//!
//! dockerd POSTs `/<Interface>.<Method>` with a JSON body and no `Content-Type`, so bodies are
//! read as raw bytes. Replies are JSON with `Content-Type: application/vnd.docker.plugins.v1.1+json`;
//! failures are `{"Err": "<message>"}` with 400 (undecodable request), 404 (no such call on
//! this socket, which Docker takes as "not implemented"), 405 (not a POST) or 500 (the call
//! failed).

use std::fs::{self, Permissions};
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::driver::{Driver, DriverError};
use crate::wire::{ActivateResponse, Call, Interface, CONTENT_TYPE};

/// Where Docker looks for legacy plugin sockets.
pub const DEFAULT_PLUGIN_DIR: &str = "/run/docker/plugins";
/// The socket of the `calico` network driver (which is also an IPAM driver).
pub const NETWORK_SOCKET: &str = "calico.sock";
/// The socket of the `calico-ipam` IPAM driver.
pub const IPAM_SOCKET: &str = "calico-ipam.sock";

/// Largest request body read; Docker's are a few hundred bytes.
const MAX_BODY: usize = 1 << 20;
/// How long [`Server::shutdown`] lets requests in flight finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Told of every request answered: the call (`NetworkDriver.CreateEndpoint`, or `unknown` for
/// a path that is no call of this socket), whether it succeeded, and how long it took.
pub type CallObserver = Arc<dyn Fn(&'static str, bool, Duration) + Send + Sync>;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The plugin directory could not be created.
    #[error("cannot create plugin directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Something other than a socket sits where a socket goes.
    #[error("{} exists and is not a socket; remove it or choose another plugin directory", path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// A stale socket could not be removed.
    #[error("cannot remove stale socket {}: {source}", path.display())]
    RemoveStale {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The socket could not be created.
    #[error("cannot listen on {}: {source}", path.display())]
    Bind {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// The running server. [`Server::shutdown`] stops it; dropping it stops it abruptly. Either
/// way its socket files are removed.
pub struct Server {
    network_socket: PathBuf,
    ipam_socket: PathBuf,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Which drivers a socket serves.
#[derive(Clone, Copy, Debug)]
enum Role {
    /// `calico.sock`: network and IPAM driver.
    NetworkAndIpam,
    /// `calico-ipam.sock`: IPAM driver only.
    Ipam,
}

impl Role {
    fn serves(self, interface: Interface) -> bool {
        match self {
            Role::NetworkAndIpam => true,
            Role::Ipam => interface != Interface::NetworkDriver,
        }
    }

    fn implements(self) -> Vec<String> {
        let names: &[&str] = match self {
            Role::NetworkAndIpam => &["NetworkDriver", "IpamDriver"],
            Role::Ipam => &["IpamDriver"],
        };
        names.iter().map(|n| n.to_string()).collect()
    }
}

#[derive(Clone)]
struct Plugin {
    driver: Driver,
    role: Role,
    observer: Option<CallObserver>,
}

/// A failed call: HTTP status and the `Err` message.
struct Failure {
    status: StatusCode,
    message: String,
}

/// Serves `driver` on `<dir>/calico.sock` and `<dir>/calico-ipam.sock`, replacing stale
/// sockets, and tells `observer` of every request. Returns once both are listening. Must be
/// called within a Tokio runtime.
pub fn serve(
    dir: impl AsRef<Path>,
    driver: Driver,
    observer: Option<CallObserver>,
) -> Result<Server, ServerError> {
    let dir = dir.as_ref();
    fs::create_dir_all(dir).map_err(|source| ServerError::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    let network_socket = dir.join(NETWORK_SOCKET);
    let ipam_socket = dir.join(IPAM_SOCKET);
    let network_listener = bind(&network_socket)?;
    let ipam_listener = bind(&ipam_socket).inspect_err(|_| remove_socket(&network_socket))?;
    let (stop, _) = watch::channel(false);
    let tasks = [
        (network_listener, Role::NetworkAndIpam, &network_socket),
        (ipam_listener, Role::Ipam, &ipam_socket),
    ]
    .into_iter()
    .map(|(listener, role, path)| {
        let app = Router::new().fallback(handle).with_state(Plugin {
            driver: driver.clone(),
            role,
            observer: observer.clone(),
        });
        let mut stopped = stop.subscribe();
        let path = path.clone();
        tokio::spawn(async move {
            let shutdown = async move {
                // An error means the server is gone, which also means stop.
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(socket = %path.display(), error = %e, "plugin server stopped");
            }
        })
    })
    .collect();
    tracing::info!(
        network = %network_socket.display(),
        ipam = %ipam_socket.display(),
        "libnetwork plugin listening"
    );
    Ok(Server {
        network_socket,
        ipam_socket,
        stop,
        tasks,
    })
}

impl Server {
    /// `<dir>/calico.sock`.
    pub fn network_socket(&self) -> &Path {
        &self.network_socket
    }

    /// `<dir>/calico-ipam.sock`.
    pub fn ipam_socket(&self) -> &Path {
        &self.ipam_socket
    }

    /// Stops accepting, lets requests in flight finish (for a few seconds at most) and
    /// removes the socket files. Background driver work goes on; see [`Driver::settle`].
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        for mut task in std::mem::take(&mut self.tasks) {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                tracing::warn!("plugin requests still running at shutdown; aborting them");
                task.abort();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        remove_socket(&self.network_socket);
        remove_socket(&self.ipam_socket);
    }
}

/// Listens on `path`, first removing a stale socket there. The listen backlog is the
/// kernel's maximum (mio passes -1, i.e. `somaxconn`), far above the 5 that made dockerd
/// retry under load.
fn bind(path: &Path) -> Result<UnixListener, ServerError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            fs::remove_file(path).map_err(|source| ServerError::RemoveStale {
                path: path.to_owned(),
                source,
            })?;
            tracing::info!(socket = %path.display(), "removed stale socket");
        }
        Ok(_) => {
            return Err(ServerError::NotASocket {
                path: path.to_owned(),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(ServerError::RemoveStale {
                path: path.to_owned(),
                source,
            })
        }
    }
    let bind_error = |source| ServerError::Bind {
        path: path.to_owned(),
        source,
    };
    let listener = UnixListener::bind(path).map_err(bind_error)?;
    // As go-plugins-helpers: owner and group (root) only.
    fs::set_permissions(path, Permissions::from_mode(0o660)).map_err(bind_error)?;
    Ok(listener)
}

fn remove_socket(path: &Path) {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(socket = %path.display(), error = %e, "cannot remove socket"),
    }
}

async fn handle(State(plugin): State<Plugin>, method: Method, uri: Uri, body: Body) -> Response {
    let started = Instant::now();
    let path = uri.path();
    let mut request = axum::body::Bytes::new();
    let call = Call::from_path(path).filter(|c| plugin.role.serves(c.interface()));
    let result = match call {
        None => Err(Failure {
            status: StatusCode::NOT_FOUND,
            message: format!("{path} is not a call this plugin implements on this socket"),
        }),
        Some(call) if method != Method::POST => Err(Failure {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: format!("{} takes POST, not {method}", call.name()),
        }),
        Some(call) => match to_bytes(body, MAX_BODY).await {
            Ok(bytes) => {
                request = bytes;
                dispatch(&plugin, call, &request).await
            }
            Err(e) => Err(Failure {
                status: StatusCode::BAD_REQUEST,
                message: format!(
                    "{}: cannot read the request body (at most {MAX_BODY} bytes): {e}",
                    call.name()
                ),
            }),
        },
    };
    let elapsed = started.elapsed();
    if let Some(observer) = &plugin.observer {
        observer(call.map_or("unknown", Call::name), result.is_ok(), elapsed);
    }
    // One line per request: info when answered, warn when it failed.
    let call_name = path.trim_start_matches('/');
    let names: Names = serde_json::from_slice(&request).unwrap_or_default();
    let (network, endpoint, pool) = (names.network, names.endpoint, names.pool);
    let (status, body) = match result {
        Ok(body) => {
            tracing::info!(
                method = call_name,
                network,
                endpoint,
                pool,
                ?elapsed,
                "plugin call answered"
            );
            (StatusCode::OK, body)
        }
        Err(Failure { status, message }) => {
            tracing::warn!(method = call_name, network, endpoint, pool, status = status.as_u16(), error = %message, ?elapsed, "plugin call failed");
            let body = serde_json::json!({ "Err": message })
                .to_string()
                .into_bytes();
            (status, body)
        }
    };
    // The whole exchange, for recording what a Docker release sends (CALICO_LOG_LEVEL=
    // calico_libnetwork::server=trace).
    tracing::trace!(
        path,
        status = status.as_u16(),
        request = %String::from_utf8_lossy(&request),
        response = %String::from_utf8_lossy(&body),
        "plugin exchange"
    );
    (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

/// What a request names, for its log line. Docker's requests name the network and the endpoint
/// (the container's attachment; no request names the container itself), IPAM's the pool.
#[derive(Default, serde::Deserialize)]
struct Names {
    #[serde(rename = "NetworkID")]
    network: Option<String>,
    #[serde(rename = "EndpointID")]
    endpoint: Option<String>,
    #[serde(rename = "PoolID")]
    pool: Option<String>,
}

/// Decodes the request of `call`, runs it and encodes the reply.
async fn dispatch(plugin: &Plugin, call: Call, body: &[u8]) -> Result<Vec<u8>, Failure> {
    let d = &plugin.driver;
    d.check_engine(call).map_err(|e| failure(&e))?;
    match call {
        Call::Activate => {
            d.activated();
            encode(Ok(ActivateResponse {
                implements: plugin.role.implements(),
            }))
        }
        Call::NetworkCapabilities => encode(Ok(d.capabilities())),
        Call::CreateNetwork => encode(d.create_network(decode(call, body)?).await),
        Call::DeleteNetwork => encode(d.delete_network(decode(call, body)?).await),
        Call::CreateEndpoint => encode(d.create_endpoint(decode(call, body)?).await),
        Call::EndpointOperInfo => encode(d.endpoint_oper_info(decode(call, body)?).await),
        Call::DeleteEndpoint => encode(d.delete_endpoint(decode(call, body)?).await),
        Call::Join => encode(d.join(decode(call, body)?).await),
        Call::Leave => encode(d.leave(decode(call, body)?).await),
        Call::DiscoverNew => encode(d.discover_new(decode(call, body)?).await),
        Call::DiscoverDelete => encode(d.discover_delete(decode(call, body)?).await),
        Call::ProgramExternalConnectivity => {
            encode(d.program_external_connectivity(decode(call, body)?).await)
        }
        Call::RevokeExternalConnectivity => {
            encode(d.revoke_external_connectivity(decode(call, body)?).await)
        }
        Call::AllocateNetwork => encode(d.allocate_network(decode(call, body)?).await),
        Call::FreeNetwork => encode(d.free_network(decode(call, body)?).await),
        Call::IpamCapabilities => encode(Ok(d.ipam_capabilities())),
        Call::DefaultAddressSpaces => encode(Ok(d.default_address_spaces())),
        Call::RequestPool => encode(d.request_pool(decode(call, body)?).await),
        Call::ReleasePool => encode(d.release_pool(decode(call, body)?).await),
        Call::RequestAddress => encode(d.request_address(decode(call, body)?).await),
        Call::ReleaseAddress => encode(d.release_address(decode(call, body)?).await),
    }
}

fn decode<T: DeserializeOwned>(call: Call, body: &[u8]) -> Result<T, Failure> {
    let message = match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => format!(
            "{}: empty request body; expected a JSON object",
            call.name()
        ),
        // serde would also take a JSON array for a struct, field by field.
        Some(b'{') => match serde_json::from_slice(body) {
            Ok(request) => return Ok(request),
            Err(e) => format!("{}: invalid request body: {e}", call.name()),
        },
        Some(_) => format!(
            "{}: invalid request body: expected a JSON object",
            call.name()
        ),
    };
    Err(Failure {
        status: StatusCode::BAD_REQUEST,
        message,
    })
}

/// A refused or failed call, as Docker receives it.
fn failure(e: &DriverError) -> Failure {
    Failure {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: e.to_string(),
    }
}

fn encode<T: Serialize>(result: Result<T, DriverError>) -> Result<Vec<u8>, Failure> {
    let reply = result.map_err(|e| failure(&e))?;
    serde_json::to_vec(&reply).map_err(|e| Failure {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("cannot encode the reply: {e}"),
    })
}
