//! The Chord paper's curves at its scale, from the pure core on the
//! in-memory network in virtual time (tests/support/chord_sim.rs).
//!
//! 1. Path length: rings of 2^6 … 2^14 nodes grown by joins, settled, with
//!    their fingers filled; the mean, 1st and 99th percentile of the hops of
//!    random lookups against ½·log2 N (the paper's Fig. 10).
//! 2. Lookups under churn: in one ring, nodes join and fail at a rate of
//!    x failures (and as many joins) per stabilization period while random
//!    lookups run; the share of lookups that did not end at the key's live
//!    successor against x (the paper's Fig. 13, whose 0.05–0.1 failures
//!    per second with 30 s stabilization are x = 1.5–3).
//!
//! For each ring: heap bytes per simulated node (counted by this binary's
//! allocator, per thread), and wall and CPU time per simulated node. The figures go
//! to stdout, and as a plot to `target/chord_paper.svg` (path printed).
//!
//! `cargo bench --bench chord_paper`. Knobs: `SONGSWARM_PAPER_MAX_LOG` (14),
//! `SONGSWARM_PAPER_LOOKUPS` (2,000 per ring), `SONGSWARM_PAPER_CHURN_NODES`
//! (1,024), `SONGSWARM_PAPER_CHURN_LOOKUPS` (10,000 per rate),
//! `SONGSWARM_PAPER_THREADS` (2).

#[path = "../tests/support/chord_sim.rs"]
mod chord_sim;
#[path = "support/paper_plot.rs"]
mod paper_plot;
#[path = "../tests/support/sim_lookups.rs"]
mod sim_lookups;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chord_sim::{ideal_ring, Sim};
use paper_plot::{ChurnPoint, HopsPoint};
use songswarm::config::ChordConfig;

/// The global allocator, counting the bytes each thread holds: one
/// simulation runs on one thread, so its count is its memory.
struct Counting;

thread_local! {
    /// Bytes allocated minus bytes freed by this thread.
    static HELD: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = HELD.try_with(|h| h.set(h.get() + delta));
}

// SAFETY: every call is passed on to the system allocator unchanged; the
// count is a thread-local integer that allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        count(-(layout.size() as isize));
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn held() -> isize {
    HELD.with(|h| h.get())
}

/// CPU time this thread has used: on a shared machine the wall clock also
/// counts other processes' turns.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the struct we pass.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
    if !ok {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The simulations' timers, with partition healing slowed down: these
/// rings are never cut, and its self-lookups would only add traffic.
fn config() -> ChordConfig {
    ChordConfig {
        rejoin_interval: Duration::from_secs(600),
        ..chord_sim::sim_config()
    }
}

/// Grow a ring to `n` nodes by joins through random members, each round
/// adding as many as a quarter of the ring (bigger batches crowd into the
/// same gaps and take longer to settle), then wait for the ideal ring and for
/// the fingers to catch up.
fn grow(sim: &mut Sim, n: usize) {
    sim.add_node(None);
    while sim.nodes.len() < n {
        let batch = (sim.nodes.len() / 4).clamp(1, n - sim.nodes.len());
        for _ in 0..batch {
            let via = sim.any_member();
            sim.add_node(via);
        }
        sim.run_for(Duration::from_millis(500), |_| Ok(()));
    }
    while let Err(why) = ideal_ring(sim) {
        assert!(
            sim.t() < 3600.0,
            "seed {}: no ideal ring of {n} after an hour: {why}",
            sim.seed
        );
        sim.run_for(Duration::from_secs(1), |_| Ok(()));
    }
    // One finger per tick: a sweep needs about log2 N lookups.
    let ticks = 2 * (usize::BITS - n.leading_zeros());
    sim.run_for(sim.config.fix_finger_interval * ticks, |_| Ok(()));
}

/// Path length in a ring of 2^log nodes.
fn hops_point(log: u32, lookups: usize) -> HopsPoint {
    let n = 1usize << log;
    let wall = Instant::now();
    let cpu = thread_cpu();
    let before = held();
    let mut sim = Sim::new(u64::from(log), config());
    sim.drop_rate = 0.0;
    grow(&mut sim, n);
    let bytes = (held() - before).max(0) as f64 / n as f64;
    let built = wall.elapsed();
    let virtual_s = sim.t();
    let stats = sim.lookup_batch(lookups, Duration::from_secs(60), |_| Ok(()));
    assert_eq!(
        stats.right, stats.asked,
        "2^{log} nodes: every lookup in a settled ring is right: {stats:?}"
    );
    let mut hops = stats.hops.clone();
    hops.sort_unstable();
    let pick = |p: f64| hops[((hops.len() - 1) as f64 * p).round() as usize];
    HopsPoint {
        log,
        mean: hops.iter().map(|&h| f64::from(h)).sum::<f64>() / hops.len() as f64,
        p1: pick(0.01),
        p99: pick(0.99),
        bytes_per_node: bytes,
        wall_per_node: wall.elapsed() / n as u32,
        cpu_per_node: (thread_cpu() - cpu) / n as u32,
        built,
        virtual_s,
    }
}

/// Lookups under churn of `x` failures per stabilization period.
fn churn_point(n: usize, x: f64, lookups: usize) -> ChurnPoint {
    let wall = Instant::now();
    let mut sim = Sim::new(1000 + (x * 100.0) as u64, config());
    sim.drop_rate = 0.0;
    grow(&mut sim, n);
    let rate = x / sim.config.stabilize_interval.as_secs_f64();
    let span = Duration::from_secs(60);
    let stats = sim.churn_lookups(rate, span, lookups, Duration::from_secs(120));
    let failed = stats.asked - stats.right;
    ChurnPoint {
        x,
        failed_share: failed as f64 / stats.asked.max(1) as f64,
        wrong: stats.wrong,
        errors: stats.failed + stats.unfinished,
        orphaned: stats.orphaned,
        asked: stats.asked,
        wall: wall.elapsed(),
    }
}

/// Run `jobs` on `threads` threads, largest first; results in job order.
fn run_all<T: Send>(threads: usize, jobs: Vec<Box<dyn FnOnce() -> T + Send>>) -> Vec<T> {
    let count = jobs.len();
    let queue = Mutex::new(jobs.into_iter().enumerate().rev().collect::<Vec<_>>());
    let results = Mutex::new(Vec::with_capacity(count));
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let job = queue.lock().expect("queue").pop();
                let Some((k, job)) = job else { break };
                let out = job();
                results.lock().expect("results").push((k, out));
            });
        }
    });
    let mut results = results.into_inner().expect("results");
    results.sort_by_key(|(k, _)| *k);
    results.into_iter().map(|(_, r)| r).collect()
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let max_log = env_usize("SONGSWARM_PAPER_MAX_LOG", if full { 14 } else { 7 }) as u32;
    let lookups = env_usize("SONGSWARM_PAPER_LOOKUPS", if full { 2000 } else { 200 });
    let churn_n = env_usize("SONGSWARM_PAPER_CHURN_NODES", if full { 1024 } else { 64 });
    let churn_lookups = env_usize(
        "SONGSWARM_PAPER_CHURN_LOOKUPS",
        if full { 10_000 } else { 200 },
    );
    let threads = env_usize("SONGSWARM_PAPER_THREADS", 2);
    if !full {
        println!("chord_paper: smoke run (use `cargo bench --bench chord_paper` to measure)");
    }
    let stabilize = config().stabilize_interval;
    println!(
        "chord_paper: rings of 2^6..2^{max_log} nodes, {lookups} lookups each; churn in {churn_n} nodes, {churn_lookups} lookups each; stabilization every {} ms; {threads} threads",
        stabilize.as_millis()
    );
    let t0 = Instant::now();

    // Largest first, so that two threads finish together.
    let mut jobs: Vec<Box<dyn FnOnce() -> HopsPoint + Send>> = Vec::new();
    for log in (6..=max_log).rev() {
        jobs.push(Box::new(move || hops_point(log, lookups)));
    }
    let mut hops = run_all(threads, jobs);
    hops.sort_by_key(|p| p.log);
    println!();
    println!("path length (hops = nodes asked, the answering predecessor included)");
    println!(
        "{:>7} {:>6} {:>6} {:>4} {:>4} {:>10} {:>9} {:>12} {:>11} {:>7} {:>7}",
        "nodes",
        "½log2N",
        "mean",
        "p1",
        "p99",
        "mean/½logN",
        "KiB/node",
        "wall µs/node",
        "CPU µs/node",
        "grow s",
        "virt s"
    );
    for p in &hops {
        let half = f64::from(p.log) / 2.0;
        println!(
            "{:>7} {:>6.1} {:>6.2} {:>4} {:>4} {:>10.2} {:>9.1} {:>12.0} {:>11.0} {:>7.1} {:>7.0}",
            1usize << p.log,
            half,
            p.mean,
            p.p1,
            p.p99,
            p.mean / half,
            p.bytes_per_node / 1024.0,
            p.wall_per_node.as_secs_f64() * 1e6,
            p.cpu_per_node.as_secs_f64() * 1e6,
            p.built.as_secs_f64(),
            p.virtual_s,
        );
    }

    let xs: Vec<f64> = if full {
        vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    } else {
        vec![0.0, 1.0]
    };
    let mut jobs: Vec<Box<dyn FnOnce() -> ChurnPoint + Send>> = Vec::new();
    for &x in xs.iter().rev() {
        jobs.push(Box::new(move || churn_point(churn_n, x, churn_lookups)));
    }
    let mut churn = run_all(threads, jobs);
    churn.sort_by(|a, b| a.x.total_cmp(&b.x));
    println!();
    println!("lookups under churn ({churn_n} nodes, 60 s; joins as many as failures)");
    println!(
        "{:>16} {:>9} {:>8} {:>6} {:>7} {:>7} {:>7} {:>10}",
        "fail/stab.period", "fail/s", "failed%", "wrong", "errors", "asked", "wall s", "asker died"
    );
    for p in &churn {
        println!(
            "{:>16.1} {:>9.2} {:>8.2} {:>6} {:>7} {:>7} {:>7.1} {:>10}",
            p.x,
            p.x / stabilize.as_secs_f64(),
            p.failed_share * 100.0,
            p.wrong,
            p.errors,
            p.asked,
            p.wall.as_secs_f64(),
            p.orphaned
        );
    }

    let svg = paper_plot::svg(&hops, &churn, churn_n);
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|d| d.join("chord_paper.svg"))
        .unwrap_or_else(|| "chord_paper.svg".into());
    match std::fs::write(&path, svg) {
        Ok(()) => println!("\nplot: {}", path.display()),
        Err(e) => println!("\nplot not written to {}: {e}", path.display()),
    }
    println!("total wall time {:.0} s", t0.elapsed().as_secs_f64());
}
