//! The world beyond the cluster: `scripts/cluster`'s outside namespace, on the fabric at
//! `10.10.0.254` with no route to any pool. It can answer a workload only when the workload's
//! traffic reached it translated to its host's address (nat-outgoing), and it is where a test
//! stands to reach published ports and host services "from outside". The same server also
//! runs on a host ([`Host::serve_peer_address`]), as a service of the host itself.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::cluster::{expect_success, run, wait_until, Cluster, Host, COMMAND_TIMEOUT};

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

/// An HTTP server outside or on a host (busybox `httpd`) whose `/cgi-bin/peer` answers with the
/// address the request came from; killed on drop.
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

    /// The namespace's name (`/run/netns/<name>`, as `ip link set … netns <name>` takes it).
    pub fn netns(&self) -> &str {
        self.cluster.info("outside_netns")
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
        let listen = format!("{}:{port}", self.ip());
        spawn_peer_server(
            |args| self.command(args),
            |args| self.exec(args),
            &listen,
            listen.clone(),
        )
    }

    /// Adds `address` (on the fabric's /24) to the namespace's `eth0`, a second source
    /// outside the cluster for [`Outside::fetch_peer_from`]; it goes with the namespace.
    pub fn add_address(&self, address: Ipv4Addr) {
        self.exec_ok(&["ip", "addr", "add", &format!("{address}/24"), "dev", "eth0"]);
    }

    /// [`fetch_peer`] of `addr` (`ip:port`) from the outside namespace.
    pub fn fetch_peer(&self, addr: &str) -> Option<String> {
        fetch_peer(|args| self.exec(args), addr, None)
    }

    /// [`fetch_peer`] of `addr` from the outside namespace, from its address `source` (see
    /// [`Outside::add_address`]).
    pub fn fetch_peer_from(&self, source: Ipv4Addr, addr: &str) -> Option<String> {
        fetch_peer(|args| self.exec(args), addr, Some(source))
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
    /// `10.10.0.254:<port>` (outside) or `<host address>:<port>` (on a host): a GET of
    /// `/cgi-bin/peer` there answers with the client's address as the server saw it.
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

impl Host<'_> {
    /// Starts a [`PeerServer`] in the host's namespaces, on `port` of every address the host has
    /// (`0.0.0.0`: a service of the host itself, as host endpoint policy sees one), and waits
    /// until it listens. Its [`PeerServer::address`] is the host's fabric address and `port`.
    pub fn serve_peer_address(&self, port: u16) -> PeerServer {
        spawn_peer_server(
            |args| self.command(args),
            |args| self.exec(args),
            &format!("0.0.0.0:{port}"),
            format!("{}:{port}", self.ip()),
        )
    }
}

/// How long [`fetch_peer`] waits for the TCP connection to be established: a refused service
/// (its packets dropped) is told by this timeout.
pub const FETCH_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// An HTTP/1.0 GET of `/cgi-bin/peer` at `addr` (`ip:port`) with socat, run by `run` (on a
/// host, in the outside namespace; not in a container, whose busybox image has no socat),
/// bound to `source` when given: the body's last line (a [`PeerServer`] answers with the
/// address it saw), or `None` when no connection was made within [`FETCH_CONNECT_TIMEOUT`] or
/// no `200` came back.
pub fn fetch_peer(
    run: impl Fn(&[&str]) -> Output,
    addr: &str,
    source: Option<Ipv4Addr>,
) -> Option<String> {
    let bind = source.map(|s| format!(",bind={s}")).unwrap_or_default();
    let connect = FETCH_CONNECT_TIMEOUT.as_secs();
    // -t: after the request is sent (stdin's EOF), wait this long for the answer to end
    let request = format!(
        "printf 'GET /cgi-bin/peer HTTP/1.0\\r\\n\\r\\n' | \
         socat -t 5 -T 5 - TCP4:{addr},connect-timeout={connect}{bind}"
    );
    let out = run(&["sh", "-c", &request]);
    let body = String::from_utf8_lossy(&out.stdout);
    let last = body.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    (out.status.success() && body.contains(" 200 ")).then(|| last.to_string())
}

/// Starts busybox httpd with [`PEER_CGI`] on `listen` in the namespace `command` enters, and
/// waits until `exec` (in the same namespace) sees it listen; `address` is what
/// [`PeerServer::address`] reports.
fn spawn_peer_server(
    command: impl Fn(&[&str]) -> Command,
    exec: impl Fn(&[&str]) -> Output,
    listen: &str,
    address: String,
) -> PeerServer {
    let dir = tempfile::tempdir().expect("a directory for the peer server");
    let cgi = dir.path().join("cgi-bin");
    std::fs::create_dir(&cgi).expect("cgi-bin");
    write_script(&cgi.join("peer"), PEER_CGI);
    let root = dir.path().to_string_lossy().into_owned();
    let child = command(&["busybox", "httpd", "-f", "-p", listen, "-h", &root])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start busybox httpd");
    let server = PeerServer {
        child,
        _dir: dir,
        address,
    };
    wait_until(
        LISTEN_TIMEOUT,
        &format!("a server to listen on {listen}"),
        || {
            exec(&["ss", "-Htln", &format!("src {listen}")])
                .stdout
                .iter()
                .any(|b| !b.is_ascii_whitespace())
        },
    );
    server
}

/// Writes an executable script.
fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}
