//! Pass 2: each resource deserialized straight into its concrete type, guided by the outline.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::outline::Shape;
use crate::kind::Kind;
use crate::resources::{
    BgpPeer, HostEndpoint, IpPool, Node, Policy, PolicySpec, Profile, Resource, WorkloadEndpoint,
};

/// Pass 2 for one document.
pub(super) struct DocSeed<'a> {
    pub(super) shape: &'a Shape,
    pub(super) out: &'a mut Vec<Resource>,
}

impl<'de> DeserializeSeed<'de> for DocSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        match self.shape {
            Shape::Empty => IgnoredAny::deserialize(deserializer).map(drop),
            Shape::One(kind) => {
                self.out
                    .push(ResourceSeed(*kind).deserialize(deserializer)?);
                Ok(())
            }
            Shape::Sequence(kinds) => deserializer.deserialize_seq(ItemsVisitor {
                kinds: KindsIter::Each(kinds.iter()),
                out: self.out,
            }),
            Shape::List(kind) => deserializer.deserialize_map(ListVisitor {
                kind: *kind,
                out: self.out,
            }),
        }
    }
}

/// The kind of each successive item: given one by one, or the same for all.
enum KindsIter<'a> {
    Each(std::slice::Iter<'a, Kind>),
    All(Kind),
}

impl Iterator for KindsIter<'_> {
    type Item = Kind;

    fn next(&mut self) -> Option<Kind> {
        match self {
            KindsIter::Each(kinds) => kinds.next().copied(),
            KindsIter::All(kind) => Some(*kind),
        }
    }
}

/// Reads a sequence of resources of known kinds.
struct ItemsVisitor<'a> {
    kinds: KindsIter<'a>,
    out: &'a mut Vec<Resource>,
}

impl<'de> Visitor<'de> for ItemsVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of resources")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        for kind in self.kinds {
            match seq.next_element_seed(ResourceSeed(kind))? {
                Some(resource) => self.out.push(resource),
                None => return Ok(()),
            }
        }
        match seq.next_element::<IgnoredAny>()? {
            Some(_) => Err(de::Error::custom("the list changed between reads")),
            None => Ok(()),
        }
    }
}

/// `<kind>List`: `apiVersion`, `kind`, `metadata` (empty) and `items`.
struct ListVisitor<'a> {
    kind: Kind,
    out: &'a mut Vec<Resource>,
}

const LIST_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "items"];

/// A list's `metadata`, which has no fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListMetadata {}

impl<'de> Visitor<'de> for ListVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {}", self.kind.list_name())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(field) = map.next_key_seed(FieldSeed(LIST_FIELDS))? {
            match LIST_FIELDS[field] {
                "metadata" => {
                    map.next_value::<Option<ListMetadata>>()?;
                }
                "items" => map.next_value_seed(ItemsSeed(ItemsVisitor {
                    kinds: KindsIter::All(self.kind),
                    out: &mut *self.out,
                }))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A list's `items` (may be null).
struct ItemsSeed<'a>(ItemsVisitor<'a>);

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self.0)
    }
}

/// Reads a map key that must be one of `fields`, giving its index; the error for any other
/// key is raised while reading the key, so it points at the key.
struct FieldSeed(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for FieldSeed {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "one of {}", self.0.join(", "))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<usize, E> {
        self.0
            .iter()
            .position(|f| *f == v)
            .ok_or_else(|| E::unknown_field(v, self.0))
    }
}

/// Reads one resource whose kind pass 1 established.
pub(super) struct ResourceSeed(pub(super) Kind);

const RESOURCE_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "spec"];

impl<'de> DeserializeSeed<'de> for ResourceSeed {
    type Value = Resource;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Resource, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ResourceSeed {
    type Value = Resource;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} resource", self.0)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Resource, A::Error> {
        Ok(match self.0 {
            Kind::Node => {
                let (metadata, spec) = envelope(map)?;
                Resource::Node(Node { metadata, spec })
            }
            Kind::BgpPeer => {
                let (metadata, spec) = envelope(map)?;
                Resource::BgpPeer(BgpPeer { metadata, spec })
            }
            Kind::HostEndpoint => {
                let (metadata, spec) = envelope(map)?;
                Resource::HostEndpoint(HostEndpoint { metadata, spec })
            }
            Kind::WorkloadEndpoint => {
                let (metadata, spec) = envelope(map)?;
                Resource::WorkloadEndpoint(WorkloadEndpoint { metadata, spec })
            }
            Kind::IpPool => {
                let (metadata, spec) = envelope(map)?;
                Resource::IpPool(IpPool { metadata, spec })
            }
            Kind::Policy => {
                let (metadata, mut spec): (_, PolicySpec) = envelope(map)?;
                spec.fill_default_types();
                Resource::Policy(Policy { metadata, spec })
            }
            Kind::Profile => {
                let (metadata, spec) = envelope(map)?;
                Resource::Profile(Profile { metadata, spec })
            }
        })
    }
}

/// Reads `metadata` and `spec` (null or missing means empty); skips `kind`/`apiVersion`,
/// which pass 1 checked.
fn envelope<'de, A, M, S>(mut map: A) -> Result<(M, S), A::Error>
where
    A: MapAccess<'de>,
    M: Deserialize<'de> + Default,
    S: Deserialize<'de> + Default,
{
    let (mut metadata, mut spec) = (None, None);
    while let Some(field) = map.next_key_seed(FieldSeed(RESOURCE_FIELDS))? {
        match RESOURCE_FIELDS[field] {
            "metadata" => metadata = map.next_value::<Option<M>>()?,
            "spec" => spec = map.next_value::<Option<S>>()?,
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    Ok((metadata.unwrap_or_default(), spec.unwrap_or_default()))
}
