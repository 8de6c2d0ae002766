//! This host's interfaces and their addresses, read for the host endpoints that name only
//! expected IPs and handed to the policy agent through a watch channel.

use std::collections::BTreeSet;
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::agent::HostAddresses;
use crate::autodetect;

/// How often the interfaces and addresses are read again.
const INTERVAL: Duration = Duration::from_secs(2);
/// The health reporter's name.
pub const HEALTH_NAME: &str = "host addresses";
/// How long the loop may go without a read before calico-node is not live (many reads).
pub const LIVENESS_TIMEOUT: Duration = Duration::from_secs(30);

/// Keeps `tx` equal to this host's interfaces and addresses ([`autodetect::host_interfaces`]),
/// read every [`INTERVAL`] and sent only when they changed; `failing` says
/// whether the last read failed. Each read is a heartbeat to `health` (registered with
/// [`LIVENESS_TIMEOUT`]).
///
/// Polling, not a netlink subscription: one `getifaddrs` every 2 s costs little on a host with
/// few interfaces, needs no state to keep in step with the kernel (a subscription would still
/// need a periodic relist for the messages it drops, as Felix's interface monitor does every
/// 10 s), and a host endpoint found by its expected IPs follows an address moved to another
/// interface within 2 s.
pub(crate) async fn follow(
    tx: tokio::sync::watch::Sender<HostAddresses>,
    mut failing: bool,
    health: crate::health::Reporter,
) {
    let start = tokio::time::Instant::now() + INTERVAL;
    let mut ticks = tokio::time::interval_at(start, INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        health.beat();
        let Some(now) = read(&mut failing) else {
            continue;
        };
        tx.send_if_modified(|known| {
            if *known == now {
                return false;
            }
            let changed = changed_interfaces(known, &now);
            info!(?changed, "this host's interfaces or addresses changed");
            debug!(interfaces = ?now, "this host's interfaces and addresses");
            *known = now;
            true
        });
    }
}

/// The interfaces added, removed, or whose addresses differ between `before` and `after`.
fn changed_interfaces<'a>(
    before: &'a HostAddresses,
    after: &'a HostAddresses,
) -> BTreeSet<&'a String> {
    before
        .keys()
        .chain(after.keys())
        .filter(|name| before.get(*name) != after.get(*name))
        .collect()
}

/// This host's interfaces and addresses, or `None` when they cannot be read: logged with warn
/// when reading starts `failing`, at debug while it goes on failing, and at info when it works
/// again.
pub(crate) fn read(failing: &mut bool) -> Option<HostAddresses> {
    match autodetect::host_interfaces() {
        Ok(interfaces) => {
            if std::mem::replace(failing, false) {
                info!("reading this host's interface addresses works again");
            }
            Some(interfaces)
        }
        Err(e) if *failing => {
            debug!(error = %format!("{e:#}"), "still cannot read this host's interface addresses");
            None
        }
        Err(e) => {
            warn!(
                error = %format!("{e:#}"),
                "cannot read this host's interface addresses; host endpoints found by their \
                 expected IPs keep the interfaces known before; trying again every 2 s"
            );
            *failing = true;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_interfaces_are_the_added_the_removed_and_the_readdressed() {
        let ip = |s: &str| -> std::net::IpAddr { s.parse().unwrap() };
        let before = HostAddresses::from([
            ("eth0".to_string(), BTreeSet::from([ip("10.0.0.1")])),
            ("eth1".to_string(), BTreeSet::from([ip("10.0.1.1")])),
            ("lo".to_string(), BTreeSet::from([ip("127.0.0.1")])),
        ]);
        let after = HostAddresses::from([
            ("eth0".to_string(), BTreeSet::from([ip("10.0.0.2")])),
            ("eth2".to_string(), BTreeSet::new()),
            ("lo".to_string(), BTreeSet::from([ip("127.0.0.1")])),
        ]);
        let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let changed: Vec<String> = changed_interfaces(&before, &after)
            .into_iter()
            .cloned()
            .collect();
        assert_eq!(changed, names(&["eth0", "eth1", "eth2"]));
        assert!(changed_interfaces(&after, &after).is_empty());
    }
}
