//! Real-kernel tests. Each test runs on its own thread that first moves into a fresh network
//! namespace (`unshare(CLONE_NEWNET)` acts on the calling thread only), then builds a
//! current-thread tokio runtime there, so the netlink socket, `/proc/sys/net` paths and spawned
//! `ip` commands all see that namespace, under nextest (process per test) and plain `cargo test`
//! (threads) alike. The host's namespace is never modified. Needs root (CAP_SYS_ADMIN).

use std::collections::BTreeSet;
use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::{fs, thread};

use calico_dataplane::endpoint::{self, WorkloadPlumbing};
use calico_dataplane::netlink::{LinkInfo, Netlink};
use calico_dataplane::{sysctl, DataplaneError};
use calico_model::endpoint_naming::{host_interface, temp_interface, DockerId};
use ipnet::IpNet;
use nix::errno::Errno;
use nix::sched::{unshare, CloneFlags};

const HOST_A: &str = "caliaaaaaaaaaaa";
const TEMP_A: &str = "tempaaaaaaaaaaa";
const HOST_B: &str = "calibbbbbbbbbbb";
const TEMP_B: &str = "tempbbbbbbbbbbb";
const MAC: [u8; 6] = [0xee; 6];

/// Moves the calling thread into a new network namespace; these tests run as root (as CI does).
fn enter_new_netns() {
    match unshare(CloneFlags::CLONE_NEWNET) {
        Ok(()) => {}
        Err(Errno::EPERM) => panic!("unshare(CLONE_NEWNET) needs root: run the tests as root"),
        Err(e) => panic!("unshare(CLONE_NEWNET): {e}"),
    }
}

/// Runs `body` in a fresh network namespace with `lo` up, on a dedicated thread.
fn in_netns<F, Fut>(body: F)
where
    F: FnOnce(Netlink) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let worker = thread::spawn(move || {
        enter_new_netns();
        assert_fresh_namespace();
        ip(&["link", "set", "lo", "up"]);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let nl = Netlink::connect().unwrap();
            body(nl).await;
        });
    });
    if let Err(panic) = worker.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Guards every test: only a brand-new namespace has nothing but `lo`, so writes cannot reach
/// the host.
fn assert_fresh_namespace() {
    let conf: BTreeSet<String> = fs::read_dir("/proc/sys/net/ipv4/conf")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        conf,
        BTreeSet::from(["all", "default", "lo"].map(String::from))
    );
}

/// Runs `ip` (in the calling thread's namespace) and returns its stdout.
fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The trimmed content of a sysctl.
fn read_sysctl(path: &str) -> String {
    fs::read_to_string(path).unwrap().trim().to_string()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn names(links: &[LinkInfo]) -> Vec<&str> {
    links.iter().map(|l| l.name.as_str()).collect()
}

#[test]
fn veth_create_list_delete() {
    in_netns(|nl| async move {
        nl.create_veth(HOST_A, TEMP_A, Some(1400)).await.unwrap();
        nl.create_veth(HOST_B, TEMP_B, None).await.unwrap();

        let cali = nl.list_links("cali").await.unwrap();
        assert_eq!(names(&cali), [HOST_A, HOST_B]);
        let temp = nl.list_links("temp").await.unwrap();
        assert_eq!(names(&temp), [TEMP_A, TEMP_B]);
        assert!(cali.iter().chain(&temp).all(|l| l.up && l.index > 1));
        assert_eq!(names(&nl.list_links("").await.unwrap()).len(), 5);

        for dev in [HOST_A, TEMP_A] {
            let line = ip(&["-o", "link", "show", dev]);
            assert!(line.contains("mtu 1400") && line.contains(",UP,"), "{line}");
        }
        assert!(ip(&["-o", "link", "show", HOST_B]).contains("mtu 1500"));
        assert!(ip(&["-d", "-o", "link", "show", HOST_A]).contains("veth"));

        assert!(nl.link_exists(HOST_A).await.unwrap());
        assert!(nl.delete_link(TEMP_A).await.unwrap());
        assert!(!nl.link_exists(HOST_A).await.unwrap());
        assert!(!nl.link_exists(TEMP_A).await.unwrap());
        assert!(!nl.delete_link(HOST_A).await.unwrap());
        assert_eq!(names(&nl.list_links("cali").await.unwrap()), [HOST_B]);
    });
}

#[test]
fn veth_names_must_be_free_and_valid() {
    in_netns(|nl| async move {
        nl.create_veth(HOST_A, TEMP_A, None).await.unwrap();
        let taken = [(HOST_A, TEMP_B, HOST_A), (HOST_B, TEMP_A, TEMP_A)];
        for (host, peer, name_taken) in taken {
            let err = nl.create_veth(host, peer, None).await.unwrap_err();
            match &err {
                DataplaneError::InterfaceExists { name } => assert_eq!(name, name_taken),
                other => panic!("{host}/{peer}: {other:?}"),
            }
            assert_eq!(
                err.to_string(),
                format!("interface {name_taken} already exists")
            );
        }
        for (host, peer) in [
            ("cali0123456789abc", TEMP_B),
            (HOST_B, HOST_B),
            (HOST_B, ""),
        ] {
            let err = nl.create_veth(host, peer, None).await.unwrap_err();
            assert!(
                matches!(err, DataplaneError::InvalidInterfaceName { .. }),
                "{host}/{peer}: {err}"
            );
        }
        let all = nl.list_links("").await.unwrap();
        assert_eq!(names(&all), [HOST_A, "lo", TEMP_A]);
    });
}

#[test]
fn routes_are_idempotent_replaceable_and_removable() {
    in_netns(|nl| async move {
        nl.create_veth(HOST_A, TEMP_A, None).await.unwrap();
        nl.create_veth(HOST_B, TEMP_B, None).await.unwrap();
        let (v4, v6) = (net("10.65.0.5/32"), net("fd00::5/128"));

        for _ in 0..2 {
            nl.ensure_route(v4, HOST_A).await.unwrap();
            nl.ensure_route(v6, HOST_A).await.unwrap();
        }
        let a = HOST_A.to_string();
        assert_eq!(
            nl.list_routes_on("cali").await.unwrap(),
            [(v4, a.clone()), (v6, a.clone())]
        );
        assert_eq!(
            ip(&["-4", "route", "show", "dev", HOST_A]).trim(),
            "10.65.0.5 proto 80 scope link"
        );
        assert!(
            ip(&["-6", "route", "show", "dev", HOST_A]).contains("fd00::5 proto 80 metric 1024")
        );

        // Replace semantics: the same destination moves to another interface.
        nl.ensure_route(v4, HOST_B).await.unwrap();
        assert_eq!(
            nl.list_routes_on("cali").await.unwrap(),
            [(v6, a.clone()), (v4, HOST_B.to_string())]
        );
        assert!(nl.list_routes_on("temp").await.unwrap().is_empty());
        assert!(!nl.remove_route_on(v4, HOST_A).await.unwrap());
        assert!(nl.remove_route_on(v4, HOST_B).await.unwrap());
        assert!(nl.remove_route(v6).await.unwrap());
        assert!(!nl.remove_route(v6).await.unwrap());
        assert!(!nl.remove_route_on(v4, "calinotthere").await.unwrap());
        assert!(nl.list_routes_on("cali").await.unwrap().is_empty());
        assert_eq!(ip(&["-4", "route", "show", "table", "main"]), "");

        // Routes with another protocol are neither listed nor removed.
        ip(&["route", "add", "10.65.0.9/32", "dev", HOST_A]);
        assert!(nl.list_routes_on("cali").await.unwrap().is_empty());
        assert!(!nl.remove_route(net("10.65.0.9/32")).await.unwrap());
        assert_eq!(
            ip(&["-d", "-4", "route", "show", "dev", HOST_A]).trim(),
            "unicast 10.65.0.9 proto boot scope link"
        );
    });
}

#[test]
fn route_errors_name_the_route_and_the_os_error() {
    in_netns(|nl| async move {
        let v4 = net("10.65.0.5/32");
        assert!(matches!(
            nl.ensure_route(net("10.65.0.0/26"), HOST_A).await,
            Err(DataplaneError::NotHostRoute { .. })
        ));
        match nl.ensure_route(v4, HOST_A).await {
            Err(DataplaneError::NoSuchInterface { name }) => assert_eq!(name, HOST_A),
            other => panic!("{other:?}"),
        }
        nl.create_veth(HOST_A, TEMP_A, None).await.unwrap();
        ip(&["link", "set", HOST_A, "down"]);
        let err = nl.ensure_route(v4, HOST_A).await.unwrap_err();
        match &err {
            DataplaneError::Netlink { error, .. } => {
                assert_eq!(error.raw_os_error(), Some(libc::ENETDOWN))
            }
            other => panic!("{other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.starts_with("adding route 10.65.0.5/32 dev caliaaaaaaaaaaa: ")
                && msg.contains("os error 100"),
            "{msg}"
        );
    });
}

#[test]
fn neighbours_are_permanent_and_replaced() {
    in_netns(|nl| async move {
        nl.create_veth(HOST_A, TEMP_A, None).await.unwrap();
        let ip4 = "10.65.0.5".parse().unwrap();
        nl.ensure_neighbour(ip4, [0xee, 0xee, 0xee, 0xee, 0xee, 0x01], HOST_A)
            .await
            .unwrap();
        nl.ensure_neighbour(ip4, MAC, HOST_A).await.unwrap();
        nl.ensure_neighbour(ip4, MAC, HOST_A).await.unwrap();
        nl.ensure_neighbour("fd00::5".parse().unwrap(), MAC, HOST_A)
            .await
            .unwrap();
        assert_eq!(
            ip(&["-4", "neigh", "show", "dev", HOST_A]).trim(),
            "10.65.0.5 lladdr ee:ee:ee:ee:ee:ee PERMANENT"
        );
        assert!(ip(&["-6", "neigh", "show", "dev", HOST_A])
            .contains("fd00::5 lladdr ee:ee:ee:ee:ee:ee PERMANENT"));
        assert!(matches!(
            nl.ensure_neighbour(ip4, MAC, HOST_B).await,
            Err(DataplaneError::NoSuchInterface { .. })
        ));
    });
}

#[test]
fn plumb_and_unplumb_end_to_end() {
    in_netns(|nl| async move {
        let id = "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccdddddddddddddddd";
        let id = DockerId::new(id).unwrap();
        let (host, temp) = (host_interface(&id), temp_interface(&id));
        assert_eq!((host.as_str(), temp.as_str()), (HOST_A, TEMP_A));
        nl.create_veth(&host, &temp, None).await.unwrap();
        let addrs = vec![net("10.65.0.5/32"), net("fd00::5/128")];
        let p = WorkloadPlumbing {
            iface: host.clone(),
            addrs: addrs.clone(),
            mac: MAC,
        };

        let bad = WorkloadPlumbing {
            addrs: vec![net("10.65.0.6/32"), net("10.65.0.0/26")],
            ..p.clone()
        };
        assert!(matches!(
            endpoint::plumb(&nl, &bad).await,
            Err(DataplaneError::NotHostRoute { .. })
        ));
        assert!(!sysctl::check_workload_interface(&host).unwrap().is_empty());
        let missing = WorkloadPlumbing {
            iface: HOST_B.into(),
            ..p.clone()
        };
        assert!(matches!(
            endpoint::plumb(&nl, &missing).await,
            Err(DataplaneError::NoSuchInterface { .. })
        ));

        endpoint::plumb(&nl, &p).await.unwrap();
        endpoint::plumb(&nl, &p).await.unwrap();
        let routes = nl.list_routes_on("cali").await.unwrap();
        assert_eq!(routes, [(addrs[0], host.clone()), (addrs[1], host.clone())]);
        assert_eq!(
            ip(&["-4", "neigh", "show", "dev", &host]).trim(),
            "10.65.0.5 lladdr ee:ee:ee:ee:ee:ee PERMANENT"
        );
        assert_eq!(
            sysctl::check_workload_interface(&host).unwrap(),
            Vec::<String>::new()
        );

        endpoint::unplumb(&nl, &host, &addrs).await.unwrap();
        assert!(nl.list_routes_on("").await.unwrap().is_empty());
        assert_eq!(names(&nl.list_links("").await.unwrap()), ["lo"]);
        endpoint::unplumb(&nl, &host, &addrs).await.unwrap();
    });
}

#[test]
fn sysctl_configure_and_detect_drift() {
    in_netns(|nl| async move {
        nl.create_veth(HOST_A, TEMP_A, None).await.unwrap();
        let before = sysctl::check_workload_interface(HOST_A).unwrap();
        assert!(
            before.contains(&"net.ipv4.conf.caliaaaaaaaaaaa.proxy_arp=0 (want 1)".to_string()),
            "{before:?}"
        );
        sysctl::configure_workload_interface(HOST_A).unwrap();
        assert!(sysctl::check_workload_interface(HOST_A).unwrap().is_empty());
        let conf = format!("/proc/sys/net/ipv4/conf/{HOST_A}");
        for (key, want) in [
            ("rp_filter", "1"),
            ("route_localnet", "1"),
            ("proxy_arp", "1"),
            ("forwarding", "1"),
        ] {
            assert_eq!(read_sysctl(&format!("{conf}/{key}")), want, "{key}");
        }
        let v6 = format!("/proc/sys/net/ipv6/conf/{HOST_A}");
        assert_eq!(read_sysctl(&format!("{v6}/proxy_ndp")), "1");
        assert_eq!(read_sysctl(&format!("{v6}/forwarding")), "1");
        let delay = format!("/proc/sys/net/ipv4/neigh/{HOST_A}/proxy_delay");
        assert_eq!(read_sysctl(&delay), "0");

        fs::write(format!("{conf}/proxy_arp"), "0").unwrap();
        fs::write(&delay, "80").unwrap();
        assert_eq!(
            sysctl::check_workload_interface(HOST_A).unwrap(),
            [
                "net.ipv4.conf.caliaaaaaaaaaaa.proxy_arp=0 (want 1)",
                "net.ipv4.neigh.caliaaaaaaaaaaa.proxy_delay=80 (want 0)",
            ]
        );
        sysctl::configure_workload_interface(HOST_A).unwrap();
        assert!(sysctl::check_workload_interface(HOST_A).unwrap().is_empty());

        for result in [
            sysctl::configure_workload_interface(HOST_B).map(|_| ()),
            sysctl::check_workload_interface(HOST_B).map(|_| ()),
        ] {
            match result {
                Err(DataplaneError::NoSuchInterface { name }) => assert_eq!(name, HOST_B),
                other => panic!("{other:?}"),
            }
        }
    });
}

#[test]
fn enable_forwarding_turns_on_both_families() {
    in_netns(|_nl| async move {
        let v4 = "/proc/sys/net/ipv4/ip_forward";
        let v6 = "/proc/sys/net/ipv6/conf/all/forwarding";
        fs::write(v4, "0").unwrap();
        fs::write(v6, "0").unwrap();
        sysctl::enable_forwarding().unwrap();
        sysctl::enable_forwarding().unwrap();
        assert_eq!((read_sysctl(v4), read_sysctl(v6)), ("1".into(), "1".into()));
    });
}

/// Documents which namespace each view follows: `/proc/sys/net` and `/proc/thread-self/net`
/// follow the calling thread, `/proc/self/net` (= `/proc/net`) follows the main thread, and
/// threads spawned after `unshare` inherit the new namespace.
#[test]
fn proc_sys_net_follows_the_calling_thread() {
    const PROBE: &str = "nsprobe0";
    let conf = format!("/proc/sys/net/ipv4/conf/{PROBE}");
    let (created_tx, created_rx) = mpsc::channel();
    let (checked_tx, checked_rx) = mpsc::channel::<()>();
    let inner_conf = conf.clone();
    let worker = thread::spawn(move || {
        enter_new_netns();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let nl = Netlink::connect().unwrap();
            nl.create_veth(PROBE, "nsprobe1", None).await.unwrap();
        });
        assert!(Path::new(&inner_conf).is_dir());
        assert!(fs::read_to_string("/proc/thread-self/net/dev")
            .unwrap()
            .contains(PROBE));
        assert!(!fs::read_to_string("/proc/self/net/dev")
            .unwrap()
            .contains(PROBE));
        let child_conf = inner_conf.clone();
        assert!(thread::spawn(move || Path::new(&child_conf).is_dir())
            .join()
            .unwrap());
        created_tx.send(()).unwrap();
        checked_rx.recv().unwrap();
    });
    if created_rx.recv().is_ok() {
        assert!(!Path::new(&conf).exists());
        checked_tx.send(()).unwrap();
    }
    if let Err(panic) = worker.join() {
        std::panic::resume_unwind(panic);
    }
}
