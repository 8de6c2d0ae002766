//! The steps that end-to-end tests keep repeating on a [`Cluster`]: Calico networks and
//! busybox workloads made with the docker CLI, the addresses Docker gave them, waiting
//! until calicoctl shows their endpoints, and a peer-address server and client in a workload.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use calico_testkit::cluster::{Cluster, Options};
//! use calico_testkit::steps;
//!
//! let cluster = Cluster::up(Options { hosts: 1, ..Options::default() });
//! let h = cluster.host(1);
//! steps::create_network(&h, "net1", &[]);
//! steps::run_busybox(&h, "wa", "net1");
//! steps::wait_for_endpoints(&cluster, Duration::from_secs(20), "wa's endpoint", &["wa"]);
//! assert!(steps::ip_in(&h, "wa", "net1").starts_with("192.168."));
//! ```

use std::path::Path;
use std::time::Duration;

use crate::cluster::{wait_until, Cluster, Host};

/// The docker arguments that create Calico network `name`: `network create --driver calico
/// --ipam-driver calico-ipam EXTRA… NAME`; when `extra` names an `--ipam-driver` itself, that
/// one instead of `calico-ipam`.
pub fn network_create_args<'a>(name: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["network", "create", "--driver", "calico"];
    if !extra.contains(&"--ipam-driver") {
        args.extend(["--ipam-driver", "calico-ipam"]);
    }
    args.extend(extra);
    args.push(name);
    args
}

/// Creates Calico network `name` on `host` ([`network_create_args`]); it must succeed. Does not
/// wait for the other hosts to list it (that is [`Cluster::create_calico_network`]).
pub fn create_network(host: &Host, name: &str, extra: &[&str]) {
    host.docker_ok(&network_create_args(name, extra));
}

/// `docker run --net NETWORK --name NAME -tid busybox` on `host`; it must succeed.
pub fn run_busybox(host: &Host, name: &str, network: &str) {
    host.docker_ok(&["run", "--net", network, "--name", name, "-tid", "busybox"]);
}

/// The IPv4 address Docker gave `container` on `network`.
pub fn ip_in(host: &Host, container: &str, network: &str) -> String {
    let format = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
    host.docker_ok(&["inspect", "-f", &format, container])
        .trim()
        .to_string()
}

/// The IPv4 address of `container`, which is on one network (the addresses of all its
/// networks, run together, for one on several).
pub fn only_ip(host: &Host, container: &str) -> String {
    host.docker_ok(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        container,
    ])
    .trim()
    .to_string()
}

/// Waits (at most `timeout`, panicking with `what`) until `calicoctl get wep` shows an
/// endpoint for each of `workloads`.
pub fn wait_for_endpoints(cluster: &Cluster, timeout: Duration, what: &str, workloads: &[&str]) {
    wait_until(timeout, what, || {
        let weps = cluster.calicoctl_ok(&["get", "wep"], None);
        workloads.iter().all(|w| weps.contains(w))
    });
}

/// Starts busybox httpd on port 80 in `container` (a busybox workload on `host`), answering
/// `GET /cgi-bin/peer` with the client's address as the container saw it
/// ([`crate::outside::PEER_CGI`]); it goes with the container.
pub fn serve_peer_address_in(host: &Host, container: &str) {
    let cgi = crate::outside::PEER_CGI;
    let script = format!(
        "mkdir -p /www/cgi-bin && printf '%s' '{cgi}' > /www/cgi-bin/peer && \
         chmod +x /www/cgi-bin/peer && httpd -p 0.0.0.0:80 -h /www"
    );
    host.docker_ok(&["exec", container, "sh", "-c", &script]);
}

/// An HTTP/1.0 GET of `/cgi-bin/peer` at `addr` (`ip:port`) from `container` on `host`, with
/// busybox nc (the image has no socat, and busybox-static's wget crashes in it): the body's
/// last line, or `None` when nothing answered within 3 s.
pub fn fetch_peer_in(host: &Host, container: &str, addr: &str) -> Option<String> {
    let (ip, port) = addr.rsplit_once(':').expect("ip:port");
    let request =
        format!("printf 'GET /cgi-bin/peer HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 {ip} {port}");
    let out = host.docker(&["exec", container, "sh", "-c", &request]);
    let body = String::from_utf8_lossy(&out.stdout);
    let last = body.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    (out.status.success() && body.contains(" 200 ")).then(|| last.to_string())
}

/// The calicoctl built with `calico_node`, in the same directory (a UTF-8 path).
pub fn calicoctl_beside(calico_node: &str) -> String {
    Path::new(calico_node)
        .parent()
        .expect("the binaries' directory")
        .join("calicoctl")
        .to_str()
        .expect("a UTF-8 path")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_create_args_default_to_calico_ipam_unless_extra_names_a_driver() {
        assert_eq!(
            network_create_args("net1", &[]).join(" "),
            "network create --driver calico --ipam-driver calico-ipam net1"
        );
        assert_eq!(
            network_create_args("pool", &["--subnet", "10.77.0.0/16"]).join(" "),
            "network create --driver calico --ipam-driver calico-ipam --subnet 10.77.0.0/16 pool"
        );
        assert_eq!(
            network_create_args("old", &["--ipam-driver", "calico"]).join(" "),
            "network create --driver calico --ipam-driver calico old"
        );
    }

    #[test]
    fn calicoctl_is_next_to_calico_node() {
        assert_eq!(
            calicoctl_beside("/work/target/debug/calico-node"),
            "/work/target/debug/calicoctl"
        );
    }
}
