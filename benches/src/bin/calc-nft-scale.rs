//! Calculation graph + nftables at scale.
//!
//!   calc-nft-scale --endpoints N --policies P [--local 100] [--nodes 50] [--reps 25]
//!                  [--full-reps 5]
//!   calc-nft-scale --endpoints N --policies P --node-rss target/release/calico-node
//!
//! First form, in one process: builds a synthetic cluster (see `calico_bench::Shape`) into a
//! `CalcGraph` for host `bench-node`, then on a thread moved into a fresh network namespace
//! (never the host's) loads the table with the real `nft` and measures, per change scenario,
//! `upsert` + `take_changes` (calc), `render_changes` (render) and `nft -f -` of that text
//! (apply), `--reps` times each, alternating the change and its undo; then the full resync
//! (`render_full` + `nft -f -`) and the read-back check (`Nft::in_sync`). Memory: this
//! process's VmRSS/VmHWM from /proc/self/status.
//!
//! Second form: writes the same cluster into a fresh SQLite datastore with `ResourceStore`,
//! starts calico-node on it in a fresh network namespace (`unshare -n`), waits for
//! `nftables table programmed from the datastore`, reads its VmRSS/VmHWM then and after two
//! periodic resyncs (CALICO_DATAPLANE_RESYNC_INTERVAL_SECS=5), and stops it.

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use calico_bench::{ms, resource, unshare_net, vm_kb, EpLabels, Shape, Stats, APPS, TIERS};
use calico_calc::{CalcGraph, Changes};
use calico_dataplane::nft::{render_changes, render_full, Nft, TxSize, NFT_PROGRAM};
use calico_model::Resource;

struct Args {
    shape: Shape,
    reps: usize,
    full_reps: usize,
    node_rss: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        shape: Shape {
            endpoints: 1000,
            local: 100,
            nodes: 50,
            policies: 100,
            node: "bench-node".into(),
        },
        reps: 25,
        full_reps: 5,
        node_rss: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--endpoints" => a.shape.endpoints = val().parse().unwrap(),
            "--policies" => a.shape.policies = val().parse().unwrap(),
            "--local" => a.shape.local = val().parse().unwrap(),
            "--nodes" => a.shape.nodes = val().parse().unwrap(),
            "--reps" => a.reps = val().parse().unwrap(),
            "--full-reps" => a.full_reps = val().parse().unwrap(),
            "--node-rss" => a.node_rss = Some(val()),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// `nft -f -` with `text`, exactly as `Nft` runs it (stdin written on its own thread).
fn nft_apply(text: &str) -> Duration {
    let t0 = Instant::now();
    let mut child = Command::new(NFT_PROGRAM)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nft");
    let stdin = child.stdin.take();
    let out = thread::scope(|s| {
        s.spawn(move || {
            if let Some(mut stdin) = stdin {
                let _ = stdin.write_all(text.as_bytes());
            }
        });
        child.wait_with_output().expect("wait for nft")
    });
    let elapsed = t0.elapsed();
    assert!(
        out.status.success(),
        "nft -f failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn mem_line(what: &str) {
    println!(
        "memory {what}: VmRSS {} kB, VmHWM {} kB",
        vm_kb("self", "VmRSS").unwrap_or(0),
        vm_kb("self", "VmHWM").unwrap_or(0)
    );
}

fn summary(changes: &Changes) -> String {
    let added: usize = changes.members_added.values().map(|s| s.len()).sum();
    let removed: usize = changes.members_removed.values().map(|s| s.len()).sum();
    format!(
        "sets +{}/-{}, members +{added}/-{removed} in {}/{} sets, policies ~{}/-{}, profiles ~{}, endpoints ~{}",
        changes.sets_created.len(),
        changes.sets_deleted.len(),
        changes.members_added.len(),
        changes.members_removed.len(),
        changes.policies_changed.len(),
        changes.policies_removed.len(),
        changes.profiles_changed.len(),
        changes.endpoints_changed.len(),
    )
}

/// Applies `forward` / `back` alternately `reps` times, timing calc, render and nft apply.
fn scenario(name: &str, graph: &mut CalcGraph, reps: usize, forward: &Resource, back: &Resource) {
    let (mut calc, mut render, mut apply, mut total) = (vec![], vec![], vec![], vec![]);
    let mut sizes = Vec::new();
    let mut first_summary = String::new();
    for rep in 0..reps {
        let r = if rep % 2 == 0 { forward } else { back }.clone();
        let t0 = Instant::now();
        graph.upsert(r);
        let changes = graph.take_changes();
        let t1 = Instant::now();
        let text = render_changes(graph.desired(), &changes);
        let t2 = Instant::now();
        assert!(!text.is_empty(), "{name}: the change changed nothing");
        let nft = nft_apply(&text);
        if rep == 0 {
            first_summary = summary(&changes);
        }
        calc.push(t1 - t0);
        render.push(t2 - t1);
        apply.push(nft);
        total.push(t2 - t0 + nft);
        sizes.push(TxSize::of(&text));
    }
    let (bmin, bmax) = (
        sizes.iter().map(|s| s.bytes).min().unwrap(),
        sizes.iter().map(|s| s.bytes).max().unwrap(),
    );
    let (lmin, lmax) = (
        sizes.iter().map(|s| s.lines).min().unwrap(),
        sizes.iter().map(|s| s.lines).max().unwrap(),
    );
    println!("scenario {name}: {first_summary}");
    println!("  transaction: {bmin}..{bmax} bytes, {lmin}..{lmax} lines");
    for (what, v) in [
        ("calc (upsert+take_changes)", &calc),
        ("render_changes", &render),
        ("nft -f apply", &apply),
        ("total calc+render+apply", &total),
    ] {
        let s = Stats::of(v);
        println!(
            "  {what}: n={} median {} ms, p90 {} ms, min {} ms, max {} ms",
            s.n,
            ms(s.median),
            ms(s.p90),
            ms(s.min),
            ms(s.max)
        );
    }
}

fn run_in_process(a: &Args) {
    let shape = a.shape.clone();
    println!(
        "shape: {} endpoints ({} local on {}, rest over {} nodes), {} policies, {} profiles",
        shape.endpoints,
        (0..shape.endpoints).filter(|&i| shape.is_local(i)).count(),
        shape.node,
        shape.nodes,
        shape.policies,
        calico_bench::PROFILES
    );
    mem_line("at start");
    let mut graph = CalcGraph::new(&shape.node);
    let t0 = Instant::now();
    shape.for_each_resource(|r| graph.upsert(r));
    graph.take_changes();
    let build = t0.elapsed();
    {
        let d = graph.desired();
        let members: usize = d.ip_sets.values().map(|s| s.len()).sum();
        println!(
            "initial load (decode+upsert of every resource, take_changes): {} ms",
            ms(build)
        );
        println!(
            "desired: {} endpoints, {} policies, {} profiles, {} ip sets with {} members",
            d.endpoints.len(),
            d.policies.len(),
            d.profiles.len(),
            d.ip_sets.len(),
            members
        );
    }
    mem_line("with calc graph + desired state built");

    // Scenario inputs.
    let policy_index: usize = {
        let name = graph
            .desired()
            .policies
            .keys()
            .next()
            .expect("an active policy")
            .clone();
        name.trim_start_matches("pol-").parse().unwrap()
    };
    let base = Shape::policy_port(policy_index);
    let pol_fwd = resource(&shape.policy_json(policy_index, base + 1000));
    let pol_back = resource(&shape.policy_json(policy_index, base));
    let remote = (0..shape.endpoints)
        .find(|&i| !shape.is_local(i) && shape.labels(i).tier == 0)
        .expect("a remote frontend endpoint");
    let local = (0..shape.endpoints).find(|&i| shape.is_local(i)).unwrap();
    let relabel = |i: usize| {
        let l = shape.labels(i);
        let moved = EpLabels {
            app: (l.app + 1) % APPS,
            ..l
        };
        (
            resource(&shape.endpoint_json(i, moved)),
            resource(&shape.endpoint_json(i, l)),
        )
    };
    let (remote_fwd, remote_back) = relabel(remote);
    let (local_fwd, local_back) = relabel(local);
    println!(
        "policy change: pol-{policy_index:04} first ingress rule port {base} <-> {}",
        base + 1000
    );
    println!(
        "remote endpoint change: ep{remote:06} (tier {}) app-{} <-> app-{}",
        TIERS[shape.labels(remote).tier],
        shape.labels(remote).app,
        (shape.labels(remote).app + 1) % APPS
    );
    println!(
        "local endpoint change: ep{local:06} app-{} <-> app-{}",
        shape.labels(local).app,
        (shape.labels(local).app + 1) % APPS
    );

    let reps = a.reps;
    let full_reps = a.full_reps;
    let worker = thread::spawn(move || {
        unshare_net();
        let nft = Nft::new();
        assert!(nft.read_back().unwrap().is_none(), "not a fresh namespace");

        let (mut render_t, mut apply_t) = (vec![], vec![]);
        let mut full_size = TxSize::default();
        for _ in 0..full_reps {
            let t0 = Instant::now();
            let text = render_full(graph.desired());
            render_t.push(t0.elapsed());
            full_size = TxSize::of(&text);
            apply_t.push(nft_apply(&text));
        }
        let first_load = apply_t[0];
        println!(
            "full table: {} bytes, {} lines; first load into the empty namespace: nft {} ms",
            full_size.bytes,
            full_size.lines,
            ms(first_load)
        );
        let total: Vec<Duration> = render_t
            .iter()
            .zip(&apply_t)
            .map(|(r, a)| *r + *a)
            .collect();
        for (what, v) in [
            ("render_full", &render_t[..]),
            (
                "nft -f full replace (resync write; excl. first load)",
                &apply_t[1..],
            ),
            ("full resync render+apply (excl. first load)", &total[1..]),
        ] {
            if v.is_empty() {
                continue;
            }
            let s = Stats::of(v);
            println!(
                "  {what}: n={} median {} ms, min {} ms, max {} ms",
                s.n,
                ms(s.median),
                ms(s.min),
                ms(s.max)
            );
        }
        mem_line("after render_full + nft apply (full table)");
        let mut check_t = vec![];
        for _ in 0..full_reps.max(1) {
            let t0 = Instant::now();
            assert!(nft.in_sync(graph.desired()).unwrap());
            check_t.push(t0.elapsed());
        }
        let s = Stats::of(&check_t);
        println!(
            "  read-back check (Nft::in_sync, in sync): n={} median {} ms",
            s.n,
            ms(s.median)
        );
        mem_line("after read-back checks (Nft::in_sync)");

        scenario(
            "policy rule port change",
            &mut graph,
            reps,
            &pol_fwd,
            &pol_back,
        );
        assert!(
            nft.in_sync(graph.desired()).unwrap(),
            "drift after policy changes"
        );
        scenario(
            "remote endpoint label change",
            &mut graph,
            reps,
            &remote_fwd,
            &remote_back,
        );
        assert!(
            nft.in_sync(graph.desired()).unwrap(),
            "drift after remote changes"
        );
        scenario(
            "local endpoint label change",
            &mut graph,
            reps,
            &local_fwd,
            &local_back,
        );
        assert!(
            nft.in_sync(graph.desired()).unwrap(),
            "drift after local changes"
        );
        println!("table read back in sync with the desired state after every scenario");
        mem_line("at end");
    });
    worker.join().expect("worker");
}

fn run_node(a: &Args, bin: &str) {
    let shape = a.shape.clone();
    let dir = std::env::temp_dir().join(format!("calico-bench-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("plugins")).unwrap();
    let db = dir.join("calico.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let t0 = Instant::now();
    let mut count = 0usize;
    rt.block_on(async {
        let ds = calico_store::SqliteStore::open(&db).expect("open sqlite");
        let store = calico_store::resources::ResourceStore::new(Arc::new(ds));
        let mut all = Vec::new();
        shape.for_each_resource(|r| all.push(r));
        for r in &all {
            store.create(r).await.expect("create");
            count += 1;
        }
    });
    println!(
        "wrote {count} resources to {} in {:.1} s",
        db.display(),
        t0.elapsed().as_secs_f64()
    );
    let t0 = Instant::now();
    let mut child = Command::new("unshare")
        .args(["--net", "--", bin])
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("DATASTORE_TYPE", "sqlite")
        .env("SQLITE_PATH", &db)
        .env("NODENAME", &shape.node)
        .env("IP", "10.0.0.1/24")
        .env("CALICO_PLUGIN_DIR", dir.join("plugins"))
        .env("DOCKER_HOST", "unix:///nonexistent")
        .env("CALICO_DATAPLANE_RESYNC_INTERVAL_SECS", "5")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start calico-node");
    let pid = child.id().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = thread::spawn(move || {
        let mut log = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("nftables table programmed from the datastore")
                || line.contains("nftables table already matches")
            {
                let _ = tx.send(());
            }
            log.push(line);
        }
        log
    });
    let ready = rx.recv_timeout(Duration::from_secs(300)).is_ok();
    let startup = t0.elapsed();
    if ready {
        println!(
            "calico-node: table programmed {:.2} s after start",
            startup.as_secs_f64()
        );
        // The agent reads the table back (nft -j list) on every resync; with the interval set to
        // 5 s, the 12 s sample comes after two of them.
        for (label, wait) in [
            ("when programmed", 0),
            ("+3 s", 3),
            ("+12 s (after 2 resyncs)", 9),
        ] {
            thread::sleep(Duration::from_secs(wait));
            println!(
                "  {label}: VmRSS {} kB, VmHWM {} kB",
                vm_kb(&pid, "VmRSS").unwrap_or(0),
                vm_kb(&pid, "VmHWM").unwrap_or(0)
            );
        }
    } else {
        println!("calico-node did not program its table within 300 s");
    }
    // SAFETY: signalling the child we started, by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let log = reader.join().unwrap();
    {
        for line in log.iter().rev().take(20).rev() {
            println!("  log: {line}");
        }
    }
    let warnings = log
        .iter()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .count();
    println!(
        "calico-node log: {} lines, {warnings} WARN/ERROR lines",
        log.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let a = args();
    match a.node_rss.clone() {
        Some(bin) => run_node(&a, &bin),
        None => run_in_process(&a),
    }
}
