//! Table tests for every validation rule: each case is a resource (as flow YAML) and the
//! `(path, reason fragment)` of every error expected, or none for a valid resource.

use calico_model::codec::{decode, DecodeError};
use calico_model::{FieldError, Profile, Resource, Rule};

/// Decodes `input` and returns its validation errors (none if valid).
fn errors(input: &str) -> Vec<FieldError> {
    match decode(input) {
        Ok(_) => Vec::new(),
        Err(DecodeError::Invalid(invalid)) => invalid
            .into_iter()
            .flat_map(|r| r.errors.errors().to_vec())
            .collect(),
        Err(other) => panic!("{input}\n  did not decode: {other}"),
    }
}

fn resource(kind: &str, metadata: &str, spec: &str) -> String {
    format!("{{apiVersion: v1, kind: {kind}, metadata: {metadata}, spec: {spec}}}")
}

/// A table row: description, resource, expected `(path, reason fragment)` errors.
type Case<'a> = (&'a str, String, &'a [(&'a str, &'a str)]);

/// Runs a table of cases.
fn run(cases: &[Case<'_>]) {
    for (what, input, expected) in cases {
        let got = errors(input);
        let matches = got.len() == expected.len()
            && got
                .iter()
                .zip(expected.iter())
                .all(|(e, (path, reason))| e.path == *path && e.reason.contains(reason));
        assert!(
            matches,
            "{what}: {input}\n  expected {expected:?}\n  got {got:#?}"
        );
    }
}

/// A profile whose only ingress rule is `rule` (flow YAML).
fn rule(rule: &str) -> String {
    resource("profile", "{name: p}", &format!("{{ingress: [{rule}]}}"))
}

#[test]
fn rule_actions() {
    run(&[
        ("allow", rule("{action: allow}"), &[]),
        ("deny", rule("{action: deny}"), &[]),
        ("log", rule("{action: log}"), &[]),
        ("pass", rule("{action: pass}"), &[]),
        (
            "unknown action",
            rule("{action: accept}"),
            &[("spec.ingress[0].action", "use allow, deny, log or pass")],
        ),
        (
            "upper case",
            rule("{action: Allow}"),
            &[("spec.ingress[0].action", "invalid action")],
        ),
        (
            "missing action",
            rule("{protocol: tcp}"),
            &[("spec.ingress[0].action", "invalid action")],
        ),
        (
            "backend spelling",
            rule("{action: next-tier}"),
            &[("spec.ingress[0].action", "invalid action")],
        ),
    ]);
}

#[test]
fn rule_ip_version_and_protocols() {
    run(&[
        ("ipVersion 4", rule("{action: allow, ipVersion: 4}"), &[]),
        ("ipVersion 6", rule("{action: allow, ipVersion: 6}"), &[]),
        (
            "ipVersion 5",
            rule("{action: allow, ipVersion: 5}"),
            &[("spec.ingress[0].ipVersion", "use 4 or 6")],
        ),
        ("tcp", rule("{action: allow, protocol: tcp}"), &[]),
        ("udp", rule("{action: allow, protocol: udp}"), &[]),
        ("icmp", rule("{action: allow, protocol: icmp}"), &[]),
        ("icmpv6", rule("{action: allow, protocol: icmpv6}"), &[]),
        ("sctp", rule("{action: allow, protocol: sctp}"), &[]),
        ("udplite", rule("{action: allow, protocol: udplite}"), &[]),
        ("number", rule("{action: allow, protocol: 47}"), &[]),
        (
            "numeric string",
            rule("{action: allow, protocol: '255'}"),
            &[],
        ),
        (
            "zero",
            rule("{action: allow, protocol: 0}"),
            &[("spec.ingress[0].protocol", "protocol number invalid")],
        ),
        (
            "upper case name",
            rule("{action: allow, protocol: TCP}"),
            &[("spec.ingress[0].protocol", "protocol name invalid")],
        ),
        (
            "unknown name",
            rule("{action: allow, protocol: gre}"),
            &[("spec.ingress[0].protocol", "protocol name invalid")],
        ),
        (
            "notProtocol",
            rule("{action: allow, notProtocol: udp}"),
            &[],
        ),
        (
            "bad notProtocol",
            rule("{action: allow, notProtocol: foo}"),
            &[("spec.ingress[0].notProtocol", "protocol name invalid")],
        ),
    ]);
}

#[test]
fn rule_icmp() {
    run(&[
        (
            "type and code",
            rule("{action: allow, protocol: icmp, icmp: {type: 8, code: 0}}"),
            &[],
        ),
        (
            "type only",
            rule("{action: allow, protocol: icmp, icmp: {type: 0}}"),
            &[],
        ),
        (
            "type 254",
            rule("{action: allow, protocol: icmp, icmp: {type: 254, code: 255}}"),
            &[],
        ),
        (
            "type 255",
            rule("{action: allow, protocol: icmp, icmp: {type: 255}}"),
            &[("spec.ingress[0].icmp.type", "use 0-254")],
        ),
        (
            "negative type",
            rule("{action: allow, protocol: icmp, icmp: {type: -1}}"),
            &[("spec.ingress[0].icmp.type", "use 0-254")],
        ),
        (
            "code 256",
            rule("{action: allow, protocol: icmp, icmp: {type: 3, code: 256}}"),
            &[("spec.ingress[0].icmp.code", "use 0-255")],
        ),
        (
            "code without type",
            rule("{action: allow, protocol: icmp, icmp: {code: 1}}"),
            &[(
                "spec.ingress[0].icmp.code",
                "ICMP code specified without an ICMP type",
            )],
        ),
        (
            "notICMP code without type",
            rule("{action: allow, notICMP: {code: 1}}"),
            &[("spec.ingress[0].notICMP.code", "without an ICMP type")],
        ),
        (
            "notICMP",
            rule("{action: allow, protocol: icmpv6, notICMP: {type: 128}}"),
            &[],
        ),
    ]);
}

#[test]
fn rule_ports() {
    run(&[
        ("tcp ports", rule("{action: allow, protocol: tcp, destination: {ports: [80, '8000:8080']}}"), &[]),
        ("udp notPorts", rule("{action: allow, protocol: udp, source: {notPorts: [53]}}"), &[]),
        ("numeric tcp", rule("{action: allow, protocol: 6, destination: {ports: [80]}}"), &[]),
        ("numeric udp string", rule("{action: allow, protocol: '17', destination: {ports: [80]}}"), &[]),
        ("port string", rule("{action: allow, protocol: tcp, destination: {ports: ['80']}}"), &[]),
        ("ports with icmp", rule("{action: allow, protocol: icmp, destination: {ports: [80]}}"), &[("spec.ingress[0].destination.ports", "protocol does not support ports")]),
        ("ports without protocol", rule("{action: allow, source: {ports: [80]}}"), &[("spec.ingress[0].source.ports", "protocol does not support ports")]),
        ("notPorts with sctp", rule("{action: allow, protocol: sctp, source: {notPorts: [80]}}"), &[("spec.ingress[0].source.notPorts", "protocol does not support ports")]),
        ("notProtocol does not count", rule("{action: allow, notProtocol: tcp, destination: {notPorts: [1]}}"), &[("spec.ingress[0].destination.notPorts", "set protocol to tcp or udp")]),
        ("all four", rule("{action: allow, source: {ports: [1], notPorts: [2]}, destination: {ports: [3], notPorts: [4]}}"), &[
            ("spec.ingress[0].source.ports", "protocol does not support ports"),
            ("spec.ingress[0].source.notPorts", "protocol does not support ports"),
            ("spec.ingress[0].destination.ports", "protocol does not support ports"),
            ("spec.ingress[0].destination.notPorts", "protocol does not support ports"),
        ]),
        ("port 0", rule("{action: allow, protocol: tcp, destination: {ports: [0]}}"), &[("spec.ingress[0].destination.ports[0]", "ports must be 1-65535")]),
        ("range from 0", rule("{action: allow, protocol: tcp, destination: {ports: ['0:10']}}"), &[("spec.ingress[0].destination.ports[0]", "ports must be 1-65535")]),
        ("full range", rule("{action: allow, protocol: tcp, destination: {ports: ['1:65535', 65535]}}"), &[]),
    ]);
}

#[test]
fn rule_nets() {
    run(&[
        ("nets", rule("{action: allow, source: {nets: [10.0.0.0/8, 192.168.1.1]}, destination: {notNets: [10.1.0.0/16]}}"), &[]),
        ("net", rule("{action: allow, source: {net: 10.0.0.0/8}, destination: {notNet: 10.1.0.0/16}}"), &[]),
        ("net and nets", rule("{action: allow, source: {net: 10.0.0.0/8}, destination: {nets: [10.1.0.0/16]}}"), &[("spec.ingress[0].source.net", "only one of net/notNet and nets/notNets")]),
        ("ipVersion matches", rule("{action: allow, ipVersion: 6, source: {nets: ['fd00::/64']}}"), &[]),
        ("ipVersion mismatch", rule("{action: allow, ipVersion: 4, source: {nets: [10.0.0.0/8, 'fd00::/64']}}"), &[("spec.ingress[0].source.nets[1]", "rule IP version doesn't match CIDR version")]),
        ("ipVersion mismatch on notNet", rule("{action: allow, ipVersion: 6, destination: {notNet: 10.0.0.0/8}}"), &[("spec.ingress[0].destination.notNet", "doesn't match CIDR version")]),
        ("mixed families", rule("{action: allow, source: {nets: [10.0.0.0/8]}, destination: {notNets: ['fd00::/8']}}"), &[("spec.ingress[0].destination.notNets[0]", "rule contains both IPv4 and IPv6 CIDRs")]),
        ("icmp on IPv6", rule("{action: allow, ipVersion: 6, protocol: icmp}"), &[("spec.ingress[0].protocol", "use icmpv6")]),
        ("icmp with IPv6 nets", rule("{action: allow, protocol: 1, source: {nets: ['fd00::/8']}}"), &[("spec.ingress[0].protocol", "icmp is IPv4-only")]),
        ("icmpv6 on IPv4", rule("{action: allow, ipVersion: 4, protocol: icmpv6}"), &[("spec.ingress[0].protocol", "use icmp")]),
        ("icmpv6 on IPv6", rule("{action: allow, ipVersion: 6, protocol: icmpv6, icmp: {type: 128}}"), &[]),
    ]);
}

#[test]
fn rule_tags_and_selectors() {
    run(&[
        ("tag", rule("{action: allow, source: {tag: net1, notTag: other.tag_2}}"), &[]),
        ("bad tag", rule("{action: allow, source: {tag: 'a b'}}"), &[("spec.ingress[0].source.tag", "invalid tag")]),
        ("tag with slash", rule("{action: allow, destination: {notTag: a/b}}"), &[("spec.ingress[0].destination.notTag", "invalid tag")]),
        ("selector", rule("{action: allow, source: {selector: \"has(a) && b in {'x', 'y'}\", notSelector: '!has(c)'}}"), &[]),
        ("bad selector", rule("{action: allow, source: {selector: 'role =='}}"), &[("spec.ingress[0].source.selector", "invalid selector")]),
        ("bad notSelector", rule("{action: allow, destination: {notSelector: 'a == \"x'}}"), &[("spec.ingress[0].destination.notSelector", "at column")]),
    ]);
}

#[test]
fn rules_are_checked_in_both_directions_of_policies_and_profiles() {
    let bad = "{action: nope}";
    run(&[
        (
            "profile egress",
            resource(
                "profile",
                "{name: p}",
                &format!("{{ingress: [{{action: allow}}], egress: [{{action: allow}}, {bad}]}}"),
            ),
            &[("spec.egress[1].action", "invalid action")],
        ),
        (
            "policy ingress",
            resource("policy", "{name: p}", &format!("{{ingress: [{bad}]}}")),
            &[("spec.ingress[0].action", "invalid action")],
        ),
        (
            "policy egress",
            resource("policy", "{name: p}", &format!("{{egress: [{bad}]}}")),
            &[("spec.egress[0].action", "invalid action")],
        ),
    ]);
}

#[test]
fn names_tags_and_labels() {
    let profile = |metadata: &str| resource("profile", metadata, "{}");
    let long = "a".repeat(128);
    let too_long = "a".repeat(129);
    let value_63 = format!("a{}b", "x".repeat(61));
    let value_64 = format!("a{}b", "x".repeat(62));
    let key_512 = "k".repeat(512);
    let key_513 = "k".repeat(513);
    run(&[
        ("simple", profile("{name: my-profile.v1_2}"), &[]),
        (
            "slash allowed in profile names",
            profile("{name: ns/profile}"),
            &[],
        ),
        ("128 characters", profile(&format!("{{name: {long}}}")), &[]),
        (
            "129 characters",
            profile(&format!("{{name: {too_long}}}")),
            &[("metadata.name", "1-128 characters")],
        ),
        (
            "space",
            profile("{name: 'my profile'}"),
            &[("metadata.name", "invalid name")],
        ),
        (
            "colon",
            profile("{name: 'a:b'}"),
            &[("metadata.name", "invalid name")],
        ),
        ("tags", profile("{name: p, tags: [net1, other-tag]}"), &[]),
        (
            "bad tag",
            profile("{name: p, tags: [ok, 'not ok', a/b]}"),
            &[
                ("metadata.tags[1]", "invalid tag"),
                ("metadata.tags[2]", "invalid tag"),
            ],
        ),
        (
            "labels",
            profile("{name: p, labels: {role: db, app.kubernetes.io/name: x_y-z.1, empty: ''}}"),
            &[],
        ),
        (
            "bad label key",
            profile("{name: p, labels: {'bad key': x}}"),
            &[("metadata.labels", "invalid label key")],
        ),
        (
            "512-character key",
            profile(&format!("{{name: p, labels: {{{key_512}: v}}}}")),
            &[],
        ),
        (
            "513-character key",
            profile(&format!("{{name: p, labels: {{{key_513}: v}}}}")),
            &[("metadata.labels", "1-512 characters")],
        ),
        (
            "63-character value",
            profile(&format!("{{name: p, labels: {{k: {value_63}}}}}")),
            &[],
        ),
        (
            "64-character value",
            profile(&format!("{{name: p, labels: {{k: {value_64}}}}}")),
            &[("metadata.labels.k", "invalid label value")],
        ),
        (
            "value ending in dash",
            profile("{name: p, labels: {k: a-}}"),
            &[("metadata.labels.k", "ending with a letter or digit")],
        ),
        (
            "value starting with dash",
            profile("{name: p, labels: {k: -a}}"),
            &[],
        ),
        (
            "value with slash",
            profile("{name: p, labels: {k: a/b}}"),
            &[("metadata.labels.k", "invalid label value")],
        ),
        (
            "policy name with slash",
            resource("policy", "{name: tier/p}", "{}"),
            &[],
        ),
        (
            "bad policy name",
            resource("policy", "{name: 'p!'}", "{}"),
            &[("metadata.name", "invalid name")],
        ),
        (
            "node name without slash",
            resource("node", "{name: a/b}", "{}"),
            &[("metadata.name", "from a-z, A-Z, 0-9, '.', '_', '-'")],
        ),
    ]);
}

#[test]
fn policy_spec() {
    let policy = |spec: &str| resource("policy", "{name: p}", spec);
    run(&[
        ("empty selector means all", policy("{selector: ''}"), &[]),
        ("all()", policy("{selector: all(), order: 10.5}"), &[]),
        (
            "bad selector",
            policy("{selector: 'a = b'}"),
            &[("spec.selector", "invalid selector")],
        ),
        (
            "types",
            policy(
                "{types: [ingress, egress], ingress: [{action: allow}], egress: [{action: allow}]}",
            ),
            &[],
        ),
        (
            "unknown type",
            policy("{types: [ingress, both]}"),
            &[("spec.types[1]", "use ingress or egress")],
        ),
        (
            "duplicate type",
            policy("{types: [egress, egress]}"),
            &[("spec.types[1]", "'egress' type specified more than once")],
        ),
        (
            "ingress rules need the ingress type",
            policy("{types: [egress], ingress: [{action: allow}]}"),
            &[(
                "spec.types",
                "'ingress' must be specified when policy has ingress rules",
            )],
        ),
        (
            "egress rules need the egress type",
            policy("{types: [ingress], egress: [{action: allow}]}"),
            &[(
                "spec.types",
                "'egress' must be specified when policy has egress rules",
            )],
        ),
        ("doNotTrack", policy("{doNotTrack: true}"), &[]),
        (
            "preDNAT",
            policy("{preDNAT: true, ingress: [{action: deny}]}"),
            &[],
        ),
        (
            "preDNAT and doNotTrack",
            policy("{preDNAT: true, doNotTrack: true}"),
            &[("spec.preDNAT", "cannot both be true")],
        ),
        (
            "preDNAT with egress rules",
            policy("{preDNAT: true, egress: [{action: allow}]}"),
            &[
                ("spec.egress", "a preDNAT policy cannot have egress rules"),
                ("spec.types", "cannot have the 'egress' type"),
            ],
        ),
    ]);
}

#[test]
fn workload_endpoints() {
    let wep = |spec: &str| {
        resource(
            "workloadEndpoint",
            "{node: host1, orchestrator: libnetwork, workload: libnetwork, name: ep1, labels: {app: web}}",
            spec,
        )
    };
    let good = "interfaceName: cali0123456789a, mac: 'ee:ee:ee:ee:ee:ee', profiles: [net1], ipNetworks: [192.168.0.5/32, 'fd00::5/128']";
    run(&[
        ("valid", wep(&format!("{{{good}}}")), &[]),
        ("NAT and gateways", wep(&format!("{{{good}, ipNATs: [{{internalIP: 192.168.0.5, externalIP: 172.16.0.1}}], ipv4Gateway: 192.168.0.1, ipv6Gateway: 'fd00::1'}}")), &[]),
        ("network not a host", wep("{interfaceName: cali0, ipNetworks: [192.168.0.0/24]}"), &[("spec.ipNetworks[0]", "IP network contains multiple addresses")]),
        ("v6 network not a host", wep("{interfaceName: cali0, ipNetworks: ['fd00::/64']}"), &[("spec.ipNetworks[0]", "/128 (IPv6)")]),
        ("missing interface", wep("{ipNetworks: [10.0.0.1/32]}"), &[("spec.interfaceName", "invalid interface name")]),
        ("interface too long", wep("{interfaceName: cali0123456789ab}"), &[("spec.interfaceName", "1-15 characters")]),
        ("interface with dot", wep("{interfaceName: eth0.1}"), &[("spec.interfaceName", "invalid interface name")]),
        ("NAT family mismatch", wep("{interfaceName: cali0, ipNetworks: [10.0.0.1/32], ipNATs: [{internalIP: 10.0.0.1, externalIP: 'fd00::1'}]}"), &[("spec.ipNATs[0].externalIP", "mismatched IP versions")]),
        ("NAT outside networks", wep("{interfaceName: cali0, ipNetworks: [10.0.0.1/32], ipNATs: [{internalIP: 10.0.0.2, externalIP: 172.16.0.1}]}"), &[("spec.ipNATs[0].internalIP", "NAT is not in the endpoint networks")]),
        ("gateway families", wep("{interfaceName: cali0, ipv4Gateway: 'fd00::1', ipv6Gateway: 10.0.0.1}"), &[
            ("spec.ipv4Gateway", "invalid IPv4 gateway"),
            ("spec.ipv6Gateway", "invalid IPv6 gateway"),
        ]),
        ("bad profile name", wep("{interfaceName: cali0, profiles: [ok, 'no good']}"), &[("spec.profiles[1]", "invalid name")]),
        ("empty profile name", wep("{interfaceName: cali0, profiles: ['']}"), &[("spec.profiles[0]", "empty profile name")]),
        ("bad metadata", resource("workloadEndpoint", "{node: 'a/b', orchestrator: 'o o', workload: 'w w', name: 'n n', activeInstanceID: 'x/y'}", "{interfaceName: cali0}"), &[
            ("metadata.name", "invalid name"),
            ("metadata.workload", "invalid name"),
            ("metadata.orchestrator", "invalid name"),
            ("metadata.node", "invalid name"),
            ("metadata.activeInstanceID", "invalid name"),
        ]),
    ]);
}

#[test]
fn host_endpoints() {
    let hep = |spec: &str| {
        resource(
            "hostEndpoint",
            "{node: host1, name: eth0, labels: {role: gw}}",
            spec,
        )
    };
    run(&[
        ("interface only", hep("{interfaceName: eth0}"), &[]),
        (
            "expected IPs only",
            hep("{expectedIPs: [10.0.0.1, 'fd00::1']}"),
            &[],
        ),
        (
            "both",
            hep("{interfaceName: eth0, expectedIPs: [10.0.0.1], profiles: [p1, p2]}"),
            &[],
        ),
        (
            "neither",
            hep("{profiles: [p1]}"),
            &[(
                "spec.interfaceName",
                "no interface or expected IPs have been specified",
            )],
        ),
        (
            "bad interface",
            hep("{interfaceName: 'eth 0'}"),
            &[("spec.interfaceName", "invalid interface name")],
        ),
        (
            "bad labels",
            resource(
                "hostEndpoint",
                "{node: h, name: e, labels: {k: 'bad value'}}",
                "{interfaceName: eth0}",
            ),
            &[("metadata.labels.k", "invalid label value")],
        ),
    ]);
}

#[test]
fn ip_pools() {
    let pool = |cidr: &str, spec: &str| resource("ipPool", &format!("{{cidr: '{cidr}'}}"), spec);
    run(&[
        ("/16", pool("192.168.0.0/16", "{}"), &[]),
        (
            "/26",
            pool(
                "192.168.0.0/26",
                "{nat-outgoing: true, ipip: {enabled: true}}",
            ),
            &[],
        ),
        (
            "cross-subnet",
            pool("10.0.0.0/8", "{ipip: {enabled: true, mode: cross-subnet}}"),
            &[],
        ),
        ("always", pool("10.0.0.0/8", "{ipip: {mode: always}}"), &[]),
        (
            "/27",
            pool("192.168.0.0/27", "{}"),
            &[(
                "metadata.cidr",
                "IP pool size is too small (min /26) for use with Calico IPAM",
            )],
        ),
        (
            "/30",
            pool("192.168.0.0/30", "{}"),
            &[("metadata.cidr", "IP pool size is too small (min /26)")],
        ),
        (
            "disabled small pool",
            pool("192.168.0.0/30", "{disabled: true}"),
            &[],
        ),
        (
            "not masked",
            pool("192.168.0.1/16", "{}"),
            &[(
                "metadata.cidr",
                "IP pool CIDR is not strictly masked; use 192.168.0.0/16",
            )],
        ),
        (
            "link local",
            pool("169.254.0.0/16", "{}"),
            &[(
                "metadata.cidr",
                "overlaps with IPv4 Link Local range 169.254.0.0/16",
            )],
        ),
        (
            "contains link local",
            pool("169.0.0.0/8", "{}"),
            &[("metadata.cidr", "Link Local")],
        ),
        (
            "inside link local",
            pool("169.254.1.0/24", "{}"),
            &[("metadata.cidr", "Link Local")],
        ),
        (
            "bad mode",
            pool("10.0.0.0/8", "{ipip: {enabled: true, mode: sometimes}}"),
            &[("spec.ipip.mode", "use always or cross-subnet")],
        ),
        ("IPv6", pool("fd00::/64", "{nat-outgoing: true}"), &[]),
        ("IPv6 /122", pool("fd00::/122", "{}"), &[]),
        (
            "IPv6 /123",
            pool("fd00::/123", "{}"),
            &[("metadata.cidr", "IP pool size is too small (min /122)")],
        ),
        (
            "IPv6 IPIP",
            pool("fd00::/64", "{ipip: {enabled: true}}"),
            &[(
                "spec.ipip.enabled",
                "IPIP is not supported on an IPv6 IP pool",
            )],
        ),
        (
            "IPv6 IPIP disabled",
            pool("fd00::/64", "{ipip: {enabled: false}}"),
            &[],
        ),
        (
            "IPv6 link local",
            pool("fe80::/64", "{}"),
            &[("metadata.cidr", "IPv6 Link Local range fe80::/10")],
        ),
        (
            "several problems",
            pool("fe80::1/124", "{ipip: {enabled: true}}"),
            &[
                ("spec.ipip.enabled", "IPIP"),
                ("metadata.cidr", "min /122"),
                ("metadata.cidr", "not strictly masked"),
                ("metadata.cidr", "Link Local"),
            ],
        ),
    ]);
}

#[test]
fn nodes() {
    let node = |spec: &str| resource("node", "{name: host1}", spec);
    run(&[
        ("no bgp", node("{}"), &[]),
        (
            "bgp v4",
            node("{bgp: {ipv4Address: 10.0.0.1/24, asNumber: 64512}}"),
            &[],
        ),
        (
            "bgp v6 and dotted AS",
            node("{bgp: {ipv6Address: 'fd00::1/64', asNumber: '1.10'}}"),
            &[],
        ),
        (
            "orchRefs",
            node("{orchRefs: [{nodeName: h, orchestrator: k8s}]}"),
            &[],
        ),
        (
            "bgp without addresses",
            node("{bgp: {asNumber: 64512}}"),
            &[(
                "spec.bgp.ipv4Address",
                "no BGP IP address and subnet specified",
            )],
        ),
        (
            "wrong families",
            node("{bgp: {ipv4Address: 'fd00::1/64', ipv6Address: 10.0.0.1/24}}"),
            &[
                ("spec.bgp.ipv4Address", "invalid IPv4 address"),
                ("spec.bgp.ipv6Address", "invalid IPv6 address"),
            ],
        ),
    ]);
}

#[test]
fn bgp_peers() {
    let peer = |metadata: &str| resource("bgpPeer", metadata, "{asNumber: 64513}");
    run(&[
        ("global", peer("{scope: global, peerIP: 10.0.0.9}"), &[]),
        (
            "node",
            peer("{scope: node, node: host1, peerIP: 'fd00::9'}"),
            &[],
        ),
        (
            "global with node",
            peer("{scope: global, node: host1, peerIP: 10.0.0.9}"),
            &[(
                "metadata.node",
                "no BGP Peer node name should be specified when scope is global",
            )],
        ),
        (
            "node without node",
            peer("{scope: node, peerIP: 10.0.0.9}"),
            &[(
                "metadata.node",
                "a node name is required when scope is node",
            )],
        ),
        (
            "bad scope",
            peer("{scope: Global, peerIP: 10.0.0.9}"),
            &[("metadata.scope", "use global or node")],
        ),
        (
            "missing scope",
            peer("{peerIP: 10.0.0.9}"),
            &[("metadata.scope", "use global or node")],
        ),
        (
            "bad node name",
            peer("{scope: node, node: 'h h', peerIP: 10.0.0.9}"),
            &[("metadata.node", "invalid name")],
        ),
    ]);
}

#[test]
fn error_messages_use_calicos_format() {
    let one = calico_model::Resource::Profile(Profile {
        spec: calico_model::ProfileSpec {
            ingress: vec![Rule {
                action: "allow".into(),
                protocol: Some("icmp".into()),
                destination: calico_model::EntityRule {
                    ports: vec![
                        calico_model::Port::single(80),
                        calico_model::Port::range(1000, 2000),
                    ],
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..Default::default()
        },
        ..Default::default()
    });
    assert_eq!(
        one.validate().unwrap_err().to_string(),
        "error with field spec.ingress[0].destination.ports = '[80, 1000:2000]' \
         (protocol does not support ports; set protocol to tcp or udp)"
    );
    let mut two = one.clone();
    if let Resource::Profile(p) = &mut two {
        p.metadata.name = "bad name".into();
    }
    assert_eq!(
        two.validate().unwrap_err().to_string(),
        "error with the following fields:\n\
         -  metadata.name = 'bad name' (invalid name: use 1-128 characters from a-z, A-Z, 0-9, '.', '_', '-', '/')\n\
         -  spec.ingress[0].destination.ports = '[80, 1000:2000]' (protocol does not support ports; set protocol to tcp or udp)"
    );
}

#[test]
fn programmatic_port_ranges_are_checked() {
    let mut rule = Rule {
        action: "allow".into(),
        protocol: Some("tcp".into()),
        ..Default::default()
    };
    rule.source.ports = vec![calico_model::Port::range(90, 80)];
    let profile = Resource::Profile(Profile {
        spec: calico_model::ProfileSpec {
            egress: vec![rule],
            ..Default::default()
        },
        ..Default::default()
    });
    let errors = profile.validate().unwrap_err();
    assert_eq!(errors.errors()[0].path, "spec.egress[0].source.ports[0]");
    assert!(errors.errors()[0]
        .reason
        .contains("minimum port is greater than the maximum"));
}

#[test]
fn identifiers_are_not_required_by_validation() {
    for kind in ["profile", "policy", "node", "hostEndpoint", "ipPool"] {
        let input = match kind {
            "hostEndpoint" => resource(kind, "{}", "{interfaceName: eth0}"),
            _ => resource(kind, "{}", "{}"),
        };
        assert_eq!(errors(&input), Vec::new(), "{kind}");
        let resources = decode(&input).unwrap();
        assert!(resources[0].key().is_err(), "{kind}");
    }
}
