//! [`DockerApi`] for the real client, against a fake Engine answering Docker 20.10 JSON.

use std::path::PathBuf;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use calico_docker::{DockerClient, DockerError};
use calico_libnetwork::DockerApi;
use tokio::net::UnixListener;

const NET: &str = "759a2c3444dff3420ebe9b44e42df9ce181ad5c223e1aeff4739f83cb9b2afe4";
const LOCAL_EP: &str = "0a930a258ae710a61c05b34d4d14149e19cc89dfa2290f8194b989906ad9a4ab";
const REMOTE_EP: &str = "105d8201133048d9070b99d8fd4fffcbcc009035617e1778cfad5cd5a2dfb860";
const CTR: &str = "8f1c0b0b1e3a4ad5b7a4e7a0c9d2f3e4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0";

async fn network(Path(id): Path<String>) -> (StatusCode, String) {
    if id != NET && id != "net1" {
        return (
            StatusCode::NOT_FOUND,
            format!(r#"{{"message":"network {id} not found"}}"#),
        );
    }
    // A global-scope network: the other host's endpoint is listed as "ep-<id>", and (as seen
    // with dind) may even carry a local endpoint ID.
    let body = format!(
        r#"{{"Name":"net1","Id":"{NET}","Scope":"global","Driver":"calico",
            "IPAM":{{"Driver":"calico-ipam","Options":{{}},"Config":[{{"Subnet":"0.0.0.0/0","Gateway":"0.0.0.0/0"}}]}},
            "Containers":{{
              "ep-{REMOTE_EP}":{{"Name":"workload-C","EndpointID":"{REMOTE_EP}","MacAddress":"ee:ee:ee:ee:ee:ee","IPv4Address":"192.168.2.1/32","IPv6Address":""}},
              "ep-{LOCAL_EP}":{{"Name":"ghost","EndpointID":"{LOCAL_EP}","MacAddress":"","IPv4Address":"","IPv6Address":""}},
              "{CTR}":{{"Name":"workload-A","EndpointID":"{LOCAL_EP}","MacAddress":"ee:ee:ee:ee:ee:ee","IPv4Address":"192.168.1.1/32","IPv6Address":""}}
            }},
            "Options":{{}},"Labels":{{}}}}"#
    );
    (StatusCode::OK, body)
}

async fn container(Path(id): Path<String>) -> (StatusCode, String) {
    if id != CTR {
        return (
            StatusCode::NOT_FOUND,
            format!(r#"{{"message":"No such container: {id}"}}"#),
        );
    }
    let body = format!(
        r#"{{"Id":"{CTR}","Name":"/workload-A","State":{{"Running":true}},
            "Config":{{"Image":"busybox","Labels":{{"org.projectcalico.label.role":"db"}}}},
            "NetworkSettings":{{"Networks":{{"net1":{{"NetworkID":"{NET}","EndpointID":"{LOCAL_EP}","IPAddress":"192.168.1.1"}}}}}}}}"#
    );
    (StatusCode::OK, body)
}

async fn fake_engine() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("docker.sock");
    let listener = UnixListener::bind(&socket).expect("bind");
    let app = Router::new()
        .route("/v1.41/networks/{id}", get(network))
        .route("/v1.41/containers/{id}/json", get(container));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (dir, socket)
}

#[tokio::test]
async fn network_names_come_from_network_inspect() {
    let (_dir, socket) = fake_engine().await;
    let docker = DockerClient::new(socket);
    let name = |id| docker.network_name(id);
    assert_eq!(name(NET).await.expect("lookup"), Some("net1".to_owned()));
    assert_eq!(name("0123456789ab").await.expect("lookup"), None);
}

#[tokio::test]
async fn endpoint_containers_skip_remote_entries() {
    let (_dir, socket) = fake_engine().await;
    let docker = DockerClient::new(socket);
    let found = docker
        .endpoint_container(NET, LOCAL_EP)
        .await
        .expect("lookup")
        .expect("the local container");
    assert_eq!(found.id, CTR);
    assert_eq!(found.name, "workload-A");
    assert_eq!(found.labels["org.projectcalico.label.role"], "db");
    assert_eq!(
        docker
            .endpoint_container(NET, REMOTE_EP)
            .await
            .expect("lookup"),
        None,
        "ep-* entries are other hosts'"
    );
    assert_eq!(
        docker
            .endpoint_container("0123456789ab", LOCAL_EP)
            .await
            .expect("lookup"),
        None
    );
}

#[tokio::test]
async fn an_absent_daemon_is_an_error_naming_the_socket() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("none.sock");
    let err = DockerClient::new(&socket)
        .network_name(NET)
        .await
        .expect_err("no daemon");
    assert!(
        err.to_string().contains(&socket.display().to_string()),
        "{err}"
    );
    let kept = err
        .downcast_ref::<DockerError>()
        .expect("the client's own error is kept");
    assert!(matches!(kept, DockerError::Connect { .. }), "{kept:?}");
}
