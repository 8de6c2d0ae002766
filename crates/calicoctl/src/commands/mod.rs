//! One module per calicoctl command; each returns an [`Outcome`] for `main` to print.

pub mod config;
pub mod ipam;
pub mod node;
pub mod pool;
pub mod profile;
pub mod resources;
pub mod selector;
pub mod version;

use std::io::Write;
use std::process::ExitCode;

/// What a command prints and whether it succeeded (failure exits 1).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub success: bool,
}

impl Outcome {
    /// A success printing `stdout`.
    pub fn ok(stdout: impl Into<String>) -> Self {
        Outcome {
            stdout: stdout.into(),
            stderr: String::new(),
            success: true,
        }
    }

    /// A failure printing `stderr` (a trailing newline is added when missing).
    pub fn fail(stderr: impl Into<String>) -> Self {
        let mut stderr = stderr.into();
        if !stderr.ends_with('\n') {
            stderr.push('\n');
        }
        Outcome {
            stdout: String::new(),
            stderr,
            success: false,
        }
    }

    /// Writes the output streams and returns the process exit code.
    pub fn emit(self) -> ExitCode {
        let _ = std::io::stdout().lock().write_all(self.stdout.as_bytes());
        let _ = std::io::stderr().lock().write_all(self.stderr.as_bytes());
        if self.success {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

impl From<anyhow::Result<String>> for Outcome {
    fn from(result: anyhow::Result<String>) -> Self {
        match result {
            Ok(out) => Outcome::ok(out),
            Err(e) => Outcome::fail(format!("{e:#}")),
        }
    }
}
