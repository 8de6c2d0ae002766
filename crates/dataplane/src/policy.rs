//! The seam between the policy agent and the kernel: what a policy dataplane does.

use calico_calc::desired::{Changes, Desired};

use crate::nft::{ensure_docker_user_accept, CounterIndex, Nft, RuleCount, TxSize};
use crate::Result;

/// Programs the calculation graph's desired state into the kernel, as netavark's firewall
/// drivers do for theirs. [`Nft`] is the implementation; the policy agent's tests use a fake.
/// Every call blocks until the kernel has answered.
pub trait PolicyDataplane: Send {
    /// Applies `changes`, which brought the state to `desired`, to a dataplane that was in step
    /// with the state before them; an empty report writes nothing.
    fn apply_changes(&mut self, desired: &Desired, changes: &Changes) -> Result<TxSize>;
    /// Reads the dataplane back and rewrites it when it differs from `desired`; the size of
    /// what it wrote, if it wrote.
    fn resync(&mut self, desired: &Desired) -> Result<Option<TxSize>>;
    /// Makes sure the container engine's own forwarding rules let the traffic this dataplane
    /// polices pass; returns how many rules it added.
    fn admit_policed_traffic(&mut self) -> Result<usize>;
    /// The live counters of the rules of `index` (see [`counted_rules`](crate::nft::counted_rules)).
    fn rule_counters(&self, index: &CounterIndex) -> Result<Vec<RuleCount>>;
}

impl PolicyDataplane for Nft {
    fn apply_changes(&mut self, desired: &Desired, changes: &Changes) -> Result<TxSize> {
        Nft::apply_changes(self, desired, changes)
    }

    fn resync(&mut self, desired: &Desired) -> Result<Option<TxSize>> {
        Nft::resync(self, desired)
    }

    fn admit_policed_traffic(&mut self) -> Result<usize> {
        ensure_docker_user_accept()
    }

    fn rule_counters(&self, index: &CounterIndex) -> Result<Vec<RuleCount>> {
        Nft::rule_counters(self, index)
    }
}
