//! Replays recorded plugin exchanges and insists on the same answers: the 100 request/response
//! pairs dockerd 20.10.24 exchanged with a Calico-like toy plugin
//! (`tests/data/docker-plugin-calls.sample.jsonl`), except where Calico deliberately differs from
//! the toy, and the 79 dockerd 28.5.2 exchanged with calico-node itself
//! (`tests/data/docker-28-plugin-calls.jsonl`), Docker 28's request shapes included.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use calico_libnetwork::wire::CONTENT_TYPE;
use calico_libnetwork::PublishedPort;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::support::{config, post, FakeAllocator, FakeDocker, Harness};

const DOCKER_20_10_TOY: &str = include_str!("../data/docker-plugin-calls.sample.jsonl");
const DOCKER_28_CALICO: &str = include_str!("../data/docker-28-plugin-calls.jsonl");

#[derive(Debug, Deserialize)]
struct Recorded {
    scenario: String,
    host: String,
    call: String,
    /// `null`: Docker sent no body (it sends none to `Plugin.Activate`, `GetCapabilities`, ...).
    request: Value,
    response: Value,
    http_status: u16,
}

/// Where Calico answers differently from the toy plugin, and why.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Divergence {
    /// `calico.sock` implements both drivers (so `--ipam-driver calico` works).
    ActivateBoth,
    /// Calico refuses `-o foo=bar`.
    GenericOption,
    /// Calico refuses `--internal`.
    Internal,
    /// Calico publishes `-p` ports and reports them in `EndpointOperInfo`; the toy did not.
    PublishedPorts,
}

fn expected(rec: &Recorded) -> (u16, Value, Option<Divergence>) {
    match rec.call.as_str() {
        "Plugin.Activate" if rec.response["Implements"] == json!(["NetworkDriver"]) => (
            200,
            json!({"Implements": ["NetworkDriver", "IpamDriver"]}),
            Some(Divergence::ActivateBoth),
        ),
        "NetworkDriver.CreateNetwork" => {
            let options = &rec.request["Options"];
            if options["com.docker.network.internal"] == json!(true) {
                let err = "Calico driver does not support the flag --internal.";
                (500, json!({ "Err": err }), Some(Divergence::Internal))
            } else if options["com.docker.network.generic"] == json!({"foo": "bar"}) {
                let err = "Calico driver does not support the flag foo.";
                (500, json!({ "Err": err }), Some(Divergence::GenericOption))
            } else {
                (rec.http_status, rec.response.clone(), None)
            }
        }
        _ => (rec.http_status, rec.response.clone(), None),
    }
}

/// What `EndpointOperInfo` reports, and the ports published, after a
/// `ProgramExternalConnectivity` with fixed host ports for an endpoint at `address`.
fn programmed(request: &Value, address: &str) -> (Value, Vec<PublishedPort>) {
    let ip: IpAddr = address.split('/').next().expect("ip").parse().expect("ip");
    let options = &request["Options"];
    let mut reported = Vec::new();
    let mut published = Vec::new();
    for b in options["com.docker.network.portmap"]
        .as_array()
        .expect("portmap")
    {
        let host_port = b["HostPort"].as_u64().expect("host port");
        assert_ne!(host_port, 0, "the recordings ask for fixed host ports only");
        let host_ip = b["HostIP"].as_str().expect("host ip");
        reported.push(json!({
            "Proto": b["Proto"], "IP": ip.to_string(), "Port": b["Port"],
            "HostIP": if host_ip.is_empty() { "0.0.0.0" } else { host_ip },
            "HostPort": host_port, "HostPortEnd": host_port,
        }));
        published.push(PublishedPort {
            protocol: b["Proto"].as_u64().expect("proto") as u8,
            host_ip: (!host_ip.is_empty()).then(|| host_ip.parse().expect("host ip")),
            host_port: host_port as u16,
            container_ip: ip,
            container_port: b["Port"].as_u64().expect("port") as u16,
        });
    }
    let value = json!({
        "com.docker.network.portmap": reported,
        "com.docker.network.endpoint.exposedports": options["com.docker.network.endpoint.exposedports"],
    });
    (value, published)
}

/// What one endpoint should end up as in the datastore.
struct Expected {
    network: String,
    address: String,
    mac: String,
}

#[tokio::test]
async fn every_call_docker_20_10_made_gets_calicos_answer() {
    let (replayed, mut divergences) = replay(DOCKER_20_10_TOY).await;
    assert_eq!(replayed, 100);
    divergences.sort();
    divergences.dedup();
    assert_eq!(
        divergences,
        vec![
            Divergence::ActivateBoth,
            Divergence::GenericOption,
            Divergence::Internal,
            Divergence::PublishedPorts
        ],
        "every documented divergence is exercised"
    );
}

#[tokio::test]
async fn every_call_docker_28_made_gets_the_answer_calico_node_gave() {
    let (replayed, divergences) = replay(DOCKER_28_CALICO).await;
    assert_eq!(replayed, 79);
    assert_eq!(
        divergences,
        vec![],
        "calico-node's own answers were recorded"
    );
}

/// Replays every recorded call against a fresh plugin per (scenario, host), checks each answer
/// and the resulting IPAM, host-link and datastore state; returns how many calls it replayed
/// and where the recording's answers differ from Calico's.
async fn replay(calls: &str) -> (usize, Vec<Divergence>) {
    let records: Vec<Recorded> = calls
        .lines()
        .map(|l| serde_json::from_str(l).expect("recorded call"))
        .collect();

    // One fresh plugin per (scenario, host), in order of first appearance.
    let mut groups: Vec<((String, String), Vec<&Recorded>)> = Vec::new();
    for rec in &records {
        let key = (rec.scenario.clone(), rec.host.clone());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, group)) => group.push(rec),
            None => groups.push((key, vec![rec])),
        }
    }

    let mut replayed = 0;
    let mut divergences = Vec::new();
    for ((scenario, host), group) in groups {
        let mut config = config();
        if let Some(caps) = group
            .iter()
            .find(|r| r.call == "NetworkDriver.GetCapabilities")
        {
            config.scope = caps.response["Scope"]
                .as_str()
                .expect("scope")
                .parse()
                .expect("local or global");
        }
        let home_block = if host == "calico-02" {
            "192.168.2.0/26"
        } else {
            "192.168.1.0/26"
        };
        let docker = FakeDocker::inventing_containers();
        let mut names = BTreeMap::new();
        for rec in &group {
            if let Some(id) = rec.request["NetworkID"].as_str() {
                if !names.contains_key(id) {
                    let name = format!("net{}", names.len() + 1);
                    docker.add_network(id, &name);
                    names.insert(id.to_owned(), name);
                }
            }
        }
        let ipam = FakeAllocator::new(&["192.168.1.0/26", "192.168.2.0/26"], home_block);
        let h = Harness::start_with(config, ipam, docker);

        let mut created: BTreeMap<String, Expected> = BTreeMap::new();
        let mut joined: BTreeSet<String> = BTreeSet::new();
        let mut assigned: BTreeSet<IpAddr> = BTreeSet::new();
        let mut link_calls = Vec::new();
        let mut oper_info: BTreeMap<String, Value> = BTreeMap::new();
        let mut port_calls = Vec::new();
        for (i, rec) in group.iter().enumerate() {
            let req = &rec.request;
            let endpoint = req["EndpointID"].as_str().unwrap_or_default().to_owned();
            let ipam_socket = rec.call.starts_with("IpamDriver.")
                || rec.response["Implements"] == json!(["IpamDriver"]);
            let socket = if ipam_socket {
                h.ipam_socket()
            } else {
                h.network_socket()
            };
            let body = match &rec.request {
                Value::Null => String::new(),
                request => request.to_string(),
            };
            let reply = post(&socket, &format!("/{}", rec.call), body).await;
            let (status, body, divergence) = match oper_info.get(&endpoint) {
                Some(value) if rec.call == "NetworkDriver.EndpointOperInfo" => (
                    200,
                    json!({ "Value": value }),
                    Some(Divergence::PublishedPorts),
                ),
                _ => expected(rec),
            };
            let context = format!("{scenario} / {host} #{i} {}: {}", rec.call, rec.request);
            assert_eq!(reply.status, status, "{context}");
            assert_eq!(reply.body, body, "{context}");
            assert_eq!(reply.content_type, CONTENT_TYPE, "{context}");
            if (status, &body) != (rec.http_status, &rec.response) {
                divergences.extend(divergence);
            }
            replayed += 1;

            match rec.call.as_str() {
                "NetworkDriver.ProgramExternalConnectivity"
                    if req["Options"]["com.docker.network.portmap"]
                        .as_array()
                        .is_some_and(|m| !m.is_empty()) =>
                {
                    let (value, published) = programmed(req, &created[&endpoint].address);
                    oper_info.insert(endpoint.clone(), value);
                    port_calls.push((format!("cali{}", &endpoint[..11]), published));
                }
                "NetworkDriver.RevokeExternalConnectivity"
                    if oper_info.remove(&endpoint).is_some() =>
                {
                    port_calls.push((format!("cali{}", &endpoint[..11]), vec![]));
                }
                "IpamDriver.RequestAddress" => {
                    let address = body["Address"].as_str().expect("address");
                    let ip = address.split('/').next().expect("ip").parse().expect("ip");
                    assigned.insert(ip);
                }
                "IpamDriver.ReleaseAddress" => {
                    let ip: IpAddr = req["Address"].as_str().expect("ip").parse().expect("ip");
                    assigned.remove(&ip);
                }
                "NetworkDriver.CreateEndpoint" => {
                    let iface = &req["Interface"];
                    let address = iface["Address"].as_str().expect("address");
                    let mac = match iface["MacAddress"].as_str().expect("mac") {
                        "" => "ee:ee:ee:ee:ee:ee",
                        user => user,
                    };
                    let network = &names[req["NetworkID"].as_str().expect("network")];
                    created.insert(
                        endpoint,
                        Expected {
                            network: network.clone(),
                            address: address.to_owned(),
                            mac: mac.to_owned(),
                        },
                    );
                }
                "NetworkDriver.Join" => {
                    let ep = &created[&endpoint];
                    let short = &endpoint[..11];
                    link_calls.push(format!("create_veth cali{short} temp{short} None"));
                    link_calls.push(format!("plumb cali{short} {} {}", ep.address, ep.mac));
                    joined.insert(endpoint);
                }
                "NetworkDriver.Leave" => {
                    let short = &endpoint[..11];
                    link_calls.push(format!("remove cali{short} {}", created[&endpoint].address));
                }
                "NetworkDriver.DeleteEndpoint" => {
                    created.remove(&endpoint);
                    joined.remove(&endpoint);
                }
                _ => {}
            }
        }

        h.driver.settle().await;
        let context = format!("{scenario} / {host}");
        assert_eq!(h.ipam.assigned(), assigned, "{context}: IPAM state");
        assert_eq!(h.links.calls(), link_calls, "{context}: host links");
        assert_eq!(h.ports.calls(), port_calls, "{context}: published ports");
        let weps = h.workload_endpoints().await;
        let names_written: BTreeSet<String> =
            weps.iter().map(|w| w.metadata.name.clone()).collect();
        assert_eq!(names_written, joined, "{context}: workload endpoints");
        for wep in &weps {
            let id = &wep.metadata.name;
            let ep = &created[id];
            assert_eq!(wep.metadata.orchestrator, "libnetwork");
            assert_eq!(wep.metadata.workload, FakeDocker::invented_name(id));
            assert_eq!(wep.metadata.active_instance_id, format!("c{id}"));
            assert_eq!(wep.spec.interface_name, format!("cali{}", &id[..11]));
            assert_eq!(wep.spec.profiles, vec![ep.network.clone()]);
            let nets: Vec<String> = wep.spec.ip_networks.iter().map(|n| n.to_string()).collect();
            assert_eq!(nets, vec![ep.address.clone()]);
            assert_eq!(
                wep.spec.mac.as_ref().map(|m| m.to_string()),
                Some(ep.mac.clone())
            );
            assert!(
                h.profile(&ep.network).await.is_some(),
                "{context}: profile {}",
                ep.network
            );
        }
    }
    (replayed, divergences)
}
