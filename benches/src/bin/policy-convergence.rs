//! Policy convergence: how long after `calicoctl apply` returns the new verdict is on the wire,
//! on every host at once.
//!
//!   policy-convergence --probe CLIENT_PID:SERVER_IP [--probe ...] [--port 8080] [--runs 50]
//!                      [--selector "role == 'server'"] -- CALICOCTL [ARGS...]
//!
//! Run by `scripts/bench-policy-convergence`. The policy `bench-convergence` (order 0, types
//! [ingress], selecting the servers) has one ingress rule on tcp/PORT whose action alternates
//! between `deny` and `allow`; each change is written with `CALICOCTL ARGS... apply -f -` from
//! this process's own namespaces. When that command returns, the clock starts, and for each
//! `--probe`, a thread in the client container's network namespace probes SERVER_IP:PORT with a
//! new TCP connection every millisecond (`calico_bench::tcp_probe`). With servers on several
//! hosts, a change has converged when it has on every one of them: the figure is the largest of
//! the probes' figures. 0 means the rule was in place before the apply command returned.
//! Probes that showed the new verdict before a later probe still showed the old one are counted
//! as "flaps" and reported.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use calico_bench::tcp_probe::{Prober, GIVE_UP};
use calico_bench::{mix, ms, stats_line};

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

/// `PID:IP` of a `--probe`.
fn probe_arg(text: &str) -> (u32, Ipv4Addr) {
    let (pid, ip) = text
        .split_once(':')
        .unwrap_or_else(|| panic!("--probe {text}: expected CLIENT_PID:SERVER_IP"));
    (
        pid.parse().expect("--probe: a pid"),
        ip.parse().expect("--probe: an IPv4 address"),
    )
}

fn main() {
    let mut probes = Vec::new();
    let mut port = 8080u16;
    let mut runs = 50usize;
    let mut selector = "role == 'server'".to_string();
    let mut ctl = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--probe" => probes.push(probe_arg(&it.next().expect("--probe PID:IP"))),
            "--port" => port = it.next().unwrap().parse().unwrap(),
            "--runs" => runs = it.next().unwrap().parse().unwrap(),
            "--selector" => selector = it.next().unwrap(),
            "--" => {
                ctl = it.by_ref().collect();
            }
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(!probes.is_empty(), "give at least one --probe PID:IP");
    assert!(!ctl.is_empty(), "give the calicoctl command after --");
    let probers: Vec<Prober> = probes
        .iter()
        .map(|(pid, addr)| Prober::start(*pid, *addr, port))
        .collect();

    // Start from "allowed", not measured.
    calicoctl_apply(&ctl, &policy_yaml(&selector, port, "allow"));
    let t0 = Instant::now();
    probers.iter().for_each(|p| p.begin(t0, true));
    for (p, (_, addr)) in probers.iter().zip(&probes) {
        assert!(
            p.outcome().latency.is_some(),
            "the flow to {addr} is not allowed at the start"
        );
    }
    thread::sleep(Duration::from_millis(300));

    let mut all = Vec::new();
    let mut by_verdict: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut per_probe: Vec<Vec<Duration>> = vec![Vec::new(); probers.len()];
    let mut applies = Vec::new();
    let (mut flaps, mut refused, mut failed) = (0, 0, 0);
    for run in 0..runs {
        let expected = run % 2 == 1; // deny first, then allow, ...
        let action = if expected { "allow" } else { "deny" };
        let took = calicoctl_apply(&ctl, &policy_yaml(&selector, port, action));
        let t0 = Instant::now();
        probers.iter().for_each(|p| p.begin(t0, expected));
        let outcomes: Vec<_> = probers.iter().map(Prober::outcome).collect();
        applies.push(took);
        let mut slowest = Some(Duration::ZERO);
        let mut probes_started = 0;
        for (k, out) in outcomes.iter().enumerate() {
            flaps += out.flaps;
            refused += out.refused;
            probes_started += out.probes;
            match out.latency {
                Some(l) => {
                    per_probe[k].push(l);
                    slowest = slowest.map(|s| s.max(l));
                }
                None => slowest = None,
            }
        }
        match slowest {
            Some(l) => {
                all.push(l);
                by_verdict[expected as usize].push(l);
                let each: Vec<String> = outcomes
                    .iter()
                    .map(|o| o.latency.map(ms).unwrap_or_default())
                    .collect();
                println!(
                    "run {run:3}: {action:5} calicoctl apply {} ms, converged everywhere {} ms after it returned (per probe: {} ms; {probes_started} probes)",
                    ms(took),
                    ms(l),
                    each.join(", ")
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
    probers.into_iter().for_each(Prober::stop);

    let line = |what: &str, v: &[Duration]| println!("{}", stats_line(what, v));
    println!("---");
    line(
        "convergence after calicoctl apply returned (slowest probe), all changes",
        &all,
    );
    line("  allow -> deny", &by_verdict[0]);
    line("  deny -> allow", &by_verdict[1]);
    for ((_, addr), v) in probes.iter().zip(&per_probe) {
        line(&format!("  probe to {addr}"), v);
    }
    line("calicoctl apply itself", &applies);
    println!("did not converge: {failed}; flaps: {flaps}; refused/errored probes: {refused}");
}
