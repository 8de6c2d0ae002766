//! The two accept rules Docker's iptables chains need for workload traffic.
//!
//! A `drop` in any netfilter table is final, but an `accept` only ends the base chain it is in:
//! after `inet calico` accepts a packet, Docker's iptables-nft `FORWARD` chain still runs, and
//! its policy is DROP when dockerd had to switch `ip_forward` on itself. So workload traffic
//! needs an accept in `DOCKER-USER`, the chain Docker reserves for its users and jumps to first.
//!
//! This is safe because those rules only ever see what our table let through: its base chains
//! hook `forward` before Docker's (priority -20/-10 against 0) and drop every packet of a `cali*`
//! interface that policy denies or that belongs to no known endpoint. The table is never deleted
//! when calico-node stops, so the rules never open a path the table does not police.

use std::io;
use std::process::Command;

use calico_model::endpoint_naming::HOST_INTERFACE_PREFIX;

use crate::{DataplaneError, Result};

/// Docker's chain for user rules.
const CHAIN: &str = "DOCKER-USER";

/// Comment on our rules, so people can tell where they come from.
const COMMENT: &str = "calico: policed by table inet calico";

/// Makes sure `DOCKER-USER` accepts traffic from and to `cali*` interfaces, in IPv4 and IPv6
/// (`iptables`, `ip6tables`), where the chain exists; returns how many rules it inserted.
/// Idempotent (checks with `-C` first), so call it again whenever dockerd may have (re)created
/// the chain. A family without the binary or the chain is skipped.
pub fn ensure_docker_user_accept() -> Result<usize> {
    let mut inserted = 0;
    for program in ["iptables", "ip6tables"] {
        if !chain_exists(program)? {
            continue;
        }
        let wildcard = format!("{HOST_INTERFACE_PREFIX}+");
        for dir in ["-i", "-o"] {
            let rule = [
                dir,
                wildcard.as_str(),
                "-m",
                "comment",
                "--comment",
                COMMENT,
                "-j",
                "ACCEPT",
            ];
            if iptables(program, &[&["-w", "-C", CHAIN], &rule[..]].concat())?.is_ok() {
                continue;
            }
            iptables(program, &[&["-w", "-I", CHAIN, "1"], &rule[..]].concat())?.map_err(
                |message| DataplaneError::Iptables {
                    command: format!("{program} -I {CHAIN} 1 {}", rule.join(" ")),
                    message,
                },
            )?;
            inserted += 1;
        }
    }
    Ok(inserted)
}

/// True when `program` exists and has the chain.
fn chain_exists(program: &str) -> Result<bool> {
    match Command::new(program).args(["-w", "-S", CHAIN]).output() {
        Ok(out) => Ok(out.status.success()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(DataplaneError::Spawn {
            program: program.to_string(),
            error,
        }),
    }
}

/// Runs `program args`: `Err` holds its error output when it fails.
fn iptables(program: &str, args: &[&str]) -> Result<Result<(), String>> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|error| DataplaneError::Spawn {
            program: program.to_string(),
            error,
        })?;
    if out.status.success() {
        return Ok(Ok(()));
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Ok(Err(if stderr.is_empty() {
        out.status.to_string()
    } else {
        stderr
    }))
}
