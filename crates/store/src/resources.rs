//! Typed access to v1 resources on any [`Datastore`]: create, replace, apply, delete, get, list.
//!
//! Each resource is one key (see [`crate::keys`]) holding its JSON. Values are validated when
//! written and again when read: a stored value that does not decode is reported, never trusted.

use std::sync::Arc;

use calico_model::{codec, InsufficientIdentifiers, Kind, Resource, ResourceKey};

use crate::keys::{key_path, kind_prefix};
use crate::{Datastore, KeyValue, StoreError};

/// Why a resource operation failed, worded as calicoctl reports it.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// `create` of a resource that exists.
    #[error("resource already exists: {0}")]
    AlreadyExists(ResourceKey),
    /// `replace` or `delete` of a resource that does not exist.
    #[error("resource does not exist: {0}")]
    DoesNotExist(ResourceKey),
    /// A compare-and-swap write lost to a concurrent writer.
    #[error("update conflict: {0}")]
    Conflict(ResourceKey),
    /// The resource lacks part of its identity (e.g. a workload endpoint without a node).
    #[error(transparent)]
    Identifiers(#[from] InsufficientIdentifiers),
    /// The resource is invalid; the message lists every problem.
    #[error("{0}")]
    Invalid(String),
    /// A stored value is not a valid resource of the kind its key says.
    #[error("stored resource at {key} is unreadable: {reason}")]
    Corrupt {
        /// The datastore key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The datastore failed.
    #[error(transparent)]
    Store(StoreError),
}

/// Result of every resource operation.
pub type Result<T, E = ResourceError> = std::result::Result<T, E>;

/// A resource as stored, with the revision to pass to [`ResourceStore::update`].
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The resource.
    pub resource: Resource,
    /// Its key's mod revision.
    pub mod_revision: i64,
}

/// Narrows [`ResourceStore::list`]; `None` fields match anything (calicoctl's wildcards).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Name, pool CIDR or BGP peer IP.
    pub name: Option<String>,
    /// Node of node-scoped resources.
    pub node: Option<String>,
    /// Orchestrator of workload endpoints.
    pub orchestrator: Option<String>,
    /// Workload of workload endpoints.
    pub workload: Option<String>,
    /// BGP peer scope, `global` or `node`.
    pub scope: Option<String>,
}

/// Typed resource operations over a shared datastore.
#[derive(Clone)]
pub struct ResourceStore {
    ds: Arc<dyn Datastore>,
}

impl ResourceStore {
    /// Wraps a datastore.
    pub fn new(ds: Arc<dyn Datastore>) -> Self {
        ResourceStore { ds }
    }

    /// The underlying key-value store.
    pub fn datastore(&self) -> &Arc<dyn Datastore> {
        &self.ds
    }

    /// Creates the resource; `AlreadyExists` if a resource with its key exists.
    pub async fn create(&self, resource: &Resource) -> Result<()> {
        let (key, path, value) = encode(resource)?;
        match self.ds.create(&path, &value).await {
            Ok(_) => Ok(()),
            Err(StoreError::AlreadyExists(_)) => Err(ResourceError::AlreadyExists(key)),
            Err(e) => Err(ResourceError::Store(e)),
        }
    }

    /// Replaces an existing resource whole; `DoesNotExist` if it is missing.
    pub async fn replace(&self, resource: &Resource) -> Result<()> {
        let (key, path, value) = encode(resource)?;
        loop {
            let Some(current) = self.ds.get(&path).await.map_err(ResourceError::Store)? else {
                return Err(ResourceError::DoesNotExist(key));
            };
            match self.ds.update(&path, &value, current.mod_revision).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict(_)) => continue,
                Err(StoreError::NotFound(_)) => return Err(ResourceError::DoesNotExist(key)),
                Err(e) => return Err(ResourceError::Store(e)),
            }
        }
    }

    /// Creates the resource or replaces it whole if it exists.
    pub async fn apply(&self, resource: &Resource) -> Result<()> {
        let (_, path, value) = encode(resource)?;
        loop {
            let result = match self.ds.get(&path).await.map_err(ResourceError::Store)? {
                None => self.ds.create(&path, &value).await,
                Some(current) => self.ds.update(&path, &value, current.mod_revision).await,
            };
            match result {
                Ok(_) => return Ok(()),
                Err(
                    StoreError::AlreadyExists(_)
                    | StoreError::Conflict(_)
                    | StoreError::NotFound(_),
                ) => continue,
                Err(e) => return Err(ResourceError::Store(e)),
            }
        }
    }

    /// Replaces the resource only if it is still at `mod_revision`; `Conflict` otherwise.
    pub async fn update(&self, resource: &Resource, mod_revision: i64) -> Result<i64> {
        let (key, path, value) = encode(resource)?;
        match self.ds.update(&path, &value, mod_revision).await {
            Ok(rev) => Ok(rev),
            Err(StoreError::Conflict(_)) => Err(ResourceError::Conflict(key)),
            Err(StoreError::NotFound(_)) => Err(ResourceError::DoesNotExist(key)),
            Err(e) => Err(ResourceError::Store(e)),
        }
    }

    /// Deletes the resource; `DoesNotExist` if it is missing.
    pub async fn delete(&self, key: &ResourceKey) -> Result<()> {
        match self.ds.delete(&key_path(key), None).await {
            Ok(_) => Ok(()),
            Err(StoreError::NotFound(_)) => Err(ResourceError::DoesNotExist(key.clone())),
            Err(e) => Err(ResourceError::Store(e)),
        }
    }

    /// Deletes the resource only if it is still at `mod_revision`; `Conflict` if it changed,
    /// `DoesNotExist` if it is gone.
    pub async fn delete_at(&self, key: &ResourceKey, mod_revision: i64) -> Result<()> {
        match self.ds.delete(&key_path(key), Some(mod_revision)).await {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict(_)) => Err(ResourceError::Conflict(key.clone())),
            Err(StoreError::NotFound(_)) => Err(ResourceError::DoesNotExist(key.clone())),
            Err(e) => Err(ResourceError::Store(e)),
        }
    }

    /// The resource with this key, if stored.
    pub async fn get(&self, key: &ResourceKey) -> Result<Option<Stored>> {
        let path = key_path(key);
        match self.ds.get(&path).await.map_err(ResourceError::Store)? {
            None => Ok(None),
            Some(kv) => decode(key.kind(), &kv).map(Some),
        }
    }

    /// Every stored resource of `kind` that the filter admits, in key order.
    pub async fn list(&self, kind: Kind, filter: &Filter) -> Result<Vec<Resource>> {
        let listing = self
            .ds
            .list(&kind_prefix(kind))
            .await
            .map_err(ResourceError::Store)?;
        let mut out = Vec::new();
        for kv in &listing.items {
            let stored = decode(kind, kv)?;
            if admits(filter, &stored.resource) {
                out.push(stored.resource);
            }
        }
        Ok(out)
    }
}

/// Validates the resource and returns its key, key path and JSON value.
fn encode(resource: &Resource) -> Result<(ResourceKey, String, Vec<u8>)> {
    let key = resource.key()?;
    resource
        .validate()
        .map_err(|e| ResourceError::Invalid(e.to_string()))?;
    let value = serde_json::to_vec(resource).map_err(|e| ResourceError::Corrupt {
        key: key.to_string(),
        reason: format!("cannot encode: {e}"),
    })?;
    let path = key_path(&key);
    Ok((key, path, value))
}

/// Reads a stored value back, insisting it is a valid resource of the expected kind.
pub fn decode(kind: Kind, kv: &KeyValue) -> Result<Stored> {
    let corrupt = |reason: String| ResourceError::Corrupt {
        key: kv.key.clone(),
        reason,
    };
    let resource = codec::from_json(&kv.value).map_err(|e| corrupt(e.to_string()))?;
    if resource.kind() != kind {
        return Err(corrupt(format!(
            "holds a {} where a {kind} belongs",
            resource.kind()
        )));
    }
    Ok(Stored {
        resource,
        mod_revision: kv.mod_revision,
    })
}

/// calicoctl's wildcard matching: every identifier given must equal the resource's.
fn admits(filter: &Filter, resource: &Resource) -> bool {
    let eq = |wanted: &Option<String>, actual: &str| wanted.as_deref().is_none_or(|w| w == actual);
    match resource {
        Resource::Profile(r) => eq(&filter.name, &r.metadata.name),
        Resource::Policy(r) => eq(&filter.name, &r.metadata.name),
        Resource::Node(r) => eq(&filter.name, &r.metadata.name),
        Resource::IpPool(r) => {
            let cidr = r.metadata.cidr.map(|c| c.to_string()).unwrap_or_default();
            eq(&filter.name, &cidr)
        }
        Resource::HostEndpoint(r) => {
            eq(&filter.name, &r.metadata.name) && eq(&filter.node, &r.metadata.node)
        }
        Resource::WorkloadEndpoint(r) => {
            eq(&filter.name, &r.metadata.name)
                && eq(&filter.node, &r.metadata.node)
                && eq(&filter.orchestrator, &r.metadata.orchestrator)
                && eq(&filter.workload, &r.metadata.workload)
        }
        Resource::BgpPeer(r) => {
            let ip = r
                .metadata
                .peer_ip
                .map(|ip| ip.to_string())
                .unwrap_or_default();
            let scope_ok = match filter.scope.as_deref() {
                Some(scope) => scope == r.metadata.scope,
                // Without a scope, a node filter asks for node-specific peers only.
                None => filter.node.is_none() || r.metadata.scope == "node",
            };
            scope_ok && eq(&filter.name, &ip) && eq(&filter.node, &r.metadata.node)
        }
    }
}
