//! SQLite backend: one WAL-mode file that several processes on a host read, write and watch.
//!
//! A watch learns of writes without polling the file: every writer notifies every watch of the
//! database over a unix datagram socket right after it commits ([`notify`]), and writes through
//! the same [`SqliteStore`] wake its watches directly. Each watch still checks
//! `PRAGMA data_version` every [`DEFAULT_WATCH_FALLBACK`] (or every 10 ms if it could not bind
//! its socket), so a writer that does not notify (the `sqlite3` shell) or a lost notification
//! only delays a change, never loses it.

mod notify;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::{Type, ValueRef};
use rusqlite::{
    params, Connection, ErrorCode, OptionalExtension, Row, Transaction, TransactionBehavior,
};
use tokio::sync::{mpsc, watch};

use crate::{check_key, Datastore, KeyValue, Listing, Result, StoreError, Watch, WatchEvent};
use notify::{Listener, Notifier};

/// Where calico-node and calicoctl keep the database unless configured otherwise.
pub const DEFAULT_SQLITE_PATH: &str = "/var/lib/calico/calico.db";
/// How many revisions of watch history are kept before older events are compacted.
pub const DEFAULT_HISTORY: i64 = 10_000;
/// How often a notified watch checks the file anyway, for writes nobody notified it of.
pub const DEFAULT_WATCH_FALLBACK: Duration = Duration::from_secs(1);

/// How long a statement waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a watch without a notification socket checks the file for other connections' writes.
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// How long a watch waits after a failed poll before trying again.
const ERROR_RETRY: Duration = Duration::from_millis(500);
/// Events read per watch poll.
const EVENT_BATCH: i64 = 512;
/// Schema version recorded in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL,
    compact_revision INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (id, revision, compact_revision) VALUES (1, 1, 0);
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL,
    create_rev INTEGER NOT NULL,
    mod_rev INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    rev INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    value BLOB,
    create_rev INTEGER
);
";

/// The SQLite datastore; cheap to share, every call runs on tokio's blocking pool.
pub struct SqliteStore {
    inner: Arc<Inner>,
    /// How often this store's watches poll the file when no notification came.
    watch_fallback: Duration,
}

struct Inner {
    path: PathBuf,
    conn: Mutex<Connection>,
    history: i64,
    /// Bumped after every commit through this instance, so its watches wake at once.
    changes: watch::Sender<u64>,
    /// Wakes the watches of other connections and processes after every commit; `None` if the
    /// socket could not be created (they then find the change by polling).
    notifier: Option<Notifier>,
}

/// The one `meta` row.
#[derive(Clone, Copy)]
struct Meta {
    revision: i64,
    compact_revision: i64,
}

/// A key's revisions as stored in `kv`.
struct Revisions {
    create: i64,
    modified: i64,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("history", &self.inner.history)
            .field("watch_fallback", &self.watch_fallback)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating file, parent directories and schema if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_history(path, DEFAULT_HISTORY)
    }

    /// Like [`SqliteStore::open`], keeping `history` revisions of watch history instead of the default.
    pub fn open_with_history(path: impl AsRef<Path>, history: i64) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if history < 1 {
            return Err(StoreError::InvalidArgument(format!(
                "sqlite {}: history must be at least 1 revision, got {history}",
                path.display()
            )));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Unavailable(format!(
                    "sqlite {}: cannot create directory {}: {e}",
                    path.display(),
                    parent.display()
                ))
            })?;
        }
        let mut conn = connect(&path)?;
        init_schema(&mut conn, &path)?;
        let notifier = Notifier::new(&path)
            .inspect_err(|e| {
                tracing::warn!(path = %path.display(), error = %e, "cannot create the sqlite watch notification socket; other processes' watches will see this one's writes by polling");
            })
            .ok();
        tracing::debug!(path = %path.display(), "opened sqlite datastore");
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                conn: Mutex::new(conn),
                history,
                changes: watch::Sender::new(0),
                notifier,
            }),
            watch_fallback: DEFAULT_WATCH_FALLBACK,
        })
    }

    /// Makes this store's watches poll the file every `interval` when not notified, instead of
    /// every [`DEFAULT_WATCH_FALLBACK`] (a long interval shows in tests that notification works).
    pub fn with_watch_fallback(mut self, interval: Duration) -> Self {
        self.watch_fallback = interval;
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Discards watch history before `revision` (as etcd's compact); older watches get `Relist`.
    pub async fn compact(&self, revision: i64) -> Result<()> {
        self.run(move |inner, conn| {
            let tx = begin_write(conn, &inner.path)?;
            let meta = read_meta(&tx, &inner.path)?;
            if revision > meta.revision {
                return Err(StoreError::InvalidArgument(format!(
                    "sqlite {}: cannot compact to revision {revision}, the store is at {}",
                    inner.path.display(),
                    meta.revision
                )));
            }
            if revision > meta.compact_revision {
                compact_events(&tx, revision).map_err(|e| sql_err(&inner.path, "compact", e))?;
                commit(tx, &inner.path)?;
            }
            Ok(())
        })
        .await
    }

    /// Runs `op` with the shared connection on the blocking pool.
    async fn run<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &mut Connection) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.conn.lock().unwrap_or_else(PoisonError::into_inner);
            op(&inner, &mut conn)
        })
        .await
        .map_err(|e| {
            StoreError::Unavailable(format!(
                "sqlite {}: worker task failed: {e}",
                self.inner.path.display()
            ))
        })?
    }
}

impl Inner {
    /// Appends the event for a change at `meta.revision + 1`, bumps the revision, compacts and commits.
    fn commit_change(
        &self,
        tx: Transaction<'_>,
        meta: Meta,
        key: &str,
        put: Option<(&[u8], i64)>,
    ) -> Result<i64> {
        let rev = meta.revision + 1;
        let (kind, value, create_rev) = match put {
            Some((value, create_rev)) => ("put", Some(value), Some(create_rev)),
            None => ("delete", None, None),
        };
        let record = || -> rusqlite::Result<()> {
            tx.execute("UPDATE meta SET revision = ?1 WHERE id = 1", [rev])?;
            tx.execute(
                "INSERT INTO events (rev, key, kind, value, create_rev) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![rev, key, kind, value, create_rev],
            )?;
            let keep_from = rev - self.history + 1;
            if keep_from > meta.compact_revision {
                compact_events(&tx, keep_from)?;
            }
            Ok(())
        };
        record().map_err(|e| sql_err(&self.path, &format!("write {key}"), e))?;
        commit(tx, &self.path)?;
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        if let Some(notifier) = &self.notifier {
            notifier.notify();
        }
        Ok(rev)
    }
}

#[async_trait]
impl Datastore for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        check_key(key)?;
        let key = key.to_owned();
        self.run(move |inner, conn| {
            conn.query_row(
                "SELECT value, create_rev, mod_rev FROM kv WHERE key = ?1",
                [&key],
                |row| {
                    Ok(KeyValue {
                        key: key.clone(),
                        value: bytes(row, 0)?,
                        create_revision: row.get(1)?,
                        mod_revision: row.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| sql_err(&inner.path, &format!("get {key}"), e))
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Listing> {
        let prefix = prefix.to_owned();
        self.run(move |inner, conn| {
            let what = format!("list {prefix}");
            let tx = conn
                .transaction()
                .map_err(|e| sql_err(&inner.path, &what, e))?;
            let meta = read_meta(&tx, &inner.path)?;
            let range = KeyRange::new(&prefix);
            let items = (|| {
                let mut stmt = tx.prepare(&format!(
                    "SELECT key, value, create_rev, mod_rev FROM kv WHERE {} ORDER BY key",
                    range.condition("key", 1)
                ))?;
                let rows = stmt.query_map(range.params().as_slice(), |row| {
                    Ok(KeyValue {
                        key: row.get(0)?,
                        value: bytes(row, 1)?,
                        create_revision: row.get(2)?,
                        mod_revision: row.get(3)?,
                    })
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })()
            .map_err(|e| sql_err(&inner.path, &what, e))?;
            Ok(Listing {
                items,
                revision: meta.revision,
            })
        })
        .await
    }

    async fn create(&self, key: &str, value: &[u8]) -> Result<i64> {
        check_key(key)?;
        let (key, value) = (key.to_owned(), value.to_vec());
        self.run(move |inner, conn| {
            let tx = begin_write(conn, &inner.path)?;
            let meta = read_meta(&tx, &inner.path)?;
            if revisions(&tx, &inner.path, &key)?.is_some() {
                return Err(StoreError::AlreadyExists(key));
            }
            let rev = meta.revision + 1;
            tx.execute(
                "INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?1, ?2, ?3, ?3)",
                params![key, value, rev],
            )
            .map_err(|e| sql_err(&inner.path, &format!("create {key}"), e))?;
            inner.commit_change(tx, meta, &key, Some((&value, rev)))
        })
        .await
    }

    async fn update(&self, key: &str, value: &[u8], expected_mod_revision: i64) -> Result<i64> {
        check_key(key)?;
        let (key, value) = (key.to_owned(), value.to_vec());
        self.run(move |inner, conn| {
            let tx = begin_write(conn, &inner.path)?;
            let meta = read_meta(&tx, &inner.path)?;
            let Some(current) = revisions(&tx, &inner.path, &key)? else {
                return Err(StoreError::NotFound(key));
            };
            if current.modified != expected_mod_revision {
                return Err(StoreError::Conflict(key));
            }
            tx.execute(
                "UPDATE kv SET value = ?2, mod_rev = ?3 WHERE key = ?1",
                params![key, value, meta.revision + 1],
            )
            .map_err(|e| sql_err(&inner.path, &format!("update {key}"), e))?;
            inner.commit_change(tx, meta, &key, Some((&value, current.create)))
        })
        .await
    }

    async fn delete(&self, key: &str, expected_mod_revision: Option<i64>) -> Result<i64> {
        check_key(key)?;
        let key = key.to_owned();
        self.run(move |inner, conn| {
            let tx = begin_write(conn, &inner.path)?;
            let meta = read_meta(&tx, &inner.path)?;
            let Some(current) = revisions(&tx, &inner.path, &key)? else {
                return Err(StoreError::NotFound(key));
            };
            if expected_mod_revision.is_some_and(|expected| expected != current.modified) {
                return Err(StoreError::Conflict(key));
            }
            tx.execute("DELETE FROM kv WHERE key = ?1", [&key])
                .map_err(|e| sql_err(&inner.path, &format!("delete {key}"), e))?;
            inner.commit_change(tx, meta, &key, None)
        })
        .await
    }

    async fn watch(&self, prefix: &str, after_revision: i64) -> Result<Watch> {
        let path = self.inner.path.clone();
        // The socket is bound before the first poll, so a commit is either notified or seen by it.
        let (conn, socket) = tokio::task::spawn_blocking(move || {
            Ok::<_, StoreError>((connect(&path)?, Listener::bind(&path)))
        })
        .await
        .map_err(|e| {
            StoreError::Unavailable(format!(
                "sqlite {}: watch connection task failed: {e}",
                self.inner.path.display()
            ))
        })??;
        let listener = socket.and_then(Listener::register).inspect_err(|e| {
            tracing::warn!(path = %self.inner.path.display(), error = %e, interval = ?POLL_INTERVAL, "cannot bind the sqlite watch notification socket; polling the file instead");
        }).ok();
        let poller = Poller {
            conn,
            path: self.inner.path.clone(),
            range: KeyRange::new(prefix),
            after: after_revision.max(0),
            data_version: None,
            more: false,
        };
        let wake = Wake {
            changes: self.inner.changes.subscribe(),
            listener,
            fallback: self.watch_fallback,
        };
        Ok(Watch::spawn(move |tx| poller.run(wake, tx)))
    }
}

/// The state of one watch: its own connection and how far it has delivered.
struct Poller {
    conn: Connection,
    path: PathBuf,
    range: KeyRange,
    /// Every event up to this revision has been delivered.
    after: i64,
    /// `PRAGMA data_version` at the last poll; it changes when another connection commits.
    data_version: Option<i64>,
    /// The last poll stopped at `EVENT_BATCH` events; poll again without waiting.
    more: bool,
}

/// What makes a watch poll again, besides the end of its fallback interval.
struct Wake {
    /// Commits through the watch's own `SqliteStore`.
    changes: watch::Receiver<u64>,
    /// Notifications from every writer of the file; `None`: poll every `POLL_INTERVAL` instead.
    listener: Option<Listener>,
    /// How long to wait for a notification before polling anyway.
    fallback: Duration,
}

impl Wake {
    /// How long to wait after a poll that found nothing more to read.
    fn interval(&self) -> Duration {
        match self.listener {
            Some(_) => self.fallback,
            None => POLL_INTERVAL,
        }
    }
}

/// Waits for a notification on `listener`; pending forever without one. A listener that fails
/// is dropped, and the watch polls every `POLL_INTERVAL` from then on.
async fn notified(listener: &mut Option<Listener>) {
    let Some(socket) = listener else {
        return std::future::pending().await;
    };
    if let Err(e) = socket.notified().await {
        tracing::warn!(error = %e, interval = ?POLL_INTERVAL, "sqlite watch notification socket failed; polling the file instead");
        *listener = None;
    }
}

/// What one poll found.
enum Polled {
    Events(Vec<WatchEvent>),
    Relist,
}

impl Poller {
    /// Polls until the watch is dropped or must relist.
    async fn run(mut self, mut wake: Wake, tx: mpsc::Sender<WatchEvent>) {
        let mut local_changes = true;
        loop {
            let (poller, polled) = match tokio::task::spawn_blocking(move || {
                let polled = self.poll();
                (self, polled)
            })
            .await
            {
                Ok(done) => done,
                Err(e) => {
                    tracing::error!(error = %e, "sqlite watch poll task failed; asking the watcher to relist");
                    let _ = tx.send(WatchEvent::Relist).await;
                    return;
                }
            };
            self = poller;
            let wait = match polled {
                Ok(Polled::Events(events)) => {
                    for event in events {
                        if tx.send(event).await.is_err() {
                            return;
                        }
                    }
                    if self.more {
                        continue;
                    }
                    wake.interval()
                }
                Ok(Polled::Relist) => {
                    let _ = tx.send(WatchEvent::Relist).await;
                    return;
                }
                Err(StoreError::Corrupt(message)) => {
                    tracing::error!(%message, "sqlite watch history unreadable; asking the watcher to relist");
                    let _ = tx.send(WatchEvent::Relist).await;
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "sqlite watch poll failed; retrying");
                    ERROR_RETRY
                }
            };
            tokio::select! {
                () = tx.closed() => return,
                changed = wake.changes.changed(), if local_changes => local_changes = changed.is_ok(),
                () = notified(&mut wake.listener) => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Reads the events after `self.after` if the file changed since the last poll.
    fn poll(&mut self) -> Result<Polled> {
        let data_version: i64 = self
            .conn
            .query_row("PRAGMA data_version", [], |row| row.get(0))
            .map_err(|e| sql_err(&self.path, "watch: read data_version", e))?;
        if !self.more && self.data_version == Some(data_version) {
            return Ok(Polled::Events(Vec::new()));
        }
        let tx = self
            .conn
            .transaction()
            .map_err(|e| sql_err(&self.path, "watch: begin read", e))?;
        let meta = read_meta(&tx, &self.path)?;
        if self.after + 1 < meta.compact_revision {
            return Ok(Polled::Relist);
        }
        let events = (|| {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT rev, key, kind, value, create_rev FROM events \
                 WHERE rev > ?1 AND {} ORDER BY rev LIMIT {EVENT_BATCH}",
                self.range.condition("key", 2)
            ))?;
            let mut params: Vec<&dyn rusqlite::ToSql> = vec![&self.after];
            params.extend(self.range.params());
            let rows = stmt.query_map(params.as_slice(), event_from_row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })()
        .map_err(|e| sql_err(&self.path, "watch: read events", e))?;
        self.more = events.len() as i64 == EVENT_BATCH;
        self.after = match events.last() {
            Some((rev, _)) if self.more => *rev,
            _ => self.after.max(meta.revision),
        };
        self.data_version = Some(data_version);
        Ok(Polled::Events(events.into_iter().map(|(_, e)| e).collect()))
    }
}

/// Decodes one `events` row; an unknown `kind` or a put without a value is a conversion error.
fn event_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, WatchEvent)> {
    let rev: i64 = row.get(0)?;
    let key: String = row.get(1)?;
    let kind: String = row.get(2)?;
    let event = match kind.as_str() {
        "put" => WatchEvent::Put(KeyValue {
            value: bytes(row, 3)?,
            create_revision: row.get(4)?,
            mod_revision: rev,
            key,
        }),
        "delete" => WatchEvent::Delete { key, revision: rev },
        other => {
            return Err(rusqlite::Error::FromSqlConversionFailure(
                2,
                Type::Text,
                format!("event at revision {rev} for {key} has unknown kind {other:?}").into(),
            ))
        }
    };
    Ok((rev, event))
}

/// The half-open key range `[prefix, end)` holding exactly the keys that start with `prefix`.
struct KeyRange {
    start: String,
    end: Option<String>,
}

impl KeyRange {
    fn new(prefix: &str) -> Self {
        let mut chars: Vec<char> = prefix.chars().collect();
        let mut end = None;
        while let Some(last) = chars.pop() {
            let next = match last {
                '\u{D7FF}' => Some('\u{E000}'),
                c => char::from_u32(u32::from(c) + 1),
            };
            if let Some(next) = next {
                chars.push(next);
                end = Some(chars.into_iter().collect());
                break;
            }
        }
        KeyRange {
            start: prefix.to_owned(),
            end,
        }
    }

    /// SQL condition on `column` using parameters `?first` (and `?first+1`).
    fn condition(&self, column: &str, first: usize) -> String {
        match self.end {
            Some(_) => format!("{column} >= ?{first} AND {column} < ?{}", first + 1),
            None => format!("{column} >= ?{first}"),
        }
    }

    /// The parameters for [`KeyRange::condition`].
    fn params(&self) -> Vec<&dyn rusqlite::ToSql> {
        let mut params: Vec<&dyn rusqlite::ToSql> = vec![&self.start];
        if let Some(end) = &self.end {
            params.push(end);
        }
        params
    }
}

/// Opens a connection with the settings every connection needs.
fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| sql_err(path, "open", e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| sql_err(path, "set busy_timeout", e))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|e| sql_err(path, "enable WAL", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), %mode, "sqlite did not switch to WAL; other processes may block");
    }
    Ok(conn)
}

/// Creates the tables on first use and refuses files written by a newer schema.
fn init_schema(conn: &mut Connection, path: &Path) -> Result<()> {
    let tx = begin_write(conn, path)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| sql_err(path, "read schema version", e))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "sqlite {}: schema version {version} is newer than this program's {SCHEMA_VERSION}",
            path.display()
        )));
    }
    tx.execute_batch(SCHEMA)
        .and_then(|()| tx.pragma_update(None, "user_version", SCHEMA_VERSION))
        .map_err(|e| sql_err(path, "create schema", e))?;
    read_meta(&tx, path)?;
    commit(tx, path)
}

fn begin_write<'c>(conn: &'c mut Connection, path: &Path) -> Result<Transaction<'c>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| sql_err(path, "begin write", e))
}

fn commit(tx: Transaction<'_>, path: &Path) -> Result<()> {
    tx.commit().map_err(|e| sql_err(path, "commit", e))
}

fn read_meta(tx: &Transaction<'_>, path: &Path) -> Result<Meta> {
    tx.query_row(
        "SELECT revision, compact_revision FROM meta WHERE id = 1",
        [],
        |row| {
            Ok(Meta {
                revision: row.get(0)?,
                compact_revision: row.get(1)?,
            })
        },
    )
    .optional()
    .map_err(|e| sql_err(path, "read meta", e))?
    .ok_or_else(|| {
        StoreError::Corrupt(format!(
            "sqlite {}: the meta row is missing",
            path.display()
        ))
    })
}

fn revisions(tx: &Transaction<'_>, path: &Path, key: &str) -> Result<Option<Revisions>> {
    tx.query_row(
        "SELECT create_rev, mod_rev FROM kv WHERE key = ?1",
        [key],
        |row| {
            Ok(Revisions {
                create: row.get(0)?,
                modified: row.get(1)?,
            })
        },
    )
    .optional()
    .map_err(|e| sql_err(path, &format!("read {key}"), e))
}

/// Drops events before `revision` and records it as the compact revision.
fn compact_events(tx: &Transaction<'_>, revision: i64) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM events WHERE rev < ?1", [revision])?;
    tx.execute(
        "UPDATE meta SET compact_revision = ?1 WHERE id = 1",
        [revision],
    )?;
    Ok(())
}

/// Reads a value column, accepting BLOB or TEXT (a value written by hand with the sqlite3 shell).
fn bytes(row: &Row<'_>, idx: usize) -> rusqlite::Result<Vec<u8>> {
    match row.get_ref(idx)? {
        ValueRef::Blob(b) | ValueRef::Text(b) => Ok(b.to_vec()),
        other => Err(rusqlite::Error::InvalidColumnType(
            idx,
            "value".into(),
            other.data_type(),
        )),
    }
}

/// Classifies a rusqlite error: unreadable data is `Corrupt`, everything else `Unavailable`.
fn sql_err(path: &Path, what: &str, e: rusqlite::Error) -> StoreError {
    use rusqlite::Error as E;
    let message = format!("sqlite {}: {what}: {e}", path.display());
    let corrupt = match &e {
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::InvalidColumnType(..)
        | E::Utf8Error(..) => true,
        E::SqliteFailure(f, _) => matches!(
            f.code,
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase | ErrorCode::ConstraintViolation
        ),
        _ => false,
    };
    if corrupt {
        StoreError::Corrupt(message)
    } else {
        StoreError::Unavailable(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(range: &KeyRange, key: &str) -> bool {
        key >= range.start.as_str() && range.end.as_deref().is_none_or(|end| key < end)
    }

    #[test]
    fn key_range_is_exactly_the_prefix() {
        let keys = [
            "",
            "/",
            "/a",
            "/a/",
            "/a/b",
            "/a/b/",
            "/a/b/c",
            "/a/bc",
            "/a/c",
            "/b",
            "a",
            "\u{10FFFF}",
            "/a/b\u{10FFFF}",
            "/a/b\u{10FFFF}x",
        ];
        for prefix in [
            "",
            "/",
            "/a",
            "/a/b",
            "/a/b/",
            "/a/b\u{10FFFF}",
            "\u{10FFFF}",
            "\u{D7FF}",
        ] {
            let range = KeyRange::new(prefix);
            for key in keys {
                assert_eq!(
                    matches(&range, key),
                    key.starts_with(prefix),
                    "prefix {prefix:?} key {key:?}"
                );
            }
        }
        assert_eq!(KeyRange::new("/a/b").end.as_deref(), Some("/a/c"));
        assert_eq!(KeyRange::new("\u{D7FF}").end.as_deref(), Some("\u{E000}"));
        assert_eq!(KeyRange::new("").end, None);
        assert_eq!(KeyRange::new("\u{10FFFF}").end, None);
    }
}
