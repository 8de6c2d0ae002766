//! Encoding: calicoctl's YAML and JSON output formats.

use calico_model::codec::{decode, to_json, to_yaml};

use calico_testkit::tutorial::{NET1_PROFILE, PROFILES_WITH_RULES};

#[test]
fn docker_network_profile_prints_like_calicoctl() {
    let input = "kind: profile\napiVersion: v1\nmetadata: {name: net1, tags: [net1]}\nspec:\n  ingress: [{action: allow, source: {tag: net1}, destination: {}}]\n  egress: [{action: allow, source: {}}]\n";
    let resources = decode(input).unwrap();
    assert_eq!(to_yaml(&resources), NET1_PROFILE);
    assert_eq!(
        to_json(&resources),
        r#"[
  {
    "kind": "profile",
    "apiVersion": "v1",
    "metadata": {
      "name": "net1",
      "tags": [
        "net1"
      ]
    },
    "spec": {
      "ingress": [
        {
          "action": "allow",
          "source": {
            "tag": "net1"
          }
        }
      ],
      "egress": [
        {
          "action": "allow"
        }
      ]
    }
  }
]
"#
    );
}

#[test]
fn tutorial_profiles_print_sorted() {
    let yaml = to_yaml(&decode(PROFILES_WITH_RULES).unwrap());
    let expected = "\
- apiVersion: v1
  kind: profile
  metadata:
    labels:
      role: database
    name: database
  spec:
    egress:
    - action: allow
      destination:
        selector: role == 'database'
    ingress:
    - action: allow
      destination:
        ports:
        - 3306
      protocol: tcp
      source:
        selector: role == 'frontend'
    - action: allow
      source:
        selector: role == 'database'
- apiVersion: v1
  kind: profile
  metadata:
    labels:
      role: frontend
    name: frontend
  spec:
    egress:
    - action: allow
      destination:
        ports:
        - 3306
        selector: role == 'database'
      protocol: tcp
";
    assert_eq!(yaml, expected);
}

#[test]
fn empty_lists() {
    assert_eq!(to_yaml(&[]), "[]\n");
    assert_eq!(to_json(&[]), "[]\n");
}

#[test]
fn numbers_ports_and_quoting() {
    let input = "\
apiVersion: v1
kind: policy
metadata:
  name: p
  annotations: {'123': 'true', note: 'a: b', multi: \"x\\ny\"}
spec:
  order: 100
  selector: all()
  ingress:
  - action: allow
    protocol: '6'
    destination: {ports: [80, '8000:8080', '443']}
";
    let resources = decode(input).unwrap();
    let yaml = to_yaml(&resources);
    let expected = "\
- apiVersion: v1
  kind: policy
  metadata:
    annotations:
      \"123\": \"true\"
      multi: \"x\\ny\"
      note: 'a: b'
    name: p
  spec:
    ingress:
    - action: allow
      destination:
        ports:
        - 80
        - 8000:8080
        - 443
      protocol: 6
    order: 100
    selector: all()
    types:
    - ingress
";
    assert_eq!(yaml, expected);
    let json = to_json(&resources);
    assert!(json.contains("\"order\": 100,"), "{json}");
    assert!(
        json.contains(
            "\"ports\": [\n              80,\n              \"8000:8080\",\n              443\n"
        ),
        "{json}"
    );
    assert!(json.contains("\"protocol\": 6"), "{json}");
    assert_eq!(decode(&yaml).unwrap(), resources);
    assert_eq!(decode(&json).unwrap(), resources);

    let fractional =
        decode("{apiVersion: v1, kind: policy, metadata: {name: p}, spec: {order: 0.5}}").unwrap();
    assert!(to_yaml(&fractional).contains("    order: 0.5\n"));
}

#[test]
fn other_kinds_print_their_fields() {
    let input = "\
- {apiVersion: v1, kind: ipPool, metadata: {cidr: 192.168.0.0/16}, spec: {nat-outgoing: true, ipip: {enabled: true, mode: cross-subnet}}}
- {apiVersion: v1, kind: bgpPeer, metadata: {scope: global, peerIP: 10.0.0.9}}
- apiVersion: v1
  kind: workloadEndpoint
  metadata: {node: h, orchestrator: libnetwork, workload: libnetwork, name: ep, activeInstanceID: abc}
  spec: {interfaceName: cali0, mac: 'EE-EE-EE-EE-EE-01', ipNetworks: [192.168.0.5], ipNATs: [{internalIP: 192.168.0.5, externalIP: 10.1.1.1}]}
- {apiVersion: v1, kind: node, metadata: {name: h}, spec: {bgp: {asNumber: '1.10', ipv4Address: 10.0.0.1/24}}}
";
    let yaml = to_yaml(&decode(input).unwrap());
    let expected = "\
- apiVersion: v1
  kind: ipPool
  metadata:
    cidr: 192.168.0.0/16
  spec:
    ipip:
      enabled: true
      mode: cross-subnet
    nat-outgoing: true
- apiVersion: v1
  kind: bgpPeer
  metadata:
    peerIP: 10.0.0.9
    scope: global
  spec:
    asNumber: 0
- apiVersion: v1
  kind: workloadEndpoint
  metadata:
    activeInstanceID: abc
    name: ep
    node: h
    orchestrator: libnetwork
    workload: libnetwork
  spec:
    interfaceName: cali0
    ipNATs:
    - externalIP: 10.1.1.1
      internalIP: 192.168.0.5
    ipNetworks:
    - 192.168.0.5/32
    mac: ee:ee:ee:ee:ee:01
- apiVersion: v1
  kind: node
  metadata:
    name: h
  spec:
    bgp:
      asNumber: 65546
      ipv4Address: 10.0.0.1/24
";
    assert_eq!(yaml, expected);
}

#[test]
fn awkward_annotation_keys_and_values_round_trip() {
    use calico_model::{Policy, PolicyMetadata, Resource};
    let long = "k".repeat(1500);
    let awkward = [
        "<<",
        "=",
        "? x",
        "- a",
        "",
        "null",
        "~",
        "a: b",
        "#",
        "\u{85}",
        "x\ny",
        "'",
        "\"",
        "&a",
        "*a",
        "!t",
        "%x",
        "@",
        "`",
        "\u{feff}x",
        "\u{2028}",
        "\u{7f}",
        "é",
        "1e3",
        "0o17",
        long.as_str(),
    ];
    let annotations = awkward
        .iter()
        .enumerate()
        .map(|(i, k)| (k.to_string(), awkward[(i + 1) % awkward.len()].to_string()))
        .collect();
    let mut policy = Policy {
        metadata: PolicyMetadata {
            name: "p".into(),
            annotations,
        },
        ..Default::default()
    };
    policy.spec.fill_default_types();
    let resources = vec![Resource::Policy(policy)];
    let yaml = to_yaml(&resources);
    assert!(yaml.contains(&format!("? {long}\n      : ")), "{yaml}");
    assert_eq!(decode(&yaml).unwrap(), resources, "{yaml}");
    // JSON (flow) keys longer than the parser's 1024-character simple-key limit cannot be read.
    let Resource::Policy(mut policy) = resources[0].clone() else {
        unreachable!()
    };
    policy.metadata.annotations.remove(&long);
    let resources = vec![Resource::Policy(policy)];
    assert_eq!(decode(&to_json(&resources)).unwrap(), resources);
}
