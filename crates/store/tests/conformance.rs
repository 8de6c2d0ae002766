//! One conformance suite, run against every backend: each case below runs once per backend.

mod common;

use std::sync::Arc;

use calico_store::{Datastore, KeyValue, SqliteStore, StoreError, WatchEvent};
use common::{bounded, next_event};
use tokio::sync::Barrier;

/// A store under test, with whatever keeps it alive and a backend-specific compaction.
struct Backend {
    store: Arc<dyn Datastore>,
    kind: Kind,
}

enum Kind {
    Sqlite {
        store: Arc<SqliteStore>,
        _dir: tempfile::TempDir,
    },
    #[cfg(feature = "etcd")]
    Etcd {
        store: Arc<calico_store::EtcdStore>,
        _server: calico_testkit::etcd::EtcdServer,
    },
}

impl Backend {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path().join("calico.db")).unwrap());
        Backend {
            store: store.clone(),
            kind: Kind::Sqlite { store, _dir: dir },
        }
    }

    #[cfg(feature = "etcd")]
    async fn etcd() -> Self {
        let server = tokio::task::spawn_blocking(calico_testkit::etcd::EtcdServer::start)
            .await
            .unwrap();
        let config = calico_store::EtcdConfig {
            endpoints: vec![server.endpoint.clone()],
            ..calico_store::EtcdConfig::default()
        };
        let store = Arc::new(calico_store::EtcdStore::connect(&config).await.unwrap());
        Backend {
            store: store.clone(),
            kind: Kind::Etcd {
                store,
                _server: server,
            },
        }
    }

    async fn compact(&self, revision: i64) {
        match &self.kind {
            Kind::Sqlite { store, .. } => store.compact(revision).await.unwrap(),
            #[cfg(feature = "etcd")]
            Kind::Etcd { store, .. } => store.compact(revision).await.unwrap(),
        }
    }
}

/// Generates `sqlite::<case>` and `etcd::<case>` tests for every case function.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let backend = super::Backend::sqlite();
                    super::bounded(super::$case(&backend)).await;
                }
            )*
        }
        #[cfg(feature = "etcd")]
        mod etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::bounded(async {
                        let backend = super::Backend::etcd().await;
                        super::$case(&backend).await;
                    })
                    .await;
                }
            )*
        }
    };
}

conformance!(
    create_get_update_delete,
    stale_revisions_conflict,
    revisions_strictly_increase,
    list_is_a_plain_string_prefix,
    values_are_opaque_bytes,
    empty_key_is_rejected,
    concurrent_cas_has_one_winner_per_round,
    concurrent_increments_lose_no_update,
    watch_delivers_changes_in_revision_order,
    watch_from_old_revision_replays_history,
    watch_only_sees_its_prefix,
    watch_after_compaction_relists,
    large_listings_and_replays_are_complete,
);

fn put(key: &str, value: &[u8], create_revision: i64, mod_revision: i64) -> WatchEvent {
    WatchEvent::Put(KeyValue {
        key: key.into(),
        value: value.into(),
        create_revision,
        mod_revision,
    })
}

fn delete(key: &str, revision: i64) -> WatchEvent {
    WatchEvent::Delete {
        key: key.into(),
        revision,
    }
}

async fn create_get_update_delete(b: &Backend) {
    let s = &b.store;
    assert_eq!(s.get("/c/k").await.unwrap(), None);

    let r1 = s.create("/c/k", b"one").await.unwrap();
    assert!(r1 > 0);
    let kv = s.get("/c/k").await.unwrap().unwrap();
    assert_eq!(
        kv,
        KeyValue {
            key: "/c/k".into(),
            value: b"one".to_vec(),
            create_revision: r1,
            mod_revision: r1
        }
    );
    assert_eq!(
        s.create("/c/k", b"again").await,
        Err(StoreError::AlreadyExists("/c/k".into()))
    );

    let r2 = s.update("/c/k", b"two", r1).await.unwrap();
    assert!(r2 > r1);
    let kv = s.get("/c/k").await.unwrap().unwrap();
    assert_eq!(
        (kv.value.as_slice(), kv.create_revision, kv.mod_revision),
        (&b"two"[..], r1, r2)
    );

    let r3 = s.delete("/c/k", Some(r2)).await.unwrap();
    assert!(r3 > r2);
    assert_eq!(s.get("/c/k").await.unwrap(), None);
    assert_eq!(
        s.update("/c/k", b"x", r2).await,
        Err(StoreError::NotFound("/c/k".into()))
    );
    assert_eq!(
        s.update("/c/k", b"x", 0).await,
        Err(StoreError::NotFound("/c/k".into()))
    );
    assert_eq!(
        s.delete("/c/k", None).await,
        Err(StoreError::NotFound("/c/k".into()))
    );
    assert_eq!(
        s.delete("/c/k", Some(r2)).await,
        Err(StoreError::NotFound("/c/k".into()))
    );

    let r4 = s.create("/c/k", b"reborn").await.unwrap();
    let kv = s.get("/c/k").await.unwrap().unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision), (r4, r4));
    let r5 = s.delete("/c/k", None).await.unwrap();
    assert!(r5 > r4);
}

async fn stale_revisions_conflict(b: &Backend) {
    let s = &b.store;
    let r1 = s.create("/s/k", b"v1").await.unwrap();
    let r2 = s.update("/s/k", b"v2", r1).await.unwrap();
    assert_eq!(
        s.update("/s/k", b"v3", r1).await,
        Err(StoreError::Conflict("/s/k".into()))
    );
    assert_eq!(
        s.update("/s/k", b"v3", r2 + 100).await,
        Err(StoreError::Conflict("/s/k".into()))
    );
    assert_eq!(
        s.delete("/s/k", Some(r1)).await,
        Err(StoreError::Conflict("/s/k".into()))
    );
    let kv = s.get("/s/k").await.unwrap().unwrap();
    assert_eq!((kv.value.as_slice(), kv.mod_revision), (&b"v2"[..], r2));
    s.delete("/s/k", Some(r2)).await.unwrap();
    assert_eq!(s.get("/s/k").await.unwrap(), None);
}

async fn revisions_strictly_increase(b: &Backend) {
    let s = &b.store;
    let start = s.list("/r/").await.unwrap().revision;
    let mut last = start;
    for i in 0..5 {
        let key = format!("/r/{i}");
        let created = s.create(&key, b"a").await.unwrap();
        let updated = s.update(&key, b"b", created).await.unwrap();
        assert!(
            created > last && updated > created,
            "{last} {created} {updated}"
        );
        last = updated;
        assert_eq!(s.get(&key).await.unwrap().unwrap().mod_revision, updated);
    }
    assert_eq!(s.list("/r/").await.unwrap().revision, last);
    // Failed writes do not move the revision.
    assert!(s.create("/r/0", b"x").await.is_err());
    assert!(s.update("/r/0", b"x", start).await.is_err());
    assert!(s.delete("/r/missing", None).await.is_err());
    assert_eq!(s.list("/").await.unwrap().revision, last);
    let deleted = s.delete("/r/0", None).await.unwrap();
    assert!(deleted > last);
    assert_eq!(s.list("/nothing/").await.unwrap().revision, deleted);
}

async fn list_is_a_plain_string_prefix(b: &Backend) {
    let s = &b.store;
    let keys = ["/a/c", "/a/bc", "/a/b/c", "/b", "/a/b", "/a"];
    let mut last = 0;
    for key in keys {
        last = s.create(key, key.as_bytes()).await.unwrap();
    }
    let listed = |prefix: &'static str| async move {
        let listing = s.list(prefix).await.unwrap();
        assert_eq!(listing.revision, last);
        for item in &listing.items {
            assert_eq!(item.value, item.key.as_bytes());
            assert_eq!(item.create_revision, item.mod_revision);
        }
        listing
            .items
            .into_iter()
            .map(|kv| kv.key)
            .collect::<Vec<_>>()
    };
    assert_eq!(listed("/a/b").await, ["/a/b", "/a/b/c", "/a/bc"]);
    assert_eq!(listed("/a/b/").await, ["/a/b/c"]);
    assert_eq!(listed("/a/").await, ["/a/b", "/a/b/c", "/a/bc", "/a/c"]);
    assert_eq!(
        listed("").await,
        ["/a", "/a/b", "/a/b/c", "/a/bc", "/a/c", "/b"]
    );
    assert_eq!(
        listed("/").await,
        ["/a", "/a/b", "/a/b/c", "/a/bc", "/a/c", "/b"]
    );
    assert!(listed("/zzz").await.is_empty());
}

async fn values_are_opaque_bytes(b: &Backend) {
    let s = &b.store;
    let binary = [0u8, 0xFF, 0xFE, b'{', 0x80];
    let listing = s.list("/v/").await.unwrap();
    let mut watch = s.watch("/v/", listing.revision).await.unwrap();
    let r1 = s.create("/v/binary", &binary).await.unwrap();
    let r2 = s.create("/v/empty", b"").await.unwrap();
    assert_eq!(s.get("/v/binary").await.unwrap().unwrap().value, binary);
    assert_eq!(s.get("/v/empty").await.unwrap().unwrap().value, b"");
    let values: Vec<_> = s
        .list("/v/")
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|kv| kv.value)
        .collect();
    assert_eq!(values, [binary.to_vec(), Vec::new()]);
    assert_eq!(
        next_event(&mut watch).await,
        put("/v/binary", &binary, r1, r1)
    );
    assert_eq!(next_event(&mut watch).await, put("/v/empty", b"", r2, r2));
}

async fn empty_key_is_rejected(b: &Backend) {
    let s = &b.store;
    assert!(matches!(
        s.create("", b"v").await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        s.get("").await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        s.update("", b"v", 1).await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        s.delete("", None).await,
        Err(StoreError::InvalidArgument(_))
    ));
}

async fn concurrent_cas_has_one_winner_per_round(b: &Backend) {
    const TASKS: usize = 8;
    let s = &b.store;
    s.create("/cas/k", b"start").await.unwrap();
    for round in 0..5 {
        let current = s.get("/cas/k").await.unwrap().unwrap();
        let barrier = Arc::new(Barrier::new(TASKS));
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let (store, barrier) = (s.clone(), barrier.clone());
                let value = format!("{round}-{task}");
                let expected = current.mod_revision;
                tokio::spawn(async move {
                    barrier.wait().await;
                    (
                        value.clone(),
                        store.update("/cas/k", value.as_bytes(), expected).await,
                    )
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (value, Ok(revision)) => winners.push((value, revision)),
                (_, Err(StoreError::Conflict(key))) => assert_eq!(key, "/cas/k"),
                (_, Err(e)) => panic!("unexpected error {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let after = s.get("/cas/k").await.unwrap().unwrap();
        assert_eq!(
            (after.value, after.mod_revision),
            (winners[0].0.clone().into_bytes(), winners[0].1)
        );
    }
}

async fn concurrent_increments_lose_no_update(b: &Backend) {
    const TASKS: u64 = 4;
    const INCREMENTS: u64 = 10;
    let s = &b.store;
    s.create("/inc/n", b"0").await.unwrap();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let store = s.clone();
            tokio::spawn(async move {
                let mut conflicts = 0;
                for _ in 0..INCREMENTS {
                    loop {
                        let kv = store.get("/inc/n").await.unwrap().unwrap();
                        let n: u64 = String::from_utf8(kv.value).unwrap().parse().unwrap();
                        match store
                            .update("/inc/n", (n + 1).to_string().as_bytes(), kv.mod_revision)
                            .await
                        {
                            Ok(_) => break,
                            Err(StoreError::Conflict(_)) => conflicts += 1,
                            Err(e) => panic!("unexpected error {e}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let kv = s.get("/inc/n").await.unwrap().unwrap();
    assert_eq!(kv.value, (TASKS * INCREMENTS).to_string().into_bytes());
}

async fn watch_delivers_changes_in_revision_order(b: &Backend) {
    let s = &b.store;
    let listing = s.list("/w/").await.unwrap();
    let mut watch = s.watch("/w/", listing.revision).await.unwrap();
    let mut second = s.watch("/w/", listing.revision).await.unwrap();
    let r1 = s.create("/w/a", b"1").await.unwrap();
    let r2 = s.update("/w/a", b"2", r1).await.unwrap();
    let r3 = s.create("/w/b", b"3").await.unwrap();
    let r4 = s.delete("/w/a", Some(r2)).await.unwrap();
    let r5 = s.create("/w/a", b"5").await.unwrap();
    let expected = [
        put("/w/a", b"1", r1, r1),
        put("/w/a", b"2", r1, r2),
        put("/w/b", b"3", r3, r3),
        delete("/w/a", r4),
        put("/w/a", b"5", r5, r5),
    ];
    for event in &expected {
        assert_eq!(&next_event(&mut watch).await, event);
    }
    for event in &expected {
        assert_eq!(&next_event(&mut second).await, event);
    }
}

async fn watch_from_old_revision_replays_history(b: &Backend) {
    let s = &b.store;
    let before = s.list("/h/").await.unwrap().revision;
    let r1 = s.create("/h/a", b"1").await.unwrap();
    let r2 = s.create("/h/b", b"2").await.unwrap();
    let r3 = s.update("/h/a", b"3", r1).await.unwrap();
    let r4 = s.delete("/h/b", None).await.unwrap();

    let mut watch = s.watch("/h/", before).await.unwrap();
    assert_eq!(next_event(&mut watch).await, put("/h/a", b"1", r1, r1));
    assert_eq!(next_event(&mut watch).await, put("/h/b", b"2", r2, r2));
    assert_eq!(next_event(&mut watch).await, put("/h/a", b"3", r1, r3));
    assert_eq!(next_event(&mut watch).await, delete("/h/b", r4));

    let mut watch = s.watch("/h/", r2).await.unwrap();
    assert_eq!(next_event(&mut watch).await, put("/h/a", b"3", r1, r3));
    assert_eq!(next_event(&mut watch).await, delete("/h/b", r4));
    // Then live changes follow the replay.
    let r5 = s.create("/h/c", b"5").await.unwrap();
    assert_eq!(next_event(&mut watch).await, put("/h/c", b"5", r5, r5));
}

async fn watch_only_sees_its_prefix(b: &Backend) {
    let s = &b.store;
    let start = s.list("/p/").await.unwrap().revision;
    let mut watch = s.watch("/p/a/", start).await.unwrap();
    s.create("/p/b/x", b"").await.unwrap();
    s.create("/p/ab", b"").await.unwrap();
    s.create("/p/a", b"").await.unwrap();
    let inside = s.create("/p/a/x", b"in").await.unwrap();
    s.create("/q/a/x", b"").await.unwrap();
    let sentinel = s.create("/p/a/zz", b"end").await.unwrap();
    assert_eq!(
        next_event(&mut watch).await,
        put("/p/a/x", b"in", inside, inside)
    );
    assert_eq!(
        next_event(&mut watch).await,
        put("/p/a/zz", b"end", sentinel, sentinel)
    );
}

async fn watch_after_compaction_relists(b: &Backend) {
    let s = &b.store;
    let before = s.list("/k/").await.unwrap().revision;
    let mut revisions = Vec::new();
    for i in 0..5 {
        revisions.push(s.create(&format!("/k/{i}"), b"v").await.unwrap());
    }
    let compact_at = revisions[3];
    b.compact(compact_at).await;

    let mut watch = s.watch("/k/", before).await.unwrap();
    assert_eq!(next_event(&mut watch).await, WatchEvent::Relist);
    let end = tokio::time::timeout(common::EVENT_TIMEOUT, watch.next()).await;
    assert_eq!(end.expect("the watch ends after Relist"), None);

    let mut watch = s.watch("/k/", revisions[1]).await.unwrap();
    assert_eq!(next_event(&mut watch).await, WatchEvent::Relist);

    // History from the compaction revision on is still there.
    let mut watch = s.watch("/k/", compact_at - 1).await.unwrap();
    assert_eq!(
        next_event(&mut watch).await,
        put("/k/3", b"v", compact_at, compact_at)
    );
    assert_eq!(
        next_event(&mut watch).await,
        put("/k/4", b"v", revisions[4], revisions[4])
    );

    // A fresh listing gives a revision that can be watched again.
    let listing = s.list("/k/").await.unwrap();
    assert_eq!(listing.items.len(), 5);
    let mut watch = s.watch("/k/", listing.revision).await.unwrap();
    let r = s.create("/k/5", b"v").await.unwrap();
    assert_eq!(next_event(&mut watch).await, put("/k/5", b"v", r, r));
}

/// More keys than one list page (etcd) and one watch batch (SQLite) hold.
async fn large_listings_and_replays_are_complete(b: &Backend) {
    const KEYS: usize = 1100;
    const WRITERS: usize = 4;
    let s = &b.store;
    let before = s.list("/big/").await.unwrap().revision;
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store = s.clone();
            tokio::spawn(async move {
                for i in (writer..KEYS).step_by(WRITERS) {
                    store.create(&format!("/big/{i:05}"), b"v").await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    s.create("/big0/outside", b"v").await.unwrap();

    let listing = s.list("/big/").await.unwrap();
    let keys: Vec<String> = listing.items.iter().map(|kv| kv.key.clone()).collect();
    let expected: Vec<String> = (0..KEYS).map(|i| format!("/big/{i:05}")).collect();
    assert_eq!(keys, expected);

    let mut watch = s.watch("/big/", before).await.unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let mut last = before;
    for _ in 0..KEYS {
        match next_event(&mut watch).await {
            WatchEvent::Put(kv) => {
                assert!(kv.mod_revision > last, "{} after {last}", kv.mod_revision);
                last = kv.mod_revision;
                seen.insert(kv.key);
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert_eq!(seen.len(), KEYS);
}

#[cfg(feature = "etcd")]
mod etcd_only {
    use std::time::Duration;

    use calico_store::{
        Datastore, DatastoreConfig, EtcdConfig, EtcdCredentials, EtcdStore, StoreError, WatchEvent,
    };

    use crate::common::{bounded, next_event};
    use calico_testkit::etcd::{EtcdServer, AUTH_USER};

    const PASSWORD: &str = "pa55-word";
    /// etcd's simple-token lifetime in the auth tests; waiting three times as long lets it expire.
    const TOKEN_TTL: Duration = Duration::from_secs(1);

    async fn auth_server() -> EtcdServer {
        tokio::task::spawn_blocking(|| EtcdServer::start_with_auth(PASSWORD, TOKEN_TTL))
            .await
            .unwrap()
    }

    fn with_user(server: &EtcdServer, username: &str, password: &str) -> EtcdConfig {
        EtcdConfig {
            endpoints: vec![server.endpoint.clone()],
            credentials: Some(EtcdCredentials {
                username: username.into(),
                password: password.into(),
            }),
            ..EtcdConfig::default()
        }
    }

    fn access_denied(result: Result<EtcdStore, StoreError>) -> String {
        match result {
            Err(StoreError::AccessDenied(message)) => message,
            other => panic!("expected AccessDenied, got {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn user_and_password_authenticate_and_expired_tokens_are_renewed() {
        bounded(async {
            let server = auth_server().await;
            let store = EtcdStore::connect(&with_user(&server, AUTH_USER, PASSWORD))
                .await
                .unwrap();
            let first = store.create("/auth/a", b"1").await.unwrap();
            assert_eq!(store.list("/auth/").await.unwrap().items.len(), 1);

            // Unused for longer than its lifetime, the token expires: a watch opened now is
            // refused by etcd until the token is renewed.
            tokio::time::sleep(TOKEN_TTL * 3).await;
            let mut watch = store.watch("/auth/", first).await.unwrap();
            // The same for a plain request.
            tokio::time::sleep(TOKEN_TTL * 3).await;
            let second = store.create("/auth/b", b"2").await.unwrap();
            match next_event(&mut watch).await {
                WatchEvent::Put(kv) => {
                    assert_eq!((kv.key.as_str(), kv.mod_revision), ("/auth/b", second))
                }
                other => panic!("unexpected event {other:?}"),
            }
            assert_eq!(
                store.get("/auth/a").await.unwrap().unwrap().mod_revision,
                first
            );
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wrong_or_missing_credentials_are_named_and_the_password_is_not() {
        bounded(async {
            let server = auth_server().await;
            let message = access_denied(
                EtcdStore::connect(&with_user(&server, AUTH_USER, "not-the-password")).await,
            );
            assert!(message.contains(&server.endpoint), "{message}");
            assert!(message.contains("user \"root\""), "{message}");
            assert!(message.contains("wrong password"), "{message}");
            assert!(!message.contains("not-the-password"), "{message}");

            let message =
                access_denied(EtcdStore::connect(&with_user(&server, "nobody", PASSWORD)).await);
            assert!(message.contains("user \"nobody\""), "{message}");

            let anonymous = EtcdConfig {
                endpoints: vec![server.endpoint.clone()],
                ..EtcdConfig::default()
            };
            let message = access_denied(EtcdStore::connect(&anonymous).await);
            assert!(message.contains(&server.endpoint), "{message}");
            assert!(message.contains("no user is configured"), "{message}");
            assert!(message.contains("ETCD_USERNAME"), "{message}");
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn credentials_for_a_cluster_without_authentication_are_not_needed() {
        bounded(async {
            let server = tokio::task::spawn_blocking(EtcdServer::start)
                .await
                .unwrap();
            let store = EtcdStore::connect(&with_user(&server, "calico", PASSWORD))
                .await
                .unwrap();
            let revision = store.create("/noauth/k", b"v").await.unwrap();
            assert_eq!(
                store.get("/noauth/k").await.unwrap().unwrap().mod_revision,
                revision
            );
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tls_with_client_certificates() {
        bounded(async {
            let (server, certs) = tokio::task::spawn_blocking(EtcdServer::start_tls)
                .await
                .unwrap();
            let config = EtcdConfig {
                endpoints: vec![server.endpoint.clone()],
                ca_cert_file: Some(certs.ca.clone()),
                cert_file: Some(certs.client_cert.clone()),
                key_file: Some(certs.client_key.clone()),
                credentials: None,
            };
            let store = DatastoreConfig::Etcd(config.clone())
                .connect()
                .await
                .unwrap();
            let revision = store.create("/tls/k", b"v").await.unwrap();
            assert_eq!(
                store.get("/tls/k").await.unwrap().unwrap().mod_revision,
                revision
            );

            // The server requires a client certificate: without one the connection is refused.
            let anonymous = EtcdConfig {
                cert_file: None,
                key_file: None,
                ..config
            };
            match EtcdStore::connect(&anonymous).await {
                Err(StoreError::Unavailable(message)) => {
                    assert!(message.contains(&server.endpoint), "{message}")
                }
                other => panic!("expected Unavailable, got {other:?}"),
            }
        })
        .await;
    }

    #[tokio::test]
    async fn unreachable_endpoint_is_unavailable_and_named() {
        bounded(async {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let endpoint = format!("http://127.0.0.1:{port}");
            let config = EtcdConfig {
                endpoints: vec![endpoint.clone()],
                ..EtcdConfig::default()
            };
            match EtcdStore::connect(&config).await {
                Err(StoreError::Unavailable(message)) => {
                    assert!(message.contains(&endpoint), "{message}")
                }
                other => panic!("expected Unavailable, got {other:?}"),
            }
        })
        .await;
    }
}
