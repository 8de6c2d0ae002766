//! Records the git commit and its date for `calicoctl version`.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let date = git(&["log", "-1", "--format=%cd", "--date=format:%Y-%m-%d"])
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CALICOCTL_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=CALICOCTL_BUILD_DATE={date}");
    println!("cargo:rerun-if-changed=build.rs");
    for watched in ["../../.git/HEAD", "../../.git/refs/heads"] {
        if Path::new(watched).exists() {
            println!("cargo:rerun-if-changed={watched}");
        }
    }
}
