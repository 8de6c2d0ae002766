//! Reconciliation: on start and periodically, compare Docker's endpoints, the datastore and the
//! kernel, and repair the differences. Live endpoints are only ever re-plumbed; an endpoint is
//! forgotten only when Docker, asked successfully, no longer has it.

mod repairs;

use std::collections::HashSet;
use std::fmt::Display;
use std::future::Future;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use calico_dataplane::endpoint::{plumb, unplumb, WorkloadPlumbing};
use calico_dataplane::netlink::Netlink;
use calico_docker::{ContainerPorts, DockerClient};
use calico_ipam::Ipam;
use calico_libnetwork::{requested_ports, Driver, ExistingEndpoint};
use calico_model::endpoint_naming::{HOST_INTERFACE_PREFIX, ORCHESTRATOR, WORKLOAD_MAC};
use calico_model::{Kind, Resource, WorkloadEndpoint};
use calico_store::resources::{Filter, ResourceError, ResourceStore};
use ipnet::IpNet;
use tracing::{info, instrument, warn};

pub use repairs::{plan_repairs, Action, DockerEndpoint, Observed, RequestedPorts};

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
    /// unless the plugin knows them (`pending`). A network that cannot be listed or inspected
    /// means "unknown", never "none"; a container that cannot be inspected only leaves its
    /// endpoint's ports unknown until a later pass.
    async fn docker_endpoints(&self, pending: &HashSet<String>) -> Result<Vec<DockerEndpoint>> {
        let mut endpoints = Vec::new();
        for listed in self.docker.networks(Some(CALICO_DRIVER)).await? {
            let Some(net) = self.docker.network_inspect(&listed.id).await? else {
                continue;
            };
            for (container, c) in &net.containers {
                if !container.starts_with("ep-") {
                    endpoints.push(DockerEndpoint::listed(&net, container, c));
                }
            }
        }
        let docker = &self.docker;
        look_up_ports(&mut endpoints, pending, |container| async move {
            docker
                .container_inspect(&container)
                .await
                .map(|found| found.map(|c| c.ports))
        })
        .await;
        Ok(endpoints)
    }

    async fn apply(&self, action: &Action, started: u64) -> Result<()> {
        match action {
            Action::Adopt { endpoint, recorded } => {
                info!(
                    endpoint = endpoint.endpoint_id,
                    network = endpoint.network_name,
                    recorded,
                    "adopting an endpoint Docker has"
                );
                let requested = endpoint.requested.clone().unwrap_or_default();
                let existing = ExistingEndpoint {
                    network_id: endpoint.network_id.clone(),
                    network_name: endpoint.network_name.clone(),
                    endpoint_id: endpoint.endpoint_id.clone(),
                    addrs: endpoint.addrs.iter().copied().map(IpNet::from).collect(),
                    mac: endpoint.mac.unwrap_or(WORKLOAD_MAC),
                    ports: requested.bindings,
                    exposed_ports: requested.exposed,
                    recorded: *recorded,
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

/// Looks up, one container at a time, the ports asked for by the containers of the endpoints
/// the plugin does not know (`pending`), with `inspect` (Docker's `container inspect`). An
/// endpoint whose container cannot be inspected, or is gone, keeps `requested: None`: it is
/// not adopted this pass, and looked up again at the next.
async fn look_up_ports<F, Fut, E>(
    endpoints: &mut [DockerEndpoint],
    pending: &HashSet<String>,
    inspect: F,
) where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<Option<ContainerPorts>, E>>,
    E: Display,
{
    for ep in endpoints {
        if pending.contains(&ep.endpoint_id) {
            continue;
        }
        match inspect(ep.container.clone()).await {
            Ok(Some(ports)) => {
                let (bindings, exposed) = requested_ports(&ports);
                ep.requested = Some(RequestedPorts { bindings, exposed });
            }
            Ok(None) => info!(
                endpoint = ep.endpoint_id,
                container = ep.container,
                "the endpoint's container is gone; not adopting it"
            ),
            Err(e) => warn!(
                endpoint = ep.endpoint_id,
                container = ep.container,
                error = %e,
                "cannot inspect the endpoint's container for its ports; adopting it at a later pass"
            ),
        }
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use calico_docker::{HostBinding, NetworkContainer, NetworkInfo};
    use calico_libnetwork::wire::{PortBinding, TransportPort};
    use calico_model::endpoint_naming::{host_interface, DockerId};

    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccc";

    fn listed(id: &str, ip: &str) -> DockerEndpoint {
        let net = NetworkInfo {
            id: "n1".into(),
            name: "net1".into(),
            ..NetworkInfo::default()
        };
        let c = NetworkContainer {
            endpoint_id: id.into(),
            ipv4_address: Some(format!("{ip}/32").parse().unwrap()),
            ..NetworkContainer::default()
        };
        DockerEndpoint::listed(&net, &format!("container-{id}"), &c)
    }

    fn iface(id: &str) -> String {
        host_interface(&DockerId::new(id).unwrap())
    }

    /// Container inspection as Docker answers it: `-p 8080:80` for every container but those
    /// in `failing`, which get an error; records which containers were asked for.
    struct FakeInspect {
        failing: Vec<String>,
        asked: Mutex<Vec<String>>,
    }

    impl FakeInspect {
        fn failing(ids: &[&str]) -> Self {
            FakeInspect {
                failing: ids.iter().map(|id| format!("container-{id}")).collect(),
                asked: Mutex::new(Vec::new()),
            }
        }

        async fn inspect(&self, container: String) -> Result<Option<ContainerPorts>, String> {
            self.asked.lock().unwrap().push(container.clone());
            if self.failing.contains(&container) {
                return Err(format!("GET /containers/{container}/json: timed out"));
            }
            Ok(Some(ContainerPorts {
                bindings: BTreeMap::from([(
                    "80/tcp".into(),
                    vec![HostBinding {
                        host_ip: String::new(),
                        host_port: "8080".into(),
                    }],
                )]),
                ..ContainerPorts::default()
            }))
        }

        fn asked(&self) -> Vec<String> {
            self.asked.lock().unwrap().clone()
        }
    }

    fn web_ports() -> Option<RequestedPorts> {
        Some(RequestedPorts {
            bindings: vec![PortBinding {
                proto: 6,
                port: 80,
                host_port: 8080,
                host_port_end: 8080,
                ..PortBinding::default()
            }],
            exposed: vec![TransportPort { proto: 6, port: 80 }],
        })
    }

    #[tokio::test]
    async fn a_container_that_cannot_be_inspected_waits_for_the_next_pass_alone() {
        let mut endpoints = vec![
            listed(A, "192.168.0.1"),
            listed(B, "192.168.0.2"),
            listed(C, "192.168.0.3"),
        ];
        let pending = HashSet::from([A.to_string()]);
        let docker = FakeInspect::failing(&[B]);
        look_up_ports(&mut endpoints, &pending, |c| docker.inspect(c)).await;
        assert_eq!(
            docker.asked(),
            [format!("container-{B}"), format!("container-{C}")],
            "the plugin knows A: its container is not inspected"
        );
        let requested: Vec<_> = endpoints.iter().map(|e| e.requested.clone()).collect();
        assert_eq!(requested, [None, None, web_ports()]);

        let observed = Observed {
            docker: Some(endpoints),
            pending: pending.clone(),
            links: vec![iface(A), iface(B), iface(C)],
            allocations: vec![("192.168.0.2".parse().unwrap(), 3600)],
            ..Observed::default()
        };
        let adopted: Vec<String> = plan_repairs(&observed)
            .into_iter()
            .map(|action| match action {
                Action::Adopt { endpoint, .. } => endpoint.endpoint_id,
                other => panic!("B's link and address are kept: {other:?}"),
            })
            .collect();
        assert_eq!(adopted, [C]);

        // At the next pass the plugin knows C, and B's container answers.
        let mut endpoints = vec![
            listed(A, "192.168.0.1"),
            listed(B, "192.168.0.2"),
            listed(C, "192.168.0.3"),
        ];
        let pending = HashSet::from([A.to_string(), C.to_string()]);
        let docker = FakeInspect::failing(&[]);
        look_up_ports(&mut endpoints, &pending, |c| docker.inspect(c)).await;
        assert_eq!(docker.asked(), [format!("container-{B}")]);
        let observed = Observed {
            docker: Some(endpoints),
            pending,
            ..observed
        };
        let expected = DockerEndpoint {
            requested: web_ports(),
            ..listed(B, "192.168.0.2")
        };
        assert_eq!(
            plan_repairs(&observed),
            [Action::Adopt {
                endpoint: expected,
                recorded: false
            }]
        );
    }
}
