//! IPAM over the datastore: every block change is a compare-and-swap on the block key.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use ipnet::IpNet;

use calico_model::{Cidr, Kind, Resource};
use calico_store::resources::{Filter, ResourceStore};
use calico_store::{Datastore, KeyValue, StoreError};

use crate::block::{Attribute, Block};
use crate::error::{IpamError, Result};
use crate::keys::{
    affinities_prefix, affinity_key, block_in_key, block_key, blocks_prefix, AFFINITY_VALUE,
    ALL_BLOCKS_PREFIX,
};
use crate::net::{block_of, fnv1a32, pool_contains_block, version_of, walk};

/// Datastore writes that may be retried after losing a race, per operation.
const MAX_ATTEMPTS: usize = 100;

/// One allocated address as recorded in its block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The node that allocated it (`None` when written by a tool that does not record it).
    pub node: Option<String>,
    /// When it was allocated, in Unix seconds, if recorded.
    pub allocated_at: Option<u64>,
    /// The block holding it.
    pub block: Cidr,
}

/// Calico IPAM on a shared datastore; cheap to clone.
#[derive(Clone)]
pub struct Ipam {
    store: ResourceStore,
}

/// How a block read-modify-write ends.
enum Change<T> {
    /// Write nothing.
    Keep(T),
    /// Write the modified block.
    Write(T),
    /// Delete the block.
    Delete(T),
}

/// Counts the races an operation may lose before giving up.
struct Budget(usize);

impl Budget {
    fn new() -> Self {
        Budget(MAX_ATTEMPTS)
    }

    /// Records a lost race on `key`; fails once the budget is spent.
    fn spend(&mut self, key: &str) -> Result<()> {
        self.0 = self
            .0
            .checked_sub(1)
            .ok_or_else(|| IpamError::TooManyRetries(key.to_owned()))?;
        Ok(())
    }
}

/// The outcome of assigning a specific address.
enum Assigned {
    Done,
    Taken,
    NoBlock,
}

impl Ipam {
    /// IPAM over the datastore behind `store` (pools are its `ipPool` resources).
    pub fn new(store: ResourceStore) -> Self {
        Ipam { store }
    }

    /// Allocates one address of IP `version` (4 or 6) for `node`, only from `pool` if given.
    pub async fn auto_assign(&self, node: &str, version: u8, pool: Option<Cidr>) -> Result<IpAddr> {
        check_node(node)?;
        if version != 4 && version != 6 {
            return Err(IpamError::InvalidRequest(format!(
                "IP version must be 4 or 6, not {version}"
            )));
        }
        if let Some(p) = pool.filter(|p| p.version() != version) {
            return Err(IpamError::InvalidRequest(format!(
                "pool {p} is not an IPv{version} pool"
            )));
        }
        let attribute = Attribute::new(node, now());
        let mut budget = Budget::new();
        loop {
            let pools = self.candidate_pools(version, pool).await?;
            let affine = self
                .assign_from_affine_blocks(node, version, &pools, &attribute, &mut budget)
                .await?;
            if let Some(ip) = affine {
                return Ok(ip);
            }
            let listing = self.ds().list(&blocks_prefix(version)).await?;
            let claimed = self
                .claim_new_block(node, &pools, &listing.items, &mut budget)
                .await?;
            if let Some(block) = claimed {
                tracing::debug!(node, %block, "claimed an affine block");
                // The next round allocates from it as one of the node's affine blocks.
                budget.spend(&block_key(block))?;
                continue;
            }
            return self
                .borrow(node, &pools, listing.items, &attribute, &mut budget)
                .await?
                .ok_or(IpamError::Exhausted);
        }
    }

    /// Allocates exactly `ip` for `node`, claiming its block for the node if nobody has it yet.
    pub async fn assign(&self, node: &str, ip: IpAddr) -> Result<()> {
        check_node(node)?;
        let block = block_of(ip);
        let in_pool = self
            .pools()
            .await?
            .into_iter()
            .any(|(pool, enabled)| enabled && pool_contains_block(pool, block));
        if !in_pool {
            return Err(IpamError::NotInPool(ip));
        }
        let attribute = Attribute::new(node, now());
        let mut budget = Budget::new();
        loop {
            let outcome = self
                .modify_block(block, None, &mut budget, |b| match b {
                    None => Change::Keep(Assigned::NoBlock),
                    Some(b) => {
                        if b.assign(ip, attribute.clone()) {
                            Change::Write(Assigned::Done)
                        } else {
                            Change::Keep(Assigned::Taken)
                        }
                    }
                })
                .await?;
            match outcome {
                Assigned::Done => return Ok(()),
                Assigned::Taken => {
                    return Err(IpamError::AlreadyAssigned {
                        ip,
                        block: Cidr::new(block),
                    })
                }
                Assigned::NoBlock => {
                    // Whoever wins the claim, the block exists on the next round.
                    self.claim(node, block).await?;
                    budget.spend(&block_key(block))?;
                }
            }
        }
    }

    /// Frees `ip`; false if it was not allocated (or is `0.0.0.0` / `::`).
    pub async fn release(&self, ip: IpAddr) -> Result<bool> {
        if ip.is_unspecified() {
            return Ok(false);
        }
        let mut budget = Budget::new();
        self.modify_block(block_of(ip), None, &mut budget, |b| {
            let Some(b) = b else {
                return Change::Keep(false);
            };
            if !b.release(ip) {
                Change::Keep(false)
            } else if b.is_empty() && !b.has_affinity() {
                Change::Delete(true)
            } else {
                Change::Write(true)
            }
        })
        .await
    }

    /// The allocation holding `ip`, if it is allocated.
    pub async fn allocation(&self, ip: IpAddr) -> Result<Option<Allocation>> {
        let key = block_key(block_of(ip));
        let Some(kv) = self.ds().get(&key).await? else {
            return Ok(None);
        };
        let block = decode_block(&kv)?;
        Ok(block
            .attribute_of(ip)
            .map(|attr| allocation_of(&block, attr)))
    }

    /// Every allocated address (of `node` only, if given), in address order.
    pub async fn allocations(&self, node: Option<&str>) -> Result<Vec<(IpAddr, Allocation)>> {
        let listing = self.ds().list(ALL_BLOCKS_PREFIX).await?;
        let mut out = Vec::new();
        for kv in &listing.items {
            let block = decode_block(kv)?;
            for (ip, attr) in block.allocated() {
                if node.is_none_or(|n| attr.node() == Some(n)) {
                    out.push((ip, allocation_of(&block, attr)));
                }
            }
        }
        out.sort_by_key(|(ip, _)| *ip);
        Ok(out)
    }

    /// The blocks `node` owns (marker and block affinity both present), in address order.
    pub async fn affine_blocks(&self, node: &str) -> Result<Vec<Cidr>> {
        let mut out = Vec::new();
        for block in self.affinity_markers(node, None).await? {
            let Some(kv) = self.ds().get(&block_key(block)).await? else {
                continue;
            };
            if decode_block(&kv)?.is_affine_to(node) {
                out.push(block);
            }
        }
        Ok(out.into_iter().map(Cidr::new).collect())
    }

    fn ds(&self) -> &dyn Datastore {
        self.store.datastore().as_ref()
    }

    /// Every pool's network and whether it is enabled.
    pub async fn pools(&self) -> Result<Vec<(IpNet, bool)>> {
        let resources = self.store.list(Kind::IpPool, &Filter::default()).await?;
        Ok(resources
            .into_iter()
            .filter_map(|r| match r {
                Resource::IpPool(p) => p
                    .metadata
                    .cidr
                    .map(|c| (c.ip_net().trunc(), !p.spec.disabled)),
                _ => None,
            })
            .collect())
    }

    /// The enabled pools an auto-assignment may use.
    async fn candidate_pools(&self, version: u8, requested: Option<Cidr>) -> Result<Vec<IpNet>> {
        let pools = self.pools().await?;
        if let Some(req) = requested {
            let wanted = req.ip_net().trunc();
            return match pools.into_iter().find(|(pool, _)| *pool == wanted) {
                None => Err(IpamError::PoolNotFound(req)),
                Some((_, false)) => Err(IpamError::PoolDisabled(req)),
                Some((pool, true)) => Ok(vec![pool]),
            };
        }
        let enabled: Vec<IpNet> = pools
            .into_iter()
            .filter(|(pool, enabled)| *enabled && version_of(pool.addr()) == version)
            .map(|(pool, _)| pool)
            .collect();
        if enabled.is_empty() {
            return Err(IpamError::NoPools);
        }
        Ok(enabled)
    }

    /// The blocks `node` has affinity markers for, of one IP version or both, in address order.
    async fn affinity_markers(&self, node: &str, version: Option<u8>) -> Result<Vec<IpNet>> {
        let listing = self.ds().list(&affinities_prefix(node, version)).await?;
        let mut blocks = listing
            .items
            .iter()
            .map(|kv| parse_block_key(&kv.key))
            .collect::<Result<Vec<_>>>()?;
        blocks.sort();
        Ok(blocks)
    }

    /// Allocates from the first of `node`'s affine blocks in `pools` with room.
    async fn assign_from_affine_blocks(
        &self,
        node: &str,
        version: u8,
        pools: &[IpNet],
        attribute: &Attribute,
        budget: &mut Budget,
    ) -> Result<Option<IpAddr>> {
        for block in self.affinity_markers(node, Some(version)).await? {
            if !in_pools(pools, block) {
                continue;
            }
            let ip = self
                .modify_block(block, None, budget, |b| match b {
                    Some(b) if b.is_affine_to(node) => auto_assign_in(b, attribute),
                    _ => Change::Keep(None),
                })
                .await?;
            if ip.is_some() {
                return Ok(ip);
            }
        }
        Ok(None)
    }

    /// Walks each pool from the node's hash and claims the first block not in `existing`.
    async fn claim_new_block(
        &self,
        node: &str,
        pools: &[IpNet],
        existing: &[KeyValue],
        budget: &mut Budget,
    ) -> Result<Option<IpNet>> {
        let existing = existing
            .iter()
            .map(|kv| parse_block_key(&kv.key))
            .collect::<Result<HashSet<_>>>()?;
        for pool in pools {
            for block in walk(*pool, node) {
                if existing.contains(&block) {
                    continue;
                }
                if self.claim(node, block).await? {
                    return Ok(Some(block));
                }
                budget.spend(&block_key(block))?;
            }
        }
        Ok(None)
    }

    /// Allocates from any of the `existing` blocks in `pools` with room, whoever owns it.
    async fn borrow(
        &self,
        node: &str,
        pools: &[IpNet],
        existing: Vec<KeyValue>,
        attribute: &Attribute,
        budget: &mut Budget,
    ) -> Result<Option<IpAddr>> {
        let mut borrowable = Vec::new();
        for kv in existing {
            let block = decode_block(&kv)?;
            if block.free() > 0 && in_pools(pools, block.cidr()) {
                borrowable.push((block.cidr(), kv));
            }
        }
        if !borrowable.is_empty() {
            // Start where the node's hash points, so nodes contend less on one block.
            let start = fnv1a32(node.as_bytes()) as usize % borrowable.len();
            borrowable.rotate_left(start);
        }
        for (block, kv) in borrowable {
            let ip = self
                .modify_block(block, Some(kv), budget, |b| match b {
                    Some(b) => auto_assign_in(b, attribute),
                    None => Change::Keep(None),
                })
                .await?;
            if let Some(ip) = ip {
                tracing::debug!(node, %block, %ip, "borrowed an address from a block the node does not own");
                return Ok(Some(ip));
            }
        }
        Ok(None)
    }

    /// Claims `block` for `node`: marker first, then the block; true if the node owns it after.
    async fn claim(&self, node: &str, block: IpNet) -> Result<bool> {
        let marker = affinity_key(node, block);
        match self.ds().create(&marker, AFFINITY_VALUE).await {
            Ok(_) | Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let key = block_key(block);
        let value = encode_block(&Block::new(block, Some(node)), &key)?;
        match self.ds().create(&key, &value).await {
            Ok(_) => return Ok(true),
            Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
        // Someone created the block first: another process of this node, or another node.
        if let Some(kv) = self.ds().get(&key).await? {
            if decode_block(&kv)?.is_affine_to(node) {
                return Ok(true);
            }
        }
        match self.ds().delete(&marker, None).await {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads, changes and compare-and-swaps one block until the write wins or nothing is to be
    /// written; `change` sees `None` when the block does not exist. `current` saves the first read.
    async fn modify_block<T>(
        &self,
        block: IpNet,
        mut current: Option<KeyValue>,
        budget: &mut Budget,
        mut change: impl FnMut(Option<&mut Block>) -> Change<T>,
    ) -> Result<T> {
        let key = block_key(block);
        loop {
            let kv = match current.take() {
                Some(kv) => Some(kv),
                None => self.ds().get(&key).await?,
            };
            let Some(kv) = kv else {
                return match change(None) {
                    Change::Keep(out) | Change::Write(out) | Change::Delete(out) => Ok(out),
                };
            };
            let mut decoded = decode_block(&kv)?;
            let written = match change(Some(&mut decoded)) {
                Change::Keep(out) => return Ok(out),
                Change::Write(out) => {
                    let value = encode_block(&decoded, &key)?;
                    (self.ds().update(&key, &value, kv.mod_revision).await, out)
                }
                Change::Delete(out) => (self.ds().delete(&key, Some(kv.mod_revision)).await, out),
            };
            match written {
                (Ok(_), out) => return Ok(out),
                (Err(StoreError::Conflict(_) | StoreError::NotFound(_)), _) => {
                    budget.spend(&key)?
                }
                (Err(e), _) => return Err(e.into()),
            }
        }
    }
}

/// Whether `block` lies inside one of `pools`.
fn in_pools(pools: &[IpNet], block: IpNet) -> bool {
    pools.iter().any(|p| pool_contains_block(*p, block))
}

/// Takes the block's next free address, if any.
fn auto_assign_in(block: &mut Block, attribute: &Attribute) -> Change<Option<IpAddr>> {
    match block.auto_assign(attribute.clone()) {
        Some(ip) => Change::Write(Some(ip)),
        None => Change::Keep(None),
    }
}

/// Rejects node names no key can hold.
fn check_node(node: &str) -> Result<()> {
    if node.is_empty() {
        return Err(IpamError::InvalidRequest(
            "a node name is required to assign addresses".into(),
        ));
    }
    Ok(())
}

/// Now, in Unix seconds.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn parse_block_key(key: &str) -> Result<IpNet> {
    block_in_key(key).map_err(|reason| IpamError::Corrupt {
        key: key.to_owned(),
        reason,
    })
}

fn decode_block(kv: &KeyValue) -> Result<Block> {
    let cidr = parse_block_key(&kv.key)?;
    Block::decode(&kv.value, cidr).map_err(|reason| IpamError::Corrupt {
        key: kv.key.clone(),
        reason,
    })
}

fn encode_block(block: &Block, key: &str) -> Result<Vec<u8>> {
    block.encode().map_err(|e| IpamError::Corrupt {
        key: key.to_owned(),
        reason: format!("cannot encode: {e}"),
    })
}

fn allocation_of(block: &Block, attr: &Attribute) -> Allocation {
    Allocation {
        node: attr.node().map(str::to_owned),
        allocated_at: attr.allocated_at(),
        block: Cidr::new(block.cidr()),
    }
}
