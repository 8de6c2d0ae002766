//! The SQLite watch is pushed: writers in other connections and other processes notify it over
//! its socket, so it sees their writes long before its fallback poll; writers that do not notify
//! are still seen by that poll.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use calico_store::{Datastore, SqliteStore, WatchEvent};
use common::{bounded, next_event};
use rusqlite::{params, Connection};

/// A fallback poll no test waits for: `next_event` gives up after 10 s, so an event that
/// arrives came by notification.
const NEVER: Duration = Duration::from_secs(3600);
/// Set (to the database path) only in the child process of `another_process_notifies_both_ways`.
const CHILD_ENV: &str = "CALICO_STORE_TEST_WATCH_CHILD_DB";
/// Round trips between the two processes.
const ROUNDS: usize = 20;

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("calico.db")
}

fn put_key(event: WatchEvent) -> (String, i64) {
    match event {
        WatchEvent::Put(kv) => (kv.key, kv.mod_revision),
        other => panic!("unexpected event {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_connection_notifies_a_watch() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let watcher = SqliteStore::open(db(&dir))
            .unwrap()
            .with_watch_fallback(NEVER);
        let writer = SqliteStore::open(db(&dir)).unwrap();
        let start = watcher.list("/n/").await.unwrap().revision;
        let mut watch = watcher.watch("/n/", start).await.unwrap();
        // Each write follows the delivery of the one before, so it lands while the watch waits:
        // only a notification (or the hour-long fallback) can deliver it.
        for i in 0..ROUNDS {
            let key = format!("/n/{i}");
            let revision = writer.create(&key, b"v").await.unwrap();
            assert_eq!(put_key(next_event(&mut watch).await), (key, revision));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_notifies_both_ways() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let store = SqliteStore::open(&path).unwrap().with_watch_fallback(NEVER);
        let start = store.list("/").await.unwrap().revision;
        let mut requests = store.watch("/req/", start).await.unwrap();
        let child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_process_pings", "--ignored", "--nocapture"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        // The child writes a request, waits for its answer, and only then writes the next one.
        for i in 0..ROUNDS {
            let (key, _) = put_key(next_event(&mut requests).await);
            assert_eq!(key, format!("/req/{i}"));
            store.create(&format!("/ack/{i}"), b"a").await.unwrap();
        }
        let output = child.wait_with_output().await.unwrap();
        assert!(
            output.status.success(),
            "child failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // The child process really ran its half (and did not merely find no test to run).
        assert!(String::from_utf8_lossy(&output.stdout).contains("1 passed"));
    })
    .await;
}

/// The child half of `another_process_notifies_both_ways`, started by it in a separate process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by another_process_notifies_both_ways"]
async fn child_process_pings() {
    let path = std::env::var(CHILD_ENV).expect("only run by another_process_notifies_both_ways");
    bounded(async {
        let store = SqliteStore::open(&path).unwrap().with_watch_fallback(NEVER);
        let start = store.list("/").await.unwrap().revision;
        let mut answers = store.watch("/ack/", start).await.unwrap();
        for i in 0..ROUNDS {
            store.create(&format!("/req/{i}"), b"r").await.unwrap();
            let (key, _) = put_key(next_event(&mut answers).await);
            assert_eq!(key, format!("/ack/{i}"));
        }
    })
    .await;
}

/// Writes `key` the way the store does, from a connection that notifies nobody.
fn write_by_hand(path: &Path, key: &str) -> i64 {
    let mut conn = Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let tx = conn.transaction().unwrap();
    let rev: i64 = tx
        .query_row(
            "UPDATE meta SET revision = revision + 1 WHERE id = 1 RETURNING revision",
            [],
            |row| row.get(0),
        )
        .unwrap();
    tx.execute(
        "INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?1, x'76', ?2, ?2)",
        params![key, rev],
    )
    .unwrap();
    tx.execute(
        "INSERT INTO events (rev, key, kind, value, create_rev) VALUES (?1, ?2, 'put', x'76', ?1)",
        params![rev, key],
    )
    .unwrap();
    tx.commit().unwrap();
    rev
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_nobody_notified_are_found_by_the_fallback_poll() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let watcher = SqliteStore::open(&path)
            .unwrap()
            .with_watch_fallback(Duration::from_millis(50));
        let start = watcher.list("/").await.unwrap().revision;
        let mut watch = watcher.watch("/hand/", start).await.unwrap();
        for i in 0..3 {
            let key = format!("/hand/{i}");
            let revision = tokio::task::spawn_blocking({
                let (path, key) = (path.clone(), key.clone());
                move || write_by_hand(&path, &key)
            })
            .await
            .unwrap();
            assert_eq!(put_key(next_event(&mut watch).await), (key, revision));
        }
    })
    .await;
}

#[tokio::test]
async fn writers_remove_sockets_left_by_dead_watchers() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db(&dir)).unwrap();
    let sockets = dir.path().join("calico.db-watch");
    std::fs::create_dir_all(&sockets).unwrap();
    let stale = sockets.join("dead-watcher");
    drop(UnixDatagram::bind(&stale).unwrap());
    let unrelated = sockets.join("not-a-socket");
    std::fs::write(&unrelated, b"").unwrap();

    store.create("/k", b"v").await.unwrap();
    assert!(!stale.exists(), "the stale socket is still there");
    assert!(
        unrelated.exists(),
        "a file that is not a socket was removed"
    );
}
