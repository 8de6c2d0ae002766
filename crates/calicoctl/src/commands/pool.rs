//! `calicoctl pool ...`: calicoctl 0.x's IP pool commands over the same v1 `ipPool`
//! resources that `calicoctl get/apply` use (`--ipip` is `spec.ipip.enabled`,
//! `--nat-outgoing` is `spec.nat-outgoing`).

use std::path::Path;

use calico_model::{
    Cidr, IpPool, IpPoolMetadata, IpPoolSpec, IpipConfiguration, Kind, Resource, ResourceKey,
};
use calico_store::resources::{Filter, ResourceError, ResourceStore};

use super::profile::parse_failure;
use super::Outcome;
use crate::legacy::pool::{self, check_add, show_table, PoolCidr, PoolCommand};
use crate::legacy::text::paragraph;

/// `calicoctl pool WORDS...`.
pub async fn run(config: Option<&Path>, words: &[String]) -> Outcome {
    let invocation = match pool::parse(words) {
        Ok(invocation) => invocation,
        Err(e) => return parse_failure(e, pool::USAGE, pool::HELP),
    };
    let config = invocation.config.as_deref().or(config);
    match super::resources::connect(config).await {
        Ok(store) => execute(&store, invocation.command).await,
        Err(outcome) => outcome,
    }
}

/// Runs a parsed command.
pub async fn execute(store: &ResourceStore, command: PoolCommand) -> Outcome {
    match command {
        PoolCommand::Add {
            cidrs,
            ipip,
            nat_outgoing,
        } => add(store, &cidrs, ipip, nat_outgoing).await,
        PoolCommand::Remove { cidrs } => remove(store, &cidrs).await,
        PoolCommand::Show { version } => show(store, version).await,
    }
}

/// Every stored IP pool.
async fn pools(store: &ResourceStore) -> Result<Vec<IpPool>, Outcome> {
    let all = store
        .list(Kind::IpPool, &Filter::default())
        .await
        .map_err(|e| Outcome::fail(e.to_string()))?;
    Ok(all
        .into_iter()
        .filter_map(|r| match r {
            Resource::IpPool(p) => Some(p),
            _ => None,
        })
        .collect())
}

/// `pool add`: every pool is checked before any is written; an existing pool with the same
/// CIDR is replaced with the new settings. Silent on success, but for `--ipip`, which warns on
/// stderr that calico-docker routes the pools without encapsulation.
async fn add(store: &ResourceStore, cidrs: &[PoolCidr], ipip: bool, nat_outgoing: bool) -> Outcome {
    let existing: Vec<Cidr> = match pools(store).await {
        Ok(pools) => pools.iter().filter_map(|p| p.metadata.cidr).collect(),
        Err(outcome) => return outcome,
    };
    if let Err(message) = check_add(cidrs, ipip, &existing) {
        return Outcome::fail(message);
    }
    let new: Vec<Resource> = cidrs
        .iter()
        .map(|c| new_pool(c.cidr, ipip, nat_outgoing).into())
        .collect();
    for (pool, given) in new.iter().zip(cidrs) {
        if let Err(e) = pool.validate() {
            return Outcome::fail(format!(
                "Cannot add IP pool {} - {e}\nNo pools added.",
                given.given
            ));
        }
    }
    for pool in &new {
        if let Err(e) = store.apply(pool).await {
            return Outcome::fail(e.to_string());
        }
    }
    super::resources::with_warnings(
        Outcome::ok(""),
        new.iter().filter_map(super::resources::ipip_warning),
    )
}

/// An enabled pool with the `pool add` flags.
fn new_pool(cidr: Cidr, ipip: bool, nat_outgoing: bool) -> IpPool {
    IpPool {
        metadata: IpPoolMetadata { cidr: Some(cidr) },
        spec: IpPoolSpec {
            ipip: ipip.then(|| IpipConfiguration {
                enabled: true,
                mode: String::new(),
            }),
            nat_outgoing,
            disabled: false,
        },
    }
}

/// `pool remove`: each pool is disabled, then deleted, in order; the first unknown pool
/// stops the command.
async fn remove(store: &ResourceStore, cidrs: &[PoolCidr]) -> Outcome {
    let mut stdout = String::new();
    for pool in cidrs {
        if let Err(stderr) = remove_one(store, pool, &mut stdout).await {
            return Outcome {
                stdout,
                stderr,
                success: false,
            };
        }
    }
    Outcome::ok(stdout)
}

async fn remove_one(
    store: &ResourceStore,
    pool: &PoolCidr,
    stdout: &mut String,
) -> Result<(), String> {
    let key = ResourceKey::IpPool { cidr: pool.cidr };
    let not_configured = || format!("{} is not a configured pool.\n", pool.given);
    let conflict = |_: ResourceError| {
        paragraph(
            "Conflicting modifications have been made to the IPAM configuration for this \
             pool.  Please retry the command.",
        )
    };
    let mut current = match store.get(&key).await.map_err(|e| e.to_string())? {
        Some(stored) => match stored.resource {
            Resource::IpPool(p) => p,
            _ => return Err(not_configured()),
        },
        None => return Err(not_configured()),
    };
    stdout.push_str("Disabling IP Pool\n");
    current.spec.disabled = true;
    store.replace(&current.into()).await.map_err(conflict)?;
    store.delete(&key).await.map_err(conflict)?;
    stdout.push_str("Deleted IP Pool\n");
    Ok(())
}

/// `pool show [--ipv4|--ipv6]`: the IPv4 table, then the IPv6 one.
async fn show(store: &ResourceStore, version: Option<u8>) -> Outcome {
    let pools = match pools(store).await {
        Ok(pools) => pools,
        Err(outcome) => return outcome,
    };
    let versions = match version {
        Some(v) => vec![v],
        None => vec![4, 6],
    };
    Outcome::ok(
        versions
            .into_iter()
            .map(|v| show_table(v, &pools))
            .collect::<String>(),
    )
}
