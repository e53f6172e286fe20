//! Chord benchmark: many real nodes in one process on 127.0.0.1.
//!
//! Measures hop counts, lookup and announce latency, memory per node, the
//! time from the last join to the ideal ring, and lookup success and
//! announce survival after a fifth of the nodes are killed at once.
//!
//! `cargo bench --bench dht`; `SONGSWARM_BENCH_NODES=N` for a smaller run,
//! `SONGSWARM_BENCH_CONNS=C` to change the dialed connections per node (4
//! above 256 nodes: a thousand nodes must fit one process's descriptors).

#[path = "../tests/support/chord_ring.rs"]
mod chord_ring;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chord_ring::{owner_of, replica_set, start_ring_paced, wait_ideal_reporting};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use songswarm::chord::driver::ChordHandle;
use songswarm::chord::Role;
use songswarm::config::ChordConfig;
use songswarm::id::Id;
use tokio::task::JoinSet;

/// Lookups or announces in flight at once.
const CONCURRENCY: usize = 64;

fn raise_fd_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            // Both ends of every connection are in this process: a thousand
            // nodes with 8 dialed connections each hold about 17,000
            // descriptors. Ask for more than the hard limit where that is
            // allowed (as root); else take the hard limit.
            let want = lim.rlim_max.max(1 << 16);
            let more = libc::rlimit {
                rlim_cur: want,
                rlim_max: want,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &more) == 0 {
                return want;
            }
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            return lim.rlim_cur;
        }
    }
    0
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Run `count` lookups of random keys from random nodes; returns
/// (correct answers, hops of the correct ones, latencies).
async fn lookups(
    nodes: &[ChordHandle],
    count: usize,
    rng: &mut StdRng,
) -> (usize, Vec<u32>, Vec<Duration>) {
    let addrs: Arc<Vec<SocketAddr>> = Arc::new(nodes.iter().map(|h| h.addr()).collect());
    let mut set = JoinSet::new();
    let mut ok = 0;
    let mut hops = Vec::new();
    let mut lat = Vec::new();
    for k in 0..count {
        let key = Id::hash(format!("bench key {}", rng.gen::<u64>()).as_bytes());
        let h = nodes[rng.gen_range(0..nodes.len())].clone();
        let addrs = addrs.clone();
        set.spawn(async move {
            let t = Instant::now();
            let r = h.lookup(key).await;
            (
                r.ok().filter(|i| i.owner == owner_of(key, &addrs)),
                t.elapsed(),
            )
        });
        if set.len() >= CONCURRENCY || k + 1 == count {
            while let Some(res) = set.join_next().await {
                let (info, d) = res.expect("lookup task");
                if let Some(info) = info {
                    ok += 1;
                    hops.push(info.hops);
                    lat.push(d);
                }
                if set.len() < CONCURRENCY / 2 && k + 1 < count {
                    break;
                }
            }
        }
    }
    (ok, hops, lat)
}

/// Wait (at most 600 s, reporting every 30 s) for the ideal ring and print
/// how long after `since` it came, or why it did not.
async fn await_ideal(nodes: &[ChordHandle], r: usize, since: Instant, what: &str) {
    let report = Some(Duration::from_secs(30));
    match wait_ideal_reporting(nodes, r, Duration::from_secs(600), report).await {
        Ok(_) => println!("ideal ring {what}: {:.1}s", since.elapsed().as_secs_f64()),
        Err(e) => println!("NO ideal ring {what}: {e}"),
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let n: usize = std::env::var("SONGSWARM_BENCH_NODES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let fds = raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench(n, fds));
}

async fn bench(n: usize, fds: u64) {
    let config = ChordConfig {
        stabilize_interval: Duration::from_millis(1000),
        fix_finger_interval: Duration::from_millis(1000),
        replicate_interval: Duration::from_secs(5),
        rejoin_interval: Duration::from_secs(30),
        rpc_timeout: Duration::from_millis(1500),
        // Bounded pools keep a thousand nodes inside one process's descriptors.
        max_connections: std::env::var("SONGSWARM_BENCH_CONNS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(if n > 256 { 4 } else { 32 }),
        idle_timeout: Duration::from_secs(5),
        // One process, one address: every node is the same source.
        max_requests_per_source: 1_000_000,
        ..ChordConfig::default()
    };
    let r = config.successor_list_len;
    let mut rng = StdRng::seed_from_u64(7);
    println!("dht bench: {n} nodes on 127.0.0.1, fd limit {fds}");

    let rss0 = rss_bytes();
    let t0 = Instant::now();
    let nodes = start_ring_paced(n, &config, 32, Duration::from_millis(500)).await;
    let last_join = Instant::now();
    println!("started {n} nodes in {:.1}s", t0.elapsed().as_secs_f64());
    await_ideal(&nodes, r, last_join, "after the last join").await;
    // Fingers fill one per tick; give them time before measuring hops.
    tokio::time::sleep(config.fix_finger_interval * 30).await;
    let rss1 = rss_bytes();
    println!(
        "memory: {:.0} KiB per node (RSS {:.1} MiB → {:.1} MiB)",
        (rss1.saturating_sub(rss0)) as f64 / n as f64 / 1024.0,
        rss0 as f64 / 1048576.0,
        rss1 as f64 / 1048576.0
    );

    let count = 2000;
    let (ok, hops, mut lat) = lookups(&nodes, count, &mut rng).await;
    lat.sort();
    let mut sorted_hops = hops.clone();
    sorted_hops.sort();
    let mean = hops.iter().map(|h| *h as f64).sum::<f64>() / hops.len().max(1) as f64;
    println!(
        "lookups: {ok}/{count} correct; hops mean {mean:.2} p99 {}; latency p50 {:.1} ms p99 {:.1} ms",
        sorted_hops.get(((sorted_hops.len().max(1) - 1) as f64 * 0.99) as usize).copied().unwrap_or(0),
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99))
    );

    // Announces.
    let announces: Vec<(Id, SocketAddr)> = (0..1000u32)
        .map(|k| {
            // Every node of this process is at 127.0.0.1: so are its peers.
            let peer = SocketAddr::from(([127, 0, 0, 1], 20_000 + k as u16));
            (Id::hash(format!("bench song {k}").as_bytes()), peer)
        })
        .collect();
    let mut set = JoinSet::new();
    let mut lat = Vec::new();
    let mut acked = Vec::new();
    for (k, (hash, peer)) in announces.iter().copied().enumerate() {
        let h = nodes[rng.gen_range(0..nodes.len())].clone();
        set.spawn(async move {
            let t = Instant::now();
            let r = h.announce(hash, peer, Role::Seeder).await;
            (hash, peer, r.is_ok(), t.elapsed())
        });
        if set.len() >= CONCURRENCY || k + 1 == announces.len() {
            while let Some(res) = set.join_next().await {
                let (hash, peer, ok, d) = res.expect("announce task");
                if ok {
                    acked.push((hash, peer));
                    lat.push(d);
                }
                if set.len() < CONCURRENCY / 2 && k + 1 < announces.len() {
                    break;
                }
            }
        }
    }
    lat.sort();
    println!(
        "announces: {}/{} acknowledged; latency p50 {:.1} ms p99 {:.1} ms",
        acked.len(),
        announces.len(),
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99))
    );

    // Kill a fifth at once.
    let mut victims = BTreeSet::new();
    while victims.len() < n / 5 {
        victims.insert(rng.gen_range(0..n));
    }
    // Keys whose whole replica set dies cannot survive with N = 3: count them.
    let all: Vec<SocketAddr> = nodes.iter().map(|h| h.addr()).collect();
    let dead: BTreeSet<SocketAddr> = victims.iter().map(|&v| all[v]).collect();
    // How many replicas each announce loses, as a histogram.
    let mut replicas_killed = vec![0usize; config.replicas + 1];
    for (hash, _) in &acked {
        let set = replica_set(*hash, &all, config.replicas);
        replicas_killed[set.iter().filter(|a| dead.contains(a)).count()] += 1;
    }
    let doomed = replicas_killed[config.replicas];
    println!("announces by replicas killed (0, 1, ...): {replicas_killed:?}");
    let mut kills = JoinSet::new();
    for &v in &victims {
        let h = nodes[v].clone();
        kills.spawn(async move { h.kill().await });
    }
    while kills.join_next().await.is_some() {}
    let t_kill = Instant::now();
    let survivors: Vec<ChordHandle> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| !victims.contains(i))
        .map(|(_, h)| h.clone())
        .collect();
    let (ok, _, _) = lookups(&survivors, 500, &mut rng).await;
    println!(
        "killed {} nodes; lookups right after: {ok}/500 correct ({:.1}%)",
        victims.len(),
        ok as f64 / 5.0
    );
    await_ideal(&survivors, r, t_kill, "again after the kill").await;
    let (ok, _, _) = lookups(&survivors, 1000, &mut rng).await;
    println!(
        "lookups after stabilization: {ok}/1000 correct ({:.1}%)",
        ok as f64 / 10.0
    );
    // Re-replication runs every replicate interval; give it two.
    tokio::time::sleep(config.replicate_interval * 2).await;
    let (lost, failed) = count_lost(&survivors, &acked).await;
    println!(
        "announces lost after the kill: {lost}/{} ({doomed} had all {} replicas killed); reads failed: {failed}",
        acked.len(),
        config.replicas
    );
    // A swarm list is soft state: a live songswarm peer reads its swarm list
    // every requery period and announces again when it is not on it (the
    // announcer in app/ring.rs). Do that once for every announce, as its
    // peer would, then count again.
    let mut again = 0;
    for (k, (hash, peer)) in acked.iter().enumerate() {
        let h = &survivors[k % survivors.len()];
        let listed = matches!(h.peers(*hash).await, Ok(l) if l.contains(&(*peer, Role::Seeder)));
        if !listed && h.announce(*hash, *peer, Role::Seeder).await.is_ok() {
            again += 1;
        }
    }
    let (lost, failed) = count_lost(&survivors, &acked).await;
    println!(
        "after one requery by the announcing peers ({again} announced again): lost {lost}/{}; reads failed: {failed}",
        acked.len()
    );
    let mut leaves = JoinSet::new();
    for h in survivors {
        leaves.spawn(async move { h.kill().await });
    }
    while leaves.join_next().await.is_some() {}
}

/// How many of `acked` no read returns (lost), and how many reads failed.
async fn count_lost(nodes: &[ChordHandle], acked: &[(Id, SocketAddr)]) -> (usize, usize) {
    let (mut lost, mut failed) = (0, 0);
    for (k, (hash, peer)) in acked.iter().enumerate() {
        match nodes[k % nodes.len()].peers(*hash).await {
            Ok(list) if list.contains(&(*peer, Role::Seeder)) => {}
            Ok(_) => lost += 1,
            Err(_) => failed += 1,
        }
    }
    (lost, failed)
}
