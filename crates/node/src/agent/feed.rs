//! One datastore stream, decoded once and fanned out to its consumers, as Felix's dispatcher
//! does: the DNS name table and (later) metrics when calico-node runs them, which borrow each
//! batch, then the calculation graph ([`GraphFeed`]), which takes it.

use std::collections::HashMap;

use calico_calc::desired::Failsafe;
use calico_calc::CalcGraph;
use calico_model::{Kind, Resource, ResourceKey};
use calico_store::keys::kind_of_path;
use calico_store::resources::decode;
use calico_store::{KeyValue, WatchEvent};
use tracing::warn;

/// The kinds some consumer reads.
const KINDS: [Kind; 5] = [
    Kind::Profile,
    Kind::Policy,
    Kind::WorkloadEndpoint,
    Kind::HostEndpoint,
    Kind::IpPool,
];

/// One change to the stored resources, as every consumer sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    /// The resource stored at `path` is now `resource`, whose identity is `key`.
    Put {
        /// The datastore path.
        path: String,
        /// The resource's identity.
        key: ResourceKey,
        /// The resource.
        resource: Box<Resource>,
    },
    /// Nothing readable is stored at `path` any more (deleted, or unreadable: fail closed).
    Remove {
        /// The datastore path.
        path: String,
    },
}

/// Where the datastore stream stands, for consumers that build a snapshot before they serve it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncStatus {
    /// A complete listing follows: everything known so far is about to be replaced.
    Resyncing,
    /// The listing has been delivered; watch updates follow.
    InSync,
}

/// Something that follows the stored resources.
pub trait Consumer: Send {
    /// The stream's status changed.
    fn on_status(&mut self, status: SyncStatus);
    /// A batch of updates, in datastore order.
    fn on_updates(&mut self, updates: &[Update]);
}

/// The update a stored key-value makes, or `None` for a kind no consumer reads (and for a
/// resource without identity, which is logged and skipped).
pub fn decode_put(kv: &KeyValue) -> Option<Update> {
    let kind = kind_of_path(&kv.key).filter(|k| KINDS.contains(k))?;
    match decode(kind, kv) {
        Ok(stored) => match stored.resource.key() {
            Ok(key) => Some(Update::Put {
                path: kv.key.clone(),
                key,
                resource: Box::new(stored.resource),
            }),
            Err(e) => {
                warn!(key = kv.key, error = %e, "ignoring a resource without identity");
                None
            }
        },
        Err(e) => {
            warn!(key = kv.key, error = %e, "ignoring an unreadable resource");
            Some(Update::Remove {
                path: kv.key.clone(),
            })
        }
    }
}

/// What a watch event means for the consumers: `Ok(None)` for a key no consumer reads,
/// `Err(Relisting)` when the datastore asks for a new listing.
pub fn decode_event(event: WatchEvent) -> Result<Option<Update>, Relisting> {
    match event {
        WatchEvent::Put(kv) => Ok(decode_put(&kv)),
        WatchEvent::Delete { key, .. } => Ok(kind_of_path(&key)
            .filter(|k| KINDS.contains(k))
            .map(|_| Update::Remove { path: key })),
        WatchEvent::Relist => Err(Relisting),
    }
}

/// The datastore's history is gone: list again.
#[derive(Debug, PartialEq, Eq)]
pub struct Relisting;

/// The calculation graph, with the path each resource was stored at and the failsafe ports it
/// is given again whenever it starts over.
pub struct GraphFeed {
    node: String,
    failsafe: Failsafe,
    graph: CalcGraph,
    paths: HashMap<String, ResourceKey>,
}

impl GraphFeed {
    /// An empty graph for the endpoints of `node`, whose host endpoints never block `failsafe`.
    pub fn new(node: &str, failsafe: Failsafe) -> GraphFeed {
        let mut graph = CalcGraph::new(node);
        graph.set_failsafe(failsafe.clone());
        GraphFeed {
            node: node.to_string(),
            failsafe,
            graph,
            paths: HashMap::new(),
        }
    }

    /// The graph, for its desired state and changes.
    pub fn graph(&mut self) -> &mut CalcGraph {
        &mut self.graph
    }
}

impl GraphFeed {
    /// Forgets everything: a complete listing follows.
    fn reset(&mut self) {
        *self = GraphFeed::new(&self.node, self.failsafe.clone());
    }

    /// Feeds `updates` to the graph, which keeps the resources.
    fn apply(&mut self, updates: Vec<Update>) {
        for update in updates {
            match update {
                Update::Put {
                    path,
                    key,
                    resource,
                } => {
                    self.paths.insert(path, key);
                    self.graph.upsert(*resource);
                }
                Update::Remove { path } => {
                    if let Some(key) = self.paths.remove(&path) {
                        self.graph.remove(&key);
                    }
                }
            }
        }
    }
}

/// Every consumer, in the order they were added, then the graph.
pub struct Dispatcher {
    graph: GraphFeed,
    others: Vec<Box<dyn Consumer>>,
}

impl Dispatcher {
    /// Feeds `graph` and nothing else yet.
    pub fn new(graph: GraphFeed) -> Dispatcher {
        Dispatcher {
            graph,
            others: Vec::new(),
        }
    }

    /// Feeds `consumer` too.
    pub fn add(&mut self, consumer: Box<dyn Consumer>) {
        self.others.push(consumer);
    }

    /// The graph consumer.
    pub fn graph(&mut self) -> &mut CalcGraph {
        self.graph.graph()
    }

    /// Tells every consumer the stream's status.
    pub fn status(&mut self, status: SyncStatus) {
        if status == SyncStatus::Resyncing {
            self.graph.reset();
        }
        for consumer in &mut self.others {
            consumer.on_status(status);
        }
    }

    /// Lends `updates` to every consumer, then gives them to the graph.
    pub fn updates(&mut self, updates: Vec<Update>) {
        if updates.is_empty() {
            return;
        }
        for consumer in &mut self.others {
            consumer.on_updates(&updates);
        }
        self.graph.apply(updates);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calico_calc::desired::FailsafePort;
    use calico_model::codec;
    use calico_store::keys::key_path;

    const WEP: &str = "\
apiVersion: v1
kind: workloadEndpoint
metadata:
  name: ep-e
  workload: workload-E
  orchestrator: libnetwork
  node: calico-01
spec:
  ipNetworks: [192.168.2.5/32]
  profiles: [net1]
  interfaceName: cali0123456789a
";

    fn stored(resource: &Resource, value: Vec<u8>) -> KeyValue {
        KeyValue {
            key: key_path(&resource.key().unwrap()),
            value,
            create_revision: 1,
            mod_revision: 1,
        }
    }

    #[test]
    fn an_unreadable_resource_is_removed_and_other_kinds_are_skipped() {
        let wep = codec::decode(WEP).unwrap().remove(0);
        let kv = stored(&wep, serde_json::to_vec(&wep).unwrap());
        assert!(matches!(decode_put(&kv), Some(Update::Put { .. })));
        let corrupt = stored(&wep, b"{not json".to_vec());
        assert_eq!(
            decode_put(&corrupt),
            Some(Update::Remove {
                path: corrupt.key.clone()
            })
        );
        let other = KeyValue {
            key: "/calico/ipam/v2/assignment/ipv4/block/192.168.0.0-26".into(),
            ..kv
        };
        assert_eq!(decode_put(&other), None);
        assert_eq!(decode_event(WatchEvent::Relist), Err(Relisting));
    }

    #[test]
    fn the_graph_follows_puts_and_removes_and_starts_over_on_resync() {
        let wep = codec::decode(WEP).unwrap().remove(0);
        let kv = stored(&wep, serde_json::to_vec(&wep).unwrap());
        let put = decode_put(&kv).unwrap();
        let mut feed = GraphFeed::new("calico-01", Failsafe::default());
        feed.apply(vec![put.clone()]);
        assert_eq!(feed.graph().desired().endpoints.len(), 1);
        feed.apply(vec![Update::Remove {
            path: kv.key.clone(),
        }]);
        assert!(feed.graph().desired().endpoints.is_empty());
        feed.apply(vec![put]);
        feed.reset();
        assert!(feed.graph().desired().endpoints.is_empty());
        assert!(feed.paths.is_empty());
    }

    #[test]
    fn host_endpoints_reach_the_graph_and_the_failsafe_ports_survive_a_resync() {
        let yaml = "{apiVersion: v1, kind: hostEndpoint, metadata: {name: eth0, node: calico-01}, \
                    spec: {interfaceName: eth0}}";
        let hep = codec::decode(yaml).unwrap().remove(0);
        let kv = stored(&hep, serde_json::to_vec(&hep).unwrap());
        let failsafe = Failsafe {
            inbound: vec![FailsafePort {
                protocol: 6,
                port: 2222,
            }],
            outbound: Vec::new(),
        };
        let mut feed = GraphFeed::new("calico-01", failsafe.clone());
        assert_eq!(feed.graph().desired().failsafe, failsafe);
        feed.apply(vec![decode_put(&kv).unwrap()]);
        assert!(feed.graph().desired().host_endpoints.contains_key("eth0"));
        feed.reset();
        assert!(feed.graph().desired().host_endpoints.is_empty());
        assert_eq!(feed.graph().desired().failsafe, failsafe);
    }

    #[test]
    fn pools_reach_the_graph_and_leave_it_when_deleted() {
        let yaml = "{apiVersion: v1, kind: ipPool, metadata: {cidr: 10.0.0.0/16}, spec: {nat-outgoing: true}}";
        let pool = codec::decode(yaml).unwrap().remove(0);
        let kv = stored(&pool, serde_json::to_vec(&pool).unwrap());
        let mut feed = GraphFeed::new("calico-01", Failsafe::default());
        feed.apply(vec![decode_put(&kv).unwrap()]);
        let cidr = "10.0.0.0/16".parse().unwrap();
        assert!(feed.graph().desired().pools[&cidr].nat_outgoing);
        assert!(feed.graph().take_changes().pools_changed);
        let deleted = WatchEvent::Delete {
            key: kv.key.clone(),
            revision: 2,
        };
        feed.apply(vec![decode_event(deleted).unwrap().unwrap()]);
        assert!(feed.graph().desired().pools.is_empty());
        assert!(feed.graph().take_changes().pools_changed);
    }
}
