//! Test support: fakes of the driver's four outside dependencies, a plugin served on
//! temporary sockets over a SQLite datastore, and a dockerd-like client.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use calico_libnetwork::{
    serve, AddressAllocator, AllocError, ContainerRef, DockerApi, Driver, DriverConfig, HostLinks,
    PortPublisher, PublishedPort, Server, SourceError,
};
use calico_model::{Cidr, Kind, Profile, Resource, WorkloadEndpoint};
use calico_store::resources::{Filter, ResourceStore};
use calico_store::{KeyValue, SqliteStore};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use ipnet::IpNet;
use serde_json::Value;
use tokio::net::UnixStream;

/// The node name every harness runs as.
pub const NODE: &str = "calico-01";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Calico IPAM stand-in: a list of pools; automatic assignment walks the requested pool, or
/// this host's block, from its first host address.
pub struct FakeAllocator {
    pools: Mutex<Vec<Cidr>>,
    home_block: IpNet,
    assigned: Mutex<BTreeSet<IpAddr>>,
}

impl FakeAllocator {
    pub fn new(pools: &[&str], home_block: &str) -> Arc<Self> {
        Arc::new(FakeAllocator {
            pools: Mutex::new(pools.iter().map(|p| p.parse().expect("pool")).collect()),
            home_block: home_block.parse().expect("block"),
            assigned: Mutex::new(BTreeSet::new()),
        })
    }

    pub fn assigned(&self) -> BTreeSet<IpAddr> {
        lock(&self.assigned).clone()
    }

    fn in_pool(&self, ip: IpAddr) -> bool {
        lock(&self.pools).iter().any(|p| p.ip_net().contains(&ip))
    }

    fn first_free(&self, block: IpNet) -> Result<IpAddr, AllocError> {
        let mut assigned = lock(&self.assigned);
        let ip = block
            .hosts()
            .find(|ip| !assigned.contains(ip))
            .ok_or_else(|| AllocError::Other(format!("block {block} is full").into()))?;
        assigned.insert(ip);
        Ok(ip)
    }
}

#[async_trait]
impl AddressAllocator for FakeAllocator {
    async fn pool_cidrs(&self, version: u8) -> Result<Vec<Cidr>, SourceError> {
        Ok(lock(&self.pools)
            .iter()
            .filter(|p| p.version() == version)
            .copied()
            .collect())
    }

    async fn auto_assign(&self, version: u8, pool: Option<Cidr>) -> Result<IpAddr, AllocError> {
        match pool {
            Some(pool) => {
                if !lock(&self.pools).contains(&pool) {
                    return Err(AllocError::PoolNotFound);
                }
                self.first_free(pool.ip_net())
            }
            None if Cidr::new(self.home_block).version() == version => {
                self.first_free(self.home_block)
            }
            None => Err(AllocError::PoolNotFound),
        }
    }

    async fn assign(&self, ip: IpAddr) -> Result<(), AllocError> {
        if !self.in_pool(ip) {
            return Err(AllocError::PoolNotFound);
        }
        if !lock(&self.assigned).insert(ip) {
            return Err(AllocError::Other(
                "Address already assigned in block".into(),
            ));
        }
        Ok(())
    }

    async fn release(&self, ip: IpAddr) -> Result<(), AllocError> {
        lock(&self.assigned).remove(&ip);
        Ok(())
    }
}

/// Docker API stand-in.
#[derive(Default)]
pub struct FakeDocker {
    /// Network ID -> (name, lookups that still answer "no such network").
    networks: Mutex<HashMap<String, (String, usize)>>,
    /// Endpoint ID -> container.
    containers: Mutex<HashMap<String, ContainerRef>>,
    /// Invent a container for every endpoint not listed.
    invent_containers: bool,
    pub network_lookups: AtomicUsize,
    pub container_lookups: AtomicUsize,
    /// Network lookups still to fail as an API that does not answer yet (a dockerd starting).
    pub unanswered_network_lookups: AtomicUsize,
}

impl FakeDocker {
    pub fn new() -> Arc<Self> {
        Arc::new(FakeDocker::default())
    }

    /// A fake that answers every endpoint with a container `ctr-<endpoint id[:12]>`.
    pub fn inventing_containers() -> Arc<Self> {
        Arc::new(FakeDocker {
            invent_containers: true,
            ..FakeDocker::default()
        })
    }

    pub fn add_network(&self, id: &str, name: &str) {
        self.add_network_visible_after(id, name, 0);
    }

    /// The network answers "no such network" for its first `lookups` lookups.
    pub fn add_network_visible_after(&self, id: &str, name: &str, lookups: usize) {
        lock(&self.networks).insert(id.into(), (name.into(), lookups));
    }

    pub fn add_container(&self, endpoint_id: &str, id: &str, name: &str, labels: &[(&str, &str)]) {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        lock(&self.containers).insert(
            endpoint_id.into(),
            ContainerRef {
                id: id.into(),
                name: name.into(),
                labels,
            },
        );
    }

    pub fn invented_name(endpoint_id: &str) -> String {
        format!("ctr-{}", &endpoint_id[..12])
    }
}

#[async_trait]
impl DockerApi for FakeDocker {
    async fn network_name(&self, network_id: &str) -> Result<Option<String>, SourceError> {
        self.network_lookups.fetch_add(1, Ordering::SeqCst);
        let unanswered =
            self.unanswered_network_lookups
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if unanswered.is_ok() {
            return Err("Docker API GET /networks: no answer".into());
        }
        let mut networks = lock(&self.networks);
        Ok(match networks.get_mut(network_id) {
            Some((_, hidden)) if *hidden > 0 => {
                *hidden -= 1;
                None
            }
            Some((name, _)) => Some(name.clone()),
            None => None,
        })
    }

    async fn endpoint_container(
        &self,
        _network_id: &str,
        endpoint_id: &str,
    ) -> Result<Option<ContainerRef>, SourceError> {
        self.container_lookups.fetch_add(1, Ordering::SeqCst);
        if let Some(c) = lock(&self.containers).get(endpoint_id) {
            return Ok(Some(c.clone()));
        }
        Ok(self.invent_containers.then(|| ContainerRef {
            id: format!("c{endpoint_id}"),
            name: FakeDocker::invented_name(endpoint_id),
            labels: BTreeMap::new(),
        }))
    }
}

/// Host links stand-in: records every call; can be told to fail.
#[derive(Default)]
pub struct FakeLinks {
    pub calls: Mutex<Vec<String>>,
    pub fail_create: Mutex<Option<String>>,
    pub fail_plumb: Mutex<Option<String>>,
    pub link_local: Mutex<Option<Ipv6Addr>>,
}

impl FakeLinks {
    pub fn new() -> Arc<Self> {
        Arc::new(FakeLinks::default())
    }

    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }
}

fn addrs_text(addrs: &[IpNet]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[async_trait]
impl HostLinks for FakeLinks {
    async fn create_veth(
        &self,
        host_if: &str,
        temp_if: &str,
        mtu: Option<u32>,
    ) -> Result<(), SourceError> {
        lock(&self.calls).push(format!("create_veth {host_if} {temp_if} {mtu:?}"));
        match lock(&self.fail_create).clone() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    async fn plumb(&self, host_if: &str, addrs: &[IpNet], mac: [u8; 6]) -> Result<(), SourceError> {
        let mac: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
        lock(&self.calls).push(format!(
            "plumb {host_if} {} {}",
            addrs_text(addrs),
            mac.join(":")
        ));
        match lock(&self.fail_plumb).clone() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    async fn remove(&self, host_if: &str, addrs: &[IpNet]) -> Result<(), SourceError> {
        lock(&self.calls).push(format!("remove {host_if} {}", addrs_text(addrs)));
        Ok(())
    }

    async fn ipv6_link_local(&self, _host_if: &str) -> Result<Option<Ipv6Addr>, SourceError> {
        Ok(*lock(&self.link_local))
    }
}

/// Port publisher stand-in: records every call (host interface, ports); can be told to fail.
#[derive(Default)]
pub struct FakePorts {
    pub calls: Mutex<Vec<(String, Vec<PublishedPort>)>>,
    pub fail: Mutex<Option<String>>,
}

impl FakePorts {
    pub fn new() -> Arc<Self> {
        Arc::new(FakePorts::default())
    }

    pub fn calls(&self) -> Vec<(String, Vec<PublishedPort>)> {
        lock(&self.calls).clone()
    }

    pub fn fail_with(&self, error: &str) {
        *lock(&self.fail) = Some(error.to_owned());
    }

    pub fn stop_failing(&self) {
        *lock(&self.fail) = None;
    }
}

#[async_trait]
impl PortPublisher for FakePorts {
    async fn publish(&self, host_if: &str, ports: &[PublishedPort]) -> Result<(), SourceError> {
        lock(&self.calls).push((host_if.to_owned(), ports.to_vec()));
        match lock(&self.fail).clone() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}

/// A plugin served on temporary sockets, with fakes and a SQLite datastore.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub store: ResourceStore,
    pub ipam: Arc<FakeAllocator>,
    pub links: Arc<FakeLinks>,
    pub ports: Arc<FakePorts>,
    pub driver: Driver,
    pub server: Option<Server>,
}

/// A harness config: the defaults for [`NODE`].
pub fn config() -> DriverConfig {
    DriverConfig::new(NODE)
}

impl Harness {
    pub fn start(config: DriverConfig) -> Harness {
        Harness::start_with(
            config,
            FakeAllocator::new(&["192.168.1.0/26", "192.168.2.0/26"], "192.168.1.0/26"),
            FakeDocker::new(),
        )
    }

    pub fn start_with(
        config: DriverConfig,
        ipam: Arc<FakeAllocator>,
        docker: Arc<FakeDocker>,
    ) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = SqliteStore::open(dir.path().join("calico.db")).expect("sqlite store");
        let store = ResourceStore::new(Arc::new(db));
        Harness::start_on(dir, store, config, ipam, docker)
    }

    /// A plugin on an existing directory and store (as after a restart).
    pub fn start_on(
        dir: tempfile::TempDir,
        store: ResourceStore,
        config: DriverConfig,
        ipam: Arc<FakeAllocator>,
        docker: Arc<FakeDocker>,
    ) -> Harness {
        let links = FakeLinks::new();
        let ports = FakePorts::new();
        let driver = Driver::new(
            config,
            store.clone(),
            ipam.clone(),
            docker,
            links.clone(),
            ports.clone(),
        );
        let server = serve(dir.path().join("plugins"), driver.clone(), None).expect("serve");
        Harness {
            dir,
            store,
            ipam,
            links,
            ports,
            driver,
            server: Some(server),
        }
    }

    pub fn network_socket(&self) -> PathBuf {
        self.server
            .as_ref()
            .expect("running")
            .network_socket()
            .to_owned()
    }

    pub fn ipam_socket(&self) -> PathBuf {
        self.server
            .as_ref()
            .expect("running")
            .ipam_socket()
            .to_owned()
    }

    /// Calls the plugin as dockerd does: on `calico.sock` for network calls, on
    /// `calico-ipam.sock` for IPAM calls.
    pub async fn call(&self, call: &str, body: Value) -> Reply {
        let socket = if call.starts_with("IpamDriver.") {
            self.ipam_socket()
        } else {
            self.network_socket()
        };
        post(&socket, &format!("/{call}"), body.to_string()).await
    }

    /// Like [`Harness::call`], insisting on success.
    pub async fn ok(&self, call: &str, body: Value) -> Value {
        let reply = self.call(call, body).await;
        assert_eq!(reply.status, 200, "{call}: {}", reply.body);
        reply.body
    }

    pub async fn profile(&self, name: &str) -> Option<Profile> {
        let key = calico_model::ResourceKey::Profile { name: name.into() };
        match self.store.get(&key).await.expect("get profile")?.resource {
            Resource::Profile(p) => Some(p),
            other => panic!("not a profile: {other:?}"),
        }
    }

    pub async fn workload_endpoints(&self) -> Vec<WorkloadEndpoint> {
        let filter = Filter {
            node: Some(NODE.into()),
            ..Filter::default()
        };
        self.store
            .list(Kind::WorkloadEndpoint, &filter)
            .await
            .expect("list weps")
            .into_iter()
            .map(|r| match r {
                Resource::WorkloadEndpoint(w) => w,
                other => panic!("not a workload endpoint: {other:?}"),
            })
            .collect()
    }

    /// Every key and value in the datastore.
    pub async fn snapshot(&self) -> Vec<KeyValue> {
        self.store
            .datastore()
            .list("/")
            .await
            .expect("list datastore")
            .items
    }
}

/// A reply as dockerd sees it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Reply {
    /// The `Err` text of a failed call.
    pub fn err(&self) -> &str {
        self.body["Err"]
            .as_str()
            .unwrap_or_else(|| panic!("no Err in {}", self.body))
    }
}

/// POSTs `body` to `path` on `socket` the way dockerd does: HTTP/1.1, no Content-Type.
pub async fn post(socket: &Path, path: &str, body: impl Into<Bytes>) -> Reply {
    request(socket, "POST", path, body.into()).await
}

pub async fn request(socket: &Path, method: &str, path: &str, body: Bytes) -> Reply {
    let stream = UnixStream::connect(socket)
        .await
        .expect("connect to plugin");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    let conn = tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "plugin")
        .header("accept", "application/vnd.docker.plugins.v1.2+json")
        .body(Full::new(body))
        .expect("request");
    let resp = tokio::time::timeout(Duration::from_secs(30), sender.send_request(req))
        .await
        .expect("plugin answers in time")
        .expect("response");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    conn.abort();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("reply to {path} is not JSON ({e}): {bytes:?}"));
    Reply {
        status,
        content_type,
        body,
    }
}
