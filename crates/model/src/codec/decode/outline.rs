//! Pass 1: the shape of a document and the kind (and position) of every resource in it,
//! read without looking at anything else.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use super::{options, DecodeError, Document};
use crate::kind::Kind;
use crate::resources::API_VERSION;

/// What pass 1 learnt about a document.
pub(super) struct Outline {
    pub(super) shape: Shape,
    /// Where the document's root node starts.
    pub(super) root: (u64, u64),
    /// Starting line of each resource, in order.
    pub(super) starts: Vec<u64>,
}

/// The layout of a document and the kind of each resource in it.
pub(super) enum Shape {
    Empty,
    One(Kind),
    Sequence(Vec<Kind>),
    List(Kind),
}

impl Document<'_> {
    /// Pass 1: the shape of the document and the kind of every resource in it.
    pub(super) fn outline(&self) -> Result<Outline, DecodeError> {
        let head =
            serde_saphyr::with_deserializer_from_str_with_options(self.text, options(), |de| {
                Spanned::<Head>::deserialize(de)
            })
            .map_err(|e| self.parse_error(&e, self.start()))?;
        let at = head.referenced;
        let mut starts = Vec::new();
        let shape = match head.value {
            Head::Null => Shape::Empty,
            Head::Other => return Err(self.shape_error(
                at,
                "expected a resource, a list of resources or a resource list (such as profileList)",
            )),
            Head::Sequence(items) => {
                let mut kinds = Vec::with_capacity(items.len());
                for item in &items {
                    kinds.push(self.item_kind(item, None)?);
                    starts.push(self.position(item.referenced).0);
                }
                Shape::Sequence(kinds)
            }
            Head::Map(map) => {
                let list_kind = map
                    .kind
                    .as_ref()
                    .and_then(|k| Kind::from_list_name(&k.value.0));
                match (list_kind, map.items) {
                    (Some(kind), items) if is_v1(map.api_version.as_ref()) => {
                        match items.map(|i| (i.value, i.referenced)) {
                            Some((ItemsHead::Sequence(items), _)) => {
                                for item in &items {
                                    self.item_kind(item, Some(kind))?;
                                    starts.push(self.position(item.referenced).0);
                                }
                            }
                            Some((ItemsHead::Other, at)) => {
                                return Err(self.shape_error(
                                    at,
                                    format!("expected items to be a list of {kind} resources"),
                                ))
                            }
                            None => {}
                        }
                        Shape::List(kind)
                    }
                    _ => {
                        starts.push(self.position(at).0);
                        Shape::One(self.kind(&map.kind, &map.api_version, at, None)?)
                    }
                }
            }
        };
        Ok(Outline {
            shape,
            root: self.position(at),
            starts,
        })
    }

    /// The kind of one resource in a sequence or list (`list` is the list's kind, if any).
    fn item_kind(&self, item: &Spanned<ItemHead>, list: Option<Kind>) -> Result<Kind, DecodeError> {
        match &item.value {
            ItemHead::Map { kind, api_version } => {
                self.kind(kind, api_version, item.referenced, list)
            }
            ItemHead::Null => Err(self.unknown_kind(None, None, item.referenced, true)),
            ItemHead::Other => Err(self.shape_error(
                item.referenced,
                "expected a resource: a mapping with apiVersion, kind, metadata and spec",
            )),
        }
    }

    /// Resolves `kind`/`apiVersion`; inside a `<kind>List` both may be omitted.
    fn kind(
        &self,
        kind: &Option<Spanned<Text>>,
        version: &Option<Spanned<Text>>,
        at: Location,
        list: Option<Kind>,
    ) -> Result<Kind, DecodeError> {
        let resolved = match (kind, list) {
            (Some(k), Some(list)) => (k.value.0 == list.name()).then_some(list),
            (Some(k), None) => Kind::from_name(&k.value.0),
            (None, list) => list,
        };
        let version_ok = version.is_none() && list.is_some() || is_v1(version.as_ref());
        match resolved {
            Some(k) if version_ok => Ok(k),
            Some(_) => Err(self.unknown_kind(kind.as_ref(), version.as_ref(), at, false)),
            None => Err(self.unknown_kind(kind.as_ref(), version.as_ref(), at, true)),
        }
    }

    /// `UnknownKind`, positioned at the offending `kind` (if `kind_wrong`) or `apiVersion`
    /// value, else at the resource.
    fn unknown_kind(
        &self,
        kind: Option<&Spanned<Text>>,
        version: Option<&Spanned<Text>>,
        at: Location,
        kind_wrong: bool,
    ) -> DecodeError {
        let blame = match (kind_wrong, kind, version) {
            (true, Some(k), _) => k.referenced,
            (false, _, Some(v)) => v.referenced,
            _ => at,
        };
        let (line, column) = self.position(blame);
        let text = |t: Option<&Spanned<Text>>| t.map(|t| t.value.0.clone()).unwrap_or_default();
        DecodeError::UnknownKind {
            kind: text(kind),
            api_version: text(version),
            line,
            column,
        }
    }
}

/// Whether an `apiVersion` value is present and `v1`.
fn is_v1(version: Option<&Spanned<Text>>) -> bool {
    version.is_some_and(|v| v.value.0 == API_VERSION)
}

/// A string-ish scalar read leniently: scalars give their text, anything else an empty string.
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text(String::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text(String::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Text, A::Error> {
                IgnoredAny.visit_seq(seq).map(|_| Text(String::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Text, A::Error> {
                IgnoredAny.visit_map(map).map(|_| Text(String::new()))
            }
        }
        deserializer.deserialize_any(TextVisitor)
    }
}

/// Pass-1 view of a root mapping: a resource or a `<kind>List`.
#[derive(Default)]
struct MapHead {
    kind: Option<Spanned<Text>>,
    api_version: Option<Spanned<Text>>,
    items: Option<Spanned<ItemsHead>>,
}

/// Pass-1 view of one resource in a sequence or list.
enum ItemHead {
    Null,
    Other,
    Map {
        kind: Option<Spanned<Text>>,
        api_version: Option<Spanned<Text>>,
    },
}

/// Pass-1 view of a list's `items`.
enum ItemsHead {
    Sequence(Vec<Spanned<ItemHead>>),
    Other,
}

/// Which pass-1 view a [`HeadVisitor`] builds.
#[derive(Clone, Copy)]
enum HeadLevel {
    Root,
    Item,
    Items,
}

/// Pass-1 view of a document root (also the raw result at the other levels).
enum Head {
    Null,
    Other,
    Sequence(Vec<Spanned<ItemHead>>),
    Map(Box<MapHead>),
}

struct HeadVisitor(HeadLevel);

impl<'de> Visitor<'de> for HeadVisitor {
    type Value = Head;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a resource or a list of resources")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Head, E> {
        Ok(Head::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Head, E> {
        Ok(Head::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Head, E> {
        Ok(Head::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Head, E> {
        Ok(Head::Other)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Head, E> {
        Ok(Head::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Head, E> {
        Ok(Head::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Head, E> {
        Ok(Head::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Head, A::Error> {
        match self.0 {
            HeadLevel::Root | HeadLevel::Items => {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<ItemHead>>()? {
                    items.push(item);
                }
                Ok(Head::Sequence(items))
            }
            HeadLevel::Item => IgnoredAny.visit_seq(seq).map(|_| Head::Other),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Head, A::Error> {
        if let HeadLevel::Items = self.0 {
            return IgnoredAny.visit_map(map).map(|_| Head::Other);
        }
        let mut head = MapHead::default();
        while let Some(key) = map.next_key::<Text>()? {
            match (key.0.as_str(), self.0) {
                ("kind", _) => head.kind = Some(map.next_value()?),
                ("apiVersion", _) => head.api_version = Some(map.next_value()?),
                ("items", HeadLevel::Root) => head.items = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Head::Map(Box::new(head)))
    }
}

impl<'de> Deserialize<'de> for Head {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(HeadVisitor(HeadLevel::Root))
    }
}

impl<'de> Deserialize<'de> for ItemHead {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(
            match deserializer.deserialize_any(HeadVisitor(HeadLevel::Item))? {
                Head::Null => ItemHead::Null,
                Head::Map(map) => ItemHead::Map {
                    kind: map.kind,
                    api_version: map.api_version,
                },
                Head::Other | Head::Sequence(_) => ItemHead::Other,
            },
        )
    }
}

impl<'de> Deserialize<'de> for ItemsHead {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(
            match deserializer.deserialize_any(HeadVisitor(HeadLevel::Items))? {
                Head::Null => ItemsHead::Sequence(Vec::new()),
                Head::Sequence(items) => ItemsHead::Sequence(items),
                Head::Other | Head::Map(_) => ItemsHead::Other,
            },
        )
    }
}
