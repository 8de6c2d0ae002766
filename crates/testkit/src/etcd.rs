//! A real etcd server (Debian etcd-server) per test, on free loopback ports, killed on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The longest etcd may take to report itself healthy.
const ETCD_START_TIMEOUT: Duration = Duration::from_secs(20);

/// PEM files written for an etcd started with [`EtcdServer::start_tls`].
pub struct Certificates {
    /// The certificate authority that signed both certificates.
    pub ca: PathBuf,
    /// etcd's serving certificate, for IP 127.0.0.1.
    pub server_cert: PathBuf,
    /// The serving certificate's key.
    pub server_key: PathBuf,
    /// A client certificate etcd accepts.
    pub client_cert: PathBuf,
    /// The client certificate's key.
    pub client_key: PathBuf,
}

/// The etcd user [`EtcdServer::start_with_auth`] creates (etcd needs `root` to enable auth).
pub const AUTH_USER: &str = "root";

/// A single-member etcd on free loopback ports with a temporary data dir, killed on drop.
pub struct EtcdServer {
    child: Child,
    _dir: tempfile::TempDir,
    /// The client URL.
    pub endpoint: String,
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago (etcd cannot bind port 0 and report it).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

fn tempdir() -> tempfile::TempDir {
    // etcd fsyncs every write; a tmpfs keeps the suite fast where one exists.
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new()
            .prefix("calico-test-etcd")
            .tempdir_in(shm)
        {
            return dir;
        }
    }
    tempfile::tempdir().expect("create a temporary directory")
}

impl EtcdServer {
    /// Starts a plain-HTTP etcd and waits until it is healthy.
    pub fn start() -> Self {
        Self::launch(None)
    }

    /// Starts a plain-HTTP etcd with authentication enabled: user [`AUTH_USER`] with `password`
    /// (etcdctl `user add` and `auth enable`). Its simple tokens expire after `token_ttl`
    /// (whole seconds, at least 1) without use, so a test can let a client's token expire.
    pub fn start_with_auth(password: &str, token_ttl: Duration) -> Self {
        let ttl = token_ttl.as_secs().max(1);
        let server = Self::launch_with(tempdir(), None, &[format!("--auth-token-ttl={ttl}")]);
        server.etcdctl(&["user", "add", &format!("{AUTH_USER}:{password}")]);
        server.etcdctl(&["auth", "enable"]);
        server
    }

    /// Runs etcdctl (v3 API) against this server, panicking with its output when it fails.
    fn etcdctl(&self, args: &[&str]) {
        let output = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("the etcd auth tests need `etcdctl` (Debian package etcd-client): run scripts/setup");
        assert!(
            output.status.success(),
            "etcdctl {} failed: {}{}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Starts an etcd that requires TLS client certificates; returns it and the PEM files.
    pub fn start_tls() -> (Self, Certificates) {
        let dir = tempdir();
        let certificates = make_certificates(dir.path());
        let server = Self::launch_in(dir, Some(&certificates));
        (server, certificates)
    }

    fn launch(tls: Option<&Certificates>) -> Self {
        Self::launch_in(tempdir(), tls)
    }

    fn launch_in(dir: tempfile::TempDir, tls: Option<&Certificates>) -> Self {
        Self::launch_with(dir, tls, &[])
    }

    fn launch_with(dir: tempfile::TempDir, tls: Option<&Certificates>, extra: &[String]) -> Self {
        let mut last_log = String::new();
        // A port picked here can be taken before etcd binds it: retry with new ports.
        for attempt in 1..=3 {
            let (client, peer, metrics) = (free_port(), free_port(), free_port());
            let scheme = if tls.is_some() { "https" } else { "http" };
            let endpoint = format!("{scheme}://127.0.0.1:{client}");
            let peer_url = format!("http://127.0.0.1:{peer}");
            let data_dir = dir.path().join(format!("data-{attempt}"));
            let log_path = dir.path().join(format!("etcd-{attempt}.log"));
            let log = std::fs::File::create(&log_path).expect("create the etcd log file");
            let mut command = Command::new("etcd");
            command
                .arg("--name=test")
                .arg(format!("--data-dir={}", data_dir.display()))
                .arg(format!("--listen-client-urls={endpoint}"))
                .arg(format!("--advertise-client-urls={endpoint}"))
                .arg(format!("--listen-peer-urls={peer_url}"))
                .arg(format!("--initial-advertise-peer-urls={peer_url}"))
                .arg(format!("--initial-cluster=test={peer_url}"))
                .arg(format!("--listen-metrics-urls=http://127.0.0.1:{metrics}"))
                .arg("--logger=zap")
                .arg("--log-outputs=stderr")
                .arg("--log-level=warn")
                .args(extra)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone the log file handle"))
                .stderr(log);
            if let Some(files) = tls {
                command
                    .arg(format!("--cert-file={}", files.server_cert.display()))
                    .arg(format!("--key-file={}", files.server_key.display()))
                    .arg(format!("--trusted-ca-file={}", files.ca.display()))
                    .arg("--client-cert-auth");
            }
            let mut child = match command.spawn() {
                Ok(child) => child,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                    "the etcd tests need the `etcd` binary (Debian package etcd-server) on PATH: \
                     run scripts/setup"
                ),
                Err(e) => panic!("cannot start etcd: {e}"),
            };
            if wait_healthy(&mut child, metrics) {
                return EtcdServer {
                    child,
                    _dir: dir,
                    endpoint,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
        }
        panic!("etcd did not become healthy; its last log:\n{last_log}");
    }
}

/// Polls `/health` on the metrics port until etcd says it is healthy, or it exits or times out.
fn wait_healthy(child: &mut Child, metrics_port: u16) -> bool {
    let deadline = Instant::now() + ETCD_START_TIMEOUT;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false;
        }
        if health(metrics_port) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// One `GET /health` over plain HTTP; true when etcd reports `"health":"true"`.
fn health(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.contains("\"health\":\"true\"")
}

/// Writes a CA, a server certificate for 127.0.0.1 and a client certificate with openssl.
fn make_certificates(dir: &Path) -> Certificates {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the TLS test needs the `openssl` binary: run scripts/setup");
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=calico-test-ca",
    ]);
    openssl(&ca);
    for (name, usage, serial) in [("server", "serverAuth", "2"), ("client", "clientAuth", "3")] {
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        std::fs::write(
            dir.join(&ext),
            format!(
                "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n"
            ),
        )
        .expect("write the extensions file");
        let mut request = vec!["req"];
        request.extend(ec);
        request.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=127.0.0.1"]);
        openssl(&request);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            serial,
            "-days",
            "2",
            "-out",
            &pem,
            "-extfile",
            &ext,
        ]);
    }
    Certificates {
        ca: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
    }
}
