//! Push notification of commits between the connections and processes sharing one SQLite file.
//!
//! Every watch binds a unix datagram socket in the directory `<database>-watch/` next to the
//! database file, and every [`SqliteStore`](super::SqliteStore) writer sends one datagram to each
//! socket there right after each of its commits. A watch therefore polls the file only when told
//! to (and, as a fallback, at a slow interval for writers that do not notify, such as the
//! `sqlite3` shell). The datagram (one zero byte) only says "poll now".
//!
//! Why not inotify on the WAL: a writer appends the commit frame to the `-wal` file (the event)
//! before it publishes the commit in the `-shm` wal-index (a shared mapping, which makes no
//! event), with an fsync in between, so a watcher woken by the event often finds nothing new yet
//! and the commit itself makes no later event. The writer's notification is sent after the commit
//! is visible, so it cannot be early.
//!
//! Failures never lose a change: a datagram that cannot be sent (no permission, the receiver's
//! queue is full, which means it has a wake-up pending anyway) is skipped, and a socket file whose
//! process is gone (connection refused) is removed by the writer that finds it.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Tries at finding a free socket name (another pid namespace may use the same pid, or a file
/// may be left by a process that died).
const BIND_ATTEMPTS: u64 = 16;
/// Numbers the sockets bound by this process.
static NEXT_SOCKET: AtomicU64 = AtomicU64::new(0);

/// The directory of the watch sockets for the database at `db`.
fn socket_dir(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push("-watch");
    db.with_file_name(name)
}

/// One watch's socket; dropping it removes the socket file.
pub(super) struct Listener {
    socket: tokio::net::UnixDatagram,
    path: PathBuf,
}

impl Listener {
    /// Binds a new socket in the database's socket directory (blocking: call off the runtime,
    /// then [`Listener::register`] on it).
    pub(super) fn bind(db: &Path) -> io::Result<(UnixDatagram, PathBuf)> {
        let dir = socket_dir(db);
        std::fs::create_dir_all(&dir)?;
        let mut last = io::Error::from(io::ErrorKind::AddrInUse);
        for _ in 0..BIND_ATTEMPTS {
            let n = NEXT_SOCKET.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("{}-{n}", std::process::id()));
            match UnixDatagram::bind(&path) {
                Ok(socket) => {
                    socket.set_nonblocking(true)?;
                    return Ok((socket, path));
                }
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Hands a socket from [`Listener::bind`] to the tokio reactor (needs the runtime).
    pub(super) fn register((socket, path): (UnixDatagram, PathBuf)) -> io::Result<Self> {
        match tokio::net::UnixDatagram::from_std(socket) {
            Ok(socket) => Ok(Listener { socket, path }),
            Err(e) => {
                remove(&path);
                Err(e)
            }
        }
    }

    /// Waits for at least one notification and takes every one already queued.
    pub(super) async fn notified(&self) -> io::Result<()> {
        let mut buf = [0u8; 1];
        loop {
            self.socket.readable().await?;
            let mut got = false;
            loop {
                match self.socket.try_recv(&mut buf) {
                    Ok(_) => got = true,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            if got {
                return Ok(());
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        remove(&self.path);
    }
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::debug!(path = %path.display(), error = %e, "cannot remove sqlite watch socket");
        }
    }
}

/// A writer's side: tells every watch of the database that a commit happened.
pub(super) struct Notifier {
    dir: PathBuf,
    socket: UnixDatagram,
}

impl Notifier {
    /// An unbound, non-blocking socket to send from.
    pub(super) fn new(db: &Path) -> io::Result<Self> {
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        Ok(Notifier {
            dir: socket_dir(db),
            socket,
        })
    }

    /// Sends one datagram to every watch socket; never fails (the watches' poll covers misses).
    pub(super) fn notify(&self) {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            // No watch has ever run on this database.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) => {
                tracing::debug!(dir = %self.dir.display(), error = %e, "cannot list sqlite watch sockets");
                return;
            }
        };
        let sockets = entries
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_socket()));
        for entry in sockets {
            let path = entry.path();
            match self.socket.send_to(&[0], &path) {
                Ok(_) => {}
                // Nobody has the socket open: its process is gone.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => remove(&path),
                // Full queue: a wake-up is already pending. Gone: the watch just ended.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::NotFound
                    ) => {}
                Err(e) => {
                    tracing::debug!(socket = %path.display(), error = %e, "cannot notify sqlite watch");
                }
            }
        }
    }
}
