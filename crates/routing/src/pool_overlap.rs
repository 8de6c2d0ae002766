//! Pools that overlap the host's own network. Workload addresses from such a pool collide with
//! the hosts' addresses, and their /26 routes capture traffic meant for the hosts: calico-node
//! warns, once per change, naming the pools (the pool itself stays as the user wrote it).

use ipnet::Ipv4Net;

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
}
