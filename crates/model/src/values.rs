//! Scalar value types with the textual forms Calico's v1 API reads and writes: IP networks,
//! MAC addresses, ports, protocols and AS numbers.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A value that does not have any of the accepted textual forms.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} '{input}': {expected}")]
pub struct InvalidValue {
    what: &'static str,
    input: String,
    expected: String,
}

impl InvalidValue {
    fn new(what: &'static str, input: impl fmt::Display, expected: impl Into<String>) -> Self {
        InvalidValue {
            what,
            input: input.to_string(),
            expected: expected.into(),
        }
    }
}

/// An IP network as Calico writes it: an address (host bits kept as given) and a prefix.
///
/// Parses `10.0.0.1/24` or a bare address (`10.0.0.1` means `10.0.0.1/32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr(IpNet);

impl Cidr {
    /// Wraps a network, keeping its address exactly as given.
    pub fn new(net: IpNet) -> Self {
        Cidr(net)
    }

    /// The network, address and prefix as written.
    pub fn ip_net(&self) -> IpNet {
        self.0
    }

    /// The address part, host bits included.
    pub fn addr(&self) -> IpAddr {
        self.0.addr()
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }

    /// 4 or 6.
    pub fn version(&self) -> u8 {
        match self.0 {
            IpNet::V4(_) => 4,
            IpNet::V6(_) => 6,
        }
    }

    /// The same network with its host bits cleared.
    pub fn network(&self) -> Cidr {
        Cidr(self.0.trunc())
    }

    /// Whether the host bits are all zero.
    pub fn is_network(&self) -> bool {
        self.0.trunc() == self.0
    }

    /// Whether the two networks share any address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.0.contains(&other.0.network()) || other.0.contains(&self.0.network())
    }
}

impl From<IpNet> for Cidr {
    fn from(net: IpNet) -> Self {
        Cidr(net)
    }
}

impl From<IpAddr> for Cidr {
    fn from(addr: IpAddr) -> Self {
        Cidr(IpNet::from(addr))
    }
}

impl FromStr for Cidr {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Cidr(net));
        }
        s.parse::<IpAddr>().map(Cidr::from).map_err(|_| {
            InvalidValue::new(
                "CIDR",
                s,
                "expected an IP network such as 10.0.0.0/8 or fd00::/64, or an IP address",
            )
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(FromStrVisitor::<Cidr>::new(
            "an IP network such as 10.0.0.0/8",
        ))
    }
}

/// A MAC address (6, 8 or 20 bytes), printed as lower-case colon-separated hex.
///
/// Parses the forms Go's `net.ParseMAC` accepts: `01:23:45:67:89:ab`, `01-23-45-67-89-ab` and
/// `0123.4567.89ab`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MacAddr(Vec<u8>);

impl MacAddr {
    /// The address bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl FromStr for MacAddr {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_mac(s.as_bytes()).map(MacAddr).ok_or_else(|| {
            InvalidValue::new(
                "MAC address",
                s,
                "expected 6, 8 or 20 hex bytes such as ee:ee:ee:ee:ee:ee",
            )
        })
    }
}

fn parse_mac(s: &[u8]) -> Option<Vec<u8>> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let byte_at = |i: usize| Some(hex(*s.get(i)?)? << 4 | hex(*s.get(i + 1)?)?);
    let valid_len = |n: usize| matches!(n, 6 | 8 | 20);
    if s.len() < 14 {
        return None;
    }
    match s[2] {
        sep @ (b':' | b'-') => {
            if !(s.len() + 1).is_multiple_of(3) || !valid_len((s.len() + 1) / 3) {
                return None;
            }
            (0..(s.len() + 1) / 3)
                .map(|i| {
                    let at = 3 * i;
                    match s.get(at + 2) {
                        Some(&c) if c != sep => None,
                        _ => byte_at(at),
                    }
                })
                .collect()
        }
        _ if s[4] == b'.' => {
            if !(s.len() + 1).is_multiple_of(5) || !valid_len(2 * (s.len() + 1) / 5) {
                return None;
            }
            let mut out = Vec::with_capacity(2 * (s.len() + 1) / 5);
            for group in 0..(s.len() + 1) / 5 {
                let at = 5 * group;
                if matches!(s.get(at + 4), Some(&c) if c != b'.') {
                    return None;
                }
                out.push(byte_at(at)?);
                out.push(byte_at(at + 2)?);
            }
            Some(out)
        }
        _ => None,
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(FromStrVisitor::<MacAddr>::new("a MAC address"))
    }
}

/// A port or an inclusive port range: written as a number (`80`) or a string (`"80"`,
/// `"1000:2000"`); single ports are written back as numbers, ranges as `"min:max"` strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Port {
    /// First port of the range.
    pub min: u16,
    /// Last port of the range (equal to `min` for a single port).
    pub max: u16,
}

impl Port {
    /// A single port.
    pub fn single(port: u16) -> Self {
        Port {
            min: port,
            max: port,
        }
    }

    /// A range of ports, `min..=max` (not checked; validation rejects `min > max`).
    pub fn range(min: u16, max: u16) -> Self {
        Port { min, max }
    }
}

impl FromStr for Port {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let number = |part: &str| {
            if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
                part.parse::<u16>().ok()
            } else {
                None
            }
        };
        if let Some(port) = number(s) {
            return Ok(Port::single(port));
        }
        let expected = "expected a port 1-65535 or a range such as 1000:2000";
        let (min, max) = s
            .split_once(':')
            .filter(|(_, max)| !max.contains(':'))
            .ok_or_else(|| InvalidValue::new("port", s, expected))?;
        match (number(min), number(max)) {
            (None, _) => Err(InvalidValue::new(
                "port range",
                s,
                "minimum port is not 0-65535",
            )),
            (_, None) => Err(InvalidValue::new(
                "port range",
                s,
                "maximum port is not 0-65535",
            )),
            (Some(min), Some(max)) if min > max => Err(InvalidValue::new(
                "port range",
                s,
                format!("minimum port {min} is greater than maximum port {max}"),
            )),
            (Some(min), Some(max)) => Ok(Port::range(min, max)),
        }
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}:{}", self.min, self.max)
        }
    }
}

impl Serialize for Port {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.min == self.max {
            serializer.serialize_u16(self.min)
        } else {
            serializer.collect_str(self)
        }
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PortVisitor;
        impl Visitor<'_> for PortVisitor {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number or a \"min:max\" port range")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                u16::try_from(v)
                    .map(Port::single)
                    .map_err(|_| E::custom(InvalidValue::new("port", v, "ports are 0-65535")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(InvalidValue::new("port", v, "ports are 0-65535")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Port, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(PortVisitor)
    }
}

/// An IP protocol: one of the names `tcp`, `udp`, `icmp`, `icmpv6`, `sctp`, `udplite`, or a
/// number. Numeric strings (`"6"`) are read as numbers, like Calico does.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// A protocol given by name (validation accepts only the six known names).
    Name(String),
    /// A protocol given by number (validation accepts 1-255).
    Number(u8),
}

impl Protocol {
    /// The protocol names Calico accepts, with their IANA numbers.
    pub const NAMES: [(&'static str, u8); 6] = [
        ("tcp", 6),
        ("udp", 17),
        ("icmp", 1),
        ("icmpv6", 58),
        ("sctp", 132),
        ("udplite", 136),
    ];

    /// The IANA protocol number, for numbers and the known names.
    pub fn number(&self) -> Option<u8> {
        match self {
            Protocol::Number(n) => Some(*n),
            Protocol::Name(name) => Self::NAMES
                .iter()
                .find(|(known, _)| known == name)
                .map(|(_, n)| *n),
        }
    }

    /// Whether rules with this protocol may match on ports (TCP or UDP, by name or number).
    pub fn supports_ports(&self) -> bool {
        matches!(self.number(), Some(6 | 17))
    }
}

impl From<&str> for Protocol {
    fn from(s: &str) -> Self {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = s.parse() {
                return Protocol::Number(n);
            }
        }
        Protocol::Name(s.to_owned())
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Name(name) => f.write_str(name),
            Protocol::Number(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Protocol::Name(name) => serializer.serialize_str(name),
            Protocol::Number(n) => serializer.serialize_u8(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ProtocolVisitor;
        const EXPECTED: &str =
            "expected tcp, udp, icmp, icmpv6, sctp, udplite or a protocol number 1-255";
        impl Visitor<'_> for ProtocolVisitor {
            type Value = Protocol;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a protocol name or number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Protocol, E> {
                u8::try_from(v)
                    .map(Protocol::Number)
                    .map_err(|_| E::custom(InvalidValue::new("protocol", v, EXPECTED)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Protocol, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(InvalidValue::new("protocol", v, EXPECTED)))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Protocol, E> {
                Ok(Protocol::from(v))
            }
        }
        deserializer.deserialize_any(ProtocolVisitor)
    }
}

/// A BGP AS number: written as a number or a string, in plain (`64512`) or dotted
/// (`1.10`, meaning 1×65536+10) form; always written back as a number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AsNumber(pub u32);

impl FromStr for AsNumber {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        let invalid = || {
            InvalidValue::new(
                "AS number",
                s,
                "expected a number 0-4294967295 or a dotted pair such as 1.10",
            )
        };
        if digits(s) {
            return s.parse().map(AsNumber).map_err(|_| invalid());
        }
        let (high, low) = s.split_once('.').ok_or_else(invalid)?;
        if !digits(high) || !digits(low) {
            return Err(invalid());
        }
        let high: u16 = high.parse().map_err(|_| invalid())?;
        let low: u16 = low.parse().map_err(|_| invalid())?;
        Ok(AsNumber((u32::from(high) << 16) | u32::from(low)))
    }
}

impl fmt::Display for AsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for AsNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for AsNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AsnVisitor;
        impl Visitor<'_> for AsnVisitor {
            type Value = AsNumber;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an AS number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AsNumber, E> {
                u32::try_from(v).map(AsNumber).map_err(|_| {
                    E::custom(InvalidValue::new("AS number", v, "expected 0-4294967295"))
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AsNumber, E> {
                u64::try_from(v)
                    .map_err(|_| {
                        E::custom(InvalidValue::new("AS number", v, "expected 0-4294967295"))
                    })
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AsNumber, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(AsnVisitor)
    }
}

/// Deserializes a string through `FromStr`, reporting the parse error as is.
struct FromStrVisitor<T> {
    expecting: &'static str,
    target: std::marker::PhantomData<T>,
}

impl<T> FromStrVisitor<T> {
    fn new(expecting: &'static str) -> Self {
        FromStrVisitor {
            expecting,
            target: std::marker::PhantomData,
        }
    }
}

impl<T> Visitor<'_> for FromStrVisitor<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(E::custom)
    }
}
