//! The naming contract of a Docker workload endpoint, shared by the plugin driver, the
//! dataplane and the reconciler: which IDs are Docker's, the names of an endpoint's veth ends,
//! the orchestrator and workload its endpoint resource carries, and its MAC address.

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::MacAddr;

/// Prefix of the host end of every workload veth (Felix's default `InterfacePrefix`).
pub const HOST_INTERFACE_PREFIX: &str = "cali";
/// Prefix of the container end while it is still in the host namespace.
pub const TEMP_INTERFACE_PREFIX: &str = "temp";
/// How many characters of the endpoint ID go into an interface name (15 in all, Linux's limit).
const ID_CHARS: usize = 11;
/// `metadata.orchestrator` of every workload endpoint the plugin writes.
pub const ORCHESTRATOR: &str = "libnetwork";
/// `metadata.workload` when the endpoint's container is unknown (Calico's Go value).
pub const FALLBACK_WORKLOAD: &str = "libnetwork";
/// The MAC Calico gives a container interface when Docker asks it to choose.
pub const WORKLOAD_MAC: [u8; 6] = [0xee; 6];

/// A Docker network or endpoint ID: 1 to 128 ASCII letters or digits (Docker's are 64 hex
/// digits). Safe to use in interface names, datastore keys and API paths.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DockerId(String);

/// A string that is not a Docker ID.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a Docker ID: expected 1-128 ASCII letters or digits")]
pub struct InvalidDockerId(String);

impl DockerId {
    /// Checks and wraps an ID.
    pub fn new(id: impl Into<String>) -> Result<DockerId, InvalidDockerId> {
        let id = id.into();
        if (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(DockerId(id))
        } else {
            Err(InvalidDockerId(id))
        }
    }

    /// The ID text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 11 characters (all of a shorter ID), as interface names use them.
    fn interface_part(&self) -> &str {
        // IDs are ASCII, so every index is a character boundary.
        &self.0[..ID_CHARS.min(self.0.len())]
    }
}

impl fmt::Display for DockerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DockerId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        DockerId::new(String::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// The host end of an endpoint's veth pair: `cali` + the first 11 characters of its ID.
pub fn host_interface(endpoint_id: &DockerId) -> String {
    format!("{HOST_INTERFACE_PREFIX}{}", endpoint_id.interface_part())
}

/// The container end of the veth pair until Docker moves and renames it: `temp` + 11 characters.
pub fn temp_interface(endpoint_id: &DockerId) -> String {
    format!("{TEMP_INTERFACE_PREFIX}{}", endpoint_id.interface_part())
}

/// A MAC that cannot be a container interface's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidWorkloadMac(String);

/// A container interface's MAC from text such as `02:42:c0:a8:01:32` (6 bytes).
pub fn parse_workload_mac(text: &str) -> Result<[u8; 6], InvalidWorkloadMac> {
    let mac: MacAddr = text
        .parse()
        .map_err(|e: crate::InvalidValue| InvalidWorkloadMac(e.to_string()))?;
    <[u8; 6]>::try_from(mac.bytes()).map_err(|_| {
        InvalidWorkloadMac(format!(
            "'{text}' has {} bytes; a container interface needs a 6-byte MAC such as 02:42:c0:a8:01:32",
            mac.bytes().len()
        ))
    })
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.map(|b| format!("{b:02x}")).join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> DockerId {
        DockerId::new(s).unwrap()
    }

    #[test]
    fn interface_names_use_eleven_id_characters() {
        let ep = id("0a930a258aee6e2e8c9ae8a44f0dad8a5e4b23d5df3e8af6b5c4e4f1a2b3c4d5");
        assert_eq!(host_interface(&ep), "cali0a930a258ae");
        assert_eq!(temp_interface(&ep), "temp0a930a258ae");
        assert_eq!(host_interface(&ep).len(), 15);
        assert_eq!(host_interface(&id("ab")), "caliab");
    }

    #[test]
    fn docker_ids_are_ascii_letters_and_digits() {
        assert!(DockerId::new("abcXYZ019").is_ok());
        for bad in ["", "has space", "dash-ed", "ünï", &"a".repeat(129)] {
            let err = DockerId::new(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("{bad:?} is not a Docker ID: expected 1-128 ASCII letters or digits")
            );
        }
    }

    #[test]
    fn workload_macs_are_six_bytes() {
        assert_eq!(
            parse_workload_mac("02:42:C0:A8:01:32").unwrap(),
            [0x02, 0x42, 0xc0, 0xa8, 0x01, 0x32]
        );
        assert!(parse_workload_mac("nope")
            .unwrap_err()
            .to_string()
            .contains("MAC address"));
        assert_eq!(
            parse_workload_mac("00:00:00:00:fe:80:00:00")
                .unwrap_err()
                .to_string(),
            "'00:00:00:00:fe:80:00:00' has 8 bytes; a container interface needs a 6-byte MAC such as 02:42:c0:a8:01:32"
        );
        assert_eq!(format_mac(&WORKLOAD_MAC), "ee:ee:ee:ee:ee:ee");
        assert_eq!(
            format_mac(&[0xee, 0xee, 0xee, 0, 1, 0xab]),
            "ee:ee:ee:00:01:ab"
        );
    }
}
