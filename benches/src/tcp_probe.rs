//! TCP reachability probes on the wire: a new non-blocking connection every millisecond from a
//! thread inside a container's network namespace.
//!
//! - a connection that completes is "allowed" (closed at once with a reset);
//! - one with no answer after 100 ms is "denied" (SYNs are retransmitted only after 1 s);
//! - a refused or failed one counts as not connected.
//!
//! A measurement has converged at the start of the earliest probe from which every later probe
//! shows the expected verdict; probing stops once 10 consecutive probes show it. Its resolution
//! is about 1 ms.

use std::mem;
use std::net::Ipv4Addr;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::enter_netns_of;

/// How often a new probe starts.
pub const INTERVAL: Duration = Duration::from_millis(1);
/// How long a probe waits for the handshake before it counts as denied.
pub const DENY_WAIT: Duration = Duration::from_millis(100);
/// Consecutive probes with the new verdict that end a measurement.
pub const CONFIRM: usize = 10;
/// Give up on one change after this long.
pub const GIVE_UP: Duration = Duration::from_secs(10);

struct Probe {
    fd: i32,
    start: Instant,
    /// Some(true): connected; Some(false): no answer (or refused).
    result: Option<bool>,
}

/// What one measurement saw.
pub struct Outcome {
    /// From the clock start to the start of the earliest probe from which every later probe
    /// showed the expected verdict; `None` if that did not happen within [`GIVE_UP`].
    pub latency: Option<Duration>,
    /// Probes started.
    pub probes: usize,
    /// Probes that showed the expected verdict before a later one still showed the old one.
    pub flaps: usize,
    /// Probes refused or failed with an error (counted as not connected).
    pub refused: usize,
}

/// An IPv4 socket address for `connect`.
pub fn sockaddr(addr: Ipv4Addr, port: u16) -> libc::sockaddr_in {
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

/// Probes from `t0` until `expected` (true: connections complete) is confirmed.
pub fn measure(sa: &libc::sockaddr_in, t0: Instant, expected: bool) -> Outcome {
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

/// A probing thread in the network namespace of process `pid`, toward one address.
pub struct Prober {
    requests: mpsc::Sender<(Instant, bool)>,
    results: mpsc::Receiver<Outcome>,
    thread: thread::JoinHandle<()>,
}

impl Prober {
    /// Starts the thread; it enters the namespace of `pid` and waits for requests.
    pub fn start(pid: u32, addr: Ipv4Addr, port: u16) -> Prober {
        let sa = sockaddr(addr, port);
        let (requests, req_rx) = mpsc::channel::<(Instant, bool)>();
        let (res_tx, results) = mpsc::channel::<Outcome>();
        let thread = thread::spawn(move || {
            enter_netns_of(pid);
            for (t0, expected) in req_rx {
                if res_tx.send(measure(&sa, t0, expected)).is_err() {
                    break;
                }
            }
        });
        Prober {
            requests,
            results,
            thread,
        }
    }

    /// Starts a measurement from `t0` (see [`measure`]); [`Prober::outcome`] returns it.
    pub fn begin(&self, t0: Instant, expected: bool) {
        self.requests
            .send((t0, expected))
            .expect("the probing thread is running");
    }

    /// Waits for the measurement [`Prober::begin`] started.
    pub fn outcome(&self) -> Outcome {
        self.results.recv().expect("the probing thread answers")
    }

    /// Stops the thread.
    pub fn stop(self) {
        drop(self.requests);
        let _ = self.thread.join();
    }
}
