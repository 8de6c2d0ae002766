//! Resource kinds: their file names (`profile`, `ipPool`, ...) and calicoctl's CLI aliases.

use std::fmt;

/// The kinds of v1 resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `node`
    Node,
    /// `bgpPeer`
    BgpPeer,
    /// `hostEndpoint`
    HostEndpoint,
    /// `workloadEndpoint`
    WorkloadEndpoint,
    /// `ipPool`
    IpPool,
    /// `policy`
    Policy,
    /// `profile`
    Profile,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 7] = [
        Kind::Node,
        Kind::BgpPeer,
        Kind::HostEndpoint,
        Kind::WorkloadEndpoint,
        Kind::IpPool,
        Kind::Policy,
        Kind::Profile,
    ];

    /// The `kind` value in files, e.g. `workloadEndpoint`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Node => "node",
            Kind::BgpPeer => "bgpPeer",
            Kind::HostEndpoint => "hostEndpoint",
            Kind::WorkloadEndpoint => "workloadEndpoint",
            Kind::IpPool => "ipPool",
            Kind::Policy => "policy",
            Kind::Profile => "profile",
        }
    }

    /// The `kind` value of this kind's list form, e.g. `profileList`.
    pub fn list_name(self) -> &'static str {
        match self {
            Kind::Node => "nodeList",
            Kind::BgpPeer => "bgpPeerList",
            Kind::HostEndpoint => "hostEndpointList",
            Kind::WorkloadEndpoint => "workloadEndpointList",
            Kind::IpPool => "ipPoolList",
            Kind::Policy => "policyList",
            Kind::Profile => "profileList",
        }
    }

    /// The kind whose file name is exactly `name` (case-sensitive, as in files).
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The kind whose list name is exactly `name`, e.g. `profileList`.
    pub fn from_list_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.list_name() == name)
    }

    /// The kind a calicoctl command-line argument names: case-insensitive, with aliases
    /// (`hep`, `wep`, `pol`, `pools`, `bgpp`, ...).
    pub fn from_cli(arg: &str) -> Option<Kind> {
        let kind = match arg.to_ascii_lowercase().as_str() {
            "node" | "nodes" | "no" | "nos" => Kind::Node,
            "hostendpoint" | "hostendpoints" | "hep" | "heps" => Kind::HostEndpoint,
            "workloadendpoint" | "workloadendpoints" | "wep" | "weps" => Kind::WorkloadEndpoint,
            "profile" | "profiles" | "pro" | "pros" => Kind::Profile,
            "policy" | "policies" | "pol" | "pols" => Kind::Policy,
            "ippool" | "ippools" | "ipp" | "ipps" | "pool" | "pools" => Kind::IpPool,
            "bgppeer" | "bgppeers" | "bgpp" | "bgpps" | "bp" | "bps" => Kind::BgpPeer,
            _ => return None,
        };
        Some(kind)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
