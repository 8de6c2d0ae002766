//! Docker network names for the legacy `profile` commands: a profile is named after its
//! Docker network, and users may name the network by its ID (or a unique ID prefix) instead.

use std::time::Duration;

use calico_docker::DockerClient;

/// How long calicoctl waits for Docker to answer one lookup.
const DOCKER_TIMEOUT: Duration = Duration::from_secs(5);

/// Finds the name of a Docker network.
pub trait NetworkResolver {
    /// The name of the network with this ID, unique ID prefix or name; `None` when there is no
    /// such network or Docker cannot be asked.
    async fn network_name(&self, id_or_name: &str) -> Option<String>;
}

/// Asks the Docker daemon at `$DOCKER_HOST` (default `/var/run/docker.sock`).
pub struct DockerNetworks;

impl NetworkResolver for DockerNetworks {
    async fn network_name(&self, id_or_name: &str) -> Option<String> {
        let docker = DockerClient::from_env().ok()?.with_timeout(DOCKER_TIMEOUT);
        let network = docker.network_inspect(id_or_name).await.ok()??;
        Some(network.name)
    }
}
