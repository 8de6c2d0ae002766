//! Where IPAM data lives in the datastore (see the crate documentation for the layout).

use ipnet::IpNet;

use calico_store::keys::escape;

use crate::net::{is_block, version_of};

/// Every allocation block, both IP versions.
pub(crate) const ALL_BLOCKS_PREFIX: &str = "/calico/ipam/v2/assignment/";
/// The root of the per-node affinity markers.
const HOSTS_PREFIX: &str = "/calico/ipam/v2/host/";
/// The value of an affinity marker.
pub(crate) const AFFINITY_VALUE: &[u8] = b"{}";

/// A CIDR as a key segment: the `/` written as `-`.
fn segment(block: IpNet) -> String {
    block.to_string().replacen('/', "-", 1)
}

/// The prefix of every block of one IP version.
pub(crate) fn blocks_prefix(version: u8) -> String {
    format!("{ALL_BLOCKS_PREFIX}ipv{version}/block/")
}

/// The key of one block.
pub(crate) fn block_key(block: IpNet) -> String {
    format!(
        "{}{}",
        blocks_prefix(version_of(block.addr())),
        segment(block)
    )
}

/// The prefix of `node`'s affinity markers, of one IP version or of both.
pub(crate) fn affinities_prefix(node: &str, version: Option<u8>) -> String {
    match version {
        Some(v) => format!("{HOSTS_PREFIX}{}/ipv{v}/block/", escape(node)),
        None => format!("{HOSTS_PREFIX}{}/", escape(node)),
    }
}

/// The key of `node`'s affinity marker for `block`.
pub(crate) fn affinity_key(node: &str, block: IpNet) -> String {
    format!(
        "{}{}",
        affinities_prefix(node, Some(version_of(block.addr()))),
        segment(block)
    )
}

/// The block a block key or affinity marker key names; an error says what is wrong with it.
pub(crate) fn block_in_key(key: &str) -> Result<IpNet, String> {
    let last = key.rsplit('/').next().unwrap_or(key);
    let block: IpNet = last
        .replacen('-', "/", 1)
        .parse()
        .map_err(|_| format!("{last:?} does not name a block"))?;
    if !is_block(block) {
        return Err(format!("{block} is not a 64-address block"));
    }
    let version_dir = format!("/ipv{}/block/{last}", version_of(block.addr()));
    if !key.ends_with(&version_dir) {
        return Err(format!("{block} is filed under the wrong IP version"));
    }
    Ok(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn layout() {
        let v4 = net("192.168.10.64/26");
        assert_eq!(
            block_key(v4),
            "/calico/ipam/v2/assignment/ipv4/block/192.168.10.64-26"
        );
        assert_eq!(
            affinity_key("calico-01", v4),
            "/calico/ipam/v2/host/calico-01/ipv4/block/192.168.10.64-26"
        );
        let v6 = net("fd00::40/122");
        assert_eq!(
            block_key(v6),
            "/calico/ipam/v2/assignment/ipv6/block/fd00::40-122"
        );
        assert_eq!(
            affinity_key("a/b", v6),
            "/calico/ipam/v2/host/a%2fb/ipv6/block/fd00::40-122"
        );
        assert!(block_key(v4).starts_with(ALL_BLOCKS_PREFIX));
        assert!(ALL_BLOCKS_PREFIX.starts_with(calico_store::keys::IPAM_PREFIX));
        assert!(HOSTS_PREFIX.starts_with(calico_store::keys::IPAM_PREFIX));
        assert!(affinity_key("n", v6).starts_with(&affinities_prefix("n", None)));
    }

    #[test]
    fn keys_parse_back() {
        for block in [net("10.0.0.192/26"), net("fd00::40/122")] {
            assert_eq!(block_in_key(&block_key(block)), Ok(block));
            assert_eq!(block_in_key(&affinity_key("node", block)), Ok(block));
        }
        for bad in [
            "/calico/ipam/v2/assignment/ipv4/block/nonsense",
            "/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-24",
            "/calico/ipam/v2/assignment/ipv4/block/10.0.0.1-26",
            "/calico/ipam/v2/assignment/ipv6/block/10.0.0.0-26",
            "/calico/ipam/v2/assignment/ipv4/block/",
            "",
        ] {
            assert!(block_in_key(bad).is_err(), "{bad}");
        }
    }
}
