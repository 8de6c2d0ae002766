//! The crate's one error type.

use std::io;
use std::path::PathBuf;

use ipnet::IpNet;

/// Result of every fallible operation in this crate.
pub type Result<T, E = DataplaneError> = std::result::Result<T, E>;

/// Why a dataplane operation failed; every message names the interface, route or path involved.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// An interface name the kernel would refuse.
    #[error("invalid interface name {name:?}: {reason}")]
    InvalidInterfaceName {
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A workload route destination that is not a single address.
    #[error("route destination {dest} is not a host route (/32 or /128)")]
    NotHostRoute {
        /// The rejected destination.
        dest: IpNet,
    },
    /// An interface with this name already exists.
    #[error("interface {name} already exists")]
    InterfaceExists {
        /// The name that is taken.
        name: String,
    },
    /// The interface does not exist (in the calling thread's network namespace).
    #[error("interface {name} does not exist")]
    NoSuchInterface {
        /// The missing interface.
        name: String,
    },
    /// The rtnetlink socket could not be opened, or there is no tokio runtime to drive it.
    #[error("opening rtnetlink socket: {error}")]
    Connect {
        /// The underlying error.
        error: io::Error,
    },
    /// The kernel rejected a netlink request, or the connection failed.
    #[error("{what}: {error}")]
    Netlink {
        /// The operation and object, e.g. `adding route 10.65.0.5/32 dev cali0123456789a`.
        what: String,
        /// The OS error the kernel returned (`raw_os_error()` holds the errno).
        error: io::Error,
    },
    /// Reading or writing a file under `/proc/sys` failed.
    #[error("{op} {}: {error}", path.display())]
    Sysctl {
        /// `reading` or `writing`.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// A helper program (`nft`, `iptables`) could not be started or talked to.
    #[error("running {program}: {error}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        error: io::Error,
    },
    /// `nft` refused a command or a transaction.
    #[error("nft {op} failed: {message}{}", at_line(.line))]
    Nft {
        /// What we asked for, e.g. `apply`, `check`, `list`.
        op: &'static str,
        /// nft's error output.
        message: String,
        /// The line of the transaction nft complained about (1-based), if it said.
        line: Option<(usize, String)>,
    },
    /// `nft -j list` printed something we could not read.
    #[error("reading the nft listing: {reason}")]
    NftListing {
        /// What is wrong with it.
        reason: String,
    },
    /// An `iptables`/`ip6tables` command failed.
    #[error("{command} failed: {message}")]
    Iptables {
        /// The command line.
        command: String,
        /// Its error output or exit status.
        message: String,
    },
    /// A `/proc/sys` file held something other than an integer.
    #[error("unexpected content {content:?} in {}", path.display())]
    SysctlValue {
        /// The file.
        path: PathBuf,
        /// What it held.
        content: String,
    },
}

/// ` (line N: text)` for an nft error that names a line of our transaction.
fn at_line(line: &Option<(usize, String)>) -> String {
    match line {
        Some((number, text)) => format!(" (line {number}: {text})"),
        None => String::new(),
    }
}

/// Rejects names the kernel's `dev_valid_name` refuses, before they reach netlink or a path.
pub(crate) fn validate_ifname(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > 15 {
        "longer than 15 bytes"
    } else if name == "." || name == ".." {
        "reserved"
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c == '\0' || c.is_whitespace())
    {
        "contains '/', ':', NUL or whitespace"
    } else {
        return Ok(());
    };
    Err(DataplaneError::InvalidInterfaceName {
        name: name.to_string(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_follow_the_kernel_rules() {
        for ok in ["cali0123456789a", "lo", "eth0.100", "a"] {
            assert!(validate_ifname(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "cali0123456789ab",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "a\0",
        ] {
            let err = validate_ifname(bad).unwrap_err();
            assert!(
                matches!(err, DataplaneError::InvalidInterfaceName { .. }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn messages_name_the_object_and_the_os_error() {
        let err = DataplaneError::Netlink {
            what: "adding route 10.65.0.5/32 dev cali0123456789a".into(),
            error: io::Error::from_raw_os_error(libc::ENETDOWN),
        };
        let msg = err.to_string();
        assert!(msg.starts_with("adding route 10.65.0.5/32 dev cali0123456789a: "));
        assert!(msg.contains("os error 100"), "{msg}");
        let err = DataplaneError::Sysctl {
            op: "writing",
            path: "/proc/sys/net/ipv4/ip_forward".into(),
            error: io::Error::from_raw_os_error(libc::EACCES),
        };
        assert!(err
            .to_string()
            .starts_with("writing /proc/sys/net/ipv4/ip_forward: "));
    }
}
