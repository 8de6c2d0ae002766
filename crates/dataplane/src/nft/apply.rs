//! Runs `nft`: applies rendered transactions, reads the table back, and counts what it wrote.
//!
//! Every call runs the `nft` binary in the network namespace of the calling thread and blocks
//! until it exits (about 5–20 ms for small transactions); the policy agent calls it through
//! `tokio::task::block_in_place`. A transaction is atomic: when nft rejects it, nothing changed.
//!
//! How the agent uses it (through [`PolicyDataplane`](crate::PolicyDataplane)): on start
//! [`Nft::resync`] (which writes nothing when the live table already equals the desired one),
//! then [`Nft::apply_changes`] for every change report; when one fails, the agent starts over
//! from a new listing and [`Nft::resync`]; and periodically [`Nft::resync`] again to repair drift.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::thread;

use calico_calc::desired::{Changes, Desired};

use super::counters::{parse_counters, CounterIndex, RuleCount};
use super::readback::{fingerprint, parse_listing, TableFingerprint};
use super::render::{render_changes, render_full};
use super::TABLE;
use crate::{DataplaneError, Result};

/// Where Debian installs `nft`.
pub const NFT_PROGRAM: &str = "/usr/sbin/nft";

/// The size of one transaction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxSize {
    /// Bytes of nft text.
    pub bytes: usize,
    /// Lines of nft text.
    pub lines: usize,
}

impl TxSize {
    /// The size of transaction `text`.
    pub fn of(text: &str) -> TxSize {
        TxSize {
            bytes: text.len(),
            lines: text.lines().count(),
        }
    }
}

/// Counters of the transactions applied so far, for metrics and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Whole-table transactions applied.
    pub full: u64,
    /// Incremental transactions applied (empty change reports are not counted).
    pub incremental: u64,
    /// Total bytes applied.
    pub bytes: u64,
    /// Total lines applied.
    pub lines: u64,
    /// The last transaction applied.
    pub last: TxSize,
}

/// The `inet calico` table through the `nft` binary.
#[derive(Clone, Debug)]
pub struct Nft {
    program: PathBuf,
    stats: ApplyStats,
}

impl Default for Nft {
    fn default() -> Nft {
        Nft::new()
    }
}

impl Nft {
    /// Uses [`NFT_PROGRAM`].
    pub fn new() -> Nft {
        Nft::with_program(NFT_PROGRAM)
    }

    /// Uses another `nft` binary.
    pub fn with_program(program: impl Into<PathBuf>) -> Nft {
        Nft {
            program: program.into(),
            stats: ApplyStats::default(),
        }
    }

    /// What has been applied so far.
    pub fn stats(&self) -> ApplyStats {
        self.stats
    }

    /// Replaces the whole table with the one `desired` calls for.
    pub fn apply_full(&mut self, desired: &Desired) -> Result<TxSize> {
        let size = self.apply(&render_full(desired))?;
        self.stats.full += 1;
        Ok(size)
    }

    /// Applies `changes` (which brought the state to `desired`) to a table that was in sync
    /// with the previous state; does nothing for an empty report.
    pub fn apply_changes(&mut self, desired: &Desired, changes: &Changes) -> Result<TxSize> {
        let text = render_changes(desired, changes);
        if text.is_empty() {
            return Ok(TxSize::default());
        }
        let size = self.apply(&text)?;
        self.stats.incremental += 1;
        Ok(size)
    }

    /// Applies the whole table unless the live one already equals it; the transaction's size
    /// when it wrote.
    pub fn resync(&mut self, desired: &Desired) -> Result<Option<TxSize>> {
        if self.in_sync(desired)? {
            return Ok(None);
        }
        self.apply_full(desired).map(Some)
    }

    /// True when the live table is exactly the one [`Nft::apply_full`] would write.
    pub fn in_sync(&self, desired: &Desired) -> Result<bool> {
        let same = self.read_back()?.as_ref() == Some(&fingerprint(desired));
        release_freed_memory();
        Ok(same)
    }

    /// The live table's fingerprint, or `None` when there is no such table.
    pub fn read_back(&self) -> Result<Option<TableFingerprint>> {
        self.list_table()?
            .map(|json| parse_listing(&json))
            .transpose()
    }

    /// The packet and byte counters of the live table's policy, profile and endpoint rules, for
    /// the rules of `index` (see [`counted_rules`]); none when there is no table.
    pub fn rule_counters(&self, index: &CounterIndex) -> Result<Vec<RuleCount>> {
        match self.list_table()? {
            Some(json) => parse_counters(&json, index),
            None => Ok(Vec::new()),
        }
    }

    /// `nft -j list table inet calico`, or `None` when there is no such table.
    fn list_table(&self) -> Result<Option<String>> {
        let out = self.run(&["-j", "list", "table", TABLE], "")?;
        if out.status.success() {
            return Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()));
        }
        let message = String::from_utf8_lossy(&out.stderr);
        if message.contains("No such file or directory") {
            return Ok(None);
        }
        Err(nft_error("list", &message, ""))
    }

    /// Checks transaction `text` without applying it (`nft -c`).
    pub fn check(&self, text: &str) -> Result<()> {
        let out = self.run(&["-c", "-f", "-"], text)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(nft_error(
                "check",
                &String::from_utf8_lossy(&out.stderr),
                text,
            ))
        }
    }

    /// Applies transaction `text` and counts it.
    fn apply(&mut self, text: &str) -> Result<TxSize> {
        let out = self.run(&["-f", "-"], text)?;
        if !out.status.success() {
            return Err(nft_error(
                "apply",
                &String::from_utf8_lossy(&out.stderr),
                text,
            ));
        }
        let size = TxSize::of(text);
        self.stats.bytes += size.bytes as u64;
        self.stats.lines += size.lines as u64;
        self.stats.last = size;
        Ok(size)
    }

    /// Runs nft with `args`, feeding it `input`.
    fn run(&self, args: &[&str], input: &str) -> Result<Output> {
        let spawn_error = |error| DataplaneError::Spawn {
            program: self.program.display().to_string(),
            error,
        };
        // The C locale: errors are recognised by nft's English text (`read_back`).
        let mut child = Command::new(&self.program)
            .args(args)
            .env("LC_ALL", "C")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        let stdin = child.stdin.take();
        thread::scope(|scope| {
            // Written on its own thread so a large transaction cannot deadlock against nft's
            // output; a write error means nft exited early, and its status tells why.
            scope.spawn(move || {
                if let Some(mut stdin) = stdin {
                    let _ = stdin.write_all(input.as_bytes());
                }
            });
            child.wait_with_output().map_err(spawn_error)
        })
    }
}

/// An nft failure, with the transaction line its message points at (`/dev/stdin:LINE:…`).
fn nft_error(op: &'static str, stderr: &str, text: &str) -> DataplaneError {
    let line = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("/dev/stdin:"))
        .filter_map(|rest| rest.split(':').next()?.parse::<usize>().ok())
        .find_map(|n| Some((n, text.lines().nth(n.checked_sub(1)?)?.to_string())));
    DataplaneError::Nft {
        op,
        message: stderr.trim().to_string(),
        line,
    }
}

/// Hands the memory a large read-back freed back to the kernel. glibc keeps freed heap pages in
/// its arenas, so without this a periodic read-back of a big table would leave the process at
/// its peak size for good.
fn release_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks and trims the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_point_at_the_offending_line() {
        let text = "add table inet calico\nadd rule inet calico x jump nosuch\n";
        let stderr = "/dev/stdin:2:40-45: Error: Could not process rule: No such file or directory\nadd rule inet calico x jump nosuch\n                                       ^^^^^^\n";
        let err = nft_error("apply", stderr, text);
        match &err {
            DataplaneError::Nft { line, .. } => assert_eq!(
                line,
                &Some((2, "add rule inet calico x jump nosuch".to_string()))
            ),
            other => panic!("{other:?}"),
        }
        assert!(err
            .to_string()
            .ends_with("(line 2: add rule inet calico x jump nosuch)"));
        let err = nft_error("apply", "/dev/stdin:9:1: Error: x", text);
        assert!(matches!(err, DataplaneError::Nft { line: None, .. }));
    }

    #[test]
    fn sizes_count_bytes_and_lines() {
        assert_eq!(TxSize::of("a\nbc\n"), TxSize { bytes: 5, lines: 2 });
        assert_eq!(TxSize::of(""), TxSize::default());
    }

    #[test]
    fn a_missing_binary_is_a_spawn_error() {
        let nft = Nft::with_program("/nonexistent/nft");
        assert!(matches!(nft.read_back(), Err(DataplaneError::Spawn { .. })));
    }
}
