//! The pure half of reconciliation: given what Docker, the datastore, the kernel and IPAM each
//! say exists on this host, decide what to repair. Nothing here does I/O.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

use calico_docker::{NetworkContainer, NetworkInfo};
use calico_libnetwork::wire::{PortBinding, TransportPort};
use calico_model::endpoint_naming::{host_interface, parse_workload_mac, DockerId};
use calico_model::WorkloadEndpoint;

/// A Calico endpoint as Docker reports it (from `network inspect` of a calico network).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerEndpoint {
    /// Docker's ID of the endpoint's container.
    pub container: String,
    /// Docker's endpoint ID (the workload endpoint's name).
    pub endpoint_id: String,
    /// Docker's network ID.
    pub network_id: String,
    /// The network's name (the profile's name).
    pub network_name: String,
    /// The endpoint's addresses: its IPv4 and its IPv6 address, those it has.
    pub addrs: Vec<IpAddr>,
    /// The container interface's MAC, when Docker knows it.
    pub mac: Option<[u8; 6]>,
    /// The ports its container asked for, looked up only for an endpoint the plugin does not
    /// know; `None` until its container could be inspected.
    pub requested: Option<RequestedPorts>,
}

/// The ports a container asked for (`-p`, `-P`), as `ProgramExternalConnectivity` would carry
/// them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestedPorts {
    /// Its port bindings.
    pub bindings: Vec<PortBinding>,
    /// Its exposed ports.
    pub exposed: Vec<TransportPort>,
}

impl DockerEndpoint {
    /// Endpoint `c` of container `container` in network `net`, as `network inspect` lists
    /// it, its ports not looked up yet.
    pub fn listed(net: &NetworkInfo, container: &str, c: &NetworkContainer) -> Self {
        DockerEndpoint {
            container: container.to_owned(),
            endpoint_id: c.endpoint_id.clone(),
            network_id: net.id.clone(),
            network_name: net.name.clone(),
            addrs: c
                .ipv4_address
                .iter()
                .chain(&c.ipv6_address)
                .map(|n| n.addr())
                .collect(),
            mac: parse_workload_mac(&c.mac_address).ok(),
            requested: None,
        }
    }
}

/// Everything observed on this host at one moment.
#[derive(Debug, Default)]
pub struct Observed {
    /// Docker's endpoints; `None` when Docker could not be asked (then nothing is deleted).
    pub docker: Option<Vec<DockerEndpoint>>,
    /// This node's workload endpoints in the datastore.
    pub workloads: Vec<WorkloadEndpoint>,
    /// Endpoint IDs the plugin knows: created or adopted by this process, and not deleted.
    pub pending: HashSet<String>,
    /// Host interfaces with the workload prefix (`cali…`).
    pub links: Vec<String>,
    /// This node's IPAM allocations with their age in seconds.
    pub allocations: Vec<(IpAddr, u64)>,
}

/// One repair.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Docker has an endpoint the plugin does not know (calico-node was down, or restarted):
    /// adopt it, publish the ports its container asked for, and record it unless the datastore
    /// has it (`recorded`). Once adopted the plugin knows it, so this happens once.
    Adopt {
        /// The endpoint, its ports looked up.
        endpoint: DockerEndpoint,
        /// Whether the datastore has its workload endpoint.
        recorded: bool,
    },
    /// The datastore has an endpoint Docker no longer has: delete it, free its addresses,
    /// remove its interface and routes.
    Forget(Box<WorkloadEndpoint>),
    /// Both have it and its interface exists: make sure routes, neighbour and sysctls are right.
    Plumb(Box<WorkloadEndpoint>),
    /// A workload interface nobody owns.
    DeleteLink(String),
    /// An address allocated to this node that no endpoint uses.
    Release(IpAddr),
}

/// How old an unused allocation must be before it is released: Docker asks for an address
/// a moment before it creates the endpoint that uses it.
pub const RELEASE_GRACE_SECS: u64 = 60;

/// Decides the repairs; endpoints that are live everywhere are only ever re-plumbed.
pub fn plan_repairs(observed: &Observed) -> Vec<Action> {
    let mut actions = Vec::new();
    let recorded: HashSet<&str> = observed
        .workloads
        .iter()
        .map(|w| w.metadata.name.as_str())
        .collect();
    let links: HashSet<&str> = observed.links.iter().map(String::as_str).collect();

    let mut owned_links: BTreeSet<String> = BTreeSet::new();
    let mut used: HashSet<IpAddr> = HashSet::new();
    for id in &observed.pending {
        owned_links.extend(interface_of(id));
    }
    for wep in &observed.workloads {
        owned_links.insert(wep.spec.interface_name.clone());
        used.extend(wep.spec.ip_networks.iter().map(|n| n.addr()));
    }

    if let Some(docker) = &observed.docker {
        let live: HashSet<&str> = docker.iter().map(|e| e.endpoint_id.as_str()).collect();
        for ep in docker {
            owned_links.extend(interface_of(&ep.endpoint_id));
            used.extend(&ep.addrs);
            if ep.requested.is_some() && !observed.pending.contains(&ep.endpoint_id) {
                actions.push(Action::Adopt {
                    endpoint: ep.clone(),
                    recorded: recorded.contains(ep.endpoint_id.as_str()),
                });
            }
        }
        for wep in &observed.workloads {
            let id = wep.metadata.name.as_str();
            if live.contains(id) || observed.pending.contains(id) {
                if links.contains(wep.spec.interface_name.as_str()) {
                    actions.push(Action::Plumb(Box::new(wep.clone())));
                }
            } else {
                actions.push(Action::Forget(Box::new(wep.clone())));
            }
        }
        for link in &observed.links {
            if !owned_links.contains(link) {
                actions.push(Action::DeleteLink(link.clone()));
            }
        }
        for (ip, age) in &observed.allocations {
            if !used.contains(ip) && *age >= RELEASE_GRACE_SECS {
                actions.push(Action::Release(*ip));
            }
        }
    } else {
        for wep in &observed.workloads {
            if links.contains(wep.spec.interface_name.as_str()) {
                actions.push(Action::Plumb(Box::new(wep.clone())));
            }
        }
    }
    actions
}

/// The host interface of an endpoint, as the plugin names it; none for an ID Docker would not
/// have given the plugin.
fn interface_of(endpoint_id: &str) -> Option<String> {
    DockerId::new(endpoint_id)
        .ok()
        .map(|id| host_interface(&id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use calico_model::endpoint_naming::{ORCHESTRATOR, WORKLOAD_MAC};
    use calico_model::{WorkloadEndpointMetadata, WorkloadEndpointSpec};

    fn iface(id: &str) -> String {
        interface_of(id).unwrap()
    }

    fn wep(id: &str, ip: &str) -> WorkloadEndpoint {
        WorkloadEndpoint {
            metadata: WorkloadEndpointMetadata {
                name: id.into(),
                node: "n".into(),
                orchestrator: ORCHESTRATOR.into(),
                workload: "c".into(),
                ..Default::default()
            },
            spec: WorkloadEndpointSpec {
                interface_name: iface(id),
                ip_networks: vec![format!("{ip}/32").parse().unwrap()],
                ..Default::default()
            },
        }
    }

    /// An endpoint as Docker lists it, its ports not looked up.
    fn docker(id: &str, ip: &str) -> DockerEndpoint {
        DockerEndpoint {
            container: format!("container-{id}"),
            endpoint_id: id.into(),
            network_id: "n1".into(),
            network_name: "net1".into(),
            addrs: vec![ip.parse().unwrap()],
            mac: Some(WORKLOAD_MAC),
            requested: None,
        }
    }

    /// An endpoint whose container asked for `bindings`.
    fn inspected(id: &str, ip: &str, bindings: Vec<PortBinding>) -> DockerEndpoint {
        DockerEndpoint {
            requested: Some(RequestedPorts {
                bindings,
                exposed: Vec::new(),
            }),
            ..docker(id, ip)
        }
    }

    fn adopt(endpoint: DockerEndpoint, recorded: bool) -> Action {
        Action::Adopt { endpoint, recorded }
    }

    const A: &str = "aaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccc";

    #[test]
    fn every_endpoint_the_plugin_does_not_know_is_adopted_once() {
        let port = PortBinding {
            proto: 6,
            port: 80,
            host_port: 8080,
            host_port_end: 8080,
            ..PortBinding::default()
        };
        let with_ports = inspected(A, "192.168.0.1", vec![port]);
        let without = inspected(B, "192.168.0.2", Vec::new());
        let unrecorded = inspected(C, "192.168.0.3", Vec::new());
        let observed = Observed {
            docker: Some(vec![
                with_ports.clone(),
                without.clone(),
                unrecorded.clone(),
            ]),
            workloads: vec![wep(A, "192.168.0.1"), wep(B, "192.168.0.2")],
            links: vec![iface(A), iface(B), iface(C)],
            ..Observed::default()
        };
        let actions = plan_repairs(&observed);
        assert_eq!(
            actions
                .iter()
                .filter(|a| matches!(a, Action::Adopt { .. }))
                .collect::<Vec<_>>(),
            [
                &adopt(with_ports, true),
                &adopt(without, true),
                &adopt(unrecorded, false)
            ]
        );
        // Adopted, the plugin knows them: their containers are not looked up again.
        let adopted = Observed {
            docker: Some(vec![
                docker(A, "192.168.0.1"),
                docker(B, "192.168.0.2"),
                docker(C, "192.168.0.3"),
            ]),
            pending: HashSet::from([A.to_string(), B.to_string(), C.to_string()]),
            ..observed
        };
        assert!(!plan_repairs(&adopted)
            .iter()
            .any(|a| matches!(a, Action::Adopt { .. })));
    }

    #[test]
    fn an_endpoint_whose_ports_are_not_known_yet_waits_and_keeps_everything() {
        let observed = Observed {
            docker: Some(vec![docker(B, "192.168.0.2")]),
            links: vec![iface(B)],
            allocations: vec![("192.168.0.2".parse().unwrap(), 3600)],
            ..Observed::default()
        };
        assert_eq!(plan_repairs(&observed), vec![]);
        let recorded = Observed {
            workloads: vec![wep(B, "192.168.0.2")],
            ..observed
        };
        assert_eq!(
            plan_repairs(&recorded),
            vec![Action::Plumb(Box::new(wep(B, "192.168.0.2")))]
        );
    }

    #[test]
    fn live_endpoints_are_only_replumbed() {
        let observed = Observed {
            docker: Some(vec![docker(A, "192.168.0.1")]),
            workloads: vec![wep(A, "192.168.0.1")],
            pending: HashSet::from([A.to_string()]),
            links: vec![iface(A)],
            allocations: vec![("192.168.0.1".parse().unwrap(), 3600)],
        };
        assert_eq!(
            plan_repairs(&observed),
            vec![Action::Plumb(Box::new(wep(A, "192.168.0.1")))]
        );
    }

    #[test]
    fn endpoints_docker_forgot_are_forgotten_and_new_ones_recorded() {
        let new = inspected(B, "192.168.0.2", Vec::new());
        let observed = Observed {
            docker: Some(vec![new.clone()]),
            workloads: vec![wep(A, "192.168.0.1")],
            links: vec![iface(A), iface(B)],
            allocations: vec![
                ("192.168.0.1".parse().unwrap(), 3600),
                ("192.168.0.2".parse().unwrap(), 3600),
            ],
            ..Observed::default()
        };
        let actions = plan_repairs(&observed);
        assert!(actions.contains(&adopt(new, false)));
        assert!(actions.contains(&Action::Forget(Box::new(wep(A, "192.168.0.1")))));
        assert!(!actions.iter().any(|a| matches!(a, Action::DeleteLink(_))));
        assert!(!actions.iter().any(|a| matches!(a, Action::Release(_))));
    }

    #[test]
    fn docker_lists_both_addresses_of_a_dual_stack_endpoint() {
        let net = NetworkInfo {
            id: "n1".into(),
            name: "net1".into(),
            ..NetworkInfo::default()
        };
        let listed = NetworkContainer {
            name: "c".into(),
            endpoint_id: A.into(),
            mac_address: "ee:ee:ee:ee:ee:ee".into(),
            ipv4_address: Some("192.168.0.1/26".parse().unwrap()),
            ipv6_address: Some("fd80::1/122".parse().unwrap()),
        };
        let container = format!("container-{A}");
        let ep = DockerEndpoint::listed(&net, &container, &listed);
        let addrs: Vec<IpAddr> = vec!["192.168.0.1".parse().unwrap(), "fd80::1".parse().unwrap()];
        assert_eq!(
            ep,
            DockerEndpoint {
                addrs: addrs.clone(),
                ..docker(A, "192.168.0.1")
            }
        );
        let v6_only = NetworkContainer {
            ipv4_address: None,
            ..listed
        };
        assert_eq!(
            DockerEndpoint::listed(&net, &container, &v6_only).addrs,
            addrs[1..]
        );
    }

    #[test]
    fn the_ipv6_address_of_an_endpoint_only_docker_has_is_kept() {
        let dual = DockerEndpoint {
            addrs: vec!["192.168.0.1".parse().unwrap(), "fd80::1".parse().unwrap()],
            ..inspected(A, "192.168.0.1", Vec::new())
        };
        let observed = Observed {
            docker: Some(vec![dual.clone()]),
            links: vec![iface(A)],
            allocations: vec![
                ("192.168.0.1".parse().unwrap(), 3600),
                ("fd80::1".parse().unwrap(), 3600),
            ],
            ..Observed::default()
        };
        assert_eq!(plan_repairs(&observed), vec![adopt(dual, false)]);
    }

    #[test]
    fn orphans_are_cleaned_but_young_allocations_and_pending_endpoints_are_not() {
        let observed = Observed {
            docker: Some(vec![]),
            pending: HashSet::from([C.to_string()]),
            links: vec![iface(B), iface(C)],
            allocations: vec![
                ("192.168.0.7".parse().unwrap(), 3600),
                ("192.168.0.8".parse().unwrap(), 5),
            ],
            ..Observed::default()
        };
        assert_eq!(
            plan_repairs(&observed),
            vec![
                Action::DeleteLink(iface(B)),
                Action::Release("192.168.0.7".parse().unwrap()),
            ]
        );
    }

    #[test]
    fn without_docker_nothing_is_deleted() {
        let observed = Observed {
            docker: None,
            workloads: vec![wep(A, "192.168.0.1"), wep(B, "192.168.0.2")],
            links: vec![iface(A), iface(C)],
            allocations: vec![("192.168.0.9".parse().unwrap(), 3600)],
            ..Observed::default()
        };
        assert_eq!(
            plan_repairs(&observed),
            vec![Action::Plumb(Box::new(wep(A, "192.168.0.1")))]
        );
    }
}
