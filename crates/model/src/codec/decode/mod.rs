//! Decoding resource files: YAML or JSON, one resource, a sequence of resources, a
//! `<kind>List`, or several `---` documents mixing these.
//!
//! Each document is read twice. Pass 1 reads only its shape and the `kind`/`apiVersion` of every
//! resource in it (with their positions), so unknown kinds are reported before anything else.
//! Pass 2 streams each resource straight into its concrete type with a `DeserializeSeed` built
//! from that outline; nothing is buffered into a generic value, so every error keeps its exact line
//! and column. Documents are split on `---` / `...` marker lines and parsed one at a time, with
//! the document's starting line added to reported positions. serde-saphyr's budgets (depth,
//! events, nodes, aliases) stay on, so hostile input fails cleanly.

mod outline;
mod read;
mod split;
mod stored;

use std::fmt;

use serde::de::DeserializeSeed;
use serde_saphyr::{Location, MessageFormatter, UserMessageFormatter};

use crate::kind::Kind;
use crate::resources::Resource;
use crate::validate::ValidationErrors;
use outline::Outline;
use read::DocSeed;
pub use stored::from_json;

/// Why a resource file could not be decoded.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The text is not valid YAML/JSON, or does not have the shape of a resource.
    #[error("{message} at line {line}, column {column}")]
    Parse {
        /// What was wrong.
        message: String,
        /// 1-based line in the whole input.
        line: u64,
        /// 1-based column.
        column: u64,
    },
    /// A resource names a kind or `apiVersion` that Calico v1 does not have.
    #[error("Unknown resource type ({kind}) and/or version ({api_version}) at line {line}, column {column}")]
    UnknownKind {
        /// The `kind` given (empty when missing).
        kind: String,
        /// The `apiVersion` given (empty when missing).
        api_version: String,
        /// 1-based line in the whole input.
        line: u64,
        /// 1-based column.
        column: u64,
    },
    /// Every resource decoded, but some failed validation.
    #[error("{}", InvalidList(.0))]
    Invalid(Vec<InvalidResource>),
}

/// A decoded resource that failed validation.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("resource {index} ({kind} '{name}' at line {line}): {errors}")]
pub struct InvalidResource {
    /// 1-based position of the resource in the input.
    pub index: usize,
    /// Its kind.
    pub kind: Kind,
    /// Its name (or pool CIDR, or peer IP); empty when missing.
    pub name: String,
    /// Line where the resource starts.
    pub line: u64,
    /// What is wrong with it.
    pub errors: ValidationErrors,
}

struct InvalidList<'a>(&'a [InvalidResource]);

impl fmt::Display for InvalidList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, invalid) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            invalid.fmt(f)?;
        }
        Ok(())
    }
}

/// Decodes and validates every resource in `input` (YAML or JSON).
///
/// Returns all resources in input order, or the first syntax/shape error, or every validation
/// failure. Empty input (or only empty documents) gives an empty list.
pub fn decode(input: &str) -> Result<Vec<Resource>, DecodeError> {
    let mut resources = Vec::new();
    let mut starts = Vec::new();
    for doc in split::documents(input) {
        let outline = doc.outline()?;
        doc.read(&outline, &mut resources)?;
        starts.extend(outline.starts);
    }
    let invalid: Vec<InvalidResource> = resources
        .iter()
        .zip(starts)
        .enumerate()
        .filter_map(|(i, (resource, line))| {
            resource.validate().err().map(|errors| InvalidResource {
                index: i + 1,
                kind: resource.kind(),
                name: resource.display_name(),
                line,
                errors,
            })
        })
        .collect();
    if invalid.is_empty() {
        Ok(resources)
    } else {
        Err(DecodeError::Invalid(invalid))
    }
}

/// One YAML document of the input and the number of lines before it.
struct Document<'a> {
    text: &'a str,
    lines_before: u64,
}

impl Document<'_> {
    /// A position inside this document as (line, column) in the whole input.
    fn position(&self, at: Location) -> (u64, u64) {
        (self.lines_before + at.line(), at.column())
    }

    /// The document's first line, for errors that carry no position.
    fn start(&self) -> (u64, u64) {
        (self.lines_before + 1, 1)
    }

    /// A serde-saphyr error as [`DecodeError::Parse`] in whole-input coordinates.
    fn parse_error(&self, error: &serde_saphyr::Error, fallback: (u64, u64)) -> DecodeError {
        let error = error.without_snippet();
        let message = UserMessageFormatter.format_message(error);
        let (line, column) = error
            .location()
            .filter(|at| at.line() > 0)
            .map_or(fallback, |at| self.position(at));
        DecodeError::Parse {
            message: without_controls(plain_words(&message)),
            line,
            column,
        }
    }

    /// A [`DecodeError::Parse`] at `at`.
    fn shape_error(&self, at: Location, message: impl Into<String>) -> DecodeError {
        let (line, column) = self.position(at);
        DecodeError::Parse {
            message: message.into(),
            line,
            column,
        }
    }

    /// Pass 2: deserializes the resources of the document into `out`.
    fn read(&self, outline: &Outline, out: &mut Vec<Resource>) -> Result<(), DecodeError> {
        serde_saphyr::with_deserializer_from_str_with_options(self.text, options(), |de| {
            DocSeed {
                shape: &outline.shape,
                out,
            }
            .deserialize(de)
        })
        .map_err(|e| self.parse_error(&e, outline.root))
    }
}

/// Parser options: serde-saphyr's default budgets and duplicate-key errors, no snippets.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! { with_snippet: false }
}

/// Rewords serde-saphyr's terse type-mismatch messages for people writing resource files.
fn plain_words(message: &str) -> &str {
    match message {
        "expected sequence start" => "expected a list here",
        "expected mapping start" => "expected a mapping (key: value pairs) here",
        "expected string scalar" | "expected scalar" => {
            "expected a single value here, not a list or mapping"
        }
        "invalid boolean" => "expected true or false",
        "invalid floating point" => "expected a number",
        m if m.strip_prefix("invalid ").is_some_and(|t| {
            t.len() > 1 && t.starts_with(['i', 'u']) && t[1..].bytes().all(|b| b.is_ascii_digit())
        }) =>
        {
            "expected a whole number"
        }
        other => other,
    }
}

/// Escapes control characters (which may come from the input) so messages stay on one line.
fn without_controls(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
