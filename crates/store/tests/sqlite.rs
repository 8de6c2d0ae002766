//! SQLite-only behaviour: several processes on one file, bounded history, unreadable data.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use calico_store::{Datastore, SqliteStore, StoreError, WatchEvent};
use common::{bounded, next_event};
use rusqlite::Connection;

/// Set (to the database path) only in the child process of `two_processes_share_one_file`.
const CHILD_ENV: &str = "CALICO_STORE_TEST_CHILD_DB";
/// Keys each process writes in the two-process test.
const WRITES: usize = 50;

fn db(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("calico.db")
}

fn raw(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_file() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        store.create("/two/parent/hello", b"hi").await.unwrap();
        let start = store.list("/two/").await.unwrap().revision;
        let mut watch = store.watch("/two/child/", start).await.unwrap();

        let child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_process_half", "--ignored", "--nocapture"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();

        // Both processes write at the same time; each sees all of the other's writes, in order.
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..WRITES {
                    store
                        .create(&format!("/two/parent/{i}"), b"p")
                        .await
                        .unwrap();
                }
            })
        };
        let mut last = start;
        for i in 0..WRITES {
            match next_event(&mut watch).await {
                WatchEvent::Put(kv) => {
                    assert_eq!(kv.key, format!("/two/child/{i}"));
                    assert!(kv.mod_revision > last, "{} after {last}", kv.mod_revision);
                    last = kv.mod_revision;
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
        writer.await.unwrap();

        let output = child.wait_with_output().await.unwrap();
        assert!(
            output.status.success(),
            "child failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // The child process really ran its half (and did not merely find no test to run).
        assert!(String::from_utf8_lossy(&output.stdout).contains("1 passed"));
        let listing = store.list("/two/").await.unwrap();
        assert_eq!(listing.items.len(), 1 + 2 * WRITES);
    })
    .await;
}

/// The child half of `two_processes_share_one_file`, started by it in a separate process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by two_processes_share_one_file"]
async fn child_process_half() {
    let path = std::env::var(CHILD_ENV).expect("only run by two_processes_share_one_file");
    bounded(async {
        let store = SqliteStore::open(&path).unwrap();
        let hello = store
            .get("/two/parent/hello")
            .await
            .unwrap()
            .expect("the child sees the parent's write");
        let mut watch = store
            .watch("/two/parent/", hello.mod_revision)
            .await
            .unwrap();
        for i in 0..WRITES {
            store
                .create(&format!("/two/child/{i}"), b"c")
                .await
                .unwrap();
        }
        for i in 0..WRITES {
            match next_event(&mut watch).await {
                WatchEvent::Put(kv) => assert_eq!(kv.key, format!("/two/parent/{i}")),
                other => panic!("unexpected event {other:?}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn watch_sees_writes_through_another_handle() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let watcher = SqliteStore::open(db(&dir)).unwrap();
        let writer = SqliteStore::open(db(&dir)).unwrap();
        let start = watcher.list("/").await.unwrap().revision;
        let mut watch = watcher.watch("/", start).await.unwrap();
        let revision = writer.create("/x", b"1").await.unwrap();
        match next_event(&mut watch).await {
            WatchEvent::Put(kv) => assert_eq!((kv.key.as_str(), kv.mod_revision), ("/x", revision)),
            other => panic!("unexpected event {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn reopening_keeps_data_and_revision() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let store = SqliteStore::open(db(&dir)).unwrap();
        store.create("/k", b"v").await.unwrap()
    };
    let store = SqliteStore::open(db(&dir)).unwrap();
    assert_eq!(store.get("/k").await.unwrap().unwrap().mod_revision, first);
    assert_eq!(store.list("/").await.unwrap().revision, first);
    assert!(store.create("/k2", b"v").await.unwrap() > first);
}

#[tokio::test]
async fn history_is_bounded_and_old_watches_relist() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_with_history(db(&dir), 3).unwrap();
        let mut revisions = Vec::new();
        for i in 0..6 {
            revisions.push(store.create(&format!("/h/{i}"), b"v").await.unwrap());
        }
        let events: i64 = raw(&db(&dir))
            .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
            .unwrap();
        assert_eq!(events, 3);

        let mut watch = store.watch("/h/", revisions[1]).await.unwrap();
        assert_eq!(next_event(&mut watch).await, WatchEvent::Relist);
        let mut watch = store.watch("/h/", revisions[2]).await.unwrap();
        for &revision in &revisions[3..] {
            match next_event(&mut watch).await {
                WatchEvent::Put(kv) => assert_eq!(kv.mod_revision, revision),
                other => panic!("unexpected event {other:?}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn compacting_to_a_future_revision_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db(&dir)).unwrap();
    let revision = store.create("/k", b"v").await.unwrap();
    assert!(matches!(
        store.compact(revision + 1).await,
        Err(StoreError::InvalidArgument(_))
    ));
    store.compact(revision).await.unwrap();
}

fn assert_corrupt<T: std::fmt::Debug>(result: Result<T, StoreError>, path: &Path) {
    match result {
        Err(StoreError::Corrupt(message)) => {
            assert!(message.contains(&path.display().to_string()), "{message}")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn unreadable_rows_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = SqliteStore::open(&path).unwrap();
    store.create("/bad/revision", b"v").await.unwrap();
    store.create("/bad/value", b"v").await.unwrap();
    store.create("/ok/text", b"v").await.unwrap();
    let conn = raw(&path);
    conn.execute_batch(
        "UPDATE kv SET mod_rev = 'not a number' WHERE key = '/bad/revision';
         UPDATE kv SET value = 42 WHERE key = '/bad/value';
         UPDATE kv SET value = '{\"typed\":\"by hand\"}' WHERE key = '/ok/text';",
    )
    .unwrap();

    assert_corrupt(store.get("/bad/revision").await, &path);
    assert_corrupt(store.get("/bad/value").await, &path);
    assert_corrupt(store.list("/bad/").await, &path);
    // A value typed as TEXT with the sqlite3 shell is still read as its bytes.
    let kv = store.get("/ok/text").await.unwrap().unwrap();
    assert_eq!(kv.value, br#"{"typed":"by hand"}"#);
    assert_eq!(store.list("/ok/").await.unwrap().items, vec![kv]);

    conn.execute("DELETE FROM meta", []).unwrap();
    assert_corrupt(store.create("/new", b"v").await, &path);
    assert_corrupt(store.list("/ok/").await, &path);
}

#[tokio::test]
async fn unreadable_history_makes_watchers_relist() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let store = SqliteStore::open(&path).unwrap();
        let first = store.create("/e/a", b"v").await.unwrap();
        let second = store.create("/e/b", b"v").await.unwrap();
        raw(&path)
            .execute("UPDATE events SET kind = 'bogus' WHERE rev = ?1", [second])
            .unwrap();
        let mut watch = store.watch("/e/", first - 1).await.unwrap();
        assert_eq!(next_event(&mut watch).await, WatchEvent::Relist);
        let end = tokio::time::timeout(common::EVENT_TIMEOUT, watch.next()).await;
        assert_eq!(end.expect("the watch ends after Relist"), None);
    })
    .await;
}

#[test]
fn newer_schema_and_foreign_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    drop(SqliteStore::open(&path).unwrap());
    raw(&path).pragma_update(None, "user_version", 99).unwrap();
    match SqliteStore::open(&path) {
        Err(StoreError::Corrupt(message)) => {
            assert!(message.contains("schema version 99"), "{message}")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5A; 8192]).unwrap();
    assert_corrupt(SqliteStore::open(&garbage), &garbage);
}

#[test]
fn open_creates_parent_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("var/lib/calico/calico.db");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.path(), path);
    assert!(path.is_file());
}
