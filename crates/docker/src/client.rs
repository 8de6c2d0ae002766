//! [`DockerClient`]: one HTTP/1.1 connection per request over the daemon's unix socket.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use ipnet::IpNet;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;
use tokio::task::AbortHandle;

use crate::engine::Engine;
use crate::error::DockerError;
use crate::raw;
use crate::types::{ContainerInfo, ContainerSummary, NetworkInfo};

/// The Engine API version every request asks for (Docker 20.10 and later understand it).
pub const API_VERSION: &str = "v1.41";

/// The daemon's socket when `DOCKER_HOST` is unset.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// How long one request may take unless [`DockerClient::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A Docker Engine API client for one daemon socket. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DockerClient {
    socket: PathBuf,
    timeout: Duration,
}

/// Aborts the task driving a connection when the request using it is finished or dropped.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl DockerClient {
    /// A client for the daemon listening on `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        DockerClient {
            socket: socket.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A client for `$DOCKER_HOST` (`unix:///path`), or [`DEFAULT_SOCKET`] when it is unset or empty.
    pub fn from_env() -> Result<Self, DockerError> {
        match std::env::var("DOCKER_HOST") {
            Ok(host) if !host.is_empty() => Self::from_host(&host),
            _ => Ok(Self::new(DEFAULT_SOCKET)),
        }
    }

    /// A client for a `DOCKER_HOST`-style address; only `unix:///absolute/path` is supported.
    pub fn from_host(host: &str) -> Result<Self, DockerError> {
        match host.strip_prefix("unix://") {
            Some(path) if path.starts_with('/') => Ok(Self::new(path)),
            _ => Err(DockerError::UnsupportedHost(host.to_owned())),
        }
    }

    /// The same client with a different per-request time limit.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The daemon socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The network with this ID, ID prefix or name; `None` if Docker has no such network.
    pub async fn network_inspect(
        &self,
        id_or_name: &str,
    ) -> Result<Option<NetworkInfo>, DockerError> {
        let path = format!("/networks/{}", encode(id_or_name));
        Ok(self
            .inspect::<raw::Network>(&path)
            .await?
            .map(NetworkInfo::from))
    }

    /// Every network, or only those whose driver is `driver`.
    ///
    /// Docker's list does not fill in [`NetworkInfo::containers`]; inspect a network for those.
    pub async fn networks(&self, driver: Option<&str>) -> Result<Vec<NetworkInfo>, DockerError> {
        let path = match driver {
            None => "/networks".to_owned(),
            Some(driver) => {
                let filters = serde_json::json!({ "driver": [driver] }).to_string();
                format!("/networks?filters={}", encode(&filters))
            }
        };
        let list: Vec<raw::Network> = self.list(&path).await?;
        Ok(list.into_iter().map(NetworkInfo::from).collect())
    }

    /// Creates a network and returns its ID. `subnet` becomes the only IPAM pool when given.
    pub async fn network_create(
        &self,
        name: &str,
        driver: &str,
        ipam_driver: &str,
        subnet: Option<IpNet>,
        labels: &BTreeMap<String, String>,
    ) -> Result<String, DockerError> {
        let body = raw::NetworkCreate {
            name,
            check_duplicate: true,
            driver,
            ipam: raw::NetworkCreateIpam {
                driver: ipam_driver,
                config: subnet
                    .map(|s| raw::NetworkCreatePool {
                        subnet: s.to_string(),
                    })
                    .into_iter()
                    .collect(),
            },
            labels,
        };
        let path = "/networks/create";
        let body = serde_json::to_vec(&body).map_err(|e| DockerError::Request {
            method: "POST",
            path: versioned(path),
            reason: e.to_string(),
        })?;
        let (status, reply) = self.send(Method::POST, path, Some(body)).await?;
        check_status(&Method::POST, &versioned(path), status, &reply)?;
        let created: raw::Created = decode(&Method::POST, &versioned(path), &reply)?;
        if !created.warning.is_empty() {
            tracing::warn!(network = name, warning = %created.warning, "Docker warned while creating a network");
        }
        Ok(created.id)
    }

    /// The container with this ID, ID prefix or name; `None` if Docker has no such container.
    pub async fn container_inspect(
        &self,
        id_or_name: &str,
    ) -> Result<Option<ContainerInfo>, DockerError> {
        let path = format!("/containers/{}/json", encode(id_or_name));
        Ok(self
            .inspect::<raw::Container>(&path)
            .await?
            .map(ContainerInfo::from))
    }

    /// Which Engine the daemon is (`GET /version`). Asked without the API version prefix, so
    /// that an Engine which no longer accepts [`API_VERSION`] still says what it is.
    pub async fn engine(&self) -> Result<Engine, DockerError> {
        let path = "/version";
        let (status, body) = self.send_unversioned(Method::GET, path).await?;
        check_status(&Method::GET, path, status, &body)?;
        let version: raw::Version = decode(&Method::GET, path, &body)?;
        Ok(version.into())
    }

    /// Running containers, or all of them with `all`.
    pub async fn containers(&self, all: bool) -> Result<Vec<ContainerSummary>, DockerError> {
        let path = format!("/containers/json?all={}", u8::from(all));
        let list: Vec<raw::ContainerListEntry> = self.list(&path).await?;
        Ok(list.into_iter().map(ContainerSummary::from).collect())
    }

    /// GETs an object; `None` when Docker answers 404 (no such object).
    async fn inspect<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, DockerError> {
        let (status, body) = self.send(Method::GET, path, None).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        check_status(&Method::GET, &versioned(path), status, &body)?;
        decode(&Method::GET, &versioned(path), &body).map(Some)
    }

    /// GETs a list; every error status, 404 included, is an error.
    async fn list<T: DeserializeOwned>(&self, path: &str) -> Result<T, DockerError> {
        let (status, body) = self.send(Method::GET, path, None).await?;
        check_status(&Method::GET, &versioned(path), status, &body)?;
        decode(&Method::GET, &versioned(path), &body)
    }

    /// [`Self::send`] of a body-less request to `path` as it is, without the version prefix.
    async fn send_unversioned(
        &self,
        method: Method,
        path: &str,
    ) -> Result<(StatusCode, Bytes), DockerError> {
        self.exchange(method, path.to_owned(), None).await
    }

    /// Sends one request on a fresh connection and collects the whole reply.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), DockerError> {
        self.exchange(method, versioned(path), body).await
    }

    async fn exchange(
        &self,
        method: Method,
        full_path: String,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), DockerError> {
        let method_name = method_name(&method);
        let exchange = async {
            let stream =
                UnixStream::connect(&self.socket)
                    .await
                    .map_err(|source| DockerError::Connect {
                        socket: self.socket.clone(),
                        source,
                    })?;
            let transport = |source| DockerError::Transport {
                method: method_name,
                path: full_path.clone(),
                source,
            };
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(transport)?;
            let driver = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "Docker API connection ended with an error");
                }
            });
            let _driver = AbortOnDrop(driver.abort_handle());
            let mut request = Request::builder()
                .method(method)
                .uri(full_path.as_str())
                .header(HOST, "docker");
            if body.is_some() {
                request = request.header(CONTENT_TYPE, "application/json");
            }
            let request = request
                .body(Full::new(Bytes::from(body.unwrap_or_default())))
                .map_err(|e| DockerError::Request {
                    method: method_name,
                    path: full_path.clone(),
                    reason: e.to_string(),
                })?;
            let response = sender.send_request(request).await.map_err(transport)?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(transport)?
                .to_bytes();
            Ok((status, bytes))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| DockerError::Timeout {
                method: method_name,
                path: full_path.clone(),
                timeout: self.timeout,
            })?
    }
}

fn versioned(path: &str) -> String {
    format!("/{API_VERSION}{path}")
}

fn method_name(method: &Method) -> &'static str {
    if *method == Method::POST {
        "POST"
    } else {
        "GET"
    }
}

/// Turns an error status into [`DockerError::Api`] with Docker's message.
fn check_status(
    method: &Method,
    full_path: &str,
    status: StatusCode,
    body: &[u8],
) -> Result<(), DockerError> {
    if status.is_success() {
        return Ok(());
    }
    let message = serde_json::from_slice::<raw::ErrorBody>(body)
        .map(|e| e.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).trim().to_owned());
    Err(DockerError::Api {
        method: method_name(method),
        path: full_path.to_owned(),
        status: status.as_u16(),
        message,
    })
}

fn decode<T: DeserializeOwned>(
    method: &Method,
    full_path: &str,
    body: &[u8],
) -> Result<T, DockerError> {
    serde_json::from_slice(body).map_err(|source| DockerError::Decode {
        method: method_name(method),
        path: full_path.to_owned(),
        source,
    })
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for path segments and queries.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_host_must_be_a_unix_socket() {
        let client = DockerClient::from_host("unix:///run/d.sock").expect("unix host");
        assert_eq!(client.socket(), Path::new("/run/d.sock"));
        for bad in [
            "tcp://1.2.3.4:2375",
            "unix://",
            "unix://relative.sock",
            "ssh://x",
            "/x.sock",
        ] {
            let err = DockerClient::from_host(bad).expect_err(bad);
            assert!(err.to_string().contains(bad), "{err}");
            assert!(
                err.to_string().contains("unix:///var/run/docker.sock"),
                "{err}"
            );
        }
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode("net1"), "net1");
        assert_eq!(encode("a/b c?"), "a%2Fb%20c%3F");
        assert_eq!(
            encode(r#"{"driver":["calico"]}"#),
            "%7B%22driver%22%3A%5B%22calico%22%5D%7D"
        );
    }
}
