//! Field-level serde helpers shared by the resource types.

use std::fmt;
use std::net::IpAddr;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serializer};

/// Reads an explicit `null` (or an empty YAML value) as the type's default, like Go's
/// `encoding/json` leaves a field at its zero value when it sees `null`.
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// Whether a value equals its type's default (used to omit empty fields, like `omitempty`).
pub(crate) fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Writes a policy order the way Go's JSON encoder prints a whole float64: `100`, not `100.0`.
pub(crate) fn order<S: Serializer>(value: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
    const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;
    match *value {
        Some(v) if v.fract() == 0.0 && v.abs() < EXACT_INTEGER_LIMIT => {
            // Exact: integral and below 2^53.
            serializer.serialize_i64(v as i64)
        }
        Some(v) => serializer.serialize_f64(v),
        None => serializer.serialize_none(),
    }
}

struct IpVisitor;

impl Visitor<'_> for IpVisitor {
    type Value = IpAddr;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an IP address")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<IpAddr, E> {
        v.parse().map_err(|_| {
            E::custom(format_args!(
                "invalid IP address '{v}': expected an IPv4 or IPv6 address such as 10.0.0.1 or fd00::1"
            ))
        })
    }
}

struct IpSeed;

impl<'de> de::DeserializeSeed<'de> for IpSeed {
    type Value = IpAddr;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<IpAddr, D::Error> {
        deserializer.deserialize_str(IpVisitor)
    }
}

/// Serde adapter for a required IP address with a descriptive parse error.
pub(crate) mod ip {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(ip: &IpAddr, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(ip)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<IpAddr, D::Error> {
        deserializer.deserialize_str(IpVisitor)
    }
}

/// Serde adapter for an optional IP address; `null` reads as `None`.
pub(crate) mod opt_ip {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        ip: &Option<IpAddr>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match ip {
            Some(ip) => serializer.collect_str(ip),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<IpAddr>, D::Error> {
        struct OptVisitor;
        impl<'de> Visitor<'de> for OptVisitor {
            type Value = Option<IpAddr>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an IP address")
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_str(IpVisitor).map(Some)
            }
        }
        deserializer.deserialize_option(OptVisitor)
    }
}

/// Serde adapter for a list of IP addresses; `null` reads as an empty list.
pub(crate) mod ip_list {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        ips: &[IpAddr],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(ips.iter().map(ToString::to_string))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<IpAddr>, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = Vec<IpAddr>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of IP addresses")
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_seq(self)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut ips = Vec::new();
                while let Some(ip) = seq.next_element_seed(IpSeed)? {
                    ips.push(ip);
                }
                Ok(ips)
            }
        }
        deserializer.deserialize_option(ListVisitor)
    }
}
