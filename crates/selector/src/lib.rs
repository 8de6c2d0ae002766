//! Calico's label selector language.
//!
//! A selector is a boolean expression over string labels, e.g.
//! `role == 'database' && !has(backup)`. This crate follows upstream Calico to the byte:
//! only space and TAB are whitespace, `!` binds tighter than `&&`, which binds tighter than
//! `||`, `!=` / `not in` / `!has` are true when the key is absent, and every selector has a
//! canonical string and a stable UID (`s:` + base64url(SHA-224("s:" + canonical))).
//!
//! ```
//! let sel = calico_selector::parse("role == 'db' && has(backup)").unwrap();
//! assert_eq!(sel.canonical(), r#"(role == "db" && has(backup))"#);
//! let labels = std::collections::HashMap::from([("role", "db"), ("backup", "")]);
//! assert!(sel.matches(&labels));
//! ```

#![warn(missing_docs)]

mod ast;
mod labels;
mod parser;
mod tokenizer;

pub use ast::Selector;
pub use labels::Labels;

/// Longest label key the tokenizer accepts, in bytes.
pub const MAX_LABEL_LENGTH: usize = 512;

/// Parses a selector; an empty or blank selector means `all()`.
pub fn parse(input: &str) -> Result<Selector, ParseError> {
    let tokens = tokenizer::tokenize(input.as_bytes())?;
    parser::parse(&tokens)
}

/// Why a selector did not parse, and the 1-based byte column where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at column {column}")]
pub struct ParseError {
    column: usize,
    message: String,
}

impl ParseError {
    pub(crate) fn new(offset: usize, message: impl Into<String>) -> Self {
        ParseError {
            column: offset + 1,
            message: message.into(),
        }
    }

    /// 1-based byte column of the problem within the selector.
    pub fn column(&self) -> usize {
        self.column
    }
}
