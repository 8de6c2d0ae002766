//! From `docker run` returning to the new container being reachable from another host.
//!
//!   run-to-reachable --probe-pid CLIENT_PID --first-ip IP [--runs 25] [--port 8080]
//!                    [--name-prefix reach-] [--probe-after-return]
//!                    -- DOCKER [ARGS...] run -d --net NET
//!
//! Run by `scripts/bench-run-to-reachable`. For run i, the container gets the fixed address
//! FIRST_IP + i (`--ip`, on a network whose subnet is an IP pool) and runs a TCP listener on
//! PORT from its first instant (busybox `nc -ll`). The probing thread, in the network namespace
//! of CLIENT_PID (a container on another host), starts connecting to that address every
//! millisecond just before `docker run` starts (`calico_bench::tcp_probe`). The figure is the
//! start of the earliest probe from which every later probe connected, minus the moment
//! `docker run` returned; 0 means the container was reachable before `docker run` returned.
//! It covers the workload endpoint write, the policy on the container's host and the route.
//! With `--probe-after-return` probing starts only once `docker run` has returned, so early
//! probes cannot leave state behind (on a bridge, a failed ARP resolution of the address is
//! retried only about a second later).

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use calico_bench::tcp_probe::{Prober, GIVE_UP};
use calico_bench::{ms, stats_line};

fn main() {
    let mut pid = None;
    let mut first: Option<Ipv4Addr> = None;
    let mut runs = 25usize;
    let mut port = 8080u16;
    let mut prefix = "reach-".to_string();
    let mut after_return = false;
    let mut docker = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--probe-pid" => pid = Some(it.next().unwrap().parse::<u32>().unwrap()),
            "--first-ip" => first = Some(it.next().unwrap().parse().unwrap()),
            "--runs" => runs = it.next().unwrap().parse().unwrap(),
            "--port" => port = it.next().unwrap().parse().unwrap(),
            "--name-prefix" => prefix = it.next().unwrap(),
            "--probe-after-return" => after_return = true,
            "--" => docker = it.by_ref().collect(),
            other => panic!("unknown argument {other}"),
        }
    }
    let pid = pid.expect("--probe-pid");
    let first = u32::from(first.expect("--first-ip"));
    assert!(!docker.is_empty(), "give the docker run command after --");

    let mut reachable = Vec::new();
    let mut returned = Vec::new();
    let mut failed = 0;
    for run in 0..runs {
        let ip = Ipv4Addr::from(first + run as u32);
        let prober = Prober::start(pid, ip, port);
        let t0 = Instant::now();
        if !after_return {
            prober.begin(t0, true);
        }
        let out = Command::new(&docker[0])
            .args(&docker[1..])
            .args(["--ip", &ip.to_string(), "--name", &format!("{prefix}{run}")])
            .args([
                "busybox",
                "nc",
                "-ll",
                "-p",
                &port.to_string(),
                "-e",
                "echo",
                "ok",
            ])
            .output()
            .expect("docker runs");
        let back = t0.elapsed();
        assert!(
            out.status.success(),
            "docker run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if after_return {
            prober.begin(t0 + back, true);
        }
        let outcome = prober.outcome();
        prober.stop();
        returned.push(back);
        match outcome.latency {
            Some(l) => {
                let after = if after_return {
                    l
                } else {
                    l.saturating_sub(back)
                };
                reachable.push(after);
                println!(
                    "run {run:3}: {ip} docker run returned after {} ms, reachable {} ms after that",
                    ms(back),
                    ms(after)
                );
            }
            None => {
                failed += 1;
                println!("run {run:3}: {ip} not reachable within {GIVE_UP:?}");
            }
        }
    }
    let line = |what: &str, v: &[Duration]| println!("{}", stats_line(what, v));
    println!("---");
    line(
        "reachable from the prober after docker run returned",
        &reachable,
    );
    line("docker run itself", &returned);
    println!("not reachable: {failed}");
}
