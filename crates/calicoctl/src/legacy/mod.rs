//! The older calicoctl 0.x (Python, docopt) `profile` and `pool` commands: pure parsing of the
//! words after the command name, and the text that CLI printed (rule listings, PrettyTable
//! tables, 80-column paragraphs). Nothing here touches the datastore or Docker.

pub mod pool;
pub mod profile;
pub mod rule;
pub mod table;
pub mod text;
mod words;

pub use words::ParseError;

use std::path::PathBuf;

/// A parsed legacy command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation<C> {
    /// What to do.
    pub command: C,
    /// A `-c/--config` given among the words (it overrides one given before the command).
    pub config: Option<PathBuf>,
}
