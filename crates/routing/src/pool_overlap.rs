//! Pools that overlap the host's own network. Workload addresses from such a pool collide with
//! the hosts' addresses, and their /26 routes capture traffic meant for the hosts: calico-node
//! warns, once per change ([`OverlapReport`] decides when), naming the pools (the pool itself
//! stays as the user wrote it).

use ipnet::Ipv4Net;

/// What calico-node has warned about, so that it warns again only when the pools overlapping
/// the host's network, or that network, change (not at every pass).
#[derive(Debug, Default)]
pub struct OverlapReport {
    /// The host's network and the pools overlapping it at the last update; `None` before it.
    seen: Option<(Ipv4Net, Vec<Ipv4Net>)>,
}

impl OverlapReport {
    /// A report that has seen nothing yet.
    pub fn new() -> Self {
        OverlapReport::default()
    }

    /// Takes the node's address with its prefix (`host`) and the enabled pools read now (sorted,
    /// as `BirdInputs::pools`); returns the warning to log when the overlapping pools or the
    /// host's network changed and some pool overlaps, `None` otherwise.
    pub fn update(&mut self, host: Ipv4Net, pools: &[Ipv4Net]) -> Option<String> {
        let now = (host.trunc(), overlapping(host, pools));
        if self.seen.as_ref() == Some(&now) {
            return None;
        }
        let text = warning(host, &now.1);
        self.seen = Some(now);
        text
    }
}

/// The pools that overlap `host` (the node's address with its prefix, e.g. `10.10.0.11/24`):
/// the host's network contains the pool, or the pool contains the host's network.
pub fn overlapping(host: Ipv4Net, pools: &[Ipv4Net]) -> Vec<Ipv4Net> {
    let network = host.trunc();
    pools
        .iter()
        .copied()
        .filter(|pool| network.contains(pool) || pool.contains(&network))
        .collect()
}

/// The warning for `pools` overlapping `host`, or `None` when there are none.
pub fn warning(host: Ipv4Net, pools: &[Ipv4Net]) -> Option<String> {
    if pools.is_empty() {
        return None;
    }
    let list: Vec<String> = pools.iter().map(Ipv4Net::to_string).collect();
    Some(format!(
        "IP pool {} overlaps this host's network {}: workloads may get addresses of hosts, and \
         routes to their blocks take traffic meant for the hosts; use a pool outside the hosts' \
         networks",
        list.join(", "),
        host.trunc()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<Ipv4Net> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn pools_inside_or_around_the_host_network_overlap() {
        let host = "10.10.0.11/24".parse().unwrap();
        let pools = nets(&[
            "10.10.0.128/26",
            "10.0.0.0/8",
            "192.168.0.0/16",
            "10.10.1.0/24",
        ]);
        assert_eq!(
            overlapping(host, &pools),
            nets(&["10.10.0.128/26", "10.0.0.0/8"])
        );
        assert_eq!(warning(host, &[]), None);
        let text = warning(host, &overlapping(host, &pools)).unwrap();
        assert!(
            text.starts_with(
                "IP pool 10.10.0.128/26, 10.0.0.0/8 overlaps this host's network 10.10.0.0/24"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_warning_comes_once_per_change_of_the_overlap() {
        let host: Ipv4Net = "10.10.0.11/24".parse().unwrap();
        let outside = nets(&["192.168.0.0/16"]);
        let one = nets(&["10.10.0.128/26", "192.168.0.0/16"]);
        let two = nets(&["10.0.0.0/8", "10.10.0.128/26", "192.168.0.0/16"]);
        let mut report = OverlapReport::new();
        assert_eq!(
            report.update(host, &outside),
            None,
            "no overlap, no warning"
        );
        let first = report.update(host, &one).expect("a pool overlaps now");
        assert!(
            first.starts_with("IP pool 10.10.0.128/26 overlaps"),
            "{first}"
        );
        for _ in 0..3 {
            assert_eq!(report.update(host, &one), None, "a pass without change");
        }
        let second = report.update(host, &two).expect("another pool overlaps");
        assert!(
            second.starts_with("IP pool 10.0.0.0/8, 10.10.0.128/26 overlaps"),
            "{second}"
        );
        assert_eq!(report.update(host, &two), None);
        let moved: Ipv4Net = "10.10.0.11/16".parse().unwrap();
        let third = report
            .update(moved, &two)
            .expect("the host's network changed");
        assert!(
            third.contains("this host's network 10.10.0.0/16"),
            "{third}"
        );
        assert_eq!(report.update(moved, &outside), None, "the overlap is gone");
        assert_eq!(report.update(moved, &outside), None);
        assert_eq!(
            report.update(moved, &two),
            Some(third),
            "it overlaps again: warned again"
        );
    }
}
