//! Network and endpoint lifecycles: profiles, workload endpoints, host links.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use calico_model::{codec, Profile, Resource};
use serde_json::{json, Value};

use crate::support::{config, FakeAllocator, FakeDocker, Harness, NODE};

const NET: &str = "759a2c3444dff3420ebe9b44e42df9ce181ad5c223e1aeff4739f83cb9b2afe4";
const EP: &str = "0a930a258ae710a61c05b34d4d14149e19cc89dfa2290f8194b989906ad9a4ab";
const CTR: &str = "8f1c0b0b1e3a4ad5b7a4e7a0c9d2f3e4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0";

fn create_network() -> Value {
    json!({
        "NetworkID": NET,
        "IPv4Data": [{"AddressSpace": "CalicoLocalAddressSpace", "Gateway": "0.0.0.0/0", "Pool": "0.0.0.0/0"}],
        "IPv6Data": [],
        "Options": {"com.docker.network.enable_ipv6": false, "com.docker.network.generic": {}}
    })
}

fn create_endpoint(address: &str, mac: &str) -> Value {
    json!({
        "NetworkID": NET, "EndpointID": EP,
        "Interface": {"Address": address, "AddressIPv6": "", "MacAddress": mac},
        "Options": {"com.docker.network.endpoint.exposedports": [], "com.docker.network.portmap": []}
    })
}

fn join() -> Value {
    json!({"NetworkID": NET, "EndpointID": EP, "SandboxKey": "/var/run/docker/netns/a504e4625371",
           "Options": {"com.docker.network.endpoint.exposedports": [], "com.docker.network.portmap": []}})
}

fn endpoint() -> Value {
    json!({"NetworkID": NET, "EndpointID": EP})
}

fn yaml(profile: Profile) -> String {
    codec::to_yaml(&[Resource::Profile(profile)])
}

const DEFAULT_PROFILE_YAML: &str = "- apiVersion: v1\n  kind: profile\n  metadata:\n    name: net1\n    tags:\n    - net1\n  spec:\n    egress:\n    - action: allow\n    ingress:\n    - action: allow\n      source:\n        tag: net1\n";

fn harness_with_docker(
    config: calico_libnetwork::DriverConfig,
) -> (Harness, std::sync::Arc<FakeDocker>) {
    let docker = FakeDocker::new();
    let ipam = FakeAllocator::new(&["192.168.1.0/26"], "192.168.1.0/26");
    let h = Harness::start_with(config, ipam, docker.clone());
    (h, docker)
}

#[tokio::test]
async fn create_network_creates_the_profile_once_docker_shows_the_network() {
    let (h, docker) = harness_with_docker(config());
    // Docker shows a network only after the driver has answered CreateNetwork.
    docker.add_network_visible_after(NET, "net1", 3);
    assert_eq!(
        h.ok("NetworkDriver.CreateNetwork", create_network()).await,
        json!({})
    );
    h.driver.settle().await;
    let profile = h.profile("net1").await.expect("profile created");
    assert_eq!(yaml(profile), DEFAULT_PROFILE_YAML);
    assert_eq!(docker.network_lookups.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_network_docker_never_shows_gets_its_profile_at_create_endpoint() {
    let mut config = config();
    config.network_poll_timeout = Duration::from_millis(150);
    let (h, docker) = harness_with_docker(config);
    h.ok("NetworkDriver.CreateNetwork", create_network()).await;
    h.driver.settle().await;
    assert!(h.profile("net1").await.is_none());

    docker.add_network(NET, "net1");
    h.ok(
        "NetworkDriver.CreateEndpoint",
        create_endpoint("192.168.1.1/32", ""),
    )
    .await;
    let profile = h
        .profile("net1")
        .await
        .expect("created at CreateEndpoint, synchronously");
    assert_eq!(yaml(profile), DEFAULT_PROFILE_YAML);
}

#[tokio::test]
async fn an_existing_profile_is_kept_and_survives_delete_network() {
    let (h, docker) = harness_with_docker(config());
    docker.add_network(NET, "net1");
    let custom: Vec<Resource> = codec::decode(
        "apiVersion: v1\nkind: profile\nmetadata:\n  name: net1\n  labels:\n    role: database\nspec:\n  ingress:\n  - action: deny\n",
    )
    .expect("profile");
    h.store
        .create(&custom[0])
        .await
        .expect("pre-existing profile");
    let before = h.profile("net1").await.expect("profile");

    h.ok("NetworkDriver.CreateNetwork", create_network()).await;
    h.ok(
        "NetworkDriver.CreateEndpoint",
        create_endpoint("192.168.1.1/32", ""),
    )
    .await;
    h.ok("NetworkDriver.DeleteNetwork", json!({"NetworkID": NET}))
        .await;
    h.driver.settle().await;
    assert_eq!(h.profile("net1").await, Some(before));
}

#[tokio::test]
async fn delete_network_removes_the_unused_default_profile() {
    let (h, docker) = harness_with_docker(config());
    docker.add_network(NET, "net1");
    h.ok("NetworkDriver.CreateNetwork", create_network()).await;
    h.driver.settle().await;
    assert!(h.profile("net1").await.is_some());
    h.ok("NetworkDriver.DeleteNetwork", json!({"NetworkID": NET}))
        .await;
    h.driver.settle().await;
    assert_eq!(h.profile("net1").await, None);
}

#[tokio::test]
async fn delete_network_keeps_a_default_profile_endpoints_still_use() {
    let (h, docker) = harness_with_docker(config());
    docker.add_network(NET, "net1");
    h.ok("NetworkDriver.CreateNetwork", create_network()).await;
    h.driver.settle().await;
    // a container of another host on the same network
    let other_host: Vec<Resource> = codec::decode(
        "apiVersion: v1\nkind: workloadEndpoint\nmetadata:\n  name: ep2\n  node: calico-02\n  orchestrator: libnetwork\n  workload: libnetwork\nspec:\n  interfaceName: caliep2\n  ipNetworks: [192.168.2.1/32]\n  profiles: [net1]\n",
    )
    .expect("endpoint");
    h.store
        .create(&other_host[0])
        .await
        .expect("store endpoint");
    h.ok("NetworkDriver.DeleteNetwork", json!({"NetworkID": NET}))
        .await;
    h.driver.settle().await;
    assert_eq!(
        h.profile("net1").await.map(yaml).as_deref(),
        Some(DEFAULT_PROFILE_YAML)
    );
}

#[tokio::test]
async fn join_writes_the_workload_endpoint_once_docker_shows_the_container() {
    let (h, docker) = harness_with_docker(config());
    docker.add_network(NET, "net1");
    docker.add_container(
        EP,
        CTR,
        "workload-A",
        &[("org.projectcalico.label.role", "db")],
    );

    let reply = h
        .ok(
            "NetworkDriver.CreateEndpoint",
            create_endpoint("192.168.1.1/26", ""),
        )
        .await;
    assert_eq!(
        reply,
        json!({"Interface": {"MacAddress": "ee:ee:ee:ee:ee:ee"}})
    );
    h.driver.settle().await;
    assert!(
        h.workload_endpoints().await.is_empty(),
        "nothing is written before Join"
    );

    let reply = h.ok("NetworkDriver.Join", join()).await;
    assert_eq!(
        reply,
        json!({
            "InterfaceName": {"SrcName": "temp0a930a258ae", "DstPrefix": "cali"},
            "Gateway": "169.254.1.1",
            "StaticRoutes": [{"Destination": "169.254.1.1/32", "RouteType": 1, "NextHop": ""}],
            "DisableGatewayService": false
        })
    );
    h.driver.settle().await;
    let weps = h.workload_endpoints().await;
    assert_eq!(weps.len(), 1);
    let wep = &weps[0];
    assert_eq!(wep.metadata.node, NODE);
    assert_eq!(wep.metadata.orchestrator, "libnetwork");
    assert_eq!(wep.metadata.workload, "workload-A");
    assert_eq!(wep.metadata.name, EP);
    assert_eq!(wep.metadata.active_instance_id, CTR);
    assert!(
        wep.metadata.labels.is_empty(),
        "labels are copied only when asked"
    );
    assert_eq!(wep.spec.interface_name, "cali0a930a258ae");
    assert_eq!(wep.spec.profiles, vec!["net1".to_owned()]);
    assert_eq!(
        wep.spec.ip_networks[0].to_string(),
        "192.168.1.1/32",
        "Docker's /26 mask is ignored"
    );
    assert_eq!(
        wep.spec.mac.as_ref().expect("mac").to_string(),
        "ee:ee:ee:ee:ee:ee"
    );
    assert_eq!(
        h.links.calls(),
        vec![
            "create_veth cali0a930a258ae temp0a930a258ae None",
            "plumb cali0a930a258ae 192.168.1.1/32 ee:ee:ee:ee:ee:ee",
        ]
    );

    h.ok("NetworkDriver.Leave", endpoint()).await;
    assert_eq!(h.links.calls()[2], "remove cali0a930a258ae 192.168.1.1/32");
    h.ok("NetworkDriver.DeleteEndpoint", endpoint()).await;
    assert!(
        h.workload_endpoints().await.is_empty(),
        "DeleteEndpoint removes it"
    );
    assert!(h.profile("net1").await.is_some(), "the profile stays");
}

/// A starting dockerd calls CreateEndpoint for the containers it restarts before its API
/// answers: the endpoint is created at once and gets its network's profile once Docker answers.
#[tokio::test]
async fn create_endpoint_does_not_wait_for_a_docker_that_does_not_answer_yet() {
    let (h, docker) = harness_with_docker(config());
    docker.add_network(NET, "net1");
    docker.add_container(EP, CTR, "workload-A", &[]);
    docker.unanswered_network_lookups.store(1, Ordering::SeqCst);
    h.ok(
        "NetworkDriver.CreateEndpoint",
        create_endpoint("192.168.1.1/32", ""),
    )
    .await;
    assert!(h.profile("net1").await.is_none());
    h.ok("NetworkDriver.Join", join()).await;
    h.driver.settle().await;
    let weps = h.workload_endpoints().await;
    assert_eq!(weps.len(), 1);
    assert_eq!(weps[0].spec.profiles, vec!["net1".to_owned()]);
    assert_eq!(
        yaml(h.profile("net1").await.expect("profile")),
        DEFAULT_PROFILE_YAML
    );
}

#[tokio::test]
async fn labels_are_copied_when_asked() {
    let mut config = config();
    config.label_endpoints = true;
    let (h, docker) = harness_with_docker(config);
    docker.add_network(NET, "net1");
    docker.add_container(
        EP,
        CTR,
        "workload-A",
        &[
            ("org.projectcalico.label.role", "db"),
            ("org.projectcalico.label.tier", "back-end"),
            ("org.projectcalico.label.bad key", "x"),
            ("org.projectcalico.label.bad-value", "-x-"),
            ("maintainer", "someone"),
        ],
    );
    h.ok(
        "NetworkDriver.CreateEndpoint",
        create_endpoint("192.168.1.1/32", ""),
    )
    .await;
    h.ok("NetworkDriver.Join", join()).await;
    h.driver.settle().await;
    let weps = h.workload_endpoints().await;
    assert_eq!(
        weps[0].metadata.labels,
        BTreeMap::from([
            ("role".to_owned(), "db".to_owned()),
            ("tier".to_owned(), "back-end".to_owned())
        ])
    );
}

#[tokio::test]
async fn without_a_container_the_workload_is_libnetwork() {
    let mut config = config();
    config.label_poll_timeout = Duration::from_millis(150);
    let (h, docker) = harness_with_docker(config);
    docker.add_network(NET, "net1");
    h.ok(
        "NetworkDriver.CreateEndpoint",
        create_endpoint("192.168.1.1/32", ""),
    )
    .await;
    h.ok("NetworkDriver.Join", join()).await;
    h.driver.settle().await;
    let weps = h.workload_endpoints().await;
    assert_eq!(weps[0].metadata.workload, "libnetwork");
    assert_eq!(weps[0].metadata.active_instance_id, "");
    assert!(
        docker.container_lookups.load(Ordering::SeqCst) >= 2,
        "Docker was polled"
    );
}

#[tokio::test]
async fn without_profiles_docker_is_not_asked_for_the_network() {
    let mut config = config();
    config.create_profiles = false;
    let (h, docker) = harness_with_docker(config);
    docker.add_container(EP, CTR, "workload-A", &[]);
    h.ok("NetworkDriver.CreateNetwork", create_network()).await;
    h.ok(
        "NetworkDriver.CreateEndpoint",
        create_endpoint("192.168.1.1/32", ""),
    )
    .await;
    h.ok("NetworkDriver.Join", join()).await;
    h.driver.settle().await;
    assert!(h.profile("net1").await.is_none());
    assert_eq!(docker.network_lookups.load(Ordering::SeqCst), 0);
    let weps = h.workload_endpoints().await;
    assert!(weps[0].spec.profiles.is_empty());
    assert_eq!(weps[0].metadata.workload, "workload-A");
}

#[tokio::test]
async fn delete_endpoint_stops_a_pending_writer() {
    let mut config = config();
    config.label_poll_timeout = Duration::from_secs(20);
    let (h, docker) = harness_with_docker(config);
    docker.add_network(NET, "net1");
    h.ok(
        "NetworkDriver.CreateEndpoint",
        create_endpoint("192.168.1.1/32", ""),
    )
    .await;
    h.ok("NetworkDriver.Join", join()).await;
    h.ok("NetworkDriver.Leave", endpoint()).await;
    h.ok("NetworkDriver.DeleteEndpoint", endpoint()).await;
    let started = Instant::now();
    h.driver.settle().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the writer was stopped, not waited out"
    );
    assert!(
        h.workload_endpoints().await.is_empty(),
        "nothing written after DeleteEndpoint"
    );
}

#[tokio::test]
async fn user_mac_is_used_and_not_echoed() {
    let (h, docker) = harness_with_docker(config());
    docker.add_network(NET, "net1");
    docker.add_container(EP, CTR, "workload-A", &[]);
    let reply = h
        .ok(
            "NetworkDriver.CreateEndpoint",
            create_endpoint("192.168.1.50/32", "02:42:C0:A8:01:32"),
        )
        .await;
    assert_eq!(
        reply,
        json!({}),
        "libnetwork refuses a driver that changes the user's MAC"
    );
    h.ok("NetworkDriver.Join", join()).await;
    h.driver.settle().await;
    assert_eq!(
        h.links.calls()[1],
        "plumb cali0a930a258ae 192.168.1.50/32 02:42:c0:a8:01:32"
    );
    let weps = h.workload_endpoints().await;
    assert_eq!(
        weps[0].spec.mac.as_ref().expect("mac").to_string(),
        "02:42:c0:a8:01:32"
    );
}

#[tokio::test]
async fn ipv6_endpoints_get_the_host_link_local_as_gateway() {
    let (h, docker) = harness_with_docker(config());
    docker.add_network(NET, "net1");
    docker.add_container(EP, CTR, "workload-A", &[]);
    *h.links.link_local.lock().expect("lock") =
        Some("fe80::ecee:eeff:feee:eeee".parse().expect("ip"));
    let body = json!({
        "NetworkID": NET, "EndpointID": EP,
        "Interface": {"Address": "192.168.1.1/32", "AddressIPv6": "fd00:1::5/64", "MacAddress": ""}
    });
    h.ok("NetworkDriver.CreateEndpoint", body).await;
    let reply = h.ok("NetworkDriver.Join", join()).await;
    assert_eq!(reply["GatewayIPv6"], json!("fe80::ecee:eeff:feee:eeee"));
    assert_eq!(
        reply["StaticRoutes"][1],
        json!({"Destination": "fe80::ecee:eeff:feee:eeee/128", "RouteType": 1, "NextHop": ""})
    );
    h.driver.settle().await;
    let nets: Vec<String> = h.workload_endpoints().await[0]
        .spec
        .ip_networks
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(nets, vec!["192.168.1.1/32", "fd00:1::5/128"]);
}

#[tokio::test]
async fn failed_joins_undo_the_veth_and_write_nothing() {
    let (h, docker) = harness_with_docker(config());
    docker.add_network(NET, "net1");
    h.ok(
        "NetworkDriver.CreateEndpoint",
        create_endpoint("192.168.1.1/32", ""),
    )
    .await;

    *h.links.fail_create.lock().expect("lock") = Some("File exists".into());
    let reply = h.call("NetworkDriver.Join", join()).await;
    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.err(),
        "Veth creation error, hostInterfaceName=cali0a930a258ae, tempInterfaceName=temp0a930a258ae, vethMTU=0: File exists"
    );

    *h.links.fail_create.lock().expect("lock") = None;
    *h.links.fail_plumb.lock().expect("lock") = Some("no such device".into());
    let reply = h.call("NetworkDriver.Join", join()).await;
    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.err(),
        "Host interface cali0a930a258ae configuration error: no such device"
    );
    assert_eq!(
        h.links.calls().last().map(String::as_str),
        Some("remove cali0a930a258ae 192.168.1.1/32")
    );

    h.driver.settle().await;
    assert!(h.workload_endpoints().await.is_empty());
}

#[tokio::test]
async fn after_a_restart_leave_and_delete_use_the_stored_endpoint() {
    let (h, docker) = harness_with_docker(config());
    docker.add_network(NET, "net1");
    docker.add_container(EP, CTR, "workload-A", &[]);
    h.ok(
        "NetworkDriver.CreateEndpoint",
        create_endpoint("192.168.1.1/32", ""),
    )
    .await;
    h.ok("NetworkDriver.Join", join()).await;
    h.driver.settle().await;

    // A new plugin process on the same datastore.
    let Harness {
        dir,
        store,
        ipam,
        mut server,
        ..
    } = h;
    if let Some(server) = server.take() {
        server.shutdown().await;
    }
    let h = Harness::start_on(dir, store, config(), ipam, docker);
    h.ok("NetworkDriver.Leave", endpoint()).await;
    assert_eq!(
        h.links.calls(),
        vec!["remove cali0a930a258ae 192.168.1.1/32"]
    );
    h.ok("NetworkDriver.DeleteEndpoint", endpoint()).await;
    assert!(h.workload_endpoints().await.is_empty());
}

#[tokio::test]
async fn configuration_reaches_the_replies() {
    let mut config = config();
    config.scope = calico_libnetwork::Scope::Global;
    config.container_ifprefix = "eth".into();
    config.veth_mtu = Some(1440);
    let (h, docker) = harness_with_docker(config);
    docker.add_network(NET, "net1");
    let caps = h.ok("NetworkDriver.GetCapabilities", json!({})).await;
    assert_eq!(
        caps,
        json!({"Scope": "global", "ConnectivityScope": "global"})
    );
    h.ok(
        "NetworkDriver.CreateEndpoint",
        create_endpoint("192.168.1.1/32", ""),
    )
    .await;
    let reply = h.ok("NetworkDriver.Join", join()).await;
    assert_eq!(
        reply["InterfaceName"],
        json!({"SrcName": "temp0a930a258ae", "DstPrefix": "eth"})
    );
    assert_eq!(
        h.links.calls()[0],
        "create_veth cali0a930a258ae temp0a930a258ae Some(1440)"
    );
}

#[tokio::test]
async fn ipam_pools_and_addresses() {
    let h = Harness::start(config());
    let cases = [
        (
            json!({"AddressSpace": "CalicoLocalAddressSpace", "Options": {}, "Pool": "", "SubPool": "", "V6": false}),
            json!({"PoolID": "CalicoPoolIPv4", "Pool": "0.0.0.0/0", "Data": {"com.docker.network.gateway": "0.0.0.0/0"}}),
        ),
        (
            json!({"AddressSpace": "CalicoGlobalAddressSpace", "V6": true}),
            json!({"PoolID": "CalicoPoolIPv6", "Pool": "::/0", "Data": {"com.docker.network.gateway": "::/0"}}),
        ),
        (
            json!({"AddressSpace": "CalicoLocalAddressSpace", "Options": null, "Pool": "192.168.2.0/26"}),
            json!({"PoolID": "192.168.2.0/26", "Pool": "192.168.2.0/26", "Data": {"com.docker.network.gateway": "0.0.0.0/0"}}),
        ),
    ];
    for (request, reply) in cases {
        assert_eq!(h.ok("IpamDriver.RequestPool", request).await, reply);
    }
    let any = h
        .ok(
            "IpamDriver.RequestAddress",
            json!({"PoolID": "CalicoPoolIPv4", "Address": ""}),
        )
        .await;
    assert_eq!(any, json!({"Address": "192.168.1.1/32", "Data": {}}));
    let pooled = h
        .ok(
            "IpamDriver.RequestAddress",
            json!({"PoolID": "192.168.2.0/26", "Address": "", "Options": {}}),
        )
        .await;
    assert_eq!(pooled["Address"], json!("192.168.2.1/32"));
    let exact = h
        .ok(
            "IpamDriver.RequestAddress",
            json!({"PoolID": "192.168.1.0/26", "Address": "192.168.2.50"}),
        )
        .await;
    assert_eq!(
        exact["Address"],
        json!("192.168.2.50/32"),
        "--ip may come from any Calico pool"
    );

    for address in [
        "192.168.1.1",
        "192.168.2.1/32",
        "192.168.2.50",
        "0.0.0.0",
        "::",
        "10.1.1.1",
        "192.168.1.1",
    ] {
        let reply = h
            .ok(
                "IpamDriver.ReleaseAddress",
                json!({"PoolID": "CalicoPoolIPv4", "Address": address}),
            )
            .await;
        assert_eq!(reply, json!({}), "{address}");
    }
    assert!(h.ipam.assigned().is_empty());
    assert_eq!(
        h.ok(
            "IpamDriver.ReleasePool",
            json!({"PoolID": "CalicoPoolIPv4"})
        )
        .await,
        json!({})
    );
}

#[tokio::test]
async fn no_op_calls_answer_empty() {
    let h = Harness::start(config());
    let cases = [
        (
            "NetworkDriver.EndpointOperInfo",
            endpoint(),
            json!({"Value": {}}),
        ),
        (
            "NetworkDriver.DeleteNetwork",
            json!({"NetworkID": NET}),
            json!({}),
        ),
        (
            "NetworkDriver.DiscoverNew",
            json!({"DiscoveryType": 1, "DiscoveryData": {"Address": "10.10.0.11", "BindAddress": "", "Self": true}}),
            json!({}),
        ),
        (
            "NetworkDriver.DiscoverDelete",
            json!({"DiscoveryType": 1, "DiscoveryData": null}),
            json!({}),
        ),
        (
            "NetworkDriver.ProgramExternalConnectivity",
            join(),
            json!({}),
        ),
        (
            "NetworkDriver.RevokeExternalConnectivity",
            endpoint(),
            json!({}),
        ),
        (
            "NetworkDriver.AllocateNetwork",
            json!({"NetworkID": NET, "Options": {"a": "b"}, "IPv4Data": null}),
            json!({}),
        ),
        (
            "NetworkDriver.FreeNetwork",
            json!({"NetworkID": NET}),
            json!({}),
        ),
    ];
    for (call, request, reply) in cases {
        assert_eq!(h.ok(call, request).await, reply, "{call}");
    }
    assert!(h.snapshot().await.is_empty());
}
