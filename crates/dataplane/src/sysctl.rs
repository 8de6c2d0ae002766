//! Per-interface and global sysctls, written as plain files under `/proc/sys`.
//!
//! Owned here: the settings Felix applies to each workload interface — IPv4
//! `conf.<if>.{rp_filter=1, route_localnet=1, proxy_arp=1, forwarding=1}` and
//! `neigh.<if>.proxy_delay=0`, plus IPv6 `conf.<if>.{proxy_ndp=1, forwarding=1}` when the
//! interface has IPv6 — and the global switches `net.ipv4.ip_forward` and
//! `net.ipv6.conf.all.forwarding`.
//!
//! The kernel resolves `/proc/sys/net/...` against the network namespace of the thread that opens
//! the file (not the namespace of whoever mounted `/proc`, and not the process's main thread as
//! `/proc/net` does), so these functions act on the calling thread's namespace.

use std::fs;
use std::path::{Path, PathBuf};

use tracing::debug;

use crate::error::validate_ifname;
use crate::{DataplaneError, Result};

/// Where the sysctl tree is mounted.
const PROC_SYS: &str = "/proc/sys";

/// One sysctl and the value we want in it.
#[derive(Debug, PartialEq, Eq)]
struct Setting {
    /// Dotted name as `sysctl(8)` prints it, e.g. `net.ipv4.conf.cali1.rp_filter`.
    name: String,
    /// The file under `/proc/sys`.
    path: PathBuf,
    /// Wanted value.
    want: i64,
}

impl Setting {
    /// A setting from its path components below `/proc/sys` (interface names may contain dots).
    fn new(parts: &[&str], want: i64) -> Setting {
        Setting {
            name: parts.join("."),
            path: parts.iter().fold(PathBuf::from(PROC_SYS), |p, c| p.join(c)),
            want,
        }
    }
}

/// Whether directory `parts` exists below `/proc/sys`, i.e. that part of the stack is present.
fn sys_dir_exists(parts: &[&str]) -> bool {
    parts
        .iter()
        .fold(PathBuf::from(PROC_SYS), |p, c| p.join(c))
        .is_dir()
}

/// The settings for workload interface `name`; `ipv6` adds the IPv6 ones.
fn workload_settings(name: &str, ipv6: bool) -> Vec<Setting> {
    let mut settings = vec![
        Setting::new(&["net", "ipv4", "conf", name, "rp_filter"], 1),
        Setting::new(&["net", "ipv4", "conf", name, "route_localnet"], 1),
        Setting::new(&["net", "ipv4", "conf", name, "proxy_arp"], 1),
        Setting::new(&["net", "ipv4", "neigh", name, "proxy_delay"], 0),
        Setting::new(&["net", "ipv4", "conf", name, "forwarding"], 1),
    ];
    if ipv6 {
        settings.push(Setting::new(&["net", "ipv6", "conf", name, "proxy_ndp"], 1));
        settings.push(Setting::new(
            &["net", "ipv6", "conf", name, "forwarding"],
            1,
        ));
    }
    settings
}

/// The settings for workload interface `name` as present on this host, after checking it exists.
fn present_workload_settings(name: &str) -> Result<Vec<Setting>> {
    validate_ifname(name)?;
    if !sys_dir_exists(&["net", "ipv4", "conf", name]) {
        return Err(DataplaneError::NoSuchInterface {
            name: name.to_string(),
        });
    }
    Ok(workload_settings(
        name,
        sys_dir_exists(&["net", "ipv6", "conf", name]),
    ))
}

/// Reads an integer sysctl.
fn read(path: &Path) -> Result<i64> {
    let content = fs::read_to_string(path).map_err(|error| DataplaneError::Sysctl {
        op: "reading",
        path: path.to_path_buf(),
        error,
    })?;
    content
        .trim()
        .parse()
        .map_err(|_| DataplaneError::SysctlValue {
            path: path.to_path_buf(),
            content,
        })
}

/// Writes `setting` if it does not already hold the wanted value.
fn ensure(setting: &Setting) -> Result<()> {
    if read(&setting.path)? == setting.want {
        return Ok(());
    }
    fs::write(&setting.path, setting.want.to_string()).map_err(|error| DataplaneError::Sysctl {
        op: "writing",
        path: setting.path.clone(),
        error,
    })?;
    debug!(name = %setting.name, value = setting.want, "set sysctl");
    Ok(())
}

/// Applies Felix's workload-interface sysctls to `name`, writing only those that differ.
pub fn configure_workload_interface(name: &str) -> Result<()> {
    present_workload_settings(name)?.iter().try_for_each(ensure)
}

/// The workload-interface sysctls of `name` that have drifted, as `net.….key=<got> (want <v>)`.
pub fn check_workload_interface(name: &str) -> Result<Vec<String>> {
    let mut wrong = Vec::new();
    for setting in present_workload_settings(name)? {
        let got = read(&setting.path)?;
        if got != setting.want {
            wrong.push(format!("{}={got} (want {})", setting.name, setting.want));
        }
    }
    Ok(wrong)
}

/// Turns on `net.ipv4.ip_forward` and, if IPv6 is present, `net.ipv6.conf.all.forwarding`.
pub fn enable_forwarding() -> Result<()> {
    ensure(&Setting::new(&["net", "ipv4", "ip_forward"], 1))?;
    if sys_dir_exists(&["net", "ipv6", "conf", "all"]) {
        ensure(&Setting::new(
            &["net", "ipv6", "conf", "all", "forwarding"],
            1,
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_match_felix() {
        let names: Vec<String> = workload_settings("cali0123456789a", true)
            .iter()
            .map(|s| format!("{}={}", s.name, s.want))
            .collect();
        assert_eq!(
            names,
            [
                "net.ipv4.conf.cali0123456789a.rp_filter=1",
                "net.ipv4.conf.cali0123456789a.route_localnet=1",
                "net.ipv4.conf.cali0123456789a.proxy_arp=1",
                "net.ipv4.neigh.cali0123456789a.proxy_delay=0",
                "net.ipv4.conf.cali0123456789a.forwarding=1",
                "net.ipv6.conf.cali0123456789a.proxy_ndp=1",
                "net.ipv6.conf.cali0123456789a.forwarding=1",
            ]
        );
        assert_eq!(workload_settings("cali0123456789a", false).len(), 5);
    }

    #[test]
    fn dotted_interface_names_stay_one_path_component() {
        let s = Setting::new(&["net", "ipv4", "conf", "eth0.100", "proxy_arp"], 1);
        assert_eq!(
            s.path,
            Path::new("/proc/sys/net/ipv4/conf/eth0.100/proxy_arp")
        );
        assert_eq!(s.name, "net.ipv4.conf.eth0.100.proxy_arp");
    }

    #[test]
    fn names_that_would_escape_the_tree_are_rejected() {
        for bad in ["..", "a/b", ""] {
            assert!(matches!(
                configure_workload_interface(bad),
                Err(DataplaneError::InvalidInterfaceName { .. })
            ));
        }
    }
}
