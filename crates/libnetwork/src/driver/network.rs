//! The `NetworkDriver` calls.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::PoisonError;

use calico_model::endpoint_naming::{
    format_mac, host_interface, parse_workload_mac, temp_interface, DockerId, ORCHESTRATOR,
    WORKLOAD_MAC,
};
use calico_model::{Kind, Resource, ResourceKey, WorkloadEndpoint};
use calico_store::resources::{Filter, ResourceError};
use ipnet::IpNet;
use serde_json::{Map, Value};
use tracing::{instrument, Instrument};

use super::ports::{self, Targets};
use super::resources::{default_profile, workload_endpoint};
use super::{poll, Driver, DriverError, EndpointPorts, EndpointRecord, EndpointState};
use crate::traits::SourceError;
use crate::wire::{
    AllocateNetworkRequest, CapabilitiesResponse, CreateEndpointRequest, CreateEndpointResponse,
    CreateNetworkRequest, DiscoveryNotification, Empty, EndpointInterfaceReply, EndpointOperInfo,
    EndpointOperInfoResponse, EndpointRequest, InterfaceName, JoinRequest, JoinResponse,
    NetworkRequest, PortBinding, PortOptions, ProgramExternalConnectivityRequest, StaticRoute,
    TransportPort, GLOBAL_ADDRESS_SPACE, LOCAL_ADDRESS_SPACE, ROUTE_CONNECTED, SENTINEL_GATEWAY_V4,
};

/// The driver's endpoints, as its lock guards them.
pub(super) type Endpoints = HashMap<DockerId, EndpointState>;

/// How long `CreateEndpoint` waits for Docker to name the network (see `network_name_now`).
const DOCKER_ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// The fake next hop every container routes through; never configured on any interface
/// (the host answers ARP for it by proxy).
const GATEWAY_V4: &str = "169.254.1.1";
/// `CreateNetwork` options that are always accepted, whatever their value.
const ALLOWED_OPTIONS: [&str; 2] = [
    "com.docker.network.enable_ipv4",
    "com.docker.network.enable_ipv6",
];

impl Driver {
    /// `NetworkDriver.GetCapabilities`: the configured scope, for data and connectivity.
    #[instrument(name = "NetworkDriver.GetCapabilities", skip_all)]
    pub fn capabilities(&self) -> CapabilitiesResponse {
        let scope = self.config().scope.as_str().to_owned();
        CapabilitiesResponse {
            scope: scope.clone(),
            connectivity_scope: scope,
        }
    }

    /// `NetworkDriver.CreateNetwork`: refuses options Calico does not implement and pools not
    /// from Calico IPAM; then (with profiles on) creates the network's profile in the
    /// background, once Docker shows the network and so its name.
    #[instrument(name = "NetworkDriver.CreateNetwork", skip_all, fields(network_id = %req.network_id))]
    pub async fn create_network(&self, req: CreateNetworkRequest) -> Result<Empty, DriverError> {
        check_options(&req.options)?;
        if req
            .ipv4_data
            .iter()
            .any(|d| d.gateway != SENTINEL_GATEWAY_V4)
        {
            return Err(DriverError::NonCalicoIpamV4);
        }
        // Go Calico accepted only the global space: its scope was always global. A local
        // scope network asks for its pools from the local space.
        let calico_space = |s: &str| s == LOCAL_ADDRESS_SPACE || s == GLOBAL_ADDRESS_SPACE;
        if req
            .ipv6_data
            .iter()
            .any(|d| !calico_space(&d.address_space))
        {
            return Err(DriverError::NonCalicoIpamV6);
        }
        if self.config().create_profiles {
            let driver = self.clone();
            let network_id = req.network_id;
            self.spawn(
                async move { driver.create_profile_when_visible(network_id).await }
                    .in_current_span(),
            );
        }
        Ok(Empty {})
    }

    /// `NetworkDriver.DeleteNetwork`: the network's default profile goes too, in the
    /// background, if nobody changed it and no workload endpoint (of any host) still uses it;
    /// an edited profile stays. Another host that still has the network writes the default
    /// profile again at its next `CreateEndpoint`.
    #[instrument(name = "NetworkDriver.DeleteNetwork", skip_all, fields(network_id = %req.network_id))]
    pub async fn delete_network(&self, req: NetworkRequest) -> Result<Empty, DriverError> {
        if !self.config().create_profiles {
            return Ok(Empty {});
        }
        // Only a remembered name: Docker is deleting the network and may not answer for it.
        let name = self
            .inner
            .network_names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&req.network_id);
        match name {
            Some(name) => {
                let driver = self.clone();
                self.spawn(
                    async move { driver.remove_default_profile(&name).await }.in_current_span(),
                );
            }
            None => tracing::info!(
                "the network's name is not known to this calico-node (created before it \
                 started): its profile stays"
            ),
        }
        Ok(Empty {})
    }

    /// `NetworkDriver.CreateEndpoint`: checks the addresses and MAC, makes sure the network's
    /// profile exists (profiles on), and remembers the endpoint for `Join`. The workload
    /// endpoint is written after `Join`, once the container is known.
    #[instrument(name = "NetworkDriver.CreateEndpoint", skip_all, fields(network_id = %req.network_id, endpoint_id = %req.endpoint_id))]
    pub async fn create_endpoint(
        &self,
        req: CreateEndpointRequest,
    ) -> Result<CreateEndpointResponse, DriverError> {
        let iface = &req.interface;
        if iface.address.is_empty() && iface.address_ipv6.is_empty() {
            return Err(DriverError::NoAddress);
        }
        let mut addrs = Vec::new();
        if !iface.address.is_empty() {
            addrs.push(host_network(&iface.address, 4)?);
        }
        if !iface.address_ipv6.is_empty() {
            addrs.push(host_network(&iface.address_ipv6, 6)?);
        }
        let (mac, reply) = if iface.mac_address.is_empty() {
            let reply = EndpointInterfaceReply {
                mac_address: format_mac(&WORKLOAD_MAC),
            };
            (WORKLOAD_MAC, Some(reply))
        } else {
            // libnetwork refuses a driver that changes a MAC the user chose: reply with none.
            (
                parse_workload_mac(&iface.mac_address)
                    .map_err(|e| DriverError::BadMac(e.to_string()))?,
                None,
            )
        };
        let network_name = if self.config().create_profiles {
            match self.network_name_now(&req.network_id).await? {
                Some(name) => {
                    self.ensure_profile(&name).await?;
                    Some(name)
                }
                None => None,
            }
        } else {
            None
        };
        let record = EndpointRecord {
            network_id: req.network_id,
            network_name,
            addrs,
            mac,
        };
        let state = EndpointState {
            record,
            writer: None,
            ports: None,
            unrestored: None,
        };
        let replaced = self
            .inner
            .endpoints
            .lock()
            .await
            .insert(req.endpoint_id, state);
        if let Some(writer) = replaced.and_then(|old| old.writer) {
            writer.abort();
        }
        Ok(CreateEndpointResponse { interface: reply })
    }

    /// `NetworkDriver.EndpointOperInfo`: the port bindings made (with the host ports chosen)
    /// and the exposed ports, once `ProgramExternalConnectivity` has been called; nothing
    /// before or after `RevokeExternalConnectivity`.
    #[instrument(name = "NetworkDriver.EndpointOperInfo", skip_all, fields(network_id = %req.network_id, endpoint_id = %req.endpoint_id))]
    pub async fn endpoint_oper_info(
        &self,
        req: EndpointRequest,
    ) -> Result<EndpointOperInfoResponse, DriverError> {
        let endpoints = self.inner.endpoints.lock().await;
        let value = match endpoints
            .get(&req.endpoint_id)
            .and_then(|s| s.ports.as_ref())
        {
            Some(ports) => EndpointOperInfo {
                port_map: ports.decision.reported(),
                exposed_ports: ports.exposed.clone(),
            },
            None => EndpointOperInfo::default(),
        };
        Ok(EndpointOperInfoResponse { value })
    }

    /// `NetworkDriver.DeleteEndpoint`: takes its published ports away, forgets the endpoint and
    /// deletes its workload endpoint.
    #[instrument(name = "NetworkDriver.DeleteEndpoint", skip_all, fields(network_id = %req.network_id, endpoint_id = %req.endpoint_id))]
    pub async fn delete_endpoint(&self, req: EndpointRequest) -> Result<Empty, DriverError> {
        let id = &req.endpoint_id;
        // Once the entry is gone the writer can no longer write (it checks under the same
        // lock); aborting it only ends its polling early.
        let forgotten = {
            let mut endpoints = self.inner.endpoints.lock().await;
            self.unpublish(&mut endpoints, id).await?;
            endpoints.remove(id)
        };
        if let Some(writer) = forgotten.as_ref().and_then(|state| state.writer.as_ref()) {
            writer.abort();
        }
        let stored = self.stored_endpoints(id).await?;
        if forgotten.is_none() && stored.is_empty() {
            return Err(self.unknown_endpoint(id));
        }
        for wep in stored {
            let removal = |source| DriverError::Store {
                action: format!("Endpoint {id} removal error"),
                source: Box::new(source),
            };
            let key = Resource::WorkloadEndpoint(wep)
                .key()
                .map_err(|e| removal(e.into()))?;
            match self.inner.store.delete(&key).await {
                Ok(()) | Err(ResourceError::DoesNotExist(_)) => {}
                Err(e) => return Err(removal(e)),
            }
            tracing::info!(%key, "deleted workload endpoint");
        }
        Ok(Empty {})
    }

    /// `NetworkDriver.Join`: creates the veth pair and routes the endpoint's addresses to it,
    /// then writes the workload endpoint in the background once Docker shows the container.
    #[instrument(name = "NetworkDriver.Join", skip_all, fields(network_id = %req.network_id, endpoint_id = %req.endpoint_id))]
    pub async fn join(&self, req: JoinRequest) -> Result<JoinResponse, DriverError> {
        let id = &req.endpoint_id;
        let record = self
            .inner
            .endpoints
            .lock()
            .await
            .get(id)
            .map(|state| state.record.clone())
            .ok_or_else(|| DriverError::EndpointNotCreated {
                endpoint_id: id.to_string(),
                call: "Join",
            })?;
        let (host_if, temp_if) = (host_interface(id), temp_interface(id));
        let links = &self.inner.links;
        let mtu = self.config().veth_mtu;
        links
            .create_veth(&host_if, &temp_if, mtu)
            .await
            .map_err(|source| DriverError::VethCreate {
                host_if: host_if.clone(),
                temp_if: temp_if.clone(),
                mtu: mtu.unwrap_or(0),
                source,
            })?;
        if let Err(source) = links.plumb(&host_if, &record.addrs, record.mac).await {
            if let Err(e) = links.remove(&host_if, &record.addrs).await {
                tracing::warn!(error = %e, host_if, "could not remove the veth of a failed Join");
            }
            return Err(DriverError::Plumb { host_if, source });
        }
        let mut reply = JoinResponse {
            interface_name: InterfaceName {
                src_name: temp_if,
                dst_prefix: self.config().container_ifprefix.clone(),
            },
            gateway: GATEWAY_V4.to_owned(),
            gateway_ipv6: String::new(),
            static_routes: vec![connected_route(format!("{GATEWAY_V4}/32"))],
            disable_gateway_service: false,
        };
        if record.addrs.iter().any(|a| matches!(a, IpNet::V6(_))) {
            match links.ipv6_link_local(&host_if).await {
                Ok(Some(gateway)) => {
                    reply.gateway_ipv6 = gateway.to_string();
                    reply
                        .static_routes
                        .push(connected_route(format!("{gateway}/128")));
                }
                Ok(None) => tracing::warn!(host_if, "no IPv6 link-local address on the host interface: the container gets no IPv6 gateway"),
                Err(e) => tracing::warn!(error = %e, host_if, "the container gets no IPv6 gateway"),
            }
        }
        self.start_endpoint_writer(id).await;
        Ok(reply)
    }

    /// `NetworkDriver.Leave`: takes the endpoint's published ports away and removes the host
    /// interface and the routes to the endpoint.
    #[instrument(name = "NetworkDriver.Leave", skip_all, fields(network_id = %req.network_id, endpoint_id = %req.endpoint_id))]
    pub async fn leave(&self, req: EndpointRequest) -> Result<Empty, DriverError> {
        let id = &req.endpoint_id;
        let known = {
            let mut endpoints = self.inner.endpoints.lock().await;
            self.unpublish(&mut endpoints, id).await?;
            endpoints
                .get(id)
                .map(|state| (host_interface(id), state.record.addrs.clone()))
        };
        // After a plugin restart only the stored workload endpoint knows the endpoint.
        let (host_if, addrs) = match known {
            Some(known) => known,
            None => {
                let stored = self.stored_endpoints(id).await?;
                let wep = stored
                    .into_iter()
                    .next()
                    .ok_or_else(|| self.unknown_endpoint(id))?;
                let addrs = wep.spec.ip_networks.iter().map(|c| c.ip_net()).collect();
                (wep.spec.interface_name, addrs)
            }
        };
        self.inner
            .links
            .remove(&host_if, &addrs)
            .await
            .map_err(|source| DriverError::VethRemove { host_if, source })?;
        Ok(Empty {})
    }

    /// `NetworkDriver.DiscoverNew`: nothing to do.
    #[instrument(name = "NetworkDriver.DiscoverNew", skip_all)]
    pub async fn discover_new(&self, _req: DiscoveryNotification) -> Result<Empty, DriverError> {
        Ok(Empty {})
    }

    /// `NetworkDriver.DiscoverDelete`: nothing to do.
    #[instrument(name = "NetworkDriver.DiscoverDelete", skip_all)]
    pub async fn discover_delete(&self, _req: DiscoveryNotification) -> Result<Empty, DriverError> {
        Ok(Empty {})
    }

    /// `NetworkDriver.ProgramExternalConnectivity`: publishes the ports of `-p` and `-P`
    /// (see the `ports` module): decides every binding, refusing the whole request on a
    /// malformed or conflicting one, hands them to the [`crate::PortPublisher`] and records
    /// them for `EndpointOperInfo` once it has published them. Bindings for an endpoint this
    /// process does not know are refused; no bindings are accepted.
    #[instrument(name = "NetworkDriver.ProgramExternalConnectivity", skip_all, fields(network_id = %req.network_id, endpoint_id = %req.endpoint_id))]
    pub async fn program_external_connectivity(
        &self,
        req: ProgramExternalConnectivityRequest,
    ) -> Result<Empty, DriverError> {
        let options = PortOptions::from_options(&req.options).map_err(DriverError::PortOptions)?;
        let id = &req.endpoint_id;
        let mut endpoints = self.inner.endpoints.lock().await;
        if !endpoints.contains_key(id) {
            if options.port_map.is_empty() {
                // Nothing to publish, so nothing to refuse.
                return Ok(Empty {});
            }
            return Err(DriverError::EndpointNotCreated {
                endpoint_id: id.to_string(),
                call: "ProgramExternalConnectivity",
            });
        }
        self.publish(&mut endpoints, id, &options.port_map, options.exposed_ports)
            .await?;
        Ok(Empty {})
    }

    /// `NetworkDriver.RevokeExternalConnectivity`: takes the endpoint's published ports away.
    #[instrument(name = "NetworkDriver.RevokeExternalConnectivity", skip_all, fields(network_id = %req.network_id, endpoint_id = %req.endpoint_id))]
    pub async fn revoke_external_connectivity(
        &self,
        req: EndpointRequest,
    ) -> Result<Empty, DriverError> {
        let mut endpoints = self.inner.endpoints.lock().await;
        self.unpublish(&mut endpoints, &req.endpoint_id).await?;
        Ok(Empty {})
    }

    /// `NetworkDriver.AllocateNetwork` (swarm): nothing.
    #[instrument(name = "NetworkDriver.AllocateNetwork", skip_all, fields(network_id = %req.network_id))]
    pub async fn allocate_network(
        &self,
        req: AllocateNetworkRequest,
    ) -> Result<Empty, DriverError> {
        Ok(Empty {})
    }

    /// `NetworkDriver.FreeNetwork` (swarm): nothing.
    #[instrument(name = "NetworkDriver.FreeNetwork", skip_all, fields(network_id = %req.network_id))]
    pub async fn free_network(&self, req: NetworkRequest) -> Result<Empty, DriverError> {
        Ok(Empty {})
    }

    /// Decides the bindings `requested` of the known endpoint `id` against those of every other
    /// endpoint, publishes them and records them (with `exposed`), in place of any ports still
    /// to restore. Nothing is recorded when deciding or publishing fails. Publishes nothing
    /// when the endpoint had and gets no ports.
    pub(super) async fn publish(
        &self,
        endpoints: &mut Endpoints,
        id: &DockerId,
        requested: &[PortBinding],
        exposed: Vec<TransportPort>,
    ) -> Result<(), DriverError> {
        let Some(state) = endpoints.get(id) else {
            return Err(DriverError::EndpointNotCreated {
                endpoint_id: id.to_string(),
                call: "ProgramExternalConnectivity",
            });
        };
        let targets = targets(&state.record.addrs);
        let had_ports = has_published(state);
        let taken = endpoints
            .iter()
            .filter(|(other, _)| *other != id)
            .filter_map(|(_, s)| s.ports.as_ref())
            .flat_map(|p| &p.decision.claims);
        let decision = ports::decide(
            requested,
            targets,
            taken,
            self.config().ephemeral_ports.clone(),
        )
        .map_err(DriverError::Ports)?;
        if had_ports || !decision.published.is_empty() {
            let host_if = host_interface(id);
            self.inner
                .ports
                .publish(&host_if, &decision.published)
                .await
                .map_err(|source| DriverError::Publish { host_if, source })?;
            tracing::info!(ports = ?decision.published, "published the endpoint's ports");
        }
        if let Some(state) = endpoints.get_mut(id) {
            state.ports = Some(EndpointPorts { decision, exposed });
            state.unrestored = None;
        }
        Ok(())
    }

    /// Takes the published ports of `id` away and forgets them, and any still to restore. An
    /// endpoint this process does not know (it may have published before a restart) gets an
    /// empty list too; a known one without ports gets nothing. On failure the ports stay
    /// recorded.
    async fn unpublish(&self, endpoints: &mut Endpoints, id: &DockerId) -> Result<(), DriverError> {
        let published = endpoints.get(id).is_none_or(has_published);
        if published {
            let host_if = host_interface(id);
            self.inner
                .ports
                .publish(&host_if, &[])
                .await
                .map_err(|source| DriverError::Publish { host_if, source })?;
        }
        if let Some(state) = endpoints.get_mut(id) {
            state.ports = None;
            state.unrestored = None;
        }
        Ok(())
    }

    /// Polls Docker until the new network shows up, then creates its profile.
    async fn create_profile_when_visible(self, network_id: DockerId) {
        let config = self.config();
        let docker = &self.inner.docker;
        let name = poll(config.poll_interval, config.network_poll_timeout, || {
            docker.network_name(network_id.as_str())
        })
        .await;
        let Some(name) = name else {
            tracing::warn!(
                timeout = ?config.network_poll_timeout,
                "the network did not show up in Docker in time; its profile will be created at its first CreateEndpoint"
            );
            return;
        };
        self.remember_network_name(&network_id, &name);
        if let Err(e) = self.ensure_profile(&name).await {
            tracing::warn!(error = %e, network = name, "cannot create the network's profile; retried at its first CreateEndpoint");
        }
    }

    /// Creates the network's default profile unless a profile of that name exists.
    async fn ensure_profile(&self, network: &str) -> Result<(), DriverError> {
        let profile = Resource::Profile(default_profile(network));
        match self.inner.store.create(&profile).await {
            Ok(()) => {
                tracing::info!(profile = network, "created the network's default profile");
                Ok(())
            }
            Err(ResourceError::AlreadyExists(_)) => Ok(()),
            Err(source) => Err(DriverError::Store {
                action: format!("Profile {network} creation error"),
                source: Box::new(source),
            }),
        }
    }

    /// Deletes the profile `network` if it is still the default one and no workload endpoint
    /// uses it; otherwise, or on failure, it stays (which is safe) and the log says why.
    async fn remove_default_profile(&self, network: &str) {
        match self.try_remove_default_profile(network).await {
            Ok(None) => tracing::info!(profile = network, "deleted the network's default profile"),
            Ok(Some(why)) => {
                tracing::info!(profile = network, "the network's profile stays: {why}")
            }
            Err(ResourceError::Conflict(_)) => {
                tracing::info!(
                    profile = network,
                    "the network's profile stays: it changed meanwhile"
                )
            }
            Err(e) => {
                tracing::warn!(profile = network, error = %e, "cannot check or delete the network's profile; it stays")
            }
        }
    }

    /// `None` once deleted, else why the profile stays.
    async fn try_remove_default_profile(
        &self,
        network: &str,
    ) -> Result<Option<&'static str>, ResourceError> {
        let store = &self.inner.store;
        let key = ResourceKey::Profile {
            name: network.to_owned(),
        };
        let Some(stored) = store.get(&key).await? else {
            return Ok(Some("it is gone already"));
        };
        if stored.resource != Resource::Profile(default_profile(network)) {
            return Ok(Some("it was edited"));
        }
        let in_use = store
            .list(Kind::WorkloadEndpoint, &Filter::default())
            .await?
            .iter()
            .any(|r| matches!(r, Resource::WorkloadEndpoint(w) if w.spec.profiles.iter().any(|p| p == network)));
        if in_use {
            return Ok(Some("workload endpoints still use it"));
        }
        store.delete_at(&key, stored.mod_revision).await?;
        Ok(None)
    }

    /// The network's name (Docker's answer is remembered: IDs survive dockerd restarts).
    async fn network_name(&self, network_id: &DockerId) -> Result<String, DriverError> {
        self.lookup_network_name(network_id)
            .await
            .map_err(|source| inspect_error(network_id, source))?
            .ok_or_else(|| no_such_network(network_id))
    }

    /// The network's name for `CreateEndpoint`, which must not wait on Docker: while dockerd
    /// starts (restarting its containers) it calls the plugin before its API answers. A name
    /// Docker cannot tell in time is `None`; the endpoint writer asks again once Docker answers.
    async fn network_name_now(&self, network_id: &DockerId) -> Result<Option<String>, DriverError> {
        let looked_up = self.lookup_network_name(network_id);
        let reason = match tokio::time::timeout(DOCKER_ANSWER_TIMEOUT, looked_up).await {
            Ok(Ok(Some(name))) => return Ok(Some(name)),
            Ok(Ok(None)) => return Err(no_such_network(network_id)),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {DOCKER_ANSWER_TIMEOUT:?}"),
        };
        tracing::warn!(%reason, "Docker cannot tell the network's name yet; the endpoint's profile is set once it can");
        Ok(None)
    }

    /// The remembered name, else Docker's (then remembered); `None`: Docker has no such network.
    async fn lookup_network_name(
        &self,
        network_id: &DockerId,
    ) -> Result<Option<String>, SourceError> {
        let cached = self
            .inner
            .network_names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(network_id)
            .cloned();
        if cached.is_some() {
            return Ok(cached);
        }
        let name = self.inner.docker.network_name(network_id.as_str()).await?;
        if let Some(name) = &name {
            self.remember_network_name(network_id, name);
        }
        Ok(name)
    }

    fn remember_network_name(&self, network_id: &DockerId, name: &str) {
        self.inner
            .network_names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(network_id.clone(), name.to_owned());
    }

    /// This node's workload endpoints for the endpoint (normally zero or one).
    async fn stored_endpoints(&self, id: &DockerId) -> Result<Vec<WorkloadEndpoint>, DriverError> {
        let filter = Filter {
            name: Some(id.to_string()),
            node: Some(self.config().node.clone()),
            orchestrator: Some(ORCHESTRATOR.to_owned()),
            ..Filter::default()
        };
        let found = self
            .inner
            .store
            .list(Kind::WorkloadEndpoint, &filter)
            .await
            .map_err(|source| DriverError::Store {
                action: format!("Endpoint {id} lookup error"),
                source: Box::new(source),
            })?;
        Ok(found
            .into_iter()
            .filter_map(|r| match r {
                Resource::WorkloadEndpoint(wep) => Some(wep),
                _ => None,
            })
            .collect())
    }

    fn unknown_endpoint(&self, id: &DockerId) -> DriverError {
        DriverError::UnknownEndpoint {
            endpoint_id: id.to_string(),
            node: self.config().node.clone(),
        }
    }

    /// Starts (or restarts) the task writing the endpoint's workload endpoint.
    pub(super) async fn start_endpoint_writer(&self, id: &DockerId) {
        let mut endpoints = self.inner.endpoints.lock().await;
        let Some(state) = endpoints.get_mut(id) else {
            return;
        };
        if let Some(previous) = state.writer.take() {
            previous.abort();
        }
        let driver = self.clone();
        let endpoint_id = id.clone();
        state.writer = Some(
            self.spawn(async move { driver.write_endpoint(endpoint_id).await }.in_current_span()),
        );
    }

    /// Waits for Docker to show the endpoint's container, then writes its workload endpoint
    /// (with workload `libnetwork` if the container never shows).
    async fn write_endpoint(self, id: DockerId) {
        let Some(record) = self
            .inner
            .endpoints
            .lock()
            .await
            .get(&id)
            .map(|state| state.record.clone())
        else {
            return;
        };
        let config = self.config();
        let docker = &self.inner.docker;
        let container = poll(config.poll_interval, config.label_poll_timeout, || {
            docker.endpoint_container(record.network_id.as_str(), id.as_str())
        })
        .await;
        if container.is_none() {
            tracing::warn!(
                timeout = ?config.label_poll_timeout,
                "Docker did not show the endpoint's container in time; writing its workload endpoint without it"
            );
        }
        let mut record = record;
        if config.create_profiles && record.network_name.is_none() {
            // CreateEndpoint came before Docker answered (a dockerd starting up).
            match self.network_name(&record.network_id).await {
                Ok(name) => match self.ensure_profile(&name).await {
                    Ok(()) => record.network_name = Some(name),
                    Err(e) => tracing::error!(error = %e, "cannot create the network's profile"),
                },
                Err(e) => {
                    tracing::error!(error = %e, "cannot name the endpoint's network: it gets no profile")
                }
            }
        }
        let wep =
            Resource::WorkloadEndpoint(workload_endpoint(config, &id, &record, container.as_ref()));
        // Held until the write is done, so DeleteEndpoint cannot come between check and write.
        let mut endpoints = self.inner.endpoints.lock().await;
        let Some(state) = endpoints.get_mut(&id) else {
            return;
        };
        state.record.network_name.clone_from(&record.network_name);
        match self.inner.store.apply(&wep).await {
            Ok(()) => match wep.key() {
                Ok(key) => tracing::info!(%key, "wrote workload endpoint"),
                Err(e) => tracing::info!(error = %e, "wrote workload endpoint"),
            },
            Err(e) => tracing::error!(error = %e, "cannot write the workload endpoint"),
        }
    }
}

fn inspect_error(network_id: &DockerId, source: SourceError) -> DriverError {
    DriverError::NetworkInspect {
        network_id: network_id.to_string(),
        source,
    }
}

fn no_such_network(network_id: &DockerId) -> DriverError {
    inspect_error(network_id, "Docker has no network with this ID".into())
}

fn has_published(state: &EndpointState) -> bool {
    state
        .ports
        .as_ref()
        .is_some_and(|p| !p.decision.published.is_empty())
}

/// Where an endpoint's published ports go: its first IPv4 and first IPv6 address.
fn targets(addrs: &[IpNet]) -> Targets {
    Targets {
        v4: addrs.iter().find_map(|a| match a {
            IpNet::V4(net) => Some(net.addr()),
            IpNet::V6(_) => None,
        }),
        v6: addrs.iter().find_map(|a| match a {
            IpNet::V6(net) => Some(net.addr()),
            IpNet::V4(_) => None,
        }),
    }
}

fn connected_route(destination: String) -> StaticRoute {
    StaticRoute {
        destination,
        route_type: ROUTE_CONNECTED,
        next_hop: String::new(),
    }
}

/// Rejects every set option but the always-allowed ones, with Calico's texts. Keys are
/// checked in sorted order, so the error is the same every time.
fn check_options(options: &Map<String, Value>) -> Result<(), DriverError> {
    let mut keys: Vec<&String> = options.keys().collect();
    keys.sort();
    for key in keys {
        if ALLOWED_OPTIONS.contains(&key.as_str()) {
            continue;
        }
        let flag = match &options[key] {
            Value::Null | Value::Bool(false) => continue,
            Value::Object(map) if map.is_empty() => continue,
            Value::Bool(true) => format!(
                "flag --{}",
                key.strip_prefix("com.docker.network.").unwrap_or(key)
            ),
            Value::Object(map) => {
                let mut names: Vec<&str> = map.keys().map(String::as_str).collect();
                names.sort_unstable();
                let word = if names.len() > 1 { "flags" } else { "flag" };
                format!("{word} {}", names.join(", "))
            }
            Value::String(s) if s.is_empty() => format!("flag {key}"),
            Value::String(s) => format!("flag {key} ({s})"),
            other => format!("flag {key} ({other})"),
        };
        return Err(DriverError::UnsupportedOption(flag));
    }
    Ok(())
}

/// An endpoint address as a host network (/32 or /128), whatever mask Docker sent.
fn host_network(text: &str, version: u8) -> Result<IpNet, DriverError> {
    let bad = |reason: &str| DriverError::BadAddress {
        address: text.to_owned(),
        reason: reason.to_owned(),
    };
    let addr: IpAddr = match text.parse::<IpNet>() {
        Ok(net) => net.addr(),
        Err(_) => text
            .parse()
            .map_err(|_| bad("not an IP address with prefix length, such as 192.168.1.1/32"))?,
    };
    match (addr, version) {
        (IpAddr::V4(_), 4) => Ok(IpNet::new(addr, 32).map_err(|_| bad("invalid prefix"))?),
        (IpAddr::V6(_), 6) => Ok(IpNet::new(addr, 128).map_err(|_| bad("invalid prefix"))?),
        (_, 4) => Err(bad("Address must be an IPv4 address")),
        _ => Err(bad("AddressIPv6 must be an IPv6 address")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn options_error(options: Value) -> Option<String> {
        let Value::Object(map) = options else {
            panic!("options must be an object");
        };
        check_options(&map).err().map(|e| e.to_string())
    }

    #[test]
    fn option_texts_are_calicos() {
        let cases = [
            (
                json!({"com.docker.network.internal": true}),
                Some("Calico driver does not support the flag --internal."),
            ),
            (
                json!({"com.docker.network.generic": {"foo": "bar"}}),
                Some("Calico driver does not support the flag foo."),
            ),
            (
                json!({"com.docker.network.generic": {"b": "1", "a": "2", "c": "3"}}),
                Some("Calico driver does not support the flags a, b, c."),
            ),
            (
                json!({"com.docker.network.custom": "x"}),
                Some("Calico driver does not support the flag com.docker.network.custom (x)."),
            ),
            (
                json!({"com.docker.network.custom": 5}),
                Some("Calico driver does not support the flag com.docker.network.custom (5)."),
            ),
            (
                json!({"com.docker.network.custom": ""}),
                Some("Calico driver does not support the flag com.docker.network.custom."),
            ),
            (
                json!({"com.docker.network.enable_ipv6": true, "com.docker.network.enable_ipv4": true}),
                None,
            ),
            (
                json!({"com.docker.network.internal": false, "com.docker.network.generic": {}, "x": null}),
                None,
            ),
            // Several at once: the first in key order is reported.
            (
                json!({"com.docker.network.internal": true, "com.docker.network.attachable": true}),
                Some("Calico driver does not support the flag --attachable."),
            ),
        ];
        for (options, expected) in cases {
            assert_eq!(
                options_error(options.clone()).as_deref(),
                expected,
                "{options}"
            );
        }
    }

    #[test]
    fn endpoint_addresses_become_host_networks() {
        assert_eq!(
            host_network("192.168.1.5/26", 4).expect("v4").to_string(),
            "192.168.1.5/32"
        );
        assert_eq!(
            host_network("192.168.1.5", 4).expect("v4").to_string(),
            "192.168.1.5/32"
        );
        assert_eq!(
            host_network("fd00::5/64", 6).expect("v6").to_string(),
            "fd00::5/128"
        );
        assert_eq!(
            host_network("fd00::5/64", 4)
                .expect_err("v6 as v4")
                .to_string(),
            "Parsing fd00::5/64 as CIDR failed: Address must be an IPv4 address"
        );
        assert!(host_network("banana", 4)
            .expect_err("garbage")
            .to_string()
            .starts_with("Parsing banana as CIDR failed: "));
    }
}
