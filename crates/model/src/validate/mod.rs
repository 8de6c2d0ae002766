//! Calico v1 validation rules (`lib/validator/validator.go`), reported as a full list of
//! field errors in Calico's message format.

mod resources;
mod rule;

use std::collections::BTreeMap;
use std::fmt;

use crate::resources::Resource;

/// One invalid field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Full path of the field, e.g. `spec.ingress[0].source.ports`.
    pub path: String,
    /// The offending value as written.
    pub value: String,
    /// What is wrong and what would be accepted.
    pub reason: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = '{}' ({})", self.path, self.value, self.reason)
    }
}

/// Every invalid field of a resource, displayed like Calico's `ErrorValidation`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    /// The invalid fields, in the order they were checked.
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => f.write_str("unknown validation error"),
            [only] => write!(f, "error with field {only}"),
            all => {
                f.write_str("error with the following fields:")?;
                all.iter().try_for_each(|e| write!(f, "\n-  {e}"))
            }
        }
    }
}

impl Resource {
    /// Checks every Calico v1 rule for this kind and reports all violations.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut checker = Checker::default();
        match self {
            Resource::Node(r) => resources::node(&mut checker, r),
            Resource::BgpPeer(r) => resources::bgp_peer(&mut checker, r),
            Resource::HostEndpoint(r) => resources::host_endpoint(&mut checker, r),
            Resource::WorkloadEndpoint(r) => resources::workload_endpoint(&mut checker, r),
            Resource::IpPool(r) => resources::ip_pool(&mut checker, r),
            Resource::Policy(r) => resources::policy(&mut checker, r),
            Resource::Profile(r) => resources::profile(&mut checker, r),
        }
        checker.finish()
    }
}

/// Collects field errors.
#[derive(Default)]
struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    fn report(
        &mut self,
        path: impl Into<String>,
        value: impl fmt::Display,
        reason: impl Into<String>,
    ) {
        self.errors.push(FieldError {
            path: path.into(),
            value: value.to_string(),
            reason: reason.into(),
        });
    }

    fn finish(self) -> Result<(), ValidationErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.errors))
        }
    }

    /// A resource or node name, if set: `[a-zA-Z0-9_.-]{1,128}`.
    fn name(&mut self, path: &str, value: &str) {
        if !value.is_empty() && !is_name(value, false) {
            self.report(path, value, NAME_FORM);
        }
    }

    /// A name that may also contain `/`, if set: `[a-zA-Z0-9_./-]{1,128}`.
    fn namespaced_name(&mut self, path: &str, value: &str) {
        if !value.is_empty() && !is_name(value, true) {
            self.report(path, value, NAMESPACED_NAME_FORM);
        }
    }

    /// A tag: same form as a name.
    fn tag(&mut self, path: &str, tag: &str) {
        if !is_name(tag, false) {
            self.report(path, tag, TAG_FORM);
        }
    }

    /// An interface name: `[a-zA-Z0-9_-]{1,15}`.
    fn interface(&mut self, path: &str, value: &str) {
        let ok = (1..=15).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            self.report(path, value, INTERFACE_FORM);
        }
    }

    /// Label keys (selector identifiers) and values (Kubernetes-style).
    fn labels(&mut self, path: &str, labels: &BTreeMap<String, String>) {
        for (key, value) in labels {
            if !is_label_key(key) {
                self.report(path, key, LABEL_KEY_FORM);
            }
            if !is_label_value(value) {
                self.report(format!("{path}.{key}"), value, LABEL_VALUE_FORM);
            }
        }
    }

    /// A selector expression must parse.
    fn selector(&mut self, path: &str, value: &str) {
        if let Err(e) = calico_selector::parse(value) {
            self.report(path, value, format!("invalid selector: {e}"));
        }
    }
}

const NAME_FORM: &str = "invalid name: use 1-128 characters from a-z, A-Z, 0-9, '.', '_', '-'";
const NAMESPACED_NAME_FORM: &str =
    "invalid name: use 1-128 characters from a-z, A-Z, 0-9, '.', '_', '-', '/'";
const TAG_FORM: &str = "invalid tag: use 1-128 characters from a-z, A-Z, 0-9, '.', '_', '-'";
const INTERFACE_FORM: &str =
    "invalid interface name: use 1-15 characters from a-z, A-Z, 0-9, '_', '-'";
const LABEL_KEY_FORM: &str =
    "invalid label key: use 1-512 characters from a-z, A-Z, 0-9, '.', '_', '-', '/'";
const LABEL_VALUE_FORM: &str = "invalid label value: use at most 63 characters from a-z, A-Z, \
     0-9, '.', '_', '-', ending with a letter or digit";

fn is_name(value: &str, allow_slash: bool) -> bool {
    (1..=128).contains(&value.len())
        && value.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'_' | b'.' | b'-')
                || (allow_slash && b == b'/')
        })
}

fn is_label_key(key: &str) -> bool {
    (1..=calico_selector::MAX_LABEL_LENGTH).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-'))
}

/// `^[a-zA-Z0-9]?([a-zA-Z0-9_.-]{0,61}[a-zA-Z0-9])?$`
fn is_label_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return true;
    };
    let max_len = if first.is_ascii_alphanumeric() {
        63
    } else {
        62
    };
    bytes.len() <= max_len
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Renders a list as `[a, b]` for error messages.
fn list<T: fmt::Display>(items: &[T]) -> String {
    let parts: Vec<String> = items.iter().map(ToString::to_string).collect();
    format!("[{}]", parts.join(", "))
}
