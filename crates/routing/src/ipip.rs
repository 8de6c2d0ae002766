//! IPIP honesty. calico-docker routes workload traffic between hosts without encapsulation: it
//! does not implement IPIP (yet), and some kernels have no IPIP at all. A pool whose `ipip` is
//! enabled is therefore said out loud rather than ignored:
//!
//! - calico-node logs [`notice`] once per distinct set of IPIP pools ([`IpipReport`] decides
//!   when), saying why: [`probe_kernel`] tells whether this kernel has IPIP;
//! - it writes the same line to [`STATUS_FILE`] in its BIRD directory, and `calicoctl node
//!   status` prints it as `IPIP: <line>`;
//! - `calicoctl apply|create|replace` (and `pool add --ipip`) print [`pool_warning`] on stderr.
//!
//! See docs/routing.md, "IPIP".

use std::process::Stdio;
use std::time::Duration;

use ipnet::Ipv4Net;
use tokio::process::Command;

/// The file in calico-node's BIRD directory (`CALICO_BIRD_DIR`) holding [`notice`] while any
/// enabled IPv4 pool has `ipip` enabled; absent otherwise.
pub const STATUS_FILE: &str = "ipip";

/// Why IPIP is not in effect when the kernel could do it (or cannot tell).
pub const NOT_IMPLEMENTED: &str = "IPIP encapsulation is not implemented by calico-docker yet";

/// The interface [`probe_kernel`] creates in its throwaway network namespace.
const PROBE_LINK: &str = "calico-ipipprb";

/// How long [`probe_kernel`] waits for `ip` (which may make the kernel load the module).
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether this kernel can create IPIP tunnels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelIpip {
    /// It created an `ipip` link.
    Supported,
    /// It does not know the `ipip` link type (no `CONFIG_NET_IPIP`, no module to load).
    Missing,
    /// The probe could not tell; the text says why.
    Unknown(String),
}

/// Asks the kernel whether it has IPIP, without touching this host's network namespace: `ip
/// link add <probe> type ipip` runs in a child process that first moves into a network
/// namespace of its own (`unshare(CLONE_NEWNET)`). That namespace, and the link in it, vanish
/// when the child exits, so nothing is left to delete whatever happens. If `ipip` is a module
/// that is not loaded, the kernel loads it on demand, as for any `ipip` link; the module then
/// adds its fallback device `tunl0` (down, without an address) to every namespace.
pub async fn probe_kernel() -> KernelIpip {
    let mut command = Command::new("ip");
    command
        .args(["link", "add", PROBE_LINK, "type", "ipip"])
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: unshare(2) is a plain system call, safe between fork and exec.
    unsafe {
        command.pre_exec(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
        });
    }
    let output = match tokio::time::timeout(PROBE_TIMEOUT, command.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => {
            return KernelIpip::Unknown(format!(
                "cannot run `ip link add` in a new network namespace: {e}"
            ))
        }
        Err(_) => {
            return KernelIpip::Unknown(format!(
                "`ip link add` did not finish within {}s",
                PROBE_TIMEOUT.as_secs()
            ))
        }
    };
    classify_probe(
        output.status.success(),
        &String::from_utf8_lossy(&output.stderr),
    )
}

/// What the probe's outcome says: success is [`KernelIpip::Supported`]; iproute2's words for a
/// link type the kernel does not have (`Error: Unknown device type.`, or `RTNETLINK answers:
/// Operation not supported` from older releases) are [`KernelIpip::Missing`]; anything else
/// is [`KernelIpip::Unknown`] with `ip`'s message.
pub fn classify_probe(success: bool, stderr: &str) -> KernelIpip {
    if success {
        KernelIpip::Supported
    } else if stderr.contains("Unknown device type") || stderr.contains("Operation not supported") {
        KernelIpip::Missing
    } else {
        KernelIpip::Unknown(format!(
            "`ip link add … type ipip` failed: {}",
            stderr.trim()
        ))
    }
}

/// The one line calico-node logs, and `calicoctl node status` shows, while `pools` (not empty)
/// have `ipip` enabled: which pools, that their traffic to other hosts is routed without
/// encapsulation, and why.
pub fn notice(pools: &[Ipv4Net], kernel: &KernelIpip) -> String {
    let names: Vec<String> = pools.iter().map(Ipv4Net::to_string).collect();
    let (noun, verb, their) = if names.len() == 1 {
        ("pool", "has", "its")
    } else {
        ("pools", "have", "their")
    };
    let why = match kernel {
        KernelIpip::Missing => "this kernel has no IPIP support (and calico-docker does not \
                                implement IPIP encapsulation yet)"
            .to_string(),
        KernelIpip::Supported | KernelIpip::Unknown(_) => NOT_IMPLEMENTED.to_string(),
    };
    format!(
        "{noun} {} {verb} ipip enabled, but {their} traffic to other hosts is routed without \
         encapsulation: {why}",
        list(&names)
    )
}

/// What calicoctl prints on stderr after writing a pool (`cidr`) with `ipip` enabled.
pub fn pool_warning(cidr: &str) -> String {
    format!(
        "Warning: ipPool {cidr} has ipip enabled, but IPIP encapsulation will not be in effect: \
         {NOT_IMPLEMENTED}, so traffic to other hosts is routed without encapsulation"
    )
}

/// `a`, `a and b`, `a, b and c`.
fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// What calico-node has said about IPIP pools, so that it says it again only when the set of
/// IPIP pools changes (not at every refresh).
#[derive(Debug, Default)]
pub struct IpipReport {
    /// The pools of the last [`IpipChange`]; `None` before the first.
    said: Option<Vec<Ipv4Net>>,
}

/// What to say, and write to [`STATUS_FILE`], after the set of IPIP pools changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpipChange {
    /// These pools (sorted, not empty) have `ipip` enabled now: log the error, write the file.
    Enabled(Vec<Ipv4Net>),
    /// No pool has `ipip` enabled: remove the file (one from an earlier run, too), and say so
    /// when some had (`before` is not empty).
    None {
        /// The IPIP pools of the last report (empty at start).
        before: Vec<Ipv4Net>,
    },
}

impl IpipReport {
    /// A report that has said nothing yet: the first [`IpipReport::update`] always answers.
    pub fn new() -> Self {
        IpipReport::default()
    }

    /// Takes the IPIP pools read now (any order, repeats allowed); returns what to say, or
    /// `None` when they are the pools last reported.
    pub fn update(&mut self, mut pools: Vec<Ipv4Net>) -> Option<IpipChange> {
        pools.sort();
        pools.dedup();
        if self.said.as_ref() == Some(&pools) {
            return None;
        }
        let before = self.said.replace(pools.clone()).unwrap_or_default();
        Some(if pools.is_empty() {
            IpipChange::None { before }
        } else {
            IpipChange::Enabled(pools)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<Ipv4Net> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn reports_once_per_set_of_pools() {
        let mut report = IpipReport::new();
        assert_eq!(
            report.update(vec![]),
            Some(IpipChange::None { before: vec![] }),
            "the first update clears what an earlier run left"
        );
        assert_eq!(report.update(vec![]), None);
        let one = nets(&["192.168.0.0/16"]);
        assert_eq!(
            report.update(one.clone()),
            Some(IpipChange::Enabled(one.clone()))
        );
        assert_eq!(report.update(one.clone()), None, "a refresh says nothing");
        let two = nets(&["10.0.0.0/16", "192.168.0.0/16"]);
        assert_eq!(
            report.update(nets(&["192.168.0.0/16", "10.0.0.0/16", "10.0.0.0/16"])),
            Some(IpipChange::Enabled(two.clone())),
            "sorted, without repeats"
        );
        assert_eq!(
            report.update(nets(&["192.168.0.0/16", "10.0.0.0/16"])),
            None
        );
        assert_eq!(
            report.update(vec![]),
            Some(IpipChange::None { before: two })
        );
        assert_eq!(report.update(vec![]), None);

        let mut report = IpipReport::new();
        assert_eq!(
            report.update(one.clone()),
            Some(IpipChange::Enabled(one)),
            "IPIP pools at start are reported at once"
        );
    }

    #[test]
    fn the_notice_names_the_pools_and_why() {
        let one = nets(&["192.168.0.0/16"]);
        assert_eq!(
            notice(&one, &KernelIpip::Missing),
            "pool 192.168.0.0/16 has ipip enabled, but its traffic to other hosts is routed \
             without encapsulation: this kernel has no IPIP support (and calico-docker does not \
             implement IPIP encapsulation yet)"
        );
        assert_eq!(
            notice(&one, &KernelIpip::Supported),
            "pool 192.168.0.0/16 has ipip enabled, but its traffic to other hosts is routed \
             without encapsulation: IPIP encapsulation is not implemented by calico-docker yet"
        );
        let three = nets(&["10.0.0.0/16", "10.1.0.0/16", "192.168.0.0/16"]);
        assert_eq!(
            notice(&three, &KernelIpip::Unknown("no ip".into())),
            "pools 10.0.0.0/16, 10.1.0.0/16 and 192.168.0.0/16 have ipip enabled, but their \
             traffic to other hosts is routed without encapsulation: IPIP encapsulation is not \
             implemented by calico-docker yet"
        );
        assert!(notice(&three[..2], &KernelIpip::Supported)
            .starts_with("pools 10.0.0.0/16 and 10.1.0.0/16 have ipip enabled, but their "));
    }

    #[test]
    fn probe_outcomes() {
        assert_eq!(classify_probe(true, ""), KernelIpip::Supported);
        assert_eq!(
            classify_probe(false, "Error: Unknown device type.\n"),
            KernelIpip::Missing
        );
        assert_eq!(
            classify_probe(false, "RTNETLINK answers: Operation not supported\n"),
            KernelIpip::Missing
        );
        assert_eq!(
            classify_probe(false, "RTNETLINK answers: Operation not permitted\n"),
            KernelIpip::Unknown(
                "`ip link add … type ipip` failed: RTNETLINK answers: Operation not permitted"
                    .into()
            )
        );
    }

    #[test]
    fn the_calicoctl_warning() {
        assert_eq!(
            pool_warning("192.168.0.0/16"),
            "Warning: ipPool 192.168.0.0/16 has ipip enabled, but IPIP encapsulation will not \
             be in effect: IPIP encapsulation is not implemented by calico-docker yet, so \
             traffic to other hosts is routed without encapsulation"
        );
    }

    /// The probe on this machine's kernel agrees with what `/sys/module/ipip` and the kernel's
    /// own configuration say, when they say something; it never leaves a link in this
    /// namespace. Needs root, as the crate's other kernel tests.
    #[tokio::test]
    async fn the_probe_agrees_with_the_kernel() {
        let kernel = probe_kernel().await;
        assert!(
            !std::path::Path::new("/sys/class/net")
                .join(PROBE_LINK)
                .exists(),
            "the probe link leaked into this namespace"
        );
        assert!(
            !matches!(kernel, KernelIpip::Unknown(_)),
            "the probe should tell as root: {kernel:?}"
        );
        if std::path::Path::new("/sys/module/ipip").exists() {
            assert_eq!(kernel, KernelIpip::Supported);
        }
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let config = std::fs::read_to_string(format!("/boot/config-{}", release.trim()))
            .ok()
            .or_else(|| {
                let out = std::process::Command::new("gzip")
                    .args(["-dc", "/proc/config.gz"])
                    .output()
                    .ok()?;
                out.status
                    .success()
                    .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
            });
        match config {
            Some(text) if text.contains("# CONFIG_NET_IPIP is not set") => {
                assert_eq!(kernel, KernelIpip::Missing)
            }
            Some(text) if text.contains("CONFIG_NET_IPIP=") => {
                assert_eq!(kernel, KernelIpip::Supported)
            }
            _ => {}
        }
    }
}
