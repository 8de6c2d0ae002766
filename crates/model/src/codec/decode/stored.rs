//! Reading one resource back from the datastore: JSON only, through serde_json (much faster
//! than the YAML path), with the same strict types and validation as files.

use serde::de::DeserializeSeed;
use serde::Deserialize;

use super::read::ResourceSeed;
use super::{DecodeError, InvalidResource};
use crate::kind::Kind;
use crate::resources::{Resource, API_VERSION};

/// Decodes and validates one resource stored as JSON (as `serde_json::to_vec(&resource)` writes it).
pub fn from_json(bytes: &[u8]) -> Result<Resource, DecodeError> {
    #[derive(Deserialize)]
    struct Head {
        #[serde(default)]
        kind: String,
        #[serde(rename = "apiVersion", default)]
        api_version: String,
    }
    let head: Head = serde_json::from_slice(bytes).map_err(json_error)?;
    let kind = Kind::from_name(&head.kind)
        .filter(|_| head.api_version == API_VERSION)
        .ok_or_else(|| DecodeError::UnknownKind {
            kind: head.kind.clone(),
            api_version: head.api_version.clone(),
            line: 1,
            column: 1,
        })?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let resource = ResourceSeed(kind)
        .deserialize(&mut de)
        .map_err(json_error)?;
    de.end().map_err(json_error)?;
    resource.validate().map_err(|errors| {
        DecodeError::Invalid(vec![InvalidResource {
            index: 1,
            kind,
            name: resource.display_name(),
            line: 1,
            errors,
        }])
    })?;
    Ok(resource)
}

fn json_error(e: serde_json::Error) -> DecodeError {
    let text = e.to_string();
    let message = text.split(" at line ").next().unwrap_or(&text).to_string();
    DecodeError::Parse {
        message,
        line: e.line() as u64,
        column: e.column() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode;

    #[test]
    fn reads_back_what_serde_json_writes() {
        let yaml = "apiVersion: v1\nkind: policy\nmetadata:\n  name: p\nspec:\n  selector: a == 'b'\n  egress:\n  - action: allow\n";
        let resource = decode(yaml).unwrap().remove(0);
        let json = serde_json::to_vec(&resource).unwrap();
        assert_eq!(from_json(&json).unwrap(), resource);
    }

    #[test]
    fn rejects_unknown_fields_kinds_and_invalid_values() {
        let unknown = br#"{"kind":"profile","apiVersion":"v1","metadata":{"name":"p","x":1}}"#;
        assert!(matches!(from_json(unknown), Err(DecodeError::Parse { .. })));
        let kind = br#"{"kind":"gadget","apiVersion":"v1"}"#;
        assert!(matches!(
            from_json(kind),
            Err(DecodeError::UnknownKind { .. })
        ));
        let invalid = br#"{"kind":"profile","apiVersion":"v1","metadata":{"name":"a b"}}"#;
        assert!(matches!(from_json(invalid), Err(DecodeError::Invalid(_))));
        assert!(from_json(b"\xff").is_err());
    }
}
