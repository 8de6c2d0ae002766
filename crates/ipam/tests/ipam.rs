//! IPAM behaviour on a real (SQLite) datastore.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use calico_ipam::IpamError;
use proptest::prelude::*;
use serde_json::json;

use common::{blocks, cidr, concurrent_assign_and_release, ip, set_pool, sqlite, TEST_TIMEOUT};

fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// The first block `node` walks to in 10.0.0.0/16 (1024 blocks).
fn first_block_in_10_0(node: &str) -> String {
    let index = fnv1a32(node.as_bytes()) % 1024;
    format!("10.0.{}.{}/26", index / 4, (index % 4) * 64)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn bounded<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("test did not finish within the time limit");
}

#[tokio::test]
async fn first_allocation_claims_an_affine_block_and_allocates_in_order() {
    bounded(async {
        let env = sqlite();
        set_pool(&env.store, "10.0.0.0/16", false).await;
        let before = unix_now();
        let block = cidr(&first_block_in_10_0("node-a"));
        let base = match block.addr() {
            IpAddr::V4(a) => u32::from(a),
            IpAddr::V6(_) => unreachable!(),
        };
        for n in 0..3 {
            let got = env.ipam.auto_assign("node-a", 4, None).await.unwrap();
            assert_eq!(got, IpAddr::from(std::net::Ipv4Addr::from(base + n)));
        }
        assert_eq!(env.ipam.affine_blocks("node-a").await.unwrap(), vec![block]);
        let segment = block.to_string().replace('/', "-");
        let marker = format!("/calico/ipam/v2/host/node-a/ipv4/block/{segment}");
        assert_eq!(env.ds.get(&marker).await.unwrap().unwrap().value, b"{}");
        let stored = blocks(&env.ds).await;
        let value = &stored[&format!("/calico/ipam/v2/assignment/ipv4/block/{segment}")];
        assert_eq!(value["cidr"], block.to_string());
        assert_eq!(value["affinity"], "host:node-a");
        assert_eq!(value["strictAffinity"], false);
        assert_eq!(
            value["allocations"].as_array().unwrap()[..4],
            [json!(0), json!(0), json!(0), json!(null)]
        );
        assert_eq!(value["unallocated"][0], 3);
        let allocation = env
            .ipam
            .allocation(IpAddr::from(std::net::Ipv4Addr::from(base)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(allocation.node.as_deref(), Some("node-a"));
        assert_eq!(allocation.block, block);
        let at = allocation.allocated_at.unwrap();
        assert!(at >= before && at <= unix_now());
        let unallocated = IpAddr::from(std::net::Ipv4Addr::from(base + 3));
        assert_eq!(env.ipam.allocation(unallocated).await.unwrap(), None);
        assert_eq!(env.ipam.allocation(ip("10.99.0.1")).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn nodes_get_their_own_deterministic_blocks() {
    bounded(async {
        let (one, two) = (sqlite(), sqlite());
        for env in [&one, &two] {
            set_pool(&env.store, "10.0.0.0/16", false).await;
        }
        let a = one.ipam.auto_assign("node-a", 4, None).await.unwrap();
        let b = one.ipam.auto_assign("node-b", 4, None).await.unwrap();
        let a_blocks = one.ipam.affine_blocks("node-a").await.unwrap();
        let b_blocks = one.ipam.affine_blocks("node-b").await.unwrap();
        assert_eq!(a_blocks, vec![cidr(&first_block_in_10_0("node-a"))]);
        assert_eq!(b_blocks, vec![cidr(&first_block_in_10_0("node-b"))]);
        assert_ne!(a_blocks, b_blocks);
        assert!(a_blocks[0].ip_net().contains(&a) && b_blocks[0].ip_net().contains(&b));
        // The same node name walks to the same block in another cluster.
        assert_eq!(two.ipam.auto_assign("node-a", 4, None).await.unwrap(), a);
        let by_node = one.ipam.allocations(Some("node-b")).await.unwrap();
        assert_eq!(
            by_node.iter().map(|(ip, _)| *ip).collect::<Vec<_>>(),
            vec![b]
        );
        assert_eq!(one.ipam.allocations(None).await.unwrap().len(), 2);
        assert!(one
            .ipam
            .allocations(Some("node-c"))
            .await
            .unwrap()
            .is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_full_block_leads_to_the_next_block_on_the_walk() {
    bounded(async {
        let env = sqlite();
        set_pool(&env.store, "10.0.0.0/24", false).await;
        let mut got = Vec::new();
        for _ in 0..65 {
            got.push(env.ipam.auto_assign("node-a", 4, None).await.unwrap());
        }
        let affine = env.ipam.affine_blocks("node-a").await.unwrap();
        assert_eq!(affine.len(), 2);
        let first = fnv1a32(b"node-a") % 4;
        let second = (first + 1) % 4;
        let expected = [first, second].map(|i| cidr(&format!("10.0.0.{}/26", i * 64)));
        assert!(expected.iter().all(|b| affine.contains(b)), "{affine:?}");
        assert!(expected[1].ip_net().contains(&got[64]));
    })
    .await;
}

#[tokio::test]
async fn borrows_from_other_nodes_blocks_when_every_block_is_claimed() {
    bounded(async {
        let env = sqlite();
        set_pool(&env.store, "10.0.0.0/25", false).await;
        let a = env.ipam.auto_assign("node-a", 4, None).await.unwrap();
        let b = env.ipam.auto_assign("node-b", 4, None).await.unwrap();
        let c = env.ipam.auto_assign("node-c", 4, None).await.unwrap();
        assert!(env.ipam.affine_blocks("node-c").await.unwrap().is_empty());
        let c_allocation = env.ipam.allocation(c).await.unwrap().unwrap();
        assert_eq!(c_allocation.node.as_deref(), Some("node-c"));
        let owners = [
            env.ipam.affine_blocks("node-a").await.unwrap(),
            env.ipam.affine_blocks("node-b").await.unwrap(),
        ];
        assert!(owners.iter().any(|o| o.contains(&c_allocation.block)));
        assert_eq!(blocks(&env.ds).await.len(), 2);
        // The borrowed address goes back; the owner's affine block stays.
        assert!(env.ipam.release(c).await.unwrap());
        assert_eq!(blocks(&env.ds).await.len(), 2);
        // Borrowing continues until every address is gone.
        let mut all = vec![a, b];
        for _ in 0..126 {
            all.push(env.ipam.auto_assign("node-c", 4, None).await.unwrap());
        }
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 128);
        let err = env.ipam.auto_assign("node-a", 4, None).await.unwrap_err();
        assert!(matches!(err, IpamError::Exhausted), "{err}");
        assert_eq!(
            err.to_string(),
            "There are no available IP addresses in the configured Calico IP pools"
        );
    })
    .await;
}

#[tokio::test]
async fn assign_takes_a_specific_address_inside_an_enabled_pool() {
    bounded(async {
        let env = sqlite();
        set_pool(&env.store, "10.0.0.0/16", false).await;
        set_pool(&env.store, "10.1.0.0/16", true).await;
        env.ipam.assign("node-a", ip("10.0.5.70")).await.unwrap();
        assert_eq!(
            env.ipam.affine_blocks("node-a").await.unwrap(),
            vec![cidr("10.0.5.64/26")]
        );
        let err = env
            .ipam
            .assign("node-b", ip("10.0.5.70"))
            .await
            .unwrap_err();
        assert!(matches!(err, IpamError::AlreadyAssigned { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "Address already assigned in block 10.0.5.64/26: 10.0.5.70"
        );
        // Another address of node-a's block, for another node: allowed, not affine.
        env.ipam.assign("node-b", ip("10.0.5.71")).await.unwrap();
        assert!(env.ipam.affine_blocks("node-b").await.unwrap().is_empty());
        let allocation = env.ipam.allocation(ip("10.0.5.71")).await.unwrap().unwrap();
        assert_eq!(allocation.node.as_deref(), Some("node-b"));
        // Auto-assignment in the block skips what was assigned explicitly.
        env.ipam.assign("node-a", ip("10.0.5.64")).await.unwrap();
        let next = env.ipam.auto_assign("node-a", 4, None).await.unwrap();
        assert_eq!(next, ip("10.0.5.65"));
        for outside in ["10.1.0.1", "192.168.0.1", "fd00::1"] {
            let err = env.ipam.assign("node-a", ip(outside)).await.unwrap_err();
            assert!(matches!(err, IpamError::NotInPool(_)), "{outside}: {err}");
            assert_eq!(
                err.to_string(),
                "The provided IP address is not in a configured pool"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn release_frees_and_deletes_only_empty_non_affine_blocks() {
    bounded(async {
        let env = sqlite();
        set_pool(&env.store, "10.0.0.0/16", false).await;
        let first = env.ipam.auto_assign("node-a", 4, None).await.unwrap();
        let second = env.ipam.auto_assign("node-a", 4, None).await.unwrap();
        assert!(env.ipam.release(first).await.unwrap());
        assert!(!env.ipam.release(first).await.unwrap());
        assert_eq!(env.ipam.allocation(first).await.unwrap(), None);
        // The released ordinal goes to the back of the free list.
        let third = env.ipam.auto_assign("node-a", 4, None).await.unwrap();
        assert_ne!(third, first);
        assert!(env.ipam.release(second).await.unwrap());
        assert!(env.ipam.release(third).await.unwrap());
        // The affine block stays, empty, with its attributes collected.
        let stored = blocks(&env.ds).await;
        assert_eq!(stored.len(), 1);
        let block = stored.values().next().unwrap();
        assert_eq!(block["unallocated"].as_array().unwrap().len(), 64);
        assert_eq!(block["attributes"], json!([]));

        // A block whose affinity was released (as Calico does), holding one CNI allocation.
        let mut allocations = vec![serde_json::Value::Null; 64];
        allocations[5] = json!(0);
        let unowned = json!({"cidr": "10.0.200.0/26", "affinity": null, "strictAffinity": false,
            "allocations": allocations, "unallocated": (0..64).filter(|o| *o != 5).collect::<Vec<_>>(),
            "attributes": [{"handle_id": "cni-1234", "secondary": null}]});
        let key = "/calico/ipam/v2/assignment/ipv4/block/10.0.200.0-26";
        env.ds
            .create(key, unowned.to_string().as_bytes())
            .await
            .unwrap();
        let foreign = env.ipam.allocation(ip("10.0.200.5")).await.unwrap().unwrap();
        assert_eq!((foreign.node, foreign.allocated_at), (None, None));
        assert_eq!(env.ipam.allocations(Some("node-a")).await.unwrap(), vec![]);
        assert_eq!(env.ipam.allocations(None).await.unwrap().len(), 1);
        assert!(env.ipam.release(ip("10.0.200.5")).await.unwrap());
        assert_eq!(env.ds.get(key).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn releasing_unknown_and_unspecified_addresses_does_nothing() {
    bounded(async {
        let env = sqlite();
        set_pool(&env.store, "10.0.0.0/16", false).await;
        let ours = env.ipam.auto_assign("node-a", 4, None).await.unwrap();
        for unknown in [
            "0.0.0.0",
            "::",
            "10.0.0.1",
            "10.0.1.1",
            "192.168.9.9",
            "fd00::9",
        ] {
            let unknown = ip(unknown);
            if unknown != ours {
                assert!(!env.ipam.release(unknown).await.unwrap(), "{unknown}");
            }
        }
        assert_eq!(env.ipam.allocations(None).await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn disabled_pools_are_not_used() {
    bounded(async {
        let env = sqlite();
        set_pool(&env.store, "10.0.0.0/16", true).await;
        let err = env.ipam.auto_assign("node-a", 4, None).await.unwrap_err();
        assert!(matches!(err, IpamError::NoPools), "{err}");
        assert_eq!(err.to_string(), "No configured Calico pools");
        set_pool(&env.store, "10.0.0.0/16", false).await;
        let first = env.ipam.auto_assign("node-a", 4, None).await.unwrap();
        assert!(cidr("10.0.0.0/16").ip_net().contains(&first));
        // Disabling the pool stops allocation from the node's affine block in it too.
        set_pool(&env.store, "10.0.0.0/16", true).await;
        set_pool(&env.store, "10.1.0.0/16", false).await;
        for _ in 0..3 {
            let next = env.ipam.auto_assign("node-a", 4, None).await.unwrap();
            assert!(cidr("10.1.0.0/16").ip_net().contains(&next), "{next}");
        }
        let err = env
            .ipam
            .assign("node-a", ip("10.0.0.200"))
            .await
            .unwrap_err();
        assert!(matches!(err, IpamError::NotInPool(_)), "{err}");
        // Its addresses can still be looked up and released.
        assert!(env.ipam.allocation(first).await.unwrap().is_some());
        assert!(env.ipam.release(first).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn exhaustion_of_a_single_block_pool() {
    bounded(async {
        let env = sqlite();
        set_pool(&env.store, "10.0.0.0/26", false).await;
        for n in 0..64 {
            let node = if n % 2 == 0 { "node-a" } else { "node-b" };
            env.ipam.auto_assign(node, 4, None).await.unwrap();
        }
        let err = env.ipam.auto_assign("node-c", 4, None).await.unwrap_err();
        assert!(matches!(err, IpamError::Exhausted), "{err}");
        assert!(env.ipam.release(ip("10.0.0.17")).await.unwrap());
        assert_eq!(
            env.ipam.auto_assign("node-c", 4, None).await.unwrap(),
            ip("10.0.0.17")
        );
    })
    .await;
}

#[tokio::test]
async fn auto_assign_can_be_restricted_to_one_pool() {
    bounded(async {
        let env = sqlite();
        set_pool(&env.store, "10.0.0.0/16", false).await;
        set_pool(&env.store, "10.1.0.0/16", false).await;
        set_pool(&env.store, "10.2.0.0/16", true).await;
        let a = env.ipam.auto_assign("node-a", 4, None).await.unwrap();
        let restricted = Some(cidr("10.1.0.0/16"));
        for _ in 0..3 {
            let got = env.ipam.auto_assign("node-a", 4, restricted).await.unwrap();
            assert!(cidr("10.1.0.0/16").ip_net().contains(&got), "{got}");
        }
        assert_eq!(env.ipam.affine_blocks("node-a").await.unwrap().len(), 2);
        let next = env.ipam.auto_assign("node-a", 4, None).await.unwrap();
        assert!(!cidr("10.2.0.0/16").ip_net().contains(&next));
        assert!(!cidr("10.2.0.0/16").ip_net().contains(&a));

        let err = env
            .ipam
            .auto_assign("node-a", 4, Some(cidr("10.9.0.0/16")))
            .await
            .unwrap_err();
        assert!(matches!(err, IpamError::PoolNotFound(_)), "{err}");
        assert_eq!(
            err.to_string(),
            "The given pool (10.9.0.0/16) does not exist"
        );
        let err = env
            .ipam
            .auto_assign("node-a", 4, Some(cidr("10.2.0.0/16")))
            .await
            .unwrap_err();
        assert!(matches!(err, IpamError::PoolDisabled(_)), "{err}");
        let err = env
            .ipam
            .auto_assign("node-a", 6, Some(cidr("10.1.0.0/16")))
            .await
            .unwrap_err();
        assert!(matches!(err, IpamError::InvalidRequest(_)), "{err}");
        let err = env.ipam.auto_assign("node-a", 5, None).await.unwrap_err();
        assert!(matches!(err, IpamError::InvalidRequest(_)), "{err}");
        let err = env.ipam.auto_assign("", 4, None).await.unwrap_err();
        assert!(matches!(err, IpamError::InvalidRequest(_)), "{err}");
        let err = env.ipam.auto_assign("node-a", 6, None).await.unwrap_err();
        assert!(matches!(err, IpamError::NoPools), "{err}");
    })
    .await;
}

#[tokio::test]
async fn ipv6_uses_122_blocks() {
    bounded(async {
        let env = sqlite();
        set_pool(&env.store, "fd00::/120", false).await;
        set_pool(&env.store, "10.0.0.0/16", false).await;
        let got = env.ipam.auto_assign("node-a", 6, None).await.unwrap();
        assert!(got.is_ipv6());
        let affine = env.ipam.affine_blocks("node-a").await.unwrap();
        assert_eq!(affine.len(), 1);
        assert_eq!(affine[0].prefix_len(), 122);
        assert!(affine[0].ip_net().contains(&got));
        let segment = affine[0].to_string().replace('/', "-");
        let key = format!("/calico/ipam/v2/assignment/ipv6/block/{segment}");
        assert!(env.ds.get(&key).await.unwrap().is_some());
        let marker = format!("/calico/ipam/v2/host/node-a/ipv6/block/{segment}");
        assert!(env.ds.get(&marker).await.unwrap().is_some());
        env.ipam.assign("node-b", ip("fd00::ff")).await.unwrap();
        let v4 = env.ipam.auto_assign("node-a", 4, None).await.unwrap();
        assert!(v4.is_ipv4());
        assert_eq!(env.ipam.affine_blocks("node-a").await.unwrap().len(), 2);
        assert!(env.ipam.release(got).await.unwrap());
        assert!(env.ipam.release(ip("fd00::ff")).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn malformed_stored_blocks_are_errors_naming_the_key() {
    bounded(async {
        let env = sqlite();
        set_pool(&env.store, "10.0.0.0/16", false).await;
        let key = "/calico/ipam/v2/assignment/ipv4/block/10.0.7.0-26";
        env.ds.create(key, b"{\"cidr\": 7}").await.unwrap();
        let corrupt = |err: IpamError| {
            assert!(matches!(err, IpamError::Corrupt { .. }), "{err}");
            assert!(err.to_string().contains(key), "{err}");
        };
        corrupt(env.ipam.allocation(ip("10.0.7.1")).await.unwrap_err());
        corrupt(env.ipam.release(ip("10.0.7.1")).await.unwrap_err());
        corrupt(env.ipam.assign("node-a", ip("10.0.7.1")).await.unwrap_err());
        corrupt(env.ipam.allocations(None).await.unwrap_err());
        let bad_key = "/calico/ipam/v2/assignment/ipv4/block/not-a-block";
        env.ds.delete(key, None).await.unwrap();
        env.ds.create(bad_key, b"{}").await.unwrap();
        let err = env.ipam.allocations(None).await.unwrap_err();
        assert!(err.to_string().contains(bad_key), "{err}");
        let marker = "/calico/ipam/v2/host/node-a/ipv4/block/garbage";
        env.ds.create(marker, b"{}").await.unwrap();
        let err = env.ipam.affine_blocks("node-a").await.unwrap_err();
        assert!(err.to_string().contains(marker), "{err}");
    })
    .await;
}

#[tokio::test]
async fn a_dangling_affinity_marker_is_reused_and_a_foreign_one_ignored() {
    bounded(async {
        let env = sqlite();
        set_pool(&env.store, "10.0.0.0/16", false).await;
        // A claim that stopped between the marker and the block: the next claim completes it.
        let block = first_block_in_10_0("node-a");
        let segment = block.replace('/', "-");
        let marker = format!("/calico/ipam/v2/host/node-a/ipv4/block/{segment}");
        env.ds.create(&marker, b"{}").await.unwrap();
        let got = env.ipam.auto_assign("node-a", 4, None).await.unwrap();
        assert!(cidr(&block).ip_net().contains(&got));
        // A marker for a block another node owns does not make it node-b's.
        let stolen = format!("/calico/ipam/v2/host/node-b/ipv4/block/{segment}");
        env.ds.create(&stolen, b"{}").await.unwrap();
        assert!(env.ipam.affine_blocks("node-b").await.unwrap().is_empty());
        let b = env.ipam.auto_assign("node-b", 4, None).await.unwrap();
        assert!(!cidr(&block).ip_net().contains(&b));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_allocation_on_sqlite() {
    bounded(async {
        let env = sqlite();
        set_pool(&env.store, "10.0.0.0/22", false).await;
        concurrent_assign_and_release(&env.ipam, &env.ds).await;
    })
    .await;
}

#[derive(Debug, Clone)]
enum Op {
    Auto(usize),
    Assign(usize, u8),
    Release(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0usize..3).prop_map(Op::Auto),
        1 => (0usize..3, 0u8..128).prop_map(|(n, i)| Op::Assign(n, i)),
        2 => any::<u8>().prop_map(Op::Release),
    ]
}

/// Runs `ops` on a two-block pool shared by three nodes, against a map of address → node.
async fn check_against_model(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let env = sqlite();
    set_pool(&env.store, "10.0.0.0/25", false).await;
    let nodes = ["node-a", "node-b", "node-c"];
    let addr = |i: u8| ip(&format!("10.0.0.{}", i % 128));
    let mut model: BTreeMap<IpAddr, &str> = BTreeMap::new();
    for op in ops {
        match op {
            Op::Auto(n) => match env.ipam.auto_assign(nodes[n], 4, None).await {
                Ok(got) => {
                    prop_assert!(cidr("10.0.0.0/25").ip_net().contains(&got));
                    prop_assert!(model.insert(got, nodes[n]).is_none(), "{got} given twice");
                }
                Err(IpamError::Exhausted) => prop_assert_eq!(model.len(), 128),
                Err(e) => return Err(TestCaseError::fail(e.to_string())),
            },
            Op::Assign(n, i) => match env.ipam.assign(nodes[n], addr(i)).await {
                Ok(()) => prop_assert!(model.insert(addr(i), nodes[n]).is_none()),
                Err(IpamError::AlreadyAssigned { .. }) => {
                    prop_assert!(model.contains_key(&addr(i)))
                }
                Err(e) => return Err(TestCaseError::fail(e.to_string())),
            },
            Op::Release(i) => {
                let released = env.ipam.release(addr(i)).await.unwrap();
                prop_assert_eq!(released, model.remove(&addr(i)).is_some());
            }
        }
    }
    let listed: BTreeMap<IpAddr, &str> = env
        .ipam
        .allocations(None)
        .await
        .unwrap()
        .into_iter()
        .map(|(ip, a)| {
            (
                ip,
                nodes
                    .into_iter()
                    .find(|n| a.node.as_deref() == Some(*n))
                    .unwrap(),
            )
        })
        .collect();
    prop_assert_eq!(&listed, &model);
    let mut owned = Vec::new();
    for node in nodes {
        owned.extend(env.ipam.affine_blocks(node).await.unwrap());
    }
    let stored = blocks(&env.ds).await;
    prop_assert_eq!(
        owned.len(),
        stored.len(),
        "every block is owned by exactly one node"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_assign_and_release_match_a_model(ops in proptest::collection::vec(op(), 1..150)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(check_against_model(ops))?;
    }
}
