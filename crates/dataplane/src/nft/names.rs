//! Names of the objects in the `inet calico` table, and what may appear in them.
//!
//! Every chain and set name is `<prefix><id>` where the id is kept literally when it is made of
//! `[A-Za-z0-9_-]`, does not start with `_` and fits in [`MAX_NAME`] characters; otherwise it is
//! replaced by `_` and the first hex digits of SHA-256(id) that fit. Literal ids never start with
//! `_`, so a hashed name cannot collide with a literal one, and the prefixes below never share a
//! beginning, so objects of different kinds cannot collide either. Such names are valid bare
//! identifiers in nft's text syntax (which has no quoting for set names containing `:`).

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// Longest chain or set name we write (the kernel of old allowed 31 plus NUL).
pub(crate) const MAX_NAME: usize = 31;

/// Longest interface name the kernel accepts (`IFNAMSIZ` - 1).
const MAX_IFNAME: usize = 15;

/// Prefix of a per-endpoint egress chain ("from workload").
pub(crate) const FROM_ENDPOINT: &str = "fw-";
/// Prefix of a per-endpoint ingress chain ("to workload").
pub(crate) const TO_ENDPOINT: &str = "tw-";
/// Prefix of a host endpoint's chain for traffic arriving on it ("from host endpoint").
pub(crate) const FROM_HOST: &str = "fh-";
/// Prefix of a host endpoint's chain for traffic leaving by it ("to host endpoint").
pub(crate) const TO_HOST: &str = "th-";
/// Prefix of a host endpoint's `doNotTrack` chain for traffic arriving on it.
pub(crate) const UNTRACKED_FROM_HOST: &str = "ufh-";
/// Prefix of a host endpoint's `doNotTrack` chain for traffic the host sends out of it.
pub(crate) const UNTRACKED_TO_HOST: &str = "uth-";
/// Prefix of a host endpoint's `preDNAT` chain for traffic arriving on it.
pub(crate) const PRE_DNAT_FROM_HOST: &str = "pfh-";
/// Prefix of a policy's ingress chain.
pub(crate) const POLICY_INGRESS: &str = "pi-";
/// Prefix of a policy's egress chain.
pub(crate) const POLICY_EGRESS: &str = "po-";
/// Prefix of a profile's ingress chain.
pub(crate) const PROFILE_INGRESS: &str = "pri-";
/// Prefix of a profile's egress chain.
pub(crate) const PROFILE_EGRESS: &str = "pro-";
/// Prefix of an IP set's IPv4 half.
pub(crate) const SET_V4: &str = "s4-";
/// Prefix of an IP set's IPv6 half.
pub(crate) const SET_V6: &str = "s6-";
/// Base name of the sets of every pool's CIDR (`all-pools4`, `all-pools6`).
pub(crate) const ALL_POOLS: &str = "all-pools";
/// Base name of the sets of the CIDRs of the pools with NAT outgoing (`masq-pools4`, …).
pub(crate) const MASQ_POOLS: &str = "masq-pools";

/// `prefix` followed by `id`, or by `_` and a hash of `id` when `id` cannot be used as it is.
pub(crate) fn object_name(prefix: &str, id: &str) -> String {
    let literal = !id.is_empty()
        && !id.starts_with('_')
        && prefix.len() + id.len() <= MAX_NAME
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if literal {
        return format!("{prefix}{id}");
    }
    let digits = MAX_NAME.saturating_sub(prefix.len() + 1);
    let mut name = format!("{prefix}_");
    for byte in Sha256::digest(id.as_bytes()) {
        let _ = write!(name, "{byte:02x}");
    }
    name.truncate(prefix.len() + 1 + digits);
    name
}

/// True when `name` can be a verdict-map key: a kernel-valid interface name made of
/// `[A-Za-z0-9_.-]`, so it needs no escaping inside nft's double quotes and holds no `*`
/// wildcard. Endpoints with other names are left out of the table, so their traffic is dropped
/// like that of any unknown `cali*` interface.
pub(crate) fn usable_interface(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_IFNAME
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A short tag for a rule body, written as the rule's comment so read-back can compare rules
/// without parsing nft's rewritten rule text.
pub(crate) fn rule_tag(body: &str) -> String {
    let mut tag = String::with_capacity(16);
    for byte in &Sha256::digest(body.as_bytes())[..8] {
        let _ = write!(tag, "{byte:02x}");
    }
    tag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_short_ids_are_kept() {
        assert_eq!(object_name(POLICY_INGRESS, "allow-web"), "pi-allow-web");
        assert_eq!(
            object_name(FROM_ENDPOINT, "cali0123456789a"),
            "fw-cali0123456789a"
        );
        let exact = "a".repeat(MAX_NAME - 4);
        assert_eq!(object_name(PROFILE_EGRESS, &exact), format!("pro-{exact}"));
    }

    #[test]
    fn other_ids_are_hashed_deterministically_and_distinctly() {
        let uid = "s:2YIy2i0QOmXKbqXb-zzjEJsa9tTi0kp6bGIyZA";
        let name = object_name(SET_V4, uid);
        assert_eq!(name, object_name(SET_V4, uid));
        assert_eq!(name.len(), MAX_NAME);
        assert!(name.starts_with("s4-_"), "{name}");
        assert!(name[4..].bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
        assert_ne!(object_name(SET_V4, "s:a"), object_name(SET_V4, "s:b"));
        for id in [
            "",
            "_x",
            "default.allow",
            "a b",
            "ü",
            "x\"y",
            &"a".repeat(MAX_NAME - 2),
        ] {
            let name = object_name(POLICY_INGRESS, id);
            assert!(name.starts_with("pi-_") && name.len() == MAX_NAME, "{id:?}");
        }
    }

    #[test]
    fn interface_names_must_be_plain() {
        for ok in ["cali0123456789a", "eth0.100", "a-b_c"] {
            assert!(usable_interface(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "cali*",
            "a\"b",
            "a b",
            "cali0123456789ab",
            "é",
        ] {
            assert!(!usable_interface(bad), "{bad:?}");
        }
    }

    #[test]
    fn rule_tags_are_sixteen_hex_digits() {
        let tag = rule_tag("drop");
        assert_eq!(tag.len(), 16);
        assert_ne!(tag, rule_tag("accept"));
    }
}
