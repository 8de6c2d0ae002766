//! Address arithmetic for 64-address blocks, and the per-node pseudo-random walk over a pool's
//! blocks (FNV-1a 32 of the node name picks the start, then blocks follow in order, wrapping).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Addresses per block.
pub(crate) const BLOCK_SIZE: usize = 64;
/// Prefix length of an IPv4 block.
const V4_BLOCK_PREFIX: u8 = 26;
/// Prefix length of an IPv6 block.
const V6_BLOCK_PREFIX: u8 = 122;

/// The block prefix length for an IP version (4 or 6).
pub(crate) fn block_prefix(version: u8) -> u8 {
    if version == 6 {
        V6_BLOCK_PREFIX
    } else {
        V4_BLOCK_PREFIX
    }
}

/// 4 or 6.
pub(crate) fn version_of(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 6,
    }
}

/// The block holding `ip`.
pub(crate) fn block_of(ip: IpAddr) -> IpNet {
    match ip {
        IpAddr::V4(a) => IpNet::V4(Ipv4Net::new_assert(a, V4_BLOCK_PREFIX).trunc()),
        IpAddr::V6(a) => IpNet::V6(Ipv6Net::new_assert(a, V6_BLOCK_PREFIX).trunc()),
    }
}

/// Whether `net` is exactly a block: a block-sized, strictly masked network.
pub(crate) fn is_block(net: IpNet) -> bool {
    net.prefix_len() == block_prefix(version_of(net.addr())) && net.trunc() == net
}

/// Whether `block` lies entirely inside `pool`.
pub(crate) fn pool_contains_block(pool: IpNet, block: IpNet) -> bool {
    pool.prefix_len() <= block.prefix_len() && pool.contains(&block)
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address `offset` after `base`, in `base`'s family (callers stay inside a network).
fn offset_from(base: IpAddr, offset: u128) -> IpAddr {
    let value = to_u128(base).wrapping_add(offset);
    match base {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(value as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

/// The ordinal of `ip` inside `block`, if it lies there.
pub(crate) fn ordinal(block: IpNet, ip: IpAddr) -> Option<usize> {
    if !block.contains(&ip) {
        return None;
    }
    usize::try_from(to_u128(ip) - to_u128(block.network())).ok()
}

/// The address at `ordinal` in `block`.
pub(crate) fn address(block: IpNet, ordinal: usize) -> IpAddr {
    offset_from(block.network(), ordinal as u128)
}

/// How many whole blocks `pool` holds (none if it is smaller than a block).
pub(crate) fn block_count(pool: IpNet) -> u128 {
    let block_len = block_prefix(version_of(pool.addr()));
    match block_len.checked_sub(pool.prefix_len()) {
        Some(bits) => 1u128 << bits,
        None => 0,
    }
}

/// The `index`-th block of `pool`.
fn nth_block(pool: IpNet, index: u128) -> IpNet {
    let first = pool.network();
    let addr = offset_from(first, index * BLOCK_SIZE as u128);
    block_of(addr)
}

/// FNV-1a, 32 bits.
pub(crate) fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, b| {
        (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// Every block of a pool once, starting at the node's hash and wrapping around.
#[derive(Debug, Clone)]
pub(crate) struct BlockWalk {
    pool: IpNet,
    count: u128,
    next: u128,
    remaining: u128,
}

/// The walk `node` takes over `pool`'s blocks when looking for one to claim.
pub(crate) fn walk(pool: IpNet, node: &str) -> BlockWalk {
    let count = block_count(pool);
    let start = match count {
        0 => 0,
        n => u128::from(fnv1a32(node.as_bytes())) % n,
    };
    BlockWalk {
        pool,
        count,
        next: start,
        remaining: count,
    }
}

impl Iterator for BlockWalk {
    type Item = IpNet;

    fn next(&mut self) -> Option<IpNet> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let block = nth_block(self.pool, self.next);
        self.next = (self.next + 1) % self.count;
        Some(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn fnv1a32_matches_reference_vectors() {
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn blocks_are_26_and_122() {
        assert_eq!(block_of(ip("192.168.1.77")), net("192.168.1.64/26"));
        assert_eq!(block_of(ip("fd00::1:ff")), net("fd00::1:c0/122"));
        assert!(is_block(net("10.0.0.192/26")));
        assert!(!is_block(net("10.0.0.193/26")));
        assert!(!is_block(net("10.0.0.0/24")));
        assert!(is_block(net("fd00::40/122")));
    }

    #[test]
    fn ordinals_round_trip() {
        let block = net("10.1.2.128/26");
        assert_eq!(ordinal(block, ip("10.1.2.128")), Some(0));
        assert_eq!(ordinal(block, ip("10.1.2.191")), Some(63));
        assert_eq!(ordinal(block, ip("10.1.2.192")), None);
        assert_eq!(ordinal(block, ip("fd00::")), None);
        assert_eq!(address(block, 5), ip("10.1.2.133"));
        let v6 = net("fd00::40/122");
        assert_eq!(address(v6, 63), ip("fd00::7f"));
        assert_eq!(ordinal(v6, ip("fd00::7f")), Some(63));
    }

    #[test]
    fn block_counts() {
        assert_eq!(block_count(net("10.0.0.0/24")), 4);
        assert_eq!(block_count(net("10.0.0.0/26")), 1);
        assert_eq!(block_count(net("10.0.0.0/27")), 0);
        assert_eq!(block_count(net("0.0.0.0/0")), 1 << 26);
        assert_eq!(block_count(net("::/0")), 1 << 122);
        assert!(pool_contains_block(net("10.0.0.0/24"), net("10.0.0.64/26")));
        assert!(!pool_contains_block(net("10.0.0.0/24"), net("10.0.1.0/26")));
        assert!(!pool_contains_block(net("10.0.0.0/27"), net("10.0.0.0/26")));
    }

    #[test]
    fn walk_visits_every_block_once_from_the_hash() {
        let pool = net("10.0.0.0/22");
        let blocks: Vec<IpNet> = walk(pool, "node-a").collect();
        assert_eq!(blocks.len(), 16);
        let start = (fnv1a32(b"node-a") % 16) as usize;
        assert_eq!(blocks[0], nth_block(pool, start as u128));
        let mut sorted = blocks.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 16);
        // Sequential with wrap-around.
        for pair in blocks.windows(2) {
            let next = if pair[0] == net("10.0.3.192/26") {
                net("10.0.0.0/26")
            } else {
                block_of(offset_from(pair[0].network(), 64))
            };
            assert_eq!(pair[1], next);
        }
    }

    #[test]
    fn walk_is_deterministic_and_depends_on_the_node() {
        let pool = net("10.0.0.0/16");
        let a1: Vec<IpNet> = walk(pool, "node-a").take(3).collect();
        let a2: Vec<IpNet> = walk(pool, "node-a").take(3).collect();
        let b: Vec<IpNet> = walk(pool, "node-b").take(3).collect();
        assert_eq!(a1, a2);
        assert_ne!(a1[0], b[0]);
    }

    #[test]
    fn huge_ipv6_pools_walk_lazily() {
        let mut blocks = walk(net("fd00::/48"), "node-a");
        let first = blocks.next().unwrap();
        assert!(is_block(first));
        assert!(net("fd00::/48").contains(&first));
        assert_eq!(walk(net("10.0.0.0/28"), "x").count(), 0);
    }
}
