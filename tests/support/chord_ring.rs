//! Helpers for real-socket Chord tests and benchmarks: start many nodes on
//! loopback, and wait for the ideal ring.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use songswarm::app::ring::RingOptions;
use songswarm::app::App;
use songswarm::chord::driver::ChordHandle;
use songswarm::config::ChordConfig;
use songswarm::id::Id;

/// Short timers so tests settle in seconds.
pub fn fast_config() -> ChordConfig {
    ChordConfig {
        stabilize_interval: Duration::from_millis(100),
        fix_finger_interval: Duration::from_millis(50),
        replicate_interval: Duration::from_millis(1000),
        rejoin_interval: Duration::from_secs(2),
        rpc_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(10),
        ..ChordConfig::default()
    }
}

/// Start `n` nodes on 127.0.0.1, each joining through a few earlier ones.
pub async fn start_ring(n: usize, config: &ChordConfig) -> Vec<ChordHandle> {
    start_ring_paced(n, config, n, Duration::ZERO).await
}

/// Like [`start_ring`], but `batch` nodes at a time with `pause` between
/// batches (a thousand simultaneous joins is a storm, not a workload).
pub async fn start_ring_paced(
    n: usize,
    config: &ChordConfig,
    batch: usize,
    pause: Duration,
) -> Vec<ChordHandle> {
    let local: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let mut nodes: Vec<ChordHandle> = Vec::with_capacity(n);
    for i in 0..n {
        let bootstrap: Vec<SocketAddr> = if i == 0 {
            vec![]
        } else {
            // Deterministic spread over earlier nodes.
            [i / 2, i / 3, i - 1]
                .iter()
                .map(|&j| nodes[j].addr())
                .collect()
        };
        let opts = RingOptions {
            bootstrap,
            no_discovery: true,
            chord: config.clone(),
            rng_seed: Some(i as u64),
            ..RingOptions::default()
        };
        let h = App::bare_node(local, &opts)
            .await
            .expect("bind on loopback");
        nodes.push(h);
        if (i + 1) % batch == 0 && !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    nodes
}

/// The owner of `key` in the sorted ring of `addrs`: the first id at or after it.
pub fn owner_of(key: Id, addrs: &[SocketAddr]) -> SocketAddr {
    replica_set(key, addrs, 1)[0]
}

/// The replica set of `key` in the sorted ring of `addrs`: its owner and the
/// next `n - 1` members (fewer on a smaller ring).
pub fn replica_set(key: Id, addrs: &[SocketAddr], n: usize) -> Vec<SocketAddr> {
    let mut ring: Vec<(Id, SocketAddr)> = addrs.iter().map(|a| (Id::of_addr(*a), *a)).collect();
    ring.sort();
    let owner = ring.iter().position(|(id, _)| *id >= key).unwrap_or(0);
    (0..n.min(ring.len()))
        .map(|d| ring[(owner + d) % ring.len()].1)
        .collect()
}

/// Why `nodes` are not (yet) the ideal ring: successor and predecessor of
/// each as in the sorted order, every node joined.
pub async fn ideal_ring(nodes: &[ChordHandle], r: usize) -> Result<(), String> {
    let (off, first) = off_ideal(nodes, r, 1).await?;
    match (off, first) {
        (0, _) => Ok(()),
        (_, Some(why)) => Err(why),
        (_, None) => Err("not ideal".to_string()),
    }
}

/// How many of `nodes` differ from the ideal ring, stopping after `limit`,
/// and why the first one does.
pub async fn off_ideal(
    nodes: &[ChordHandle],
    r: usize,
    limit: usize,
) -> Result<(usize, Option<String>), String> {
    let mut ring: Vec<(Id, SocketAddr)> = nodes
        .iter()
        .map(|h| (Id::of_addr(h.addr()), h.addr()))
        .collect();
    ring.sort();
    let n = ring.len();
    let mut off = 0;
    let mut first = None;
    for h in nodes {
        let info = h.ring_info().await.map_err(|e| e.to_string())?;
        let k = ring
            .iter()
            .position(|(_, a)| *a == h.addr())
            .expect("in ring");
        let want: Vec<SocketAddr> = (1..n.min(r + 1)).map(|d| ring[(k + d) % n].1).collect();
        let want_pred = (n > 1).then(|| ring[(k + n - 1) % n].1);
        let why = if info.successors != want {
            Some(format!(
                "{} successors {:?}, want {want:?}",
                h.addr(),
                info.successors
            ))
        } else if info.predecessor != want_pred {
            Some(format!(
                "{} predecessor {:?}, want {want_pred:?}",
                h.addr(),
                info.predecessor
            ))
        } else {
            None
        };
        if let Some(why) = why {
            off += 1;
            first.get_or_insert(why);
            if off >= limit {
                break;
            }
        }
    }
    Ok((off, first))
}

/// Poll `ideal_ring` until it holds; Err with the last reason at `deadline`.
pub async fn wait_ideal(
    nodes: &[ChordHandle],
    r: usize,
    deadline: Duration,
) -> Result<Duration, String> {
    wait_ideal_reporting(nodes, r, deadline, None).await
}

/// Like [`wait_ideal`], printing every `every` how many nodes are still off.
pub async fn wait_ideal_reporting(
    nodes: &[ChordHandle],
    r: usize,
    deadline: Duration,
    every: Option<Duration>,
) -> Result<Duration, String> {
    let start = Instant::now();
    let mut next_report = every.map(|e| start + e);
    loop {
        let report = next_report.is_some_and(|t| Instant::now() >= t);
        let limit = if report { usize::MAX } else { 1 };
        match off_ideal(nodes, r, limit).await? {
            (0, _) => return Ok(start.elapsed()),
            (off, why) => {
                let why = why.unwrap_or_default();
                if report {
                    println!(
                        "  {:.0}s: {off} of {} nodes off the ideal ring, e.g. {why}",
                        start.elapsed().as_secs_f64(),
                        nodes.len()
                    );
                    next_report = every.map(|e| Instant::now() + e);
                }
                if start.elapsed() > deadline {
                    return Err(format!("no ideal ring after {deadline:?}: {why}"));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
