//! [`DockerApi`] for the real Engine API client.

use async_trait::async_trait;
use calico_docker::DockerClient;

use crate::traits::{ContainerRef, DockerApi, SourceError};

#[async_trait]
impl DockerApi for DockerClient {
    async fn network_name(&self, network_id: &str) -> Result<Option<String>, SourceError> {
        let network = self.network_inspect(network_id).await?;
        Ok(network.map(|n| n.name))
    }

    async fn endpoint_container(
        &self,
        network_id: &str,
        endpoint_id: &str,
    ) -> Result<Option<ContainerRef>, SourceError> {
        let Some(network) = self.network_inspect(network_id).await? else {
            return Ok(None);
        };
        // Endpoints of other hosts are listed under "ep-<endpoint id>", not a container ID.
        let Some(container_id) = network
            .containers
            .iter()
            .find(|(id, c)| c.endpoint_id == endpoint_id && !id.starts_with("ep-"))
            .map(|(id, _)| id.clone())
        else {
            return Ok(None);
        };
        let container = self.container_inspect(&container_id).await?;
        Ok(container.map(|c| ContainerRef {
            id: c.id,
            name: c.name,
            labels: c.labels,
        }))
    }
}
