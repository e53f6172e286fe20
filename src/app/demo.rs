//! `songswarm demo`: the whole system in one process on loopback.
//!
//! A ring of bare Chord nodes, one seeder of the demo album and several
//! leechers that know only one ring node each: they find the swarm through
//! the ring, trade pieces with each other, and verify every byte. Each
//! process of a real deployment is one [`App`] here; only the sockets are
//! all on 127.0.0.1. One more peer, the listener, holds none of the album
//! and plays one song over HTTP while the swarm downloads ([`play`]).

mod play;
mod report;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::MultiProgress;

use super::progress::Progress;
use super::ring::RingOptions;
use super::{load_manifest, open_complete, App, AppError};
use crate::chord::client;
use crate::chord::driver::ChordHandle;
use crate::config::{AnnounceConfig, ChordConfig, SwarmConfig};
use crate::id::Id;
use crate::manifest::Manifest;
use crate::storage::Storage;
use crate::swarm::coordinator::{TorrentHandle, TorrentStats};
use play::Listener;
pub use report::{DemoReport, LeecherReport, PlayReport};

/// What the demo runs.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// The manifest to share.
    pub manifest: PathBuf,
    /// Where its data is.
    pub data: PathBuf,
    /// Bare Chord nodes in the ring.
    pub nodes: usize,
    /// Leeching peers.
    pub leechers: usize,
    /// Upload cap of each peer, bytes per second (None: none), so that the
    /// swarm, not one seeder, does the work and the progress can be seen.
    pub upload_rate: Option<u64>,
    /// Where the leechers download to (default: a fresh temporary directory,
    /// removed at the end).
    pub out: Option<PathBuf>,
}

/// A demo that has run: its report, and its swarm still up until
/// [`Demo::stop`] (for a person to open the web player meanwhile).
pub struct Demo {
    /// What it showed.
    pub report: DemoReport,
    peers: Vec<App>,
    nodes: Vec<ChordHandle>,
    /// The download directory to remove at the end, when it is our own.
    temporary: Option<PathBuf>,
}

impl Demo {
    /// Stops every process of the demo and removes its temporary files.
    pub async fn stop(self) {
        stop_all(self.peers.into_iter(), &self.nodes).await;
        if let Some(dir) = self.temporary {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Timers for a ring that should settle in a second or two.
fn demo_chord_config() -> ChordConfig {
    ChordConfig {
        stabilize_interval: Duration::from_millis(100),
        fix_finger_interval: Duration::from_millis(50),
        replicate_interval: Duration::from_secs(1),
        rejoin_interval: Duration::from_secs(2),
        rpc_timeout: Duration::from_millis(500),
        ..ChordConfig::default()
    }
}

fn ring_options(bootstrap: SocketAddr) -> RingOptions {
    RingOptions {
        bootstrap: vec![bootstrap],
        no_discovery: true,
        chord: demo_chord_config(),
        announce: AnnounceConfig {
            requery_leeching: Duration::from_millis(500),
            requery_seeding: Duration::from_secs(1),
            retry: Duration::from_millis(200),
            ..AnnounceConfig::default()
        },
        ..RingOptions::default()
    }
}

/// Longest the demo waits for the ring to form and the swarm to finish.
const DEADLINE: Duration = Duration::from_secs(120);
/// Longest it waits for the ring and the swarm list to take in every peer.
const SETTLE: Duration = Duration::from_secs(20);

/// Runs the demo; the caller prints the report, then stops it.
pub async fn demo(opts: DemoOptions) -> Result<Demo, AppError> {
    let manifest = load_manifest(&opts.manifest)?;
    let seed_storage = open_complete(&opts.data, &manifest).await?;
    let (out, temporary) = match &opts.out {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!("songswarm-demo-{}", std::process::id())),
            true,
        ),
    };
    let result = run(&opts, &manifest, seed_storage, &out).await;
    match result {
        Ok(mut demo) => {
            demo.temporary = temporary.then_some(out);
            Ok(demo)
        }
        Err(e) => {
            if temporary {
                let _ = std::fs::remove_dir_all(&out);
            }
            Err(e)
        }
    }
}

async fn run(
    opts: &DemoOptions,
    manifest: &Manifest,
    seed_storage: Arc<Storage>,
    out: &Path,
) -> Result<Demo, AppError> {
    let nodes = start_ring(opts.nodes.max(1)).await?;
    let boot = |i: usize| nodes[i % nodes.len()].addr();
    let swarm_config = SwarmConfig {
        max_upload_rate: opts.upload_rate,
        ..SwarmConfig::default()
    };
    let n = manifest.piece_count() as usize;
    let (seeder, _) = start_peer(
        manifest,
        seed_storage,
        vec![true; n],
        boot(0),
        &swarm_config,
    )
    .await?;

    let multi = MultiProgress::new();
    let start = Instant::now();
    let mut leechers: Vec<(App, TorrentHandle, PathBuf)> = Vec::new();
    let mut bars = Vec::new();
    for i in 0..opts.leechers {
        let dir = out.join(format!("leecher-{i}"));
        let storage = Arc::new(Storage::open_or_create(&dir, manifest)?);
        let (app, handle) = start_peer(
            manifest,
            storage,
            vec![false; n],
            boot(i + 1),
            &swarm_config,
        )
        .await?;
        let name = format!("leecher {i}");
        bars.push(Progress::start_in(Some(&multi), handle.stats.clone(), name));
        leechers.push((app, handle, dir));
    }

    let listener = Listener::start(
        manifest,
        &out.join("listener"),
        boot(opts.leechers + 1),
        &swarm_config,
    )
    .await?;
    let (play, reports) = tokio::join!(
        listener.play(manifest, &opts.data),
        leecher_reports(&leechers, manifest, &opts.data, start)
    );
    let (play, reports) = (play?, reports?);
    bars.into_iter().for_each(Progress::finish);
    let seconds = start.elapsed().as_secs_f64();
    // Peers join the ring while they download; a fast swarm can finish
    // before stabilization has threaded them all in, so wait (bounded).
    let members = nodes.len() + 1 + leechers.len() + 1;
    let ring_size = wait_ring_size(nodes[0].addr(), members, SETTLE).await;
    // Likewise their announces: one made before its node had joined is
    // retried a moment later.
    let peers = 1 + leechers.len() + 1;
    let swarm_size = wait_swarm_size(&nodes[0], manifest.info_hash, peers, SETTLE).await;
    let peers = leechers.into_iter().map(|(app, _, _)| app);
    let report = DemoReport {
        name: manifest.name.clone(),
        info_hash: manifest.info_hash.to_hex(),
        bytes: manifest.total_length,
        bare_nodes: nodes.len(),
        ring_size,
        swarm_size,
        seconds,
        leechers: reports,
        play,
    };
    Ok(Demo {
        report,
        peers: peers.chain([seeder, listener.app]).collect(),
        nodes,
        temporary: None,
    })
}

/// Each leecher's report, as it finishes.
async fn leecher_reports(
    leechers: &[(App, TorrentHandle, PathBuf)],
    manifest: &Manifest,
    data: &Path,
    start: Instant,
) -> Result<Vec<LeecherReport>, AppError> {
    let mut reports = Vec::new();
    for (app, handle, dir) in leechers {
        let done = finished(handle).await?;
        let seconds = start.elapsed().as_secs_f64();
        reports.push(LeecherReport {
            addr: app.ring().map_or(app.local_addr(), |r| r.advertise),
            seconds,
            rate: done.total_bytes as f64 / seconds.max(1e-9),
            peers: done.peers_seen,
            uploaded: done.uploaded_bytes,
            hops: lookup_hops(app, manifest.info_hash).await,
            verified: same_files(data, dir, manifest),
        });
    }
    Ok(reports)
}

/// One peer process of the demo: it joins the ring through `bootstrap` and
/// serves or downloads the torrent (`have`: the pieces it has), announced.
async fn start_peer(
    manifest: &Manifest,
    storage: Arc<Storage>,
    have: Vec<bool>,
    bootstrap: SocketAddr,
    config: &SwarmConfig,
) -> Result<(App, TorrentHandle), AppError> {
    let mut app = App::bind(loopback_any(), config.clone()).await?;
    app.join_ring(&ring_options(bootstrap), &[]).await;
    let handle = app.add_torrent(manifest, storage, have);
    if let Some(ring) = app.ring() {
        ring.track_published(handle.clone(), None, Arc::new(manifest.clone()));
    }
    Ok((app, handle))
}

/// Stops every process of the demo: the peers (each leaves the ring and
/// removes its announces), then the bare nodes.
async fn stop_all(peers: impl Iterator<Item = App>, nodes: &[ChordHandle]) {
    for app in peers {
        app.shutdown().await;
    }
    for node in nodes {
        node.leave().await;
    }
}

/// The final counters of a demo leecher, once complete.
async fn finished(handle: &TorrentHandle) -> Result<TorrentStats, AppError> {
    let mut stats = handle.stats.clone();
    let done = tokio::time::timeout(
        DEADLINE,
        stats.wait_for(|s| s.complete || s.error.is_some()),
    )
    .await
    .map_err(|_| AppError::Failed("the demo swarm did not finish in time".into()))?
    .map_err(|_| AppError::Failed("a demo leecher stopped".into()))?
    .clone();
    match done.error {
        Some(e) => Err(AppError::Failed(e)),
        None => Ok(done),
    }
}

/// Hops the peer's ring node needs to find the owner of `key` (0 if the
/// lookup fails).
async fn lookup_hops(app: &App, key: Id) -> u32 {
    match app.ring() {
        Some(ring) => ring.chord.lookup(key).await.map_or(0, |l| l.hops),
        None => 0,
    }
}

/// 127.0.0.1, any port.
fn loopback_any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Starts `n` bare nodes and waits until walking the ring visits them all.
async fn start_ring(n: usize) -> Result<Vec<ChordHandle>, AppError> {
    let mut nodes: Vec<ChordHandle> = Vec::with_capacity(n);
    for i in 0..n {
        let bootstrap = nodes.first().map(|f| vec![f.addr()]).unwrap_or_default();
        let opts = RingOptions {
            bootstrap,
            no_discovery: true,
            chord: demo_chord_config(),
            rng_seed: Some(i as u64),
            ..RingOptions::default()
        };
        let node = App::bare_node(loopback_any(), &opts).await?;
        nodes.push(node);
    }
    if wait_ring_size(nodes[0].addr(), n, DEADLINE).await == n {
        Ok(nodes)
    } else {
        Err(AppError::Failed("the demo ring did not form".into()))
    }
}

/// Walks the ring from `start` until it has `want` members or `limit`
/// passes; returns the last size seen.
async fn wait_ring_size(start: SocketAddr, want: usize, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    loop {
        let size = client::walk(start, Duration::from_secs(2), want + 1)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        if size == want || Instant::now() > deadline {
            return size;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads the swarm list of `info_hash` until it holds `want` peers or
/// `limit` passes; returns the last size seen.
async fn wait_swarm_size(node: &ChordHandle, info_hash: Id, want: usize, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    loop {
        let size = node.peers(info_hash).await.map(|p| p.len()).unwrap_or(0);
        if size >= want || Instant::now() > deadline {
            return size;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every file of `manifest` under `got` equals the one under `want`.
fn same_files(want: &Path, got: &Path, manifest: &Manifest) -> bool {
    manifest.files.iter().all(|f| {
        match (
            std::fs::read(want.join(&f.path)),
            std::fs::read(got.join(&f.path)),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    })
}
