//! The concurrency invariants once more against a real etcd.

mod common;

use std::sync::Arc;

use calico_ipam::Ipam;
use calico_store::resources::ResourceStore;
use calico_store::{Datastore, EtcdConfig, EtcdStore};
use calico_testkit::etcd::EtcdServer;

use common::{concurrent_assign_and_release, set_pool, TEST_TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_allocation_on_etcd() {
    let server = tokio::task::spawn_blocking(EtcdServer::start)
        .await
        .unwrap();
    let config = EtcdConfig {
        endpoints: vec![server.endpoint.clone()],
        ..EtcdConfig::default()
    };
    let ds: Arc<dyn Datastore> = Arc::new(EtcdStore::connect(&config).await.unwrap());
    let store = ResourceStore::new(ds.clone());
    let ipam = Ipam::new(store.clone());
    tokio::time::timeout(TEST_TIMEOUT, async {
        set_pool(&store, "10.0.0.0/22", false).await;
        concurrent_assign_and_release(&ipam, &ds).await;
    })
    .await
    .expect("test did not finish within the time limit");
}
