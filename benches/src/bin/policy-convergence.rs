//! Policy convergence: how long after `calicoctl apply` returns the new verdict is on the wire.
//!
//!   policy-convergence --pid CLIENT_PID --addr SERVER_IP [--port 8080] [--runs 50]
//!                      [--selector "role == 'server'"] -- CALICOCTL [ARGS...]
//!
//! Run by `scripts/bench-policy-convergence`. The policy `bench-convergence` (order 0, types
//! [ingress], selecting the server) has one ingress rule on tcp/PORT whose action alternates
//! between `deny` and `allow`; each change is written with `CALICOCTL ARGS... apply -f -` from
//! this process's own namespaces. When that command returns, the clock starts, and a thread that
//! has entered the client container's network namespace (`setns` on /proc/PID/ns/net) opens a
//! new non-blocking TCP connection to SERVER_IP:PORT every millisecond:
//! - a connection that completes is "allowed" (closed at once with a reset);
//! - one with no answer after 100 ms is "denied" (SYNs are retransmitted only after 1 s).
//!
//! The change has converged at the start of the earliest probe from which every later
//! probe shows the new verdict; probing stops once 10 consecutive probes show it. The figure is
//! that probe's start minus the clock start, so its resolution is about 1 ms, and 0 means the
//! rule was in place before the apply command returned. Probes that showed the new verdict before
//! a later probe still showed the old one are counted as "flaps" and reported.

use std::mem;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use calico_bench::{enter_netns_of, mix, ms, Stats};

/// How often a new probe starts.
const INTERVAL: Duration = Duration::from_millis(1);
/// How long a probe waits for the handshake before it counts as denied.
const DENY_WAIT: Duration = Duration::from_millis(100);
/// Consecutive probes with the new verdict that end a measurement.
const CONFIRM: usize = 10;
/// Give up on one change after this long.
const GIVE_UP: Duration = Duration::from_secs(10);

struct Probe {
    fd: i32,
    start: Instant,
    /// Some(true): connected; Some(false): no answer (or refused).
    result: Option<bool>,
}

struct Outcome {
    latency: Option<Duration>,
    probes: usize,
    flaps: usize,
    refused: usize,
}

fn sockaddr(addr: Ipv4Addr, port: u16) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain data; zero is a valid starting value.
    let mut sa: libc::sockaddr_in = unsafe { mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = port.to_be();
    sa.sin_addr.s_addr = u32::from(addr).to_be();
    sa
}

/// Starts a non-blocking connect; the fd, and whether it completed (or failed) at once.
fn launch(sa: &libc::sockaddr_in) -> (i32, Option<bool>) {
    // SAFETY: plain socket calls on a socket we own.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let rc = libc::connect(
            fd,
            sa as *const libc::sockaddr_in as *const libc::sockaddr,
            mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        if rc == 0 {
            return (fd, Some(true));
        }
        let err = std::io::Error::last_os_error().raw_os_error();
        if err == Some(libc::EINPROGRESS) {
            (fd, None)
        } else {
            (fd, Some(false))
        }
    }
}

/// Closes with a reset (SO_LINGER 0), so no TIME_WAIT piles up.
fn close_reset(fd: i32) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: fd is ours; linger is a valid option value.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            mem::size_of::<libc::linger>() as libc::socklen_t,
        );
        libc::close(fd);
    }
}

fn so_error(fd: i32) -> i32 {
    let mut err: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: valid fd and out-parameters.
    unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        );
    }
    err
}

/// Probes from `t0` until `expected` (true: allowed) is confirmed.
fn measure(sa: &libc::sockaddr_in, t0: Instant, expected: bool) -> Outcome {
    let mut probes: Vec<Probe> = Vec::new();
    let mut next = t0;
    let mut refused = 0;
    let outcome = loop {
        let now = Instant::now();
        if now - t0 > GIVE_UP {
            break Outcome {
                latency: None,
                probes: probes.len(),
                flaps: 0,
                refused,
            };
        }
        if now >= next {
            let (fd, result) = launch(sa);
            if result == Some(false) {
                refused += 1;
            }
            probes.push(Probe {
                fd,
                start: now,
                result,
            });
            next += INTERVAL;
            if next < now {
                next = now + INTERVAL;
            }
        }
        // Wait for handshakes until the next launch.
        let pending: Vec<usize> = (0..probes.len())
            .filter(|&i| probes[i].result.is_none())
            .collect();
        let mut fds: Vec<libc::pollfd> = pending
            .iter()
            .map(|&i| libc::pollfd {
                fd: probes[i].fd,
                events: libc::POLLOUT,
                revents: 0,
            })
            .collect();
        let wait = next.saturating_duration_since(Instant::now());
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: wait.as_nanos().min(999_999_999) as libc::c_long,
        };
        // SAFETY: fds is a valid array of pollfd.
        unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            )
        };
        let now = Instant::now();
        for (k, &i) in pending.iter().enumerate() {
            let p = &mut probes[i];
            if fds[k].revents != 0 {
                let err = so_error(p.fd);
                p.result = Some(err == 0);
                if err != 0 {
                    refused += 1;
                }
                close_reset(p.fd);
                p.fd = -1;
            } else if now - p.start > DENY_WAIT {
                p.result = Some(false);
                close_reset(p.fd);
                p.fd = -1;
            }
        }
        for p in probes
            .iter_mut()
            .filter(|p| p.result.is_some() && p.fd >= 0)
        {
            close_reset(p.fd);
            p.fd = -1;
        }
        // The resolved prefix, in start order.
        let resolved = probes
            .iter()
            .position(|p| p.result.is_none())
            .unwrap_or(probes.len());
        let prefix = &probes[..resolved];
        let from = prefix
            .iter()
            .rposition(|p| p.result != Some(expected))
            .map_or(0, |j| j + 1);
        if resolved - from >= CONFIRM {
            let flaps = prefix[..from]
                .iter()
                .filter(|p| p.result == Some(expected))
                .count();
            break Outcome {
                latency: Some(prefix[from].start.saturating_duration_since(t0)),
                probes: probes.len(),
                flaps,
                refused,
            };
        }
    };
    for p in probes.iter().filter(|p| p.fd >= 0) {
        close_reset(p.fd);
    }
    outcome
}

fn policy_yaml(selector: &str, port: u16, action: &str) -> String {
    format!(
        "- apiVersion: v1\n  kind: policy\n  metadata:\n    name: bench-convergence\n  spec:\n    order: 0\n    selector: \"{selector}\"\n    types: [ingress]\n    ingress:\n    - action: {action}\n      protocol: tcp\n      destination:\n        ports: [{port}]\n"
    )
}

fn calicoctl_apply(ctl: &[String], yaml: &str) -> Duration {
    let t0 = Instant::now();
    let mut child = Command::new(&ctl[0])
        .args(&ctl[1..])
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn calicoctl");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(yaml.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let took = t0.elapsed();
    assert!(
        out.status.success(),
        "calicoctl apply failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn main() {
    let mut pid = None;
    let mut addr: Option<Ipv4Addr> = None;
    let mut port = 8080u16;
    let mut runs = 50usize;
    let mut selector = "role == 'server'".to_string();
    let mut ctl = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--pid" => pid = Some(it.next().unwrap().parse::<u32>().unwrap()),
            "--addr" => addr = Some(it.next().unwrap().parse().unwrap()),
            "--port" => port = it.next().unwrap().parse().unwrap(),
            "--runs" => runs = it.next().unwrap().parse().unwrap(),
            "--selector" => selector = it.next().unwrap(),
            "--" => {
                ctl = it.by_ref().collect();
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let pid = pid.expect("--pid");
    let sa = sockaddr(addr.expect("--addr"), port);
    assert!(!ctl.is_empty(), "give the calicoctl command after --");

    // The probing thread lives in the client's network namespace.
    let (req_tx, req_rx) = mpsc::channel::<(Instant, bool)>();
    let (res_tx, res_rx) = mpsc::channel::<Outcome>();
    let prober = thread::spawn(move || {
        enter_netns_of(pid);
        for (t0, expected) in req_rx {
            if res_tx.send(measure(&sa, t0, expected)).is_err() {
                break;
            }
        }
    });

    // Start from "allowed", not measured.
    calicoctl_apply(&ctl, &policy_yaml(&selector, port, "allow"));
    req_tx.send((Instant::now(), true)).unwrap();
    let warm = res_rx.recv().unwrap();
    assert!(
        warm.latency.is_some(),
        "the flow is not allowed at the start"
    );
    thread::sleep(Duration::from_millis(300));

    let mut all = Vec::new();
    let mut by_verdict: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut applies = Vec::new();
    let (mut flaps, mut refused, mut failed) = (0, 0, 0);
    for run in 0..runs {
        let expected = run % 2 == 1; // deny first, then allow, ...
        let action = if expected { "allow" } else { "deny" };
        let took = calicoctl_apply(&ctl, &policy_yaml(&selector, port, action));
        let t0 = Instant::now();
        req_tx.send((t0, expected)).unwrap();
        let out = res_rx.recv().unwrap();
        applies.push(took);
        flaps += out.flaps;
        refused += out.refused;
        match out.latency {
            Some(l) => {
                all.push(l);
                by_verdict[expected as usize].push(l);
                println!(
                    "run {run:3}: {action:5} calicoctl apply {} ms, converged {} ms after it returned ({} probes, {} flaps)",
                    ms(took),
                    ms(l),
                    out.probes,
                    out.flaps
                );
            }
            None => {
                failed += 1;
                println!("run {run:3}: {action:5} did not converge within {GIVE_UP:?}");
            }
        }
        // Settle, with a little jitter so changes do not phase-lock with anything periodic.
        thread::sleep(Duration::from_millis(200 + mix(run as u64) % 50));
    }
    drop(req_tx);
    let _ = prober.join();

    let line = |what: &str, v: &[Duration]| {
        if v.is_empty() {
            println!("{what}: no samples");
            return;
        }
        let s = Stats::of(v);
        println!(
            "{what}: n={} median {} ms, p90 {} ms, p99 {} ms, min {} ms, max {} ms",
            s.n,
            ms(s.median),
            ms(s.p90),
            ms(s.p99),
            ms(s.min),
            ms(s.max)
        );
    };
    println!("---");
    line(
        "convergence after calicoctl apply returned, all changes",
        &all,
    );
    line("  allow -> deny", &by_verdict[0]);
    line("  deny -> allow", &by_verdict[1]);
    line("calicoctl apply itself", &applies);
    println!("did not converge: {failed}; flaps: {flaps}; refused/errored probes: {refused}");
}
