//! The datastore: one revisioned key-value trait with etcd v3 semantics, and its backends.
//!
//! Keys are `/`-separated strings, values opaque bytes (JSON in practice). Every write bumps one
//! global revision; `update` and `delete` can compare-and-swap on a key's mod revision; `watch`
//! delivers every change after a revision in order, or [`WatchEvent::Relist`] when that history
//! is gone. See docs/datastore.md.

#![warn(missing_docs)]

pub mod config;
mod error;
#[cfg(feature = "etcd")]
mod etcd;
pub mod keys;
pub mod resources;
mod sqlite;

use std::future::Future;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

pub use config::{DatastoreConfig, EtcdConfig, EtcdCredentials};
pub use error::StoreError;
#[cfg(feature = "etcd")]
pub use etcd::EtcdStore;
pub use sqlite::{SqliteStore, DEFAULT_HISTORY, DEFAULT_SQLITE_PATH};

/// Result of every datastore operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One key with its value and the revisions that created and last modified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key.
    pub key: String,
    /// The value bytes.
    pub value: Vec<u8>,
    /// Revision of the write that created the key.
    pub create_revision: i64,
    /// Revision of the write that last modified the key.
    pub mod_revision: i64,
}

/// The result of [`Datastore::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The keys under the prefix, sorted by key.
    pub items: Vec<KeyValue>,
    /// The store revision the listing reflects; pass it to [`Datastore::watch`] to follow on.
    pub revision: i64,
}

/// One change seen by a [`Watch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// The key was created or updated; `mod_revision` is the revision of this change.
    Put(KeyValue),
    /// The key was deleted at `revision`.
    Delete {
        /// The deleted key.
        key: String,
        /// Revision of the delete.
        revision: i64,
    },
    /// The history needed is gone (compacted): list again and watch from the listing's revision.
    /// It is the last event of its watch.
    Relist,
}

/// A running watch; dropping it stops the background work.
#[derive(Debug)]
pub struct Watch {
    rx: mpsc::Receiver<WatchEvent>,
    task: AbortHandle,
}

/// Events buffered per watch before the producer waits for the consumer.
const WATCH_BUFFER: usize = 256;

impl Watch {
    /// Runs `producer` as a task feeding the returned watch; it should stop when sending fails.
    /// For implementations of [`Datastore`], including test fakes outside this crate.
    pub fn spawn<F, Fut>(producer: F) -> Self
    where
        F: FnOnce(mpsc::Sender<WatchEvent>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let task = tokio::spawn(producer(tx)).abort_handle();
        Watch { rx, task }
    }

    /// The next change, in revision order; `None` once the watch has ended (after `Relist`).
    pub async fn next(&mut self) -> Option<WatchEvent> {
        self.rx.recv().await
    }

    /// The next change if one is already buffered, without waiting (for batching).
    pub fn try_next(&mut self) -> Option<WatchEvent> {
        self.rx.try_recv().ok()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A revisioned key-value store with etcd v3 semantics, shared as `Arc<dyn Datastore>`.
#[async_trait]
pub trait Datastore: Send + Sync {
    /// The key's current value and revisions, or `None` if absent.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;
    /// All keys starting with `prefix` (a plain string prefix, as etcd), sorted, with the revision.
    async fn list(&self, prefix: &str) -> Result<Listing>;
    /// Creates the key, returning the new revision; `AlreadyExists` if present.
    async fn create(&self, key: &str, value: &[u8]) -> Result<i64>;
    /// Replaces the value if the key's mod revision is `expected_mod_revision`; `NotFound` or `Conflict` otherwise.
    async fn update(&self, key: &str, value: &[u8], expected_mod_revision: i64) -> Result<i64>;
    /// Deletes the key (only at `expected_mod_revision` if given); `NotFound` or `Conflict` otherwise.
    async fn delete(&self, key: &str, expected_mod_revision: Option<i64>) -> Result<i64>;
    /// Streams every change under `prefix` with revision > `after_revision`, or `Relist` if that history is gone.
    async fn watch(&self, prefix: &str, after_revision: i64) -> Result<Watch>;
}

/// Rejects keys no backend accepts.
pub(crate) fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(StoreError::InvalidArgument("empty key".into()));
    }
    Ok(())
}
