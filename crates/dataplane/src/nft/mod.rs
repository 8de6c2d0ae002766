//! The policy dataplane: one nftables table, `inet calico`, owned entirely by calico-node and
//! rendered from the calculation graph's [`Desired`](calico_calc::desired::Desired) state.
//!
//! - [`render_full`] / [`render_changes`]: pure functions from the desired state (and a change
//!   report) to one nft text transaction; the table's layout is described in `layout.rs` and in
//!   `docs/dataplane.md`.
//! - [`Nft`]: runs `nft -f -`, reads the table back ([`Nft::read_back`], [`Nft::in_sync`]) and
//!   counts transactions ([`ApplyStats`]); [`Nft::rule_counters`] reads the per-rule counters
//!   ([`counted_rules`] says which line is which rule).
//! - [`fingerprint`] / [`TableFingerprint`]: what drift detection compares.
//! - [`ensure_docker_user_accept`]: the only rules written outside the table, in Docker's
//!   `DOCKER-USER` iptables chain.
//!
//! Nothing outside the table is read or changed by the renderer or [`Nft`]; the table is never
//! deleted, so a stopped calico-node keeps dropping traffic of unknown `cali*` interfaces.

mod apply;
mod counters;
mod docker_user;
mod layout;
mod names;
mod readback;
mod render;
mod rule;

pub use apply::{ApplyStats, Nft, TxSize, NFT_PROGRAM};
pub use counters::{
    counted_rules, parse_counters, CountedKind, CountedRule, CounterIndex, Direction, RuleCount,
    NO_POLICY_ALLOWED, NO_PROFILE_ALLOWED,
};
pub use docker_user::ensure_docker_user_accept;
pub use layout::PASS_MARK;
pub use readback::{fingerprint, ChainPrint, SetPrint, TableFingerprint};
pub use render::{render_changes, render_full};

/// The table's family and name, as nft commands spell them.
pub const TABLE: &str = "inet calico";
