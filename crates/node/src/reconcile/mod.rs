//! Reconciliation: on start and periodically, compare Docker's endpoints, the datastore and the
//! kernel, and repair the differences. Live endpoints are only ever re-plumbed; an endpoint is
//! forgotten only when Docker, asked successfully, no longer has it.

mod repairs;

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use calico_dataplane::endpoint::{plumb, unplumb, WorkloadPlumbing};
use calico_dataplane::netlink::Netlink;
use calico_docker::DockerClient;
use calico_ipam::Ipam;
use calico_libnetwork::{requested_ports, Driver, ExistingEndpoint};
use calico_model::endpoint_naming::{HOST_INTERFACE_PREFIX, ORCHESTRATOR, WORKLOAD_MAC};
use calico_model::{Kind, Resource, WorkloadEndpoint};
use calico_store::resources::{Filter, ResourceError, ResourceStore};
use ipnet::IpNet;
use tracing::{info, instrument, warn};

pub use repairs::{plan_repairs, Action, DockerEndpoint, Observed};

/// The Docker network driver whose endpoints are ours.
const CALICO_DRIVER: &str = "calico";

/// Everything reconciliation reads and repairs, for one node.
pub struct Reconciler {
    /// This node's name.
    pub node: String,
    /// Resources (workload endpoints).
    pub store: ResourceStore,
    /// Address allocations.
    pub ipam: Ipam,
    /// The host's links and routes.
    pub netlink: Netlink,
    /// Docker's view of the endpoints.
    pub docker: DockerClient,
    /// The plugin driver (endpoints in flight; adopting endpoints).
    pub driver: Driver,
}

impl Reconciler {
    /// Reconciles now, then every `interval`, forever.
    pub async fn run_forever(self, interval: Duration) {
        loop {
            if let Err(e) = self.run_once().await {
                warn!(error = %format!("{e:#}"), "reconciliation failed; will retry");
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// One pass: observe, plan, repair. Returns the number of repairs.
    #[instrument(name = "reconcile", skip_all)]
    pub async fn run_once(&self) -> Result<usize> {
        for failure in self.driver.restore_ports().await {
            warn!(error = %failure, "will try again at the next pass");
        }
        let started = unix_now();
        let observed = self.observe(started).await?;
        let actions = plan_repairs(&observed);
        for action in &actions {
            if let Err(e) = self.apply(action, started).await {
                warn!(?action, error = %format!("{e:#}"), "repair failed");
            }
        }
        Ok(actions.len())
    }

    /// Reads the datastore and kernel first and Docker last, so an endpoint created meanwhile
    /// is at worst adopted twice, never forgotten.
    async fn observe(&self, now: u64) -> Result<Observed> {
        let pending = self.driver.live_endpoint_ids().await;
        let filter = Filter {
            node: Some(self.node.clone()),
            orchestrator: Some(ORCHESTRATOR.into()),
            ..Filter::default()
        };
        let workloads = self
            .store
            .list(Kind::WorkloadEndpoint, &filter)
            .await
            .context("listing this node's workload endpoints")?
            .into_iter()
            .filter_map(|r| match r {
                Resource::WorkloadEndpoint(w) => Some(w),
                _ => None,
            })
            .collect();
        let links = self
            .netlink
            .list_links(HOST_INTERFACE_PREFIX)
            .await
            .context("listing workload interfaces")?
            .into_iter()
            .map(|l| l.name)
            .collect();
        let allocations = self
            .ipam
            .allocations(Some(&self.node))
            .await
            .context("listing this node's addresses")?
            .into_iter()
            .map(|(ip, a)| (ip, now.saturating_sub(a.allocated_at.unwrap_or(0))))
            .collect();
        let docker = match self.docker_endpoints(&pending).await {
            Ok(endpoints) => Some(endpoints),
            Err(e) => {
                warn!(error = %format!("{e:#}"), "cannot ask Docker for its endpoints; only re-plumbing this time");
                None
            }
        };
        Ok(Observed {
            docker,
            workloads,
            pending,
            links,
            allocations,
        })
    }

    /// Every endpoint of every calico network, as Docker's `network inspect` lists them (the
    /// network list itself carries no endpoints), with the ports their containers asked for
    /// unless the plugin handles them (`pending`). Any failure means "unknown", never "none".
    async fn docker_endpoints(&self, pending: &HashSet<String>) -> Result<Vec<DockerEndpoint>> {
        let mut endpoints = Vec::new();
        for listed in self.docker.networks(Some(CALICO_DRIVER)).await? {
            let Some(net) = self.docker.network_inspect(&listed.id).await? else {
                continue;
            };
            for (key, c) in &net.containers {
                if key.starts_with("ep-") {
                    continue;
                }
                let (ports, exposed_ports) = if pending.contains(&c.endpoint_id) {
                    (Vec::new(), Vec::new())
                } else {
                    match self.docker.container_inspect(key).await? {
                        Some(container) => requested_ports(&container.ports),
                        None => (Vec::new(), Vec::new()),
                    }
                };
                endpoints.push(DockerEndpoint {
                    ports,
                    exposed_ports,
                    ..DockerEndpoint::listed(&net, c)
                });
            }
        }
        Ok(endpoints)
    }

    async fn apply(&self, action: &Action, started: u64) -> Result<()> {
        match action {
            Action::Record(ep) => {
                info!(
                    endpoint = ep.endpoint_id,
                    network = ep.network_name,
                    "adopting an endpoint Docker has"
                );
                let existing = ExistingEndpoint {
                    network_id: ep.network_id.clone(),
                    network_name: ep.network_name.clone(),
                    endpoint_id: ep.endpoint_id.clone(),
                    addrs: ep.addrs.iter().copied().map(IpNet::from).collect(),
                    mac: ep.mac.unwrap_or(WORKLOAD_MAC),
                    ports: ep.ports.clone(),
                    exposed_ports: ep.exposed_ports.clone(),
                };
                Ok(self.driver.adopt(existing).await?)
            }
            Action::Forget(wep) => self.forget(wep, started).await,
            Action::Plumb(wep) => plumb(&self.netlink, &plumbing(wep))
                .await
                .with_context(|| format!("re-plumbing {}", wep.spec.interface_name)),
            Action::DeleteLink(name) => {
                info!(link = name, "deleting a workload interface nobody owns");
                self.netlink
                    .delete_link(name)
                    .await
                    .map(drop)
                    .map_err(Into::into)
            }
            Action::Release(ip) => {
                info!(%ip, "releasing an address no endpoint uses");
                self.ipam.release(*ip).await.map(drop).map_err(Into::into)
            }
        }
    }

    /// Deletes an endpoint Docker no longer has, frees its addresses (unless re-allocated since
    /// this pass began) and removes its interface and routes.
    async fn forget(&self, wep: &WorkloadEndpoint, started: u64) -> Result<()> {
        info!(
            endpoint = wep.metadata.name,
            workload = wep.metadata.workload,
            "forgetting an endpoint Docker no longer has"
        );
        let resource = Resource::WorkloadEndpoint(wep.clone());
        match self.store.delete(&resource.key()?).await {
            Ok(()) | Err(ResourceError::DoesNotExist(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let addrs: Vec<IpNet> = wep.spec.ip_networks.iter().map(|c| c.ip_net()).collect();
        for ip in addrs.iter().map(IpNet::addr) {
            if self.allocated_before(ip, started).await? {
                self.ipam.release(ip).await?;
            }
        }
        unplumb(&self.netlink, &wep.spec.interface_name, &addrs).await?;
        Ok(())
    }

    /// Whether `ip` is allocated to this node by an allocation older than `started`.
    async fn allocated_before(&self, ip: IpAddr, started: u64) -> Result<bool> {
        Ok(self.ipam.allocation(ip).await?.is_some_and(|a| {
            a.node.as_deref() == Some(self.node.as_str())
                && a.allocated_at.is_none_or(|at| at < started)
        }))
    }
}

fn plumbing(wep: &WorkloadEndpoint) -> WorkloadPlumbing {
    let mac = wep
        .spec
        .mac
        .as_ref()
        .and_then(|m| m.bytes().try_into().ok())
        .unwrap_or(WORKLOAD_MAC);
    WorkloadPlumbing {
        iface: wep.spec.interface_name.clone(),
        addrs: wep.spec.ip_networks.iter().map(|c| c.ip_net()).collect(),
        mac,
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
