//! Running the real calicoctl binary from the integration tests.

use std::ffi::OsStr;
use std::io::Write;
use std::process::{Command, Stdio};

/// What one calicoctl run printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl Run {
    /// Standard output of a run that succeeded without complaint.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "calicoctl failed: {self:?}");
        assert_eq!(self.stderr, "", "{self:?}");
        &self.stdout
    }

    /// Standard error of a run that failed (exit 1) and printed nothing else.
    #[track_caller]
    pub fn failed(&self) -> &str {
        assert_eq!(self.code, 1, "calicoctl should have exited 1: {self:?}");
        assert_eq!(self.stdout, "", "{self:?}");
        &self.stderr
    }
}

/// Runs calicoctl with `args` and the extra environment `env`, feeding it `stdin`.
pub fn calicoctl<A: AsRef<OsStr>>(args: &[A], env: &[(&str, &OsStr)], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_calicoctl"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start calicoctl");
    child
        .stdin
        .take()
        .expect("calicoctl's stdin")
        .write_all(stdin.as_bytes())
        .expect("write calicoctl's stdin");
    let out = child.wait_with_output().expect("wait for calicoctl");
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}
