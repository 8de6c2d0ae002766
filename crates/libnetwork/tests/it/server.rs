//! The sockets themselves: stale sockets, shutdown, permissions, load.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::sync::{Arc, Mutex};

use calico_libnetwork::{serve, CallObserver, Driver, ServerError, IPAM_SOCKET, NETWORK_SOCKET};
use calico_store::resources::ResourceStore;
use calico_store::SqliteStore;
use serde_json::json;

use crate::support::{config, post, FakeAllocator, FakeDocker, FakeLinks, FakePorts, Harness};

fn driver(dir: &std::path::Path) -> Driver {
    let store = SqliteStore::open(dir.join("calico.db")).expect("store");
    Driver::new(
        config(),
        ResourceStore::new(Arc::new(store)),
        FakeAllocator::new(&["192.168.1.0/26"], "192.168.1.0/26"),
        FakeDocker::new(),
        FakeLinks::new(),
        FakePorts::new(),
    )
}

#[tokio::test]
async fn stale_sockets_are_replaced_and_shutdown_removes_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).expect("dir");
    // A plugin that died without cleaning up leaves its socket file behind.
    drop(std::os::unix::net::UnixListener::bind(plugins.join(NETWORK_SOCKET)).expect("stale"));

    let server = serve(&plugins, driver(dir.path()), None).expect("serve over a stale socket");
    for name in [NETWORK_SOCKET, IPAM_SOCKET] {
        let meta = std::fs::metadata(plugins.join(name)).expect("socket exists");
        assert!(meta.file_type().is_socket(), "{name}");
        assert_eq!(meta.permissions().mode() & 0o777, 0o660, "{name}");
    }
    let reply = post(server.network_socket(), "/Plugin.Activate", "").await;
    assert_eq!(
        reply.body,
        json!({"Implements": ["NetworkDriver", "IpamDriver"]})
    );

    let network_socket = server.network_socket().to_owned();
    server.shutdown().await;
    assert!(!network_socket.exists());
    assert!(!plugins.join(IPAM_SOCKET).exists());
    assert!(tokio::net::UnixStream::connect(&network_socket)
        .await
        .is_err());
}

#[tokio::test]
async fn the_observer_is_told_of_every_request_by_call_and_result() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let observer: CallObserver = Arc::new(move |call, ok, _elapsed| {
        record.lock().unwrap().push((call, ok));
    });
    let server = serve(dir.path(), driver(dir.path()), Some(observer)).expect("serve");
    post(server.network_socket(), "/Plugin.Activate", "").await;
    post(server.network_socket(), "/NetworkDriver.CreateNetwork", "{").await;
    post(server.ipam_socket(), "/NetworkDriver.GetCapabilities", "").await;
    post(server.network_socket(), "/Something.Else", "").await;
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("Plugin.Activate", true),
            ("NetworkDriver.CreateNetwork", false),
            ("unknown", false),
            ("unknown", false),
        ]
    );
}

#[tokio::test]
async fn dropping_the_server_removes_its_sockets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = serve(dir.path(), driver(dir.path()), None).expect("serve");
    drop(server);
    assert!(!dir.path().join(NETWORK_SOCKET).exists());
    assert!(!dir.path().join(IPAM_SOCKET).exists());
}

#[tokio::test]
async fn other_files_are_not_replaced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let precious = dir.path().join(IPAM_SOCKET);
    std::fs::write(&precious, "not a socket").expect("file");
    let err = serve(dir.path(), driver(dir.path()), None)
        .err()
        .expect("refused");
    assert!(matches!(err, ServerError::NotASocket { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{} exists and is not a socket; remove it or choose another plugin directory",
            precious.display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(&precious).expect("kept"),
        "not a socket"
    );
    assert!(
        !dir.path().join(NETWORK_SOCKET).exists(),
        "the first socket is cleaned up"
    );
}

#[tokio::test]
async fn many_simultaneous_connections_are_all_answered() {
    // dockerd opens many at once on `docker rm -f` of many containers; a listen backlog of 5
    // made it retry.
    let h = Harness::start(config());
    let socket = h.ipam_socket();
    let calls = (0..256).map(|i| {
        let socket = socket.clone();
        tokio::spawn(async move {
            let body = json!({"PoolID": "CalicoPoolIPv4", "Address": format!("10.0.{}.{}", i / 256, i % 256)});
            post(&socket, "/IpamDriver.ReleaseAddress", body.to_string()).await
        })
    });
    let calls: Vec<_> = calls.collect();
    for call in calls {
        let reply = call.await.expect("task");
        assert_eq!((reply.status, reply.body), (200, json!({})));
    }
}
