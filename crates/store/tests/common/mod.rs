//! Helpers shared by the integration suites.

use std::future::Future;
use std::time::Duration;

use calico_store::{Watch, WatchEvent};

/// The longest any single test may run.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest a watch may take to deliver an expected event.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a test body, failing it instead of hanging past [`TEST_TIMEOUT`].
pub async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("test did not finish within the time limit");
}

/// The next watch event, failing the test if none arrives in time or the watch ended.
pub async fn next_event(watch: &mut Watch) -> WatchEvent {
    tokio::time::timeout(EVENT_TIMEOUT, watch.next())
        .await
        .expect("no watch event within the time limit")
        .expect("the watch ended unexpectedly")
}
