//! Helpers for real-socket Chord tests and benchmarks: start many nodes on
//! loopback, and wait for the ideal ring.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use songswarm::chord::driver::{ChordHandle, Driver};
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
        let h = Driver::bind(config.clone(), local, None, bootstrap, i as u64)
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
    let mut ring: Vec<(Id, SocketAddr)> = addrs.iter().map(|a| (Id::of_addr(*a), *a)).collect();
    ring.sort();
    ring.iter().find(|(id, _)| *id >= key).unwrap_or(&ring[0]).1
}

/// Why `nodes` are not (yet) the ideal ring: successor and predecessor of
/// each as in the sorted order, every node joined.
pub async fn ideal_ring(nodes: &[ChordHandle], r: usize) -> Result<(), String> {
    let mut ring: Vec<(Id, SocketAddr)> = nodes
        .iter()
        .map(|h| (Id::of_addr(h.addr()), h.addr()))
        .collect();
    ring.sort();
    let n = ring.len();
    for h in nodes {
        let info = h.ring_info().await.map_err(|e| e.to_string())?;
        let k = ring
            .iter()
            .position(|(_, a)| *a == h.addr())
            .expect("in ring");
        let want: Vec<SocketAddr> = (1..n.min(r + 1)).map(|d| ring[(k + d) % n].1).collect();
        if info.successors != want {
            return Err(format!(
                "{} successors {:?}, want {want:?}",
                h.addr(),
                info.successors
            ));
        }
        let want_pred = (n > 1).then(|| ring[(k + n - 1) % n].1);
        if info.predecessor != want_pred {
            return Err(format!(
                "{} predecessor {:?}, want {want_pred:?}",
                h.addr(),
                info.predecessor
            ));
        }
    }
    Ok(())
}

/// Poll `ideal_ring` until it holds; Err with the last reason at `deadline`.
pub async fn wait_ideal(
    nodes: &[ChordHandle],
    r: usize,
    deadline: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        match ideal_ring(nodes, r).await {
            Ok(()) => return Ok(start.elapsed()),
            Err(e) if start.elapsed() > deadline => {
                return Err(format!("no ideal ring after {deadline:?}: {e}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
