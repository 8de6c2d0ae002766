//! Stands in for calico-node in the harness's own tests (crates/testkit/tests/e2e.rs), so that
//! they check `scripts/cluster` whatever state calico-node is in. It creates the two plugin
//! sockets, answers every plugin call with an error (it implements no driver: use
//! `--net none` containers with it), prints the environment and hostname it was started with,
//! and runs until killed. Not for anything else.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};

const PLUGIN_DIR: &str = "/run/docker/plugins";

fn main() {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    println!("stub node: hostname={}", hostname.trim());
    for var in [
        "NODENAME",
        "HOSTNAME",
        "DOCKER_HOST",
        "DATASTORE_TYPE",
        "ETCD_ENDPOINTS",
        "SQLITE_PATH",
        "CALICO_LOG_DIR",
        "CALICO_TEST_SETTING",
        "PATH",
    ] {
        println!(
            "stub node: {var}={}",
            std::env::var(var).unwrap_or_default()
        );
    }
    let mut threads = Vec::new();
    for name in ["calico", "calico-ipam"] {
        let path = format!("{PLUGIN_DIR}/{name}.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap_or_else(|e| panic!("bind {path}: {e}"));
        threads.push(std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || answer(stream));
            }
        }));
    }
    println!("stub node: listening on {PLUGIN_DIR}/calico.sock and calico-ipam.sock");
    for thread in threads {
        let _ = thread.join();
    }
}

/// Reads one HTTP request and answers it with a plugin error.
fn answer(stream: UnixStream) {
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    let _ = reader.read_line(&mut request_line);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    println!("stub node: refused {}", request_line.trim());
    let reply = br#"{"Err":"the harness stub node implements no plugin API"}"#;
    let mut stream = &stream;
    let _ = write!(
        stream,
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/vnd.docker.plugins.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.len()
    );
    let _ = stream.write_all(reply);
}
