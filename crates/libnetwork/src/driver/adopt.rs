//! What calico-node's reconciler needs from the driver: which endpoints this process is
//! handling, and taking over the endpoints Docker has that this process does not know (ones
//! joined before calico-node restarted, or while it was down): their published ports, and
//! their workload endpoints where the datastore lacks them.
//!
//! A restarted calico-node learns an endpoint's published ports from its container's
//! `HostConfig.PortBindings` (and `PublishAllPorts` with `Config.ExposedPorts`), what the user
//! asked for: dockerd fills `NetworkSettings.Ports` from `EndpointOperInfo` only for its
//! in-process drivers, so for Calico it stays empty. Fixed host ports come back as they were;
//! a range or "any" port is chosen again (the lowest free one), which may differ from the
//! first choice. Ports that cannot be published at adoption (a host port another endpoint
//! holds, the publisher failing) wait in the endpoint's state until [`Driver::restore_ports`]
//! publishes them, or Docker programs or revokes the endpoint's ports itself.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;
use tracing::instrument;

use super::network::Endpoints;
use super::ports::publishable_number;
use super::{Driver, DriverError, EndpointRecord, EndpointState, PortRequest};
use crate::wire::{PortBinding, TransportPort};
use calico_docker::{ContainerPorts, HostBinding};
use calico_model::endpoint_naming::{DockerId, InvalidDockerId};

/// An endpoint Docker reports on this host, as the reconciler found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExistingEndpoint {
    /// Docker's network ID.
    pub network_id: String,
    /// The network's name (its profile).
    pub network_name: String,
    /// Docker's endpoint ID.
    pub endpoint_id: String,
    /// The endpoint's addresses, each a /32 or /128: its IPv4 and its IPv6 address, those it
    /// has (the ports go to both).
    pub addrs: Vec<IpNet>,
    /// The container interface's MAC.
    pub mac: [u8; 6],
    /// The port bindings its container asked for (see [`requested_ports`]); empty: none.
    pub ports: Vec<PortBinding>,
    /// Its container's exposed ports.
    pub exposed_ports: Vec<TransportPort>,
    /// Whether the datastore has its workload endpoint: then adoption leaves it as it is.
    pub recorded: bool,
}

/// Why an endpoint could not be adopted whole.
#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    /// Docker reported an ID that is not one.
    #[error(transparent)]
    Id(#[from] InvalidDockerId),
    /// The endpoint is adopted, but its ports are not published (yet: see
    /// [`Driver::restore_ports`]).
    #[error("the published ports of adopted endpoint {endpoint_id} are not restored: {source}")]
    Ports {
        /// The endpoint.
        endpoint_id: String,
        /// Why.
        #[source]
        source: DriverError,
    },
}

/// The bindings and exposed ports a container asked for, as `ProgramExternalConnectivity`
/// would carry them (moby's `daemon/network.go` builds them the same way): one binding per
/// `HostConfig.PortBindings` entry, and with `PublishAllPorts` one "any port" binding per
/// exposed port without one. Entries Docker would not have accepted are left out with a
/// warning.
pub fn requested_ports(container: &ContainerPorts) -> (Vec<PortBinding>, Vec<TransportPort>) {
    let mut bindings = Vec::new();
    let mut exposed = Vec::new();
    let names = container
        .exposed
        .iter()
        .chain(container.bindings.keys())
        .collect::<std::collections::BTreeSet<_>>();
    for name in names {
        let Some(port) = parse_container_port(name) else {
            tracing::warn!(
                port = name.as_str(),
                "not a container port such as 80/tcp; left out"
            );
            continue;
        };
        exposed.push(port.clone());
        let asked = container
            .bindings
            .get(name)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for binding in asked {
            match host_binding(&port, binding) {
                Some(b) => bindings.push(b),
                None => tracing::warn!(
                    port = name.as_str(),
                    host_port = binding.host_port,
                    "not a host port or range such as 8080 or 8000-8010; left out"
                ),
            }
        }
        if asked.is_empty() && container.publish_all {
            bindings.push(PortBinding {
                proto: port.proto,
                port: port.port,
                ..PortBinding::default()
            });
        }
    }
    (bindings, exposed)
}

/// `80/tcp`, `53/udp`, `9/sctp`, or `80` (TCP).
fn parse_container_port(name: &str) -> Option<TransportPort> {
    let (port, proto) = name.split_once('/').unwrap_or((name, "tcp"));
    Some(TransportPort {
        proto: publishable_number(proto)?,
        port: port.parse().ok()?,
    })
}

fn host_binding(port: &TransportPort, binding: &HostBinding) -> Option<PortBinding> {
    let (start, end) = match binding.host_port.as_str() {
        "" => (0, 0),
        text => match text.split_once('-') {
            Some((start, end)) => (start.parse().ok()?, end.parse().ok()?),
            None => {
                let port = text.parse().ok()?;
                (port, port)
            }
        },
    };
    let host_ip = match binding.host_ip.as_str() {
        "" => String::new(),
        text => text.parse::<IpAddr>().ok()?.to_string(),
    };
    Some(PortBinding {
        proto: port.proto,
        ip: String::new(),
        port: port.port,
        host_ip,
        host_port: start,
        host_port_end: end,
    })
}

impl Driver {
    /// IDs of the endpoints this process created (or adopted) and has not deleted; their
    /// workload endpoints may not be written yet.
    pub async fn live_endpoint_ids(&self) -> HashSet<String> {
        self.inner
            .endpoints
            .lock()
            .await
            .keys()
            .map(|id| id.to_string())
            .collect()
    }

    /// Takes over an endpoint Docker has but this process does not know: remembers it like
    /// `CreateEndpoint` does, publishes its ports like `ProgramExternalConnectivity` does
    /// (unless this process knew the endpoint already), and, unless it is `recorded`, writes
    /// its workload endpoint once Docker shows its container. Ports that cannot be published
    /// now are tried again by [`Driver::restore_ports`].
    #[instrument(name = "adopt", skip_all, fields(network_id = %existing.network_id, endpoint_id = %existing.endpoint_id))]
    pub async fn adopt(&self, existing: ExistingEndpoint) -> Result<(), AdoptError> {
        let id = DockerId::new(existing.endpoint_id.as_str())?;
        let network_id = DockerId::new(existing.network_id.as_str())?;
        let record = EndpointRecord {
            network_id,
            network_name: Some(existing.network_name),
            addrs: existing.addrs,
            mac: existing.mac,
        };
        let published = {
            let mut endpoints = self.inner.endpoints.lock().await;
            let known = endpoints.contains_key(&id);
            endpoints.entry(id.clone()).or_insert(EndpointState {
                record,
                writer: None,
                ports: None,
                unrestored: None,
            });
            // A known endpoint gets its ports from ProgramExternalConnectivity.
            if known || existing.ports.is_empty() {
                Ok(())
            } else {
                let request = PortRequest {
                    bindings: existing.ports,
                    exposed: existing.exposed_ports,
                };
                self.restore(&mut endpoints, &id, request).await
            }
        };
        if !existing.recorded {
            self.start_endpoint_writer(&id).await;
        }
        published
    }

    /// Tries again to publish the ports of the adopted endpoints whose ports could not be
    /// published (a host port another endpoint held, the publisher failing), in the order of
    /// their IDs. Returns each failure; those endpoints are tried again at the next call. An
    /// endpoint's ports programmed or revoked by Docker meanwhile are not restored.
    pub async fn restore_ports(&self) -> Vec<AdoptError> {
        let mut endpoints = self.inner.endpoints.lock().await;
        let mut waiting: Vec<DockerId> = endpoints
            .iter()
            .filter(|(_, state)| state.unrestored.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        waiting.sort();
        let mut failures = Vec::new();
        for id in waiting {
            let Some(request) = endpoints.get_mut(&id).and_then(|s| s.unrestored.take()) else {
                continue;
            };
            if let Err(e) = self.restore(&mut endpoints, &id, request).await {
                failures.push(e);
            }
        }
        failures
    }

    /// Publishes `request` for the known endpoint `id`; on failure keeps it for
    /// [`Driver::restore_ports`].
    async fn restore(
        &self,
        endpoints: &mut Endpoints,
        id: &DockerId,
        request: PortRequest,
    ) -> Result<(), AdoptError> {
        let published = self
            .publish(endpoints, id, &request.bindings, request.exposed.clone())
            .await;
        published.map_err(|source| {
            if let Some(state) = endpoints.get_mut(id) {
                state.unrestored = Some(request);
            }
            AdoptError::Ports {
                endpoint_id: id.to_string(),
                source,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    fn host(ip: &str, port: &str) -> HostBinding {
        HostBinding {
            host_ip: ip.into(),
            host_port: port.into(),
        }
    }

    fn binding(proto: u8, port: u16, host_ip: &str, start: u16, end: u16) -> PortBinding {
        PortBinding {
            proto,
            ip: String::new(),
            port,
            host_ip: host_ip.into(),
            host_port: start,
            host_port_end: end,
        }
    }

    #[test]
    fn container_ports_become_the_request_docker_sent() {
        // `-p 8080:80 -p 8000-8010:81 -p 127.0.0.1:9000:9000/udp --expose 7000 -P`, as
        // `docker inspect` shows it, plus entries Docker would not have taken.
        let container = ContainerPorts {
            bindings: BTreeMap::from([
                ("80/tcp".into(), vec![host("", "8080")]),
                ("81/tcp".into(), vec![host("", "8000-8010")]),
                ("9000/udp".into(), vec![host("127.0.0.1", "9000")]),
                ("53/udp".into(), vec![host("", ""), host("::1", "5353")]),
                ("82/tcp".into(), vec![host("", "x")]),
                ("83/tcp".into(), vec![host("nowhere", "8083")]),
                ("84/icmp".into(), vec![host("", "8084")]),
            ]),
            publish_all: true,
            exposed: BTreeSet::from(["7000/tcp".into(), "80/tcp".into(), "9".into()]),
        };
        let (bindings, exposed) = requested_ports(&container);
        assert_eq!(
            bindings,
            vec![
                binding(17, 53, "", 0, 0),
                binding(17, 53, "::1", 5353, 5353),
                binding(6, 7000, "", 0, 0),
                binding(6, 80, "", 8080, 8080),
                binding(6, 81, "", 8000, 8010),
                binding(6, 9, "", 0, 0),
                binding(17, 9000, "127.0.0.1", 9000, 9000),
            ]
        );
        let exposed: Vec<(u8, u16)> = exposed.iter().map(|p| (p.proto, p.port)).collect();
        assert_eq!(
            exposed,
            vec![
                (17, 53),
                (6, 7000),
                (6, 80),
                (6, 81),
                (6, 82),
                (6, 83),
                (6, 9),
                (17, 9000)
            ]
        );
        let without_all = ContainerPorts {
            publish_all: false,
            ..container
        };
        assert_eq!(requested_ports(&without_all).0.len(), 5);
    }
}
