//! Published ports (`docker run -p`): `ProgramExternalConnectivity`, `EndpointOperInfo`,
//! `RevokeExternalConnectivity`, `Leave` and `DeleteEndpoint` against a recording
//! `PortPublisher`, and adoption after a restart. The requests are the ones dockerd 20.10.24
//! and 28.5.2 sent for `docker run --net net1 -p 8080:80 -p 127.0.0.1:9000-9001:9000-9001/udp
//! --expose 7000 -P busybox`.

use std::net::IpAddr;

use calico_libnetwork::wire::{PortBinding, TransportPort};
use calico_libnetwork::{ExistingEndpoint, PublishedPort};
use serde_json::{json, Value};

use crate::support::{config, FakeAllocator, FakeDocker, Harness};

const NET: &str = "71b4a2c3444dff3420ebe9b44e42df9ce181ad5c223e1aeff4739f83cb9b2afe";
const EP: &str = "ebfb0a258ae710a61c05b34d4d14149e19cc89dfa2290f8194b989906ad9a4ab";
const EP2: &str = "ec0c2b258ae710a61c05b34d4d14149e19cc89dfa2290f8194b989906ad9a4ab";
const HOST_IF: &str = "caliebfb0a258ae";
const HOST_IF2: &str = "caliec0c2b258ae";
const TCP: u8 = 6;
const UDP: u8 = 17;

/// The options dockerd 20.10.24 sent.
fn docker_20_10_options() -> Value {
    json!({
        "com.docker.network.endpoint.exposedports": [{"Proto":17,"Port":9001},{"Proto":17,"Port":9000},{"Proto":6,"Port":80},{"Proto":6,"Port":7000}],
        "com.docker.network.portmap": [
            {"Proto":17,"IP":"","Port":9001,"HostIP":"127.0.0.1","HostPort":9001,"HostPortEnd":9001},
            {"Proto":17,"IP":"","Port":9000,"HostIP":"127.0.0.1","HostPort":9000,"HostPortEnd":9000},
            {"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,"HostPortEnd":8080},
            {"Proto":6,"IP":"","Port":7000,"HostIP":"","HostPort":0,"HostPortEnd":0}
        ]
    })
}

/// The options dockerd 28.5.2 sent: the same and one more.
fn docker_28_options() -> Value {
    let mut options = docker_20_10_options();
    options["com.docker.network.driver.private.no_proxy_6to4"] = json!(false);
    options
}

fn program(endpoint: &str, options: Value) -> Value {
    json!({"NetworkID": NET, "EndpointID": endpoint, "Options": options})
}

fn endpoint(endpoint: &str) -> Value {
    json!({"NetworkID": NET, "EndpointID": endpoint})
}

fn published(proto: u8, host_ip: Option<&str>, host_port: u16, port: u16) -> PublishedPort {
    PublishedPort {
        protocol: proto,
        host_ip: host_ip.map(|ip| ip.parse().expect("ip")),
        host_port,
        container_ip: "192.168.1.1".parse().expect("ip"),
        container_port: port,
    }
}

/// What the recorded request publishes for the first endpoint (192.168.1.1).
fn recorded_ports() -> Vec<PublishedPort> {
    vec![
        published(UDP, Some("127.0.0.1"), 9001, 9001),
        published(UDP, Some("127.0.0.1"), 9000, 9000),
        published(TCP, None, 8080, 80),
        published(TCP, None, 49153, 7000),
    ]
}

/// A plugin with network `net1` and joined endpoints `EP` (192.168.1.1) and `EP2`
/// (192.168.1.2).
async fn joined() -> Harness {
    let docker = FakeDocker::inventing_containers();
    docker.add_network(NET, "net1");
    let h = Harness::start_with(
        config(),
        FakeAllocator::new(&["192.168.1.0/26"], "192.168.1.0/26"),
        docker,
    );
    for (id, address) in [(EP, "192.168.1.1/32"), (EP2, "192.168.1.2/32")] {
        h.ok(
            "NetworkDriver.CreateEndpoint",
            json!({"NetworkID": NET, "EndpointID": id,
                   "Interface": {"Address": address, "AddressIPv6": "", "MacAddress": ""}}),
        )
        .await;
        h.ok(
            "NetworkDriver.Join",
            json!({"NetworkID": NET, "EndpointID": id, "SandboxKey": "/var/run/docker/netns/x"}),
        )
        .await;
    }
    h
}

#[tokio::test]
async fn the_recorded_requests_publish_and_report_the_bindings() {
    for options in [docker_20_10_options(), docker_28_options()] {
        let h = joined().await;
        assert_eq!(
            h.ok("NetworkDriver.EndpointOperInfo", endpoint(EP)).await,
            json!({"Value": {}}),
            "nothing before ProgramExternalConnectivity"
        );
        assert_eq!(
            h.ok(
                "NetworkDriver.ProgramExternalConnectivity",
                program(EP, options)
            )
            .await,
            json!({})
        );
        assert_eq!(
            h.ports.calls(),
            vec![(HOST_IF.to_owned(), recorded_ports())]
        );
        assert_eq!(
            h.ok("NetworkDriver.EndpointOperInfo", endpoint(EP)).await,
            json!({"Value": {
                "com.docker.network.portmap": [
                    {"Proto":17,"IP":"192.168.1.1","Port":9001,"HostIP":"127.0.0.1","HostPort":9001,"HostPortEnd":9001},
                    {"Proto":17,"IP":"192.168.1.1","Port":9000,"HostIP":"127.0.0.1","HostPort":9000,"HostPortEnd":9000},
                    {"Proto":6,"IP":"192.168.1.1","Port":80,"HostIP":"0.0.0.0","HostPort":8080,"HostPortEnd":8080},
                    {"Proto":6,"IP":"192.168.1.1","Port":7000,"HostIP":"0.0.0.0","HostPort":49153,"HostPortEnd":49153}
                ],
                "com.docker.network.endpoint.exposedports": [{"Proto":17,"Port":9001},{"Proto":17,"Port":9000},{"Proto":6,"Port":80},{"Proto":6,"Port":7000}]
            }})
        );
    }
}

#[tokio::test]
async fn a_taken_host_port_refuses_with_dockers_text_and_publishes_nothing() {
    let h = joined().await;
    h.ok(
        "NetworkDriver.ProgramExternalConnectivity",
        program(EP, docker_28_options()),
    )
    .await;
    let second = json!({"com.docker.network.portmap": [
        {"Proto":6,"IP":"","Port":81,"HostIP":"","HostPort":7070,"HostPortEnd":7070},
        {"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,"HostPortEnd":8080}
    ]});
    let reply = h
        .call(
            "NetworkDriver.ProgramExternalConnectivity",
            program(EP2, second),
        )
        .await;
    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.err(),
        "Bind for 0.0.0.0:8080 failed: port is already allocated"
    );
    assert_eq!(
        h.ports.calls().len(),
        1,
        "only the first endpoint published"
    );
    assert_eq!(
        h.ok("NetworkDriver.EndpointOperInfo", endpoint(EP2)).await,
        json!({"Value": {}})
    );
    // Another protocol, another port, or a range past the taken one is fine.
    let third = json!({"com.docker.network.portmap": [
        {"Proto":17,"IP":"","Port":80,"HostIP":"","HostPort":8080,"HostPortEnd":8080},
        {"Proto":6,"IP":"","Port":81,"HostIP":"","HostPort":8080,"HostPortEnd":8081},
        {"Proto":6,"IP":"","Port":82,"HostIP":"","HostPort":0,"HostPortEnd":0}
    ]});
    h.ok(
        "NetworkDriver.ProgramExternalConnectivity",
        program(EP2, third),
    )
    .await;
    let second_ip: IpAddr = "192.168.1.2".parse().expect("ip");
    let ports: Vec<(u8, u16, u16, IpAddr)> = h.ports.calls()[1]
        .1
        .iter()
        .map(|p| (p.protocol, p.host_port, p.container_port, p.container_ip))
        .collect();
    assert_eq!(
        ports,
        vec![
            (UDP, 8080, 80, second_ip),
            (TCP, 8081, 81, second_ip),
            (TCP, 49154, 82, second_ip)
        ]
    );
}

#[tokio::test]
async fn revoke_leave_and_delete_take_the_ports_away() {
    let h = joined().await;
    h.ok(
        "NetworkDriver.ProgramExternalConnectivity",
        program(EP, docker_28_options()),
    )
    .await;
    h.ok("NetworkDriver.RevokeExternalConnectivity", endpoint(EP))
        .await;
    assert_eq!(h.ports.calls()[1], (HOST_IF.to_owned(), vec![]));
    assert_eq!(
        h.ok("NetworkDriver.EndpointOperInfo", endpoint(EP)).await,
        json!({"Value": {}})
    );
    // The port is free again, and a Leave after Revoke has nothing to take away.
    let take_8080 = json!({"com.docker.network.portmap": [
        {"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,"HostPortEnd":8080}
    ]});
    h.ok(
        "NetworkDriver.ProgramExternalConnectivity",
        program(EP2, take_8080.clone()),
    )
    .await;
    h.ok("NetworkDriver.Leave", endpoint(EP)).await;
    assert_eq!(h.ports.calls().len(), 3);

    // Leave without Revoke takes them away; so does DeleteEndpoint without either.
    h.ok("NetworkDriver.Leave", endpoint(EP2)).await;
    assert_eq!(h.ports.calls()[3], (HOST_IF2.to_owned(), vec![]));
    h.ok(
        "NetworkDriver.ProgramExternalConnectivity",
        program(EP, take_8080),
    )
    .await;
    h.ok("NetworkDriver.DeleteEndpoint", endpoint(EP)).await;
    assert_eq!(h.ports.calls()[5], (HOST_IF.to_owned(), vec![]));
    assert_eq!(h.ports.calls().len(), 6);
}

#[tokio::test]
async fn a_container_without_ports_publishes_nothing() {
    let h = joined().await;
    let none =
        json!({"com.docker.network.endpoint.exposedports": [], "com.docker.network.portmap": []});
    h.ok(
        "NetworkDriver.ProgramExternalConnectivity",
        program(EP, none),
    )
    .await;
    h.ok("NetworkDriver.RevokeExternalConnectivity", endpoint(EP))
        .await;
    h.ok("NetworkDriver.Leave", endpoint(EP)).await;
    assert_eq!(h.ports.calls(), vec![]);
}

#[tokio::test]
async fn malformed_options_are_refused_and_nothing_is_published() {
    let h = joined().await;
    let cases = [
        (
            json!({"com.docker.network.portmap": "8080:80"}),
            "ProgramExternalConnectivity: option com.docker.network.portmap is not a list of port bindings {Proto, IP, Port, HostIP, HostPort, HostPortEnd}: invalid type: string \"8080:80\", expected a sequence",
        ),
        (
            json!({"com.docker.network.portmap": [{"Proto":6,"Port":70000,"HostPort":8080}]}),
            "ProgramExternalConnectivity: option com.docker.network.portmap is not a list of port bindings {Proto, IP, Port, HostIP, HostPort, HostPortEnd}: invalid value: integer `70000`, expected u16",
        ),
        (
            json!({"com.docker.network.endpoint.exposedports": [{"Proto":"tcp","Port":80}]}),
            "ProgramExternalConnectivity: option com.docker.network.endpoint.exposedports is not a list of ports {Proto, Port}: invalid type: string \"tcp\", expected u8",
        ),
        (
            json!({"com.docker.network.portmap": [{"Proto":6,"Port":80,"HostPort":8080}, {"Proto":1,"Port":80,"HostPort":8081}]}),
            "port binding 1 (80): protocol 1 is not supported; expected 6 (tcp), 17 (udp) or 132 (sctp)",
        ),
        (
            json!({"com.docker.network.portmap": [{"Proto":6,"Port":80,"HostPort":8080,"HostPortEnd":8000}]}),
            "port binding 0 (80/tcp): host ports 8080-8000 are not a range; expected HostPort 1-65535 and HostPortEnd 0 or from HostPort to 65535, or both 0 for any port",
        ),
        (
            json!({"com.docker.network.portmap": [{"Proto":6,"Port":80,"HostIP":"fd00::1","HostPort":8080}]}),
            "Bind for fd00::1:8080 failed: the endpoint has no IPv6 address to forward it to",
        ),
    ];
    for (options, text) in cases {
        let reply = h
            .call(
                "NetworkDriver.ProgramExternalConnectivity",
                program(EP, options.clone()),
            )
            .await;
        assert_eq!(reply.status, 500, "{options}");
        assert_eq!(reply.err(), text, "{options}");
    }
    assert_eq!(h.ports.calls(), vec![]);
    assert_eq!(
        h.ok("NetworkDriver.EndpointOperInfo", endpoint(EP)).await,
        json!({"Value": {}})
    );
    // Unknown options are ignored.
    h.ok(
        "NetworkDriver.ProgramExternalConnectivity",
        program(
            EP,
            json!({"com.docker.network.future": [1, 2], "com.docker.network.portmap": null}),
        ),
    )
    .await;
}

#[tokio::test]
async fn a_failed_publish_fails_the_call_and_records_nothing() {
    let h = joined().await;
    h.ports.fail_with("nft: table calico is busy");
    let reply = h
        .call(
            "NetworkDriver.ProgramExternalConnectivity",
            program(EP, docker_28_options()),
        )
        .await;
    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.err(),
        "Port publishing error, hostInterfaceName=caliebfb0a258ae: nft: table calico is busy"
    );
    assert_eq!(
        h.ok("NetworkDriver.EndpointOperInfo", endpoint(EP)).await,
        json!({"Value": {}})
    );
    // Nothing is held: the other endpoint gets the same ports.
    *h.ports.fail.lock().expect("lock") = None;
    h.ok(
        "NetworkDriver.ProgramExternalConnectivity",
        program(EP2, docker_28_options()),
    )
    .await;
    let calls = h.ports.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].0, HOST_IF2);
    assert_eq!(calls[1].1[2].host_port, 8080);
}

#[tokio::test]
async fn program_of_an_unknown_endpoint_is_refused() {
    let h = joined().await;
    let unknown = "fd".repeat(32);
    let reply = h
        .call(
            "NetworkDriver.ProgramExternalConnectivity",
            program(&unknown, docker_28_options()),
        )
        .await;
    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.err(),
        format!("Endpoint {unknown} was not created through this plugin process: CreateEndpoint must come before ProgramExternalConnectivity")
    );
    assert_eq!(h.ports.calls(), vec![]);
}

fn existing(id: &str, address: &str, ports: Vec<PortBinding>) -> ExistingEndpoint {
    existing_with(id, &[address], ports)
}

fn existing_with(id: &str, addresses: &[&str], ports: Vec<PortBinding>) -> ExistingEndpoint {
    ExistingEndpoint {
        network_id: NET.into(),
        network_name: "net1".into(),
        endpoint_id: id.into(),
        addrs: addresses.iter().map(|a| a.parse().expect("net")).collect(),
        mac: [0xee; 6],
        ports,
        exposed_ports: vec![TransportPort {
            proto: TCP,
            port: 80,
        }],
        recorded: false,
    }
}

fn binding(port: u16, host_port: u16) -> PortBinding {
    PortBinding {
        proto: TCP,
        port,
        host_port,
        host_port_end: host_port,
        ..PortBinding::default()
    }
}

#[tokio::test]
async fn adopted_endpoints_publish_their_ports_again() {
    let docker = FakeDocker::inventing_containers();
    docker.add_network(NET, "net1");
    let h = Harness::start_with(
        config(),
        FakeAllocator::new(&["192.168.1.0/26"], "192.168.1.0/26"),
        docker,
    );
    h.driver
        .adopt(existing(EP, "192.168.1.1/32", vec![binding(80, 8080)]))
        .await
        .expect("adopted");
    assert_eq!(
        h.ports.calls(),
        vec![(HOST_IF.to_owned(), vec![published(TCP, None, 8080, 80)])]
    );
    assert_eq!(
        h.ok("NetworkDriver.EndpointOperInfo", endpoint(EP)).await["Value"]
            ["com.docker.network.portmap"][0]["HostPort"],
        json!(8080)
    );
    // Adopting it again changes nothing; a conflicting one is adopted without its ports.
    h.driver
        .adopt(existing(EP, "192.168.1.1/32", vec![binding(80, 8080)]))
        .await
        .expect("adopted again");
    let error = h
        .driver
        .adopt(existing(EP2, "192.168.1.2/32", vec![binding(81, 8080)]))
        .await
        .expect_err("conflict");
    assert_eq!(
        error.to_string(),
        format!("the published ports of adopted endpoint {EP2} are not restored: Bind for 0.0.0.0:8080 failed: port is already allocated")
    );
    assert_eq!(h.ports.calls().len(), 1);
    assert!(h.driver.live_endpoint_ids().await.contains(EP2));
    h.driver.settle().await;
}

/// A plugin with network `net1` that has adopted nothing yet.
fn restarted() -> Harness {
    let docker = FakeDocker::inventing_containers();
    docker.add_network(NET, "net1");
    Harness::start_with(
        config(),
        FakeAllocator::new(&["192.168.1.0/26"], "192.168.1.0/26"),
        docker,
    )
}

#[tokio::test]
async fn a_restore_that_failed_is_tried_again_until_it_publishes() {
    let h = restarted();
    h.driver
        .adopt(existing(EP, "192.168.1.1/32", vec![binding(80, 8080)]))
        .await
        .expect("adopted");
    h.driver
        .adopt(existing(EP2, "192.168.1.2/32", vec![binding(81, 8080)]))
        .await
        .expect_err("8080 is held by EP");
    let failures = h.driver.restore_ports().await;
    assert_eq!(
        failures.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec![format!("the published ports of adopted endpoint {EP2} are not restored: Bind for 0.0.0.0:8080 failed: port is already allocated")],
        "still held"
    );
    assert_eq!(h.ports.calls().len(), 1);

    h.ok("NetworkDriver.RevokeExternalConnectivity", endpoint(EP))
        .await;
    assert!(h.driver.restore_ports().await.is_empty());
    let mut to_ep2 = published(TCP, None, 8080, 81);
    to_ep2.container_ip = "192.168.1.2".parse().expect("ip");
    assert_eq!(
        h.ports.calls()[2..],
        [(HOST_IF2.to_owned(), vec![to_ep2])],
        "EP's ports went, then EP2's came"
    );
    assert_eq!(
        h.ok("NetworkDriver.EndpointOperInfo", endpoint(EP2)).await["Value"]
            ["com.docker.network.portmap"][0]["Port"],
        json!(81)
    );
    assert!(h.driver.restore_ports().await.is_empty());
    assert_eq!(h.ports.calls().len(), 3, "restored once");
    h.driver.settle().await;
}

#[tokio::test]
async fn a_restore_the_publisher_failed_is_tried_again() {
    let h = restarted();
    h.ports.fail_with("the agent is not listening");
    let error = h
        .driver
        .adopt(existing(EP, "192.168.1.1/32", vec![binding(80, 8080)]))
        .await
        .expect_err("the publisher fails");
    assert!(
        error.to_string().starts_with(&format!(
            "the published ports of adopted endpoint {EP} are not restored: "
        )),
        "{error}"
    );
    assert_eq!(h.driver.restore_ports().await.len(), 1);
    h.ports.stop_failing();
    assert!(h.driver.restore_ports().await.is_empty());
    assert_eq!(
        h.ports.calls().last(),
        Some(&(HOST_IF.to_owned(), vec![published(TCP, None, 8080, 80)]))
    );
    assert_eq!(h.ports.calls().len(), 3);
    assert!(h.driver.restore_ports().await.is_empty());
    assert_eq!(h.ports.calls().len(), 3);
    h.driver.settle().await;
}

#[tokio::test]
async fn ports_revoked_or_programmed_meanwhile_are_not_restored() {
    let h = restarted();
    h.ports.fail_with("the agent is not listening");
    for id in [EP, EP2] {
        let address = if id == EP {
            "192.168.1.1/32"
        } else {
            "192.168.1.2/32"
        };
        h.driver
            .adopt(existing(id, address, vec![binding(80, 8080)]))
            .await
            .expect_err("the publisher fails");
    }
    h.ports.stop_failing();
    h.ok("NetworkDriver.RevokeExternalConnectivity", endpoint(EP))
        .await;
    h.ok(
        "NetworkDriver.ProgramExternalConnectivity",
        program(EP2, json!({})),
    )
    .await;
    let before = h.ports.calls().len();
    assert!(h.driver.restore_ports().await.is_empty());
    assert_eq!(h.ports.calls().len(), before, "nothing left to restore");
    h.driver.settle().await;
}

#[tokio::test]
async fn an_adopted_dual_stack_endpoint_gets_its_ipv6_ports_too() {
    let h = restarted();
    let v6_binding = PortBinding {
        host_ip: "fd00::9".into(),
        ..binding(81, 8081)
    };
    h.driver
        .adopt(existing_with(
            EP,
            &["192.168.1.1/32", "fd80::1/128"],
            vec![binding(80, 8080), v6_binding],
        ))
        .await
        .expect("adopted");
    let v4: IpAddr = "192.168.1.1".parse().expect("ip");
    let v6: IpAddr = "fd80::1".parse().expect("ip");
    let to = |host_ip: Option<&str>, host_port, container_ip, container_port| PublishedPort {
        protocol: TCP,
        host_ip: host_ip.map(|ip| ip.parse().expect("ip")),
        host_port,
        container_ip,
        container_port,
    };
    assert_eq!(
        h.ports.calls(),
        vec![(
            HOST_IF.to_owned(),
            vec![
                to(None, 8080, v4, 80),
                to(None, 8080, v6, 80),
                to(Some("fd00::9"), 8081, v6, 81),
            ]
        )]
    );
    h.driver.settle().await;
}

#[tokio::test]
async fn an_adopted_endpoint_is_recorded_unless_the_datastore_has_it() {
    let h = restarted();
    h.driver
        .adopt(existing_with(
            EP,
            &["192.168.1.1/32", "fd80::1/128"],
            Vec::new(),
        ))
        .await
        .expect("adopted");
    let recorded = ExistingEndpoint {
        recorded: true,
        ..existing(EP2, "192.168.1.2/32", vec![binding(80, 8080)])
    };
    h.driver.adopt(recorded).await.expect("adopted");
    h.driver.settle().await;
    let stored: Vec<(String, Vec<String>)> = h
        .workload_endpoints()
        .await
        .into_iter()
        .map(|w| {
            let addrs = w.spec.ip_networks.iter().map(ToString::to_string).collect();
            (w.metadata.name, addrs)
        })
        .collect();
    assert_eq!(
        stored,
        vec![(
            EP.to_owned(),
            vec!["192.168.1.1/32".to_owned(), "fd80::1/128".to_owned()]
        )]
    );
    assert_eq!(
        h.ports.calls().len(),
        1,
        "the recorded one's ports are published"
    );
    assert_eq!(h.driver.live_endpoint_ids().await.len(), 2);
}
