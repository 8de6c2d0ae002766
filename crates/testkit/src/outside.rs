//! The world beyond the cluster: `scripts/cluster`'s outside namespace, on the fabric at
//! `10.10.0.254` with no route to any pool. It can answer a workload only when the workload's
//! traffic reached it translated to its host's address (nat-outgoing), and it is where a test
//! stands to reach published ports and host services "from outside".

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::cluster::{expect_success, run, wait_until, Cluster, COMMAND_TIMEOUT};

/// The CGI script behind `/cgi-bin/peer` (busybox httpd): answers with the client's address.
/// Free of single quotes, so a shell can write it with `printf '%s'` inside a container too.
pub const PEER_CGI: &str =
    "#!/bin/sh\nprintf \"Content-Type: text/plain\\r\\n\\r\\n%s\\n\" \"$REMOTE_ADDR\"\n";

/// How long a server started outside may take to listen.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The outside namespace of a [`Cluster`].
pub struct Outside<'c> {
    pub(crate) cluster: &'c Cluster,
}

/// An HTTP server outside (busybox `httpd`) whose `/cgi-bin/peer` answers with the address the
/// request came from; killed on drop.
pub struct PeerServer {
    child: Child,
    _dir: tempfile::TempDir,
    address: String,
}

impl Outside<'_> {
    /// The namespace's address on the fabric.
    pub fn ip(&self) -> Ipv4Addr {
        self.cluster
            .info("outside_ip")
            .parse()
            .expect("outside_ip in cluster.info")
    }

    /// Runs `args` in the outside namespace.
    pub fn exec(&self, args: &[&str]) -> Output {
        run(
            self.command(args).stdin(Stdio::null()),
            None,
            COMMAND_TIMEOUT,
        )
    }

    /// [`Outside::exec`] that must succeed; returns its stdout without the trailing newline.
    pub fn exec_ok(&self, args: &[&str]) -> String {
        expect_success(&format!("outside: {}", args.join(" ")), &self.exec(args))
    }

    /// Starts a [`PeerServer`] on `port` and waits until it listens.
    pub fn serve_peer_address(&self, port: u16) -> PeerServer {
        let dir = tempfile::tempdir().expect("a directory for the outside server");
        let cgi = dir.path().join("cgi-bin");
        std::fs::create_dir(&cgi).expect("cgi-bin");
        write_script(&cgi.join("peer"), PEER_CGI);
        let listen = format!("{}:{port}", self.ip());
        let root = dir.path().to_string_lossy().into_owned();
        let child = self
            .command(&["busybox", "httpd", "-f", "-p", &listen, "-h", &root])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start busybox httpd outside");
        let server = PeerServer {
            child,
            _dir: dir,
            address: listen,
        };
        wait_until(LISTEN_TIMEOUT, "the outside server to listen", || {
            self.exec(&["ss", "-Htln", &format!("src {}", server.address)])
                .stdout
                .iter()
                .any(|b| !b.is_ascii_whitespace())
        });
        server
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!(
                "--net=/run/netns/{}",
                self.cluster.info("outside_netns")
            ))
            .arg("--")
            .args(args);
        command
    }
}

impl PeerServer {
    /// `10.10.0.254:<port>`: a GET of `/cgi-bin/peer` there answers with the client's address
    /// as the server saw it.
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes an executable script.
fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}
