//! The client against a fake Engine on a temporary unix socket, answering with JSON in the
//! shapes Docker 20.10 (API 1.41) produces, and `/version` as Docker 20.10 and 28 answer it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::http::{Request, Response, StatusCode};
use axum::Router;
use calico_docker::{DockerClient, DockerError};
use tokio::net::UnixListener;

const NET_ID: &str = "759a2c3444dff3420ebe9b44e42df9ce181ad5c223e1aeff4739f83cb9b2afe4";
const CTR_ID: &str = "8f1c0b0b1e3a4ad5b7a4e7a0c9d2f3e4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0";
const EP_ID: &str = "0a930a258ae710a61c05b34d4d14149e19cc89dfa2290f8194b989906ad9a4ab";

/// `GET /v1.41/networks/net1` from dockerd 20.10.24 for a Calico network with one local
/// container and one endpoint of another host (global scope).
const NETWORK_INSPECT: &str = r#"{
  "Name": "net1",
  "Id": "759a2c3444dff3420ebe9b44e42df9ce181ad5c223e1aeff4739f83cb9b2afe4",
  "Created": "2024-05-02T10:11:12.123456789Z",
  "Scope": "local",
  "Driver": "calico",
  "EnableIPv6": false,
  "IPAM": {
    "Driver": "calico-ipam",
    "Options": {},
    "Config": [{"Subnet": "0.0.0.0/0", "Gateway": "0.0.0.0/0"}]
  },
  "Internal": false,
  "Attachable": false,
  "Ingress": false,
  "ConfigFrom": {"Network": ""},
  "ConfigOnly": false,
  "Containers": {
    "8f1c0b0b1e3a4ad5b7a4e7a0c9d2f3e4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0": {
      "Name": "workload-A",
      "EndpointID": "0a930a258ae710a61c05b34d4d14149e19cc89dfa2290f8194b989906ad9a4ab",
      "MacAddress": "ee:ee:ee:ee:ee:ee",
      "IPv4Address": "192.168.1.1/32",
      "IPv6Address": ""
    },
    "ep-105d8201133048d9070b99d8fd4fffcbcc009035617e1778cfad5cd5a2dfb860": {
      "Name": "workload-C",
      "EndpointID": "105d8201133048d9070b99d8fd4fffcbcc009035617e1778cfad5cd5a2dfb860",
      "MacAddress": "ee:ee:ee:ee:ee:ee",
      "IPv4Address": "192.168.2.1/32",
      "IPv6Address": ""
    }
  },
  "Options": {},
  "Labels": null
}"#;

/// `GET /v1.41/networks?filters=...`: the list leaves `Containers` empty.
const NETWORK_LIST: &str = r#"[
  {"Name": "net1", "Id": "759a2c3444dff3420ebe9b44e42df9ce181ad5c223e1aeff4739f83cb9b2afe4",
   "Created": "2024-05-02T10:11:12.123456789Z", "Scope": "local", "Driver": "calico",
   "EnableIPv6": false,
   "IPAM": {"Driver": "calico-ipam", "Options": null,
            "Config": [{"Subnet": "192.168.1.0/26", "Gateway": "0.0.0.0/0", "IPRange": "192.168.1.0/28"}]},
   "Internal": false, "Attachable": false, "Ingress": false, "ConfigFrom": {"Network": ""},
   "ConfigOnly": false, "Containers": {}, "Options": {"foo": "bar"}, "Labels": {"team": "db"}}
]"#;

/// `GET /v1.41/containers/workload-A/json`, trimmed of the fields nobody reads but keeping
/// their shapes.
const CONTAINER_INSPECT: &str = r#"{
  "Id": "8f1c0b0b1e3a4ad5b7a4e7a0c9d2f3e4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0",
  "Created": "2024-05-02T10:12:00.000000000Z",
  "Path": "/bin/sh",
  "Args": [],
  "State": {"Status": "running", "Running": true, "Paused": false, "Restarting": false,
            "OOMKilled": false, "Dead": false, "Pid": 4242, "ExitCode": 0, "Error": "",
            "StartedAt": "2024-05-02T10:12:00.300000000Z", "FinishedAt": "0001-01-01T00:00:00Z"},
  "Image": "sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741",
  "Name": "/workload-A",
  "RestartCount": 0,
  "Driver": "overlay2",
  "HostConfig": {"NetworkMode": "net1", "Dns": [], "PublishAllPorts": true,
                 "PortBindings": {"80/tcp":[{"HostIp":"","HostPort":"8080"}],"81/tcp":[{"HostIp":"","HostPort":"8000-8010"}],"9000/udp":[{"HostIp":"127.0.0.1","HostPort":"9000"}],"9001/udp":null}},
  "Mounts": [],
  "Config": {"Hostname": "8f1c0b0b1e3a", "Env": ["PATH=/bin"], "Cmd": ["/bin/sh"],
             "Image": "busybox", "Volumes": null, "WorkingDir": "", "Entrypoint": null,
             "OnBuild": null, "ExposedPorts": {"7000/tcp": {}, "80/tcp": {}},
             "Labels": {"org.projectcalico.label.role": "frontend", "maintainer": "me"}},
  "NetworkSettings": {
    "Bridge": "", "SandboxID": "a504e4625371", "HairpinMode": false, "Ports": {},
    "SandboxKey": "/var/run/docker/netns/a504e4625371",
    "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": "",
    "Networks": {
      "net1": {
        "IPAMConfig": null, "Links": null, "Aliases": ["8f1c0b0b1e3a"],
        "NetworkID": "759a2c3444dff3420ebe9b44e42df9ce181ad5c223e1aeff4739f83cb9b2afe4",
        "EndpointID": "0a930a258ae710a61c05b34d4d14149e19cc89dfa2290f8194b989906ad9a4ab",
        "Gateway": "169.254.1.1", "IPAddress": "192.168.1.1", "IPPrefixLen": 32,
        "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "MacAddress": "ee:ee:ee:ee:ee:ee", "DriverOpts": null
      }
    }
  }
}"#;

/// `GET /v1.41/containers/json?all=1`.
const CONTAINER_LIST: &str = r#"[
  {"Id": "8f1c0b0b1e3a4ad5b7a4e7a0c9d2f3e4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0",
   "Names": ["/workload-A"], "Image": "busybox", "ImageID": "sha256:3f57",
   "Command": "/bin/sh", "Created": 1714644720, "Ports": [],
   "Labels": {"org.projectcalico.label.role": "frontend"}, "State": "running",
   "Status": "Up 3 seconds", "HostConfig": {"NetworkMode": "net1"},
   "NetworkSettings": {"Networks": {"net1": {"NetworkID": "759a", "EndpointID": "0a93"}}},
   "Mounts": []},
  {"Id": "1111", "Names": ["/stopped"], "Image": "busybox", "Labels": null,
   "State": "exited", "Status": "Exited (0) 1 second ago"}
]"#;

/// One request the fake Engine saw.
/// `GET /version` from dockerd 20.10.24 (Debian 12's docker.io), verbatim.
const VERSION_20_10: &str = r#"{"Platform":{"Name":""},"Components":[{"Name":"Engine","Version":"20.10.24+dfsg1","Details":{"ApiVersion":"1.41","Arch":"amd64","BuildTime":"2026-05-07T21:09:36.000000000+00:00","Experimental":"false","GitCommit":"5d6db84","GoVersion":"go1.19.8","KernelVersion":"6.18.44-fc-v1272","MinAPIVersion":"1.12","Os":"linux"}},{"Name":"containerd","Version":"1.6.20~ds1","Details":{"GitCommit":"1.6.20~ds1-1+deb12u3"}},{"Name":"runc","Version":"1.1.5+ds1","Details":{"GitCommit":"1.1.5+ds1-1+deb12u1"}},{"Name":"docker-init","Version":"0.19.0","Details":{"GitCommit":""}}],"Version":"20.10.24+dfsg1","ApiVersion":"1.41","MinAPIVersion":"1.12","GitCommit":"5d6db84","GoVersion":"go1.19.8","Os":"linux","Arch":"amd64","KernelVersion":"6.18.44-fc-v1272","BuildTime":"2026-05-07T21:09:36.000000000+00:00"}"#;

/// `GET /version` from dockerd 28.5.2 (Debian sid's docker.io on Debian 12), verbatim.
const VERSION_28: &str = r#"{"Platform":{"Name":""},"Components":[{"Name":"Engine","Version":"28.5.2+dfsg4","Details":{"ApiVersion":"1.51","Arch":"amd64","BuildTime":"2026-09-15T11:02:57.000000000+00:00","Experimental":"false","GitCommit":"3ef3c07c883be49a2e8097bcf6d2952fce1d70eb","GoVersion":"go1.27.1","KernelVersion":"6.18.44-fc-v1272","MinAPIVersion":"1.24","Os":"linux"}},{"Name":"containerd","Version":"2.1.9+unknown","Details":{"GitCommit":""}},{"Name":"runc","Version":"1.1.5+ds1","Details":{"GitCommit":"1.1.5+ds1-1+deb12u1"}},{"Name":"docker-init","Version":"0.19.0","Details":{"GitCommit":""}}],"Version":"28.5.2+dfsg4","ApiVersion":"1.51","MinAPIVersion":"1.24","GitCommit":"3ef3c07c883be49a2e8097bcf6d2952fce1d70eb","GoVersion":"go1.27.1","Os":"linux","Arch":"amd64","KernelVersion":"6.18.44-fc-v1272","BuildTime":"2026-09-15T11:02:57.000000000+00:00"}"#;

#[derive(Clone, Debug)]
struct Seen {
    method: String,
    uri: String,
    host: String,
    body: String,
}

type Script = Arc<dyn Fn(&str, &str) -> (StatusCode, String) + Send + Sync>;

/// A fake dockerd on a temporary socket; answers with `script(method, path_and_query)`.
struct FakeEngine {
    socket: PathBuf,
    seen: Arc<Mutex<Vec<Seen>>>,
    _dir: tempfile::TempDir,
}

impl FakeEngine {
    async fn start(
        script: impl Fn(&str, &str) -> (StatusCode, String) + Send + Sync + 'static,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket).expect("bind fake engine");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script: Script = Arc::new(script);
        let log = seen.clone();
        let app = Router::new().fallback(move |req: Request<Body>| {
            let (script, log) = (script.clone(), log.clone());
            async move {
                let method = req.method().to_string();
                let uri = req.uri().to_string();
                let host = req
                    .headers()
                    .get("host")
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let body = to_bytes(req.into_body(), 1 << 20).await.expect("body");
                log.lock().expect("log").push(Seen {
                    method: method.clone(),
                    uri: uri.clone(),
                    host,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                let (status, reply) = script(&method, &uri);
                Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::from(reply))
                    .expect("response")
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeEngine {
            socket,
            seen,
            _dir: dir,
        }
    }

    fn client(&self) -> DockerClient {
        DockerClient::new(&self.socket)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("log").clone()
    }
}

fn ok(body: &str) -> (StatusCode, String) {
    (StatusCode::OK, body.to_owned())
}

fn not_found(what: &str) -> (StatusCode, String) {
    (
        StatusCode::NOT_FOUND,
        format!(r#"{{"message":"{what} not found"}}"#),
    )
}

#[tokio::test]
async fn network_inspect_decodes_docker_20_10_output() {
    let engine = FakeEngine::start(|_, uri| match uri {
        "/v1.41/networks/net1" => ok(NETWORK_INSPECT),
        _ => not_found("network"),
    })
    .await;
    let net = engine
        .client()
        .network_inspect("net1")
        .await
        .expect("inspect")
        .expect("network exists");
    assert_eq!(net.id, NET_ID);
    assert_eq!(net.name, "net1");
    assert_eq!(net.driver, "calico");
    assert_eq!(net.scope, "local");
    assert_eq!(net.ipam_driver, "calico-ipam");
    assert_eq!(net.ipam_pools.len(), 1);
    assert_eq!(net.ipam_pools[0].subnet, "0.0.0.0/0");
    assert_eq!(net.ipam_pools[0].gateway, "0.0.0.0/0");
    assert!(net.labels.is_empty(), "null labels read as empty");
    let local = &net.containers[CTR_ID];
    assert_eq!(local.name, "workload-A");
    assert_eq!(local.endpoint_id, EP_ID);
    assert_eq!(local.mac_address, "ee:ee:ee:ee:ee:ee");
    assert_eq!(
        local.ipv4_address,
        Some("192.168.1.1/32".parse().expect("net"))
    );
    assert_eq!(local.ipv6_address, None);
    assert!(net
        .containers
        .contains_key("ep-105d8201133048d9070b99d8fd4fffcbcc009035617e1778cfad5cd5a2dfb860"));

    let seen = engine.seen();
    assert_eq!(seen[0].method, "GET");
    assert_eq!(
        seen[0].host, "docker",
        "Go's HTTP server insists on a Host header"
    );
}

#[tokio::test]
async fn missing_objects_are_none_not_errors() {
    let engine = FakeEngine::start(|_, uri| {
        if uri.starts_with("/v1.41/networks/") {
            not_found("network nosuch")
        } else {
            not_found("No such container: nosuch")
        }
    })
    .await;
    let client = engine.client();
    assert_eq!(
        client.network_inspect("nosuch").await.expect("inspect"),
        None
    );
    assert_eq!(
        client.container_inspect("nosuch").await.expect("inspect"),
        None
    );
}

#[tokio::test]
async fn names_are_percent_encoded_into_the_path() {
    let engine = FakeEngine::start(|_, _| not_found("network")).await;
    let _ = engine
        .client()
        .network_inspect("a/b c")
        .await
        .expect("inspect");
    assert_eq!(engine.seen()[0].uri, "/v1.41/networks/a%2Fb%20c");
}

#[tokio::test]
async fn networks_filters_by_driver() {
    let engine = FakeEngine::start(|_, _| ok(NETWORK_LIST)).await;
    let client = engine.client();
    let nets = client.networks(Some("calico")).await.expect("list");
    assert_eq!(nets.len(), 1);
    assert_eq!(nets[0].name, "net1");
    assert_eq!(nets[0].ipam_pools[0].subnet, "192.168.1.0/26");
    assert_eq!(nets[0].ipam_pools[0].ip_range, "192.168.1.0/28");
    assert!(nets[0].ipam_options.is_empty());
    assert_eq!(nets[0].options["foo"], "bar");
    assert_eq!(nets[0].labels["team"], "db");
    client.networks(None).await.expect("list all");
    let seen = engine.seen();
    assert_eq!(
        seen[0].uri,
        "/v1.41/networks?filters=%7B%22driver%22%3A%5B%22calico%22%5D%7D"
    );
    assert_eq!(seen[1].uri, "/v1.41/networks");
}

#[tokio::test]
async fn container_inspect_decodes_docker_20_10_output() {
    let engine = FakeEngine::start(|_, uri| match uri {
        "/v1.41/containers/workload-A/json" => ok(CONTAINER_INSPECT),
        _ => not_found("No such container"),
    })
    .await;
    let ctr = engine
        .client()
        .container_inspect("workload-A")
        .await
        .expect("inspect")
        .expect("container exists");
    assert_eq!(ctr.id, CTR_ID);
    assert_eq!(ctr.name, "workload-A", "leading '/' stripped");
    assert_eq!(ctr.image, "busybox");
    assert!(ctr.running);
    assert_eq!(ctr.labels["org.projectcalico.label.role"], "frontend");
    let net1 = &ctr.networks["net1"];
    assert_eq!(net1.network_id, NET_ID);
    assert_eq!(net1.endpoint_id, EP_ID);
    assert_eq!(net1.ip, Some("192.168.1.1".parse().expect("ip")));
    assert_eq!(net1.ipv6, None);
    assert_eq!(net1.mac_address, "ee:ee:ee:ee:ee:ee");
    let ports = &ctr.ports;
    assert!(ports.publish_all);
    assert_eq!(
        ports.exposed.iter().map(String::as_str).collect::<Vec<_>>(),
        vec!["7000/tcp", "80/tcp"]
    );
    assert_eq!(
        ports.bindings["81/tcp"],
        vec![calico_docker::HostBinding {
            host_ip: String::new(),
            host_port: "8000-8010".into()
        }]
    );
    assert_eq!(ports.bindings["9000/udp"][0].host_ip, "127.0.0.1");
    assert!(ports.bindings["9001/udp"].is_empty(), "null reads as none");
    assert_eq!(ports.bindings.len(), 4);
}

#[tokio::test]
async fn containers_lists_all_or_running() {
    let engine = FakeEngine::start(|_, _| ok(CONTAINER_LIST)).await;
    let client = engine.client();
    let all = client.containers(true).await.expect("list");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].names, vec!["workload-A".to_owned()]);
    assert_eq!(all[0].state, "running");
    assert_eq!(all[0].labels["org.projectcalico.label.role"], "frontend");
    assert_eq!(all[1].state, "exited");
    assert!(all[1].labels.is_empty());
    client.containers(false).await.expect("list");
    let seen = engine.seen();
    assert_eq!(seen[0].uri, "/v1.41/containers/json?all=1");
    assert_eq!(seen[1].uri, "/v1.41/containers/json?all=0");
}

#[tokio::test]
async fn network_create_posts_name_drivers_subnet_and_labels() {
    let engine = FakeEngine::start(|method, uri| match (method, uri) {
        ("POST", "/v1.41/networks/create") => (
            StatusCode::CREATED,
            format!(r#"{{"Id":"{NET_ID}","Warning":""}}"#),
        ),
        _ => not_found("page"),
    })
    .await;
    let labels = BTreeMap::from([("team".to_owned(), "db".to_owned())]);
    let id = engine
        .client()
        .network_create(
            "net1",
            "calico",
            "calico-ipam",
            Some("192.168.1.0/26".parse().expect("subnet")),
            &labels,
        )
        .await
        .expect("create");
    assert_eq!(id, NET_ID);
    let body: serde_json::Value = serde_json::from_str(&engine.seen()[0].body).expect("JSON body");
    assert_eq!(
        body,
        serde_json::json!({
            "Name": "net1",
            "CheckDuplicate": true,
            "Driver": "calico",
            "IPAM": {"Driver": "calico-ipam", "Config": [{"Subnet": "192.168.1.0/26"}]},
            "Labels": {"team": "db"}
        })
    );
}

#[tokio::test]
async fn daemon_errors_carry_status_and_message() {
    let engine = FakeEngine::start(|method, _| {
        if method == "POST" {
            (
                StatusCode::CONFLICT,
                r#"{"message":"network with name net1 already exists"}"#.to_owned(),
            )
        } else {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "plain text failure\n".to_owned(),
            )
        }
    })
    .await;
    let client = engine.client();
    let err = client
        .network_create("net1", "calico", "calico-ipam", None, &BTreeMap::new())
        .await
        .expect_err("conflict");
    assert_eq!(err.status(), Some(409));
    assert_eq!(
        err.to_string(),
        "Docker API POST /v1.41/networks/create returned HTTP 409: network with name net1 already exists"
    );
    let err = client.containers(true).await.expect_err("500");
    assert_eq!(err.status(), Some(500));
    assert!(
        err.to_string().ends_with("HTTP 500: plain text failure"),
        "{err}"
    );
}

#[tokio::test]
async fn a_404_on_a_list_is_an_error_not_an_empty_list() {
    let engine =
        FakeEngine::start(|_, _| (StatusCode::NOT_FOUND, "page not found".to_owned())).await;
    let err = engine.client().networks(None).await.expect_err("404");
    assert_eq!(err.status(), Some(404));
    let err = engine.client().containers(false).await.expect_err("404");
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn unexpected_bodies_are_decode_errors() {
    let engine = FakeEngine::start(|_, _| ok(r#"{"Name": 5}"#)).await;
    let err = engine
        .client()
        .network_inspect("net1")
        .await
        .expect_err("bad body");
    assert!(matches!(err, DockerError::Decode { .. }), "{err:?}");
    assert!(
        err.to_string().contains("GET /v1.41/networks/net1"),
        "{err}"
    );
}

#[tokio::test]
async fn an_absent_daemon_is_a_connect_error_naming_the_socket() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("nothing.sock");
    let err = DockerClient::new(&socket)
        .network_inspect("net1")
        .await
        .expect_err("no daemon");
    assert!(matches!(err, DockerError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&socket.display().to_string()),
        "{err}"
    );
}

#[tokio::test]
async fn a_silent_daemon_times_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("silent.sock");
    // Accepts connections and never answers.
    let listener = UnixListener::bind(&socket).expect("bind");
    let _accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let err = DockerClient::new(&socket)
        .with_timeout(Duration::from_millis(100))
        .containers(false)
        .await
        .expect_err("timeout");
    assert!(matches!(err, DockerError::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn engine_reads_docker_20_10_and_28_version_unversioned() {
    for (body, version, api, min) in [
        (VERSION_20_10, "20.10.24+dfsg1", "1.41", "1.12"),
        (VERSION_28, "28.5.2+dfsg4", "1.51", "1.24"),
    ] {
        let engine = FakeEngine::start(move |_, uri| match uri {
            "/version" => ok(body),
            _ => not_found("page"),
        })
        .await;
        let seen = engine.client().engine().await.expect("version");
        assert_eq!(seen.version, version);
        assert_eq!(seen.api_version, api);
        assert_eq!(seen.min_api_version, min);
        assert_eq!(seen.check(calico_docker::API_VERSION), Ok(()), "{version}");
        assert_eq!(seen.to_string(), format!("{version} (API {api})"));
        let asked: Vec<String> = engine.seen().into_iter().map(|s| s.uri).collect();
        assert_eq!(asked, vec!["/version"], "asked without an API prefix");
    }
}
