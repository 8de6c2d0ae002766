//! Every refusal, with Calico's exact text, and every malformed request: each answers
//! `{"Err": ...}` with a 4xx/5xx status and leaves the datastore, IPAM and host untouched.

use serde_json::{json, Value};

use crate::support::{config, post, request, Harness};

const NET: &str = "759a2c3444dff3420ebe9b44e42df9ce181ad5c223e1aeff4739f83cb9b2afe4";
const EP: &str = "0a930a258ae710a61c05b34d4d14149e19cc89dfa2290f8194b989906ad9a4ab";

fn calico_network() -> Value {
    json!({
        "NetworkID": NET,
        "IPv4Data": [{"AddressSpace": "CalicoLocalAddressSpace", "Gateway": "0.0.0.0/0", "Pool": "0.0.0.0/0"}],
        "IPv6Data": [],
        "Options": {"com.docker.network.enable_ipv6": false, "com.docker.network.generic": {}}
    })
}

fn with(mut base: Value, path: &[&str], value: Value) -> Value {
    let (last, parents) = path.split_last().expect("path");
    let mut at = &mut base;
    for p in parents {
        at = match p.parse::<usize>() {
            Ok(index) => at.get_mut(index),
            Err(_) => at.get_mut(*p),
        }
        .expect("path exists");
    }
    at[*last] = value;
    base
}

fn endpoint(interface: Value) -> Value {
    json!({"NetworkID": NET, "EndpointID": EP, "Interface": interface, "Options": {}})
}

/// A harness where `192.168.1.9` is already assigned and Docker knows nothing.
async fn harness() -> Harness {
    let h = Harness::start(config());
    h.ok(
        "IpamDriver.RequestAddress",
        json!({"PoolID": "192.168.1.0/26", "Address": "192.168.1.9", "Options": null}),
    )
    .await;
    h
}

#[tokio::test]
async fn refusals_have_calicos_texts_and_change_nothing() {
    let unknown_endpoint = format!(
        "Endpoint {EP} is unknown on node calico-01: no CreateEndpoint for it was seen and no workload endpoint for it is stored"
    );
    let not_created = format!(
        "Endpoint {EP} was not created through this plugin process: CreateEndpoint must come before Join"
    );
    let no_network = format!("Network {NET} inspection error: Docker has no network with this ID");
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "NetworkDriver.CreateNetwork",
            with(calico_network(), &["Options", "com.docker.network.internal"], json!(true)),
            "Calico driver does not support the flag --internal.",
        ),
        (
            "NetworkDriver.CreateNetwork",
            with(calico_network(), &["Options", "com.docker.network.generic"], json!({"foo": "bar"})),
            "Calico driver does not support the flag foo.",
        ),
        (
            "NetworkDriver.CreateNetwork",
            with(calico_network(), &["Options", "com.docker.network.generic"], json!({"zeta": "1", "alpha": "2"})),
            "Calico driver does not support the flags alpha, zeta.",
        ),
        (
            "NetworkDriver.CreateNetwork",
            with(calico_network(), &["IPv4Data", "0", "Gateway"], json!("172.18.0.1/16")),
            "Non-Calico IPAM driver is used. Note: Docker before 1.12.3 is unsupported",
        ),
        (
            "NetworkDriver.CreateNetwork",
            with(calico_network(), &["IPv6Data"], json!([{"AddressSpace": "LocalDefault", "Pool": "fd00::/64", "Gateway": "fd00::1/64"}])),
            "Non-Calico IPAM driver is used",
        ),
        (
            "IpamDriver.RequestPool",
            json!({"AddressSpace": "CalicoLocalAddressSpace", "Pool": "192.168.1.0/26", "SubPool": "192.168.1.0/28", "Options": {}, "V6": false}),
            "Calico IPAM does not support sub pool configuration on 'docker create network'. Calico IP Pools should be configured first and IP assignment is from those pre-configured pools.",
        ),
        (
            "IpamDriver.RequestPool",
            json!({"AddressSpace": "CalicoLocalAddressSpace", "Pool": "", "SubPool": "", "Options": {"foo": "bar"}, "V6": false}),
            "Arbitrary options are not supported",
        ),
        (
            "IpamDriver.RequestPool",
            json!({"AddressSpace": "CalicoLocalAddressSpace", "Pool": "192.168.1.0", "V6": false}),
            "Invalid CIDR",
        ),
        (
            "IpamDriver.RequestPool",
            json!({"AddressSpace": "CalicoLocalAddressSpace", "Pool": "10.0.0.0/24", "V6": false}),
            "The requested subnet must match the CIDR of a configured Calico IP Pool.",
        ),
        (
            "IpamDriver.RequestPool",
            json!({"AddressSpace": "CalicoLocalAddressSpace", "Pool": "192.168.0.0/16", "V6": false}),
            "The requested subnet must match the CIDR of a configured Calico IP Pool.",
        ),
        (
            "IpamDriver.RequestAddress",
            json!({"PoolID": "192.168.1.0/26", "Address": "", "Options": {"RequestAddressType": "com.docker.network.gateway"}}),
            "Calico IPAM does not support specifying a gateway.",
        ),
        (
            "IpamDriver.RequestAddress",
            json!({"PoolID": "10.9.0.0/26", "Address": "", "Options": null}),
            "The network references a Calico pool which has been deleted. Please re-instate the Calico pool before using the network.",
        ),
        (
            "IpamDriver.RequestAddress",
            json!({"PoolID": "banana", "Address": "", "Options": null}),
            "Invalid CIDR - banana: invalid IP address syntax: expected CalicoPoolIPv4, CalicoPoolIPv6 or a pool CIDR",
        ),
        (
            "IpamDriver.RequestAddress",
            json!({"PoolID": "CalicoPoolIPv6", "Address": "", "Options": null}),
            "IP assignment error: no configured Calico IPv6 pools",
        ),
        (
            "IpamDriver.RequestAddress",
            json!({"PoolID": "CalicoPoolIPv4", "Address": "10.0.0.5", "Options": null}),
            "IP assignment error: 10.0.0.5 is not in any configured Calico IP pool",
        ),
        (
            "IpamDriver.RequestAddress",
            json!({"PoolID": "192.168.1.0/26", "Address": "192.168.1.9", "Options": null}),
            "IP assignment error: Address already assigned in block",
        ),
        (
            "IpamDriver.RequestAddress",
            json!({"PoolID": "CalicoPoolIPv4", "Address": "192.168.1.300", "Options": null}),
            "IP assignment error: '192.168.1.300' is not an IP address (expected e.g. 192.168.1.50)",
        ),
        (
            "IpamDriver.ReleaseAddress",
            json!({"PoolID": "CalicoPoolIPv4", "Address": "banana"}),
            "IP releasing error, ip: banana: not an IP address (expected e.g. 192.168.1.50)",
        ),
        (
            "NetworkDriver.CreateEndpoint",
            endpoint(json!({"Address": "", "AddressIPv6": "", "MacAddress": ""})),
            "No address assigned for endpoint",
        ),
        (
            "NetworkDriver.CreateEndpoint",
            endpoint(json!(null)),
            "No address assigned for endpoint",
        ),
        (
            "NetworkDriver.CreateEndpoint",
            endpoint(json!({"Address": "192.168.1.1/32", "MacAddress": "zz:42:c0:a8:01:32"})),
            "Error parsing MAC address: invalid MAC address 'zz:42:c0:a8:01:32': expected 6, 8 or 20 hex bytes such as ee:ee:ee:ee:ee:ee",
        ),
        (
            "NetworkDriver.CreateEndpoint",
            endpoint(json!({"Address": "192.168.1.1/32"})),
            &no_network,
        ),
        (
            "NetworkDriver.CreateEndpoint",
            endpoint(json!({"Address": "fd00::1/128"})),
            "Parsing fd00::1/128 as CIDR failed: Address must be an IPv4 address",
        ),
        (
            "NetworkDriver.Join",
            json!({"NetworkID": NET, "EndpointID": EP, "SandboxKey": "/var/run/docker/netns/x", "Options": {}}),
            &not_created,
        ),
        ("NetworkDriver.Leave", json!({"NetworkID": NET, "EndpointID": EP}), &unknown_endpoint),
        ("NetworkDriver.DeleteEndpoint", json!({"NetworkID": NET, "EndpointID": EP}), &unknown_endpoint),
    ];
    let h = harness().await;
    let before = h.snapshot().await;
    let assigned = h.ipam.assigned();
    for (call, body, err) in cases {
        let reply = h.call(call, body.clone()).await;
        assert_eq!(reply.status, 500, "{call} {body}: {}", reply.body);
        assert_eq!(reply.body, json!({ "Err": err }), "{call} {body}");
    }
    h.driver.settle().await;
    assert_eq!(h.snapshot().await, before, "the datastore is unchanged");
    assert_eq!(
        h.ipam.assigned(),
        assigned,
        "no address was assigned or released"
    );
    assert!(h.links.calls().is_empty(), "no host interface was touched");
}

#[tokio::test]
async fn malformed_requests_are_400s_that_change_nothing() {
    let cases: Vec<(&str, &[u8], &str)> = vec![
        ("NetworkDriver.CreateNetwork", b"{", "NetworkDriver.CreateNetwork: invalid request body: EOF while parsing an object at line 1 column 1"),
        ("NetworkDriver.CreateNetwork", b"", "NetworkDriver.CreateNetwork: empty request body; expected a JSON object"),
        ("NetworkDriver.CreateNetwork", b" \n", "NetworkDriver.CreateNetwork: empty request body; expected a JSON object"),
        ("NetworkDriver.CreateNetwork", b"null", "NetworkDriver.CreateNetwork: invalid request body: expected a JSON object"),
        ("NetworkDriver.CreateNetwork", br#"["n1"]"#, "NetworkDriver.CreateNetwork: invalid request body: expected a JSON object"),
        ("NetworkDriver.CreateNetwork", b"{}", "NetworkDriver.CreateNetwork: invalid request body: missing field `NetworkID` at line 1 column 2"),
        ("NetworkDriver.CreateNetwork", br#"{"NetworkID": 5}"#, "NetworkDriver.CreateNetwork: invalid request body: invalid type: integer `5`, expected a string at line 1 column 15"),
        ("NetworkDriver.CreateNetwork", br#"{"NetworkID": "n1", "Options": []}"#, "NetworkDriver.CreateNetwork: invalid request body: invalid type: sequence, expected a map at line 1 column 31"),
        ("NetworkDriver.CreateNetwork", br#"{"NetworkID": "../../etc"}"#, "NetworkDriver.CreateNetwork: invalid request body: \"../../etc\" is not a Docker ID: expected 1-128 ASCII letters or digits at line 1 column 26"),
        ("NetworkDriver.CreateEndpoint", br#"{"NetworkID": "n1", "Interface": {"Address": "192.168.1.1/32"}}"#, "NetworkDriver.CreateEndpoint: invalid request body: missing field `EndpointID` at line 1 column 63"),
        ("NetworkDriver.CreateEndpoint", br#"{"NetworkID": "n1", "EndpointID": "", "Interface": {"Address": "192.168.1.1/32"}}"#, "NetworkDriver.CreateEndpoint: invalid request body: \"\" is not a Docker ID: expected 1-128 ASCII letters or digits at line 1 column 36"),
        ("NetworkDriver.CreateEndpoint", br#"{"NetworkID": "n1", "EndpointID": "e1", "Interface": {"Address": 7}}"#, "NetworkDriver.CreateEndpoint: invalid request body: invalid type: integer `7`, expected a string at line 1 column 66"),
        ("NetworkDriver.Join", b"\xff\xfe\x00garbage", "NetworkDriver.Join: invalid request body: expected a JSON object"),
        ("NetworkDriver.Join", b"{\xff}", "NetworkDriver.Join: invalid request body: key must be a string at line 1 column 2"),
        ("NetworkDriver.Leave", br#"{"EndpointID": "e1"}"#, "NetworkDriver.Leave: invalid request body: missing field `NetworkID` at line 1 column 20"),
        ("NetworkDriver.DeleteEndpoint", br#"{"NetworkID": "n1"}"#, "NetworkDriver.DeleteEndpoint: invalid request body: missing field `EndpointID` at line 1 column 19"),
        ("IpamDriver.RequestPool", br#"{"V6": "yes"}"#, "IpamDriver.RequestPool: invalid request body: invalid type: string \"yes\", expected a boolean at line 1 column 12"),
        ("IpamDriver.RequestPool", br#"{"Options": {"a": 1}}"#, "IpamDriver.RequestPool: invalid request body: invalid type: integer `1`, expected a string at line 1 column 19"),
        ("IpamDriver.RequestAddress", br#"{"Address": ""}"#, "IpamDriver.RequestAddress: invalid request body: missing field `PoolID` at line 1 column 15"),
        ("IpamDriver.ReleaseAddress", br#"{"PoolID": "CalicoPoolIPv4"}"#, "IpamDriver.ReleaseAddress: invalid request body: missing field `Address` at line 1 column 28"),
        ("IpamDriver.ReleaseAddress", b"", "IpamDriver.ReleaseAddress: empty request body; expected a JSON object"),
    ];
    let h = harness().await;
    let before = h.snapshot().await;
    let assigned = h.ipam.assigned();
    for (call, body, err) in cases {
        let socket = if call.starts_with("IpamDriver.") {
            h.ipam_socket()
        } else {
            h.network_socket()
        };
        let reply = post(&socket, &format!("/{call}"), body.to_vec()).await;
        let shown = String::from_utf8_lossy(body);
        assert_eq!(reply.status, 400, "{call} {shown}: {}", reply.body);
        assert_eq!(reply.err(), err, "{call} {shown}");
    }
    h.driver.settle().await;
    assert_eq!(h.snapshot().await, before, "the datastore is unchanged");
    assert_eq!(
        h.ipam.assigned(),
        assigned,
        "no address was assigned or released"
    );
    assert!(h.links.calls().is_empty(), "no host interface was touched");
}

#[tokio::test]
async fn unknown_paths_and_methods_are_refused_as_json() {
    let h = Harness::start(config());
    let network = h.network_socket();
    let ipam = h.ipam_socket();
    let cases = [
        (
            &network,
            "POST",
            "/NetworkDriver.Nope",
            404,
            "/NetworkDriver.Nope is not a call this plugin implements on this socket",
        ),
        (
            &network,
            "POST",
            "/",
            404,
            "/ is not a call this plugin implements on this socket",
        ),
        (
            &ipam,
            "POST",
            "/NetworkDriver.CreateNetwork",
            404,
            "/NetworkDriver.CreateNetwork is not a call this plugin implements on this socket",
        ),
        (
            &network,
            "GET",
            "/Plugin.Activate",
            405,
            "Plugin.Activate takes POST, not GET",
        ),
    ];
    for (socket, method, path, status, err) in cases {
        let reply = request(socket, method, path, bytes::Bytes::new()).await;
        assert_eq!(reply.status, status, "{method} {path}");
        assert_eq!(reply.err(), err, "{method} {path}");
        assert_eq!(reply.content_type, calico_libnetwork::wire::CONTENT_TYPE);
    }
}

#[tokio::test]
async fn calls_without_arguments_ignore_the_body() {
    let h = Harness::start(config());
    for body in [&b""[..], b"{}", b"null", b"{\"x\": [1]}", b"\x00 not json"] {
        for (call, reply) in [
            (
                "Plugin.Activate",
                json!({"Implements": ["NetworkDriver", "IpamDriver"]}),
            ),
            (
                "NetworkDriver.GetCapabilities",
                json!({"Scope": "local", "ConnectivityScope": "local"}),
            ),
            (
                "IpamDriver.GetCapabilities",
                json!({"RequiresMACAddress": false}),
            ),
            (
                "IpamDriver.GetDefaultAddressSpaces",
                json!({"LocalDefaultAddressSpace": "CalicoLocalAddressSpace", "GlobalDefaultAddressSpace": "CalicoGlobalAddressSpace"}),
            ),
        ] {
            let got = post(&h.network_socket(), &format!("/{call}"), body.to_vec()).await;
            assert_eq!((got.status, &got.body), (200, &reply), "{call} {body:?}");
        }
    }
    let got = post(&h.ipam_socket(), "/Plugin.Activate", Vec::new()).await;
    assert_eq!(got.body, json!({"Implements": ["IpamDriver"]}));
}
