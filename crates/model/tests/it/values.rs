//! Scalar value types: textual forms accepted and printed.

use calico_model::{AsNumber, Cidr, MacAddr, Port, Protocol};

#[test]
fn ports_parse_like_calico() {
    let ok = [
        ("80", Port::single(80)),
        ("0", Port::single(0)),
        ("65535", Port::single(65535)),
        ("1000:2000", Port::range(1000, 2000)),
        ("5:5", Port::single(5)),
    ];
    for (text, port) in ok {
        assert_eq!(text.parse::<Port>(), Ok(port), "{text}");
    }
    let bad = [
        ("", "invalid port ''"),
        ("http", "invalid port 'http'"),
        ("65536", "invalid port '65536'"),
        ("-1", "invalid port '-1'"),
        ("1:2:3", "invalid port '1:2:3'"),
        ("a:2", "minimum port is not 0-65535"),
        ("1:70000", "maximum port is not 0-65535"),
        ("20:10", "minimum port 20 is greater than maximum port 10"),
    ];
    for (text, message) in bad {
        let err = text.parse::<Port>().unwrap_err().to_string();
        assert!(err.contains(message), "{text}: {err}");
    }
    assert_eq!(Port::single(80).to_string(), "80");
    assert_eq!(Port::range(1, 2).to_string(), "1:2");
    assert_eq!(
        serde_json::to_string(&[Port::single(80), Port::range(1, 2)]).unwrap(),
        r#"[80,"1:2"]"#
    );
    let parsed: Vec<Port> = serde_json::from_str(r#"[80, "81", "1:2"]"#).unwrap();
    assert_eq!(
        parsed,
        [Port::single(80), Port::single(81), Port::range(1, 2)]
    );
    assert!(serde_json::from_str::<Port>("70000").is_err());
    assert!(serde_json::from_str::<Port>("-1").is_err());
}

#[test]
fn protocols_keep_names_and_numbers() {
    assert_eq!(Protocol::from("tcp"), Protocol::Name("tcp".into()));
    assert_eq!(Protocol::from("17"), Protocol::Number(17));
    assert_eq!(Protocol::from("300"), Protocol::Name("300".into()));
    let cases = [
        ("tcp", Some(6), true),
        ("udp", Some(17), true),
        ("6", Some(6), true),
        ("17", Some(17), true),
        ("icmp", Some(1), false),
        ("icmpv6", Some(58), false),
        ("sctp", Some(132), false),
        ("udplite", Some(136), false),
        ("TCP", None, false),
        ("47", Some(47), false),
    ];
    for (text, number, ports) in cases {
        let p = Protocol::from(text);
        assert_eq!((p.number(), p.supports_ports()), (number, ports), "{text}");
        assert_eq!(p.to_string(), text);
    }
    assert_eq!(
        serde_json::to_string(&[Protocol::from("tcp"), Protocol::Number(6)]).unwrap(),
        r#"["tcp",6]"#
    );
    assert!(serde_json::from_str::<Protocol>("256").is_err());
}

#[test]
fn mac_addresses_accept_go_forms() {
    let six = "01:23:45:67:89:ab";
    for text in ["01:23:45:67:89:ab", "01-23-45-67-89-AB", "0123.4567.89ab"] {
        assert_eq!(text.parse::<MacAddr>().unwrap().to_string(), six, "{text}");
    }
    let eight = "02:00:5e:10:00:00:00:01".parse::<MacAddr>().unwrap();
    assert_eq!(eight.bytes().len(), 8);
    let twenty = "00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01";
    assert_eq!(twenty.parse::<MacAddr>().unwrap().to_string(), twenty);
    for bad in [
        "",
        "01:23:45:67:89",
        "01:23:45:67:89:ab:cd",
        "01:23-45:67:89:ab",
        "0g:23:45:67:89:ab",
        "0123.4567.89a",
        "ééééééééééééééééé",
    ] {
        assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
    }
}

#[test]
fn as_numbers_accept_plain_and_dotted() {
    assert_eq!("64512".parse(), Ok(AsNumber(64512)));
    assert_eq!("1.10".parse(), Ok(AsNumber(65546)));
    assert_eq!("65535.65535".parse(), Ok(AsNumber(u32::MAX)));
    for bad in ["", "x", "1.", ".1", "65536.1", "4294967296", "1.2.3", "-1"] {
        assert!(bad.parse::<AsNumber>().is_err(), "{bad}");
    }
}

#[test]
fn cidrs_keep_the_address_as_written() {
    let c: Cidr = "10.0.0.1/24".parse().unwrap();
    assert_eq!(c.to_string(), "10.0.0.1/24");
    assert_eq!(c.network().to_string(), "10.0.0.0/24");
    assert!(!c.is_network());
    assert_eq!((c.version(), c.prefix_len()), (4, 24));
    assert_eq!(
        "10.0.0.1".parse::<Cidr>().unwrap().to_string(),
        "10.0.0.1/32"
    );
    assert_eq!(
        "fd00::1".parse::<Cidr>().unwrap().to_string(),
        "fd00::1/128"
    );
    assert!("10.0.0.0/33".parse::<Cidr>().is_err());
    assert!("10.0.0/8".parse::<Cidr>().is_err());
    let a: Cidr = "10.0.0.0/8".parse().unwrap();
    assert!(a.overlaps(&"10.1.2.0/24".parse().unwrap()));
    assert!(!a.overlaps(&"11.0.0.0/8".parse().unwrap()));
    assert!(!a.overlaps(&"fd00::/8".parse().unwrap()));
}
