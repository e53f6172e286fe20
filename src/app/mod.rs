//! Wiring of one process: one listener, a registry of running torrents, the
//! `seed` and `leech` commands, and shutdown.
//!
//! Incoming connections are told apart by their first byte: 0x13 starts a
//! BitTorrent handshake and is routed by info-hash to that torrent's
//! coordinator; anything else goes to the process's Chord node (see
//! [`ring`]), or is closed when the process runs none.

pub mod demo;
pub mod progress;
pub mod ring;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::chord::driver::ChordHandle;
use crate::config::SwarmConfig;
use crate::id::Id;
use crate::manifest::{Manifest, ManifestError};
use crate::storage::{Storage, StorageError};
use crate::swarm::connection::SOCKET_BUFFER;
use crate::swarm::coordinator::{self, CoordinatorParams, TorrentHandle, TorrentStats};
use crate::swarm::rate::RateLimits;
use crate::swarm::TorrentEvent;
use crate::wire::peer::{Handshake, HANDSHAKE_LEN};

/// Time an incoming connection has to send its first bytes.
const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of the `seed` and `leech` commands.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A manifest could not be loaded.
    #[error("{path}: {source}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// Why.
        source: ManifestError,
    },
    /// A manifest file could not be read (the error names it).
    #[error(transparent)]
    ManifestFile(ManifestError),
    /// `--out` names something that is not a directory.
    #[error("--out {0} is a file: give a directory to download into (it is created if missing)")]
    OutNotDir(PathBuf),
    /// The torrent's data is missing or wrong, or the disk failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source} (is another process using the port? try --listen 127.0.0.1:0)")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The same manifest was given twice.
    #[error("torrent {0} is given twice")]
    Duplicate(String),
    /// SIGINT/SIGTERM arrived before the download completed.
    #[error("interrupted before the download completed ({have} of {total} pieces verified; run the same command again to resume)")]
    Interrupted {
        /// Verified pieces.
        have: u32,
        /// All pieces.
        total: u32,
    },
    /// Leeching by info-hash was asked for without a ring to look it up in.
    #[error("leeching by info-hash needs the ring to find peers: drop --no-ring")]
    NeedsRing,
    /// The metadata could not be had from the swarm.
    #[error(transparent)]
    Metadata(#[from] crate::swarm::magnet::MagnetError),
    /// The torrent stopped on an error (e.g. the disk is full).
    #[error("download failed: {0}")]
    Failed(String),
    /// Every torrent being served stopped on an error; this one last.
    #[error("stopped serving {name}, the last torrent: {error}")]
    NothingToServe {
        /// The torrent's name.
        name: String,
        /// Why it stopped.
        error: String,
    },
}

/// A running process: listener, torrents, shutdown.
pub struct App {
    /// Running torrents by info-hash (the listener routes handshakes here).
    registry: Arc<DashMap<Id, TorrentHandle>>,
    /// The bound listen address.
    local_addr: SocketAddr,
    /// Our peer id: `-SW0100-` + 12 random bytes.
    peer_id: [u8; 20],
    /// Process-wide rate caps.
    limits: Arc<RateLimits>,
    /// Swarm tunables.
    config: SwarmConfig,
    /// Cancelled at shutdown.
    cancel: CancellationToken,
    /// Every task of the process.
    tracker: TaskTracker,
    /// The Chord node, once joined: the listener hands it non-BitTorrent
    /// connections (set once, read by the accept loop).
    chord: Arc<OnceLock<ChordHandle>>,
    /// Our ring membership and announcers (None: peers from --peer only).
    ring: Option<ring::Ring>,
}

/// A fresh peer id: client prefix and 12 random bytes. The prefix is
/// Azureus-style (BEP 20); "SW" is no other client's code ("SS", used before,
/// is SwarmScope's, and libtorrent showed us under that name).
pub fn new_peer_id() -> [u8; 20] {
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(b"-SW0100-");
    let tail: [u8; 12] = rand::random();
    id[8..].copy_from_slice(&tail);
    id
}

impl App {
    /// Binds the listener and starts accepting.
    pub async fn bind(listen: SocketAddr, config: SwarmConfig) -> Result<App, AppError> {
        let listen_err = |source| AppError::Listen {
            addr: listen,
            source,
        };
        let socket = if listen.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(listen_err)?;
        socket.set_reuseaddr(true).map_err(listen_err)?;
        // Accepted sockets inherit these: large buffers for fast transfers.
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
        socket.bind(listen).map_err(listen_err)?;
        let listener = socket.listen(1024).map_err(listen_err)?;
        let local_addr = listener.local_addr().map_err(listen_err)?;
        let app = App {
            registry: Arc::new(DashMap::new()),
            local_addr,
            peer_id: new_peer_id(),
            limits: Arc::new(RateLimits::new(
                config.max_upload_rate,
                config.max_download_rate,
            )),
            config,
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
            chord: Arc::new(OnceLock::new()),
            ring: None,
        };
        app.tracker.spawn(accept_loop(
            listener,
            app.registry.clone(),
            app.chord.clone(),
            app.cancel.clone(),
            app.tracker.clone(),
        ));
        Ok(app)
    }

    /// The bound address (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Starts a torrent whose data is opened and checked (`have`: verified pieces).
    pub fn add_torrent(
        &self,
        manifest: &Manifest,
        storage: Arc<Storage>,
        have: Vec<bool>,
    ) -> TorrentHandle {
        let handle = coordinator::spawn(CoordinatorParams {
            info_hash: manifest.info_hash,
            storage,
            config: self.config.clone(),
            have,
            peer_id: self.peer_id,
            listen: Some(self.local_addr),
            limits: self.limits.clone(),
            cancel: self.cancel.child_token(),
            tracker: self.tracker.clone(),
            rng_seed: rand::random(),
            info: Some(bytes::Bytes::from(manifest.info_bytes.clone())),
        });
        self.registry.insert(manifest.info_hash, handle.clone());
        handle
    }

    /// Joins (or founds) the ring on this process's port; `manifest_nodes`
    /// are bootstrap hints from the manifests.
    pub async fn join_ring(&mut self, opts: &ring::RingOptions, manifest_nodes: &[String]) {
        let joined = ring::Ring::join(opts, self.local_addr, manifest_nodes).await;
        let _ = self.chord.set(joined.chord.clone());
        self.ring = Some(joined);
    }

    /// Our ring membership, if any.
    pub fn ring(&self) -> Option<&ring::Ring> {
        self.ring.as_ref()
    }

    /// Stops every task and waits for them (bounded). A ring member first
    /// removes its announces and leaves the ring cleanly.
    pub async fn shutdown(mut self) {
        if let Some(ring) = self.ring.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), ring.leave()).await;
        }
        self.cancel.cancel();
        self.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.tracker.wait()).await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    registry: Arc<DashMap<Id, TorrentHandle>>,
    chord: Arc<OnceLock<ChordHandle>>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, addr)) => {
                let registry = registry.clone();
                let chord = chord.clone();
                tracker.spawn(async move {
                    if let Err(reason) = route(stream, &registry, &chord).await {
                        debug!(%addr, reason, "incoming connection dropped");
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off briefly.
                debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Reads the first bytes of an incoming connection and hands it on.
async fn route(
    mut stream: TcpStream,
    registry: &DashMap<Id, TorrentHandle>,
    chord: &OnceLock<ChordHandle>,
) -> Result<(), String> {
    let mut first = [0u8; 1];
    let n = tokio::time::timeout(FIRST_BYTES_TIMEOUT, stream.peek(&mut first))
        .await
        .map_err(|_| "no data")?
        .map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("closed at once".into());
    }
    if first[0] != 19 {
        return match chord.get() {
            Some(node) => {
                node.serve_inbound(stream);
                Ok(())
            }
            None => Err("not BitTorrent, and this process runs no Chord node".into()),
        };
    }
    let mut buf = [0u8; HANDSHAKE_LEN];
    tokio::time::timeout(FIRST_BYTES_TIMEOUT, stream.read_exact(&mut buf))
        .await
        .map_err(|_| "handshake timed out")?
        .map_err(|e| e.to_string())?;
    let handshake = Handshake::parse(&buf)
        .map_err(|e| e.to_string())?
        .ok_or("short handshake")?;
    let events = registry
        .get(&handshake.info_hash)
        .map(|h| h.events.clone())
        .ok_or_else(|| format!("unknown info-hash {}", handshake.info_hash))?;
    events
        .send(TorrentEvent::Incoming { stream, handshake })
        .await
        .map_err(|_| "torrent stopped".to_string())
}

/// Waits for SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: a signal sent right after
/// a line we printed (a harness reacting to `done`) is then never missed.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, Signal, SignalKind};
    let int = signal(SignalKind::interrupt()).ok();
    let term = signal(SignalKind::terminate()).ok();
    let wait = |s: Option<Signal>| async move {
        match s {
            Some(mut s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    async move {
        tokio::select! {
            _ = wait(int) => {}
            _ = wait(term) => {}
        }
    }
}

fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn print_listening(addr: SocketAddr, hashes: &[Id], json: bool) {
    if json {
        let hex: Vec<String> = hashes.iter().map(|h| h.to_hex()).collect();
        let v =
            serde_json::json!({"event": "listening", "addr": addr.to_string(), "info_hashes": hex});
        print_line(&v.to_string());
    } else {
        print_line(&format!("listening on {addr}"));
    }
}

/// The closing `stats` line (with --json) when a seeding process is stopped:
/// what it uploaded over its whole life.
fn print_stats(handles: &[TorrentHandle]) {
    let (mut up, mut down) = (0u64, 0u64);
    for h in handles {
        let s = h.stats.borrow();
        up += s.uploaded_bytes;
        down += s.downloaded_bytes;
    }
    let v = serde_json::json!({"event": "stats", "uploaded_bytes": up, "downloaded_bytes": down});
    print_line(&v.to_string());
}

fn load(path: &std::path::Path) -> Result<Manifest, AppError> {
    Manifest::load(path).map_err(|source| match source {
        e @ ManifestError::Io { .. } => AppError::ManifestFile(e),
        source => AppError::Manifest {
            path: path.to_path_buf(),
            source,
        },
    })
}

fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// What `seed` needs.
#[derive(Clone, Debug)]
pub struct SeedOptions {
    /// Manifests to serve.
    pub manifests: Vec<PathBuf>,
    /// Data root.
    pub data: PathBuf,
    /// Listen address.
    pub listen: SocketAddr,
    /// Swarm tunables and limits.
    pub config: SwarmConfig,
    /// Ring membership (None: no Chord node; peers must dial us).
    pub ring: Option<ring::RingOptions>,
    /// JSON output.
    pub json: bool,
}

/// Serves torrents until SIGINT/SIGTERM.
pub async fn seed(opts: SeedOptions) -> Result<(), AppError> {
    let mut torrents = Vec::new();
    for path in &opts.manifests {
        let manifest = load(path)?;
        if torrents
            .iter()
            .any(|(m, _): &(Manifest, _)| m.info_hash == manifest.info_hash)
        {
            return Err(AppError::Duplicate(path.display().to_string()));
        }
        let storage = Arc::new(Storage::open_existing(&opts.data, &manifest)?);
        let s = storage.clone();
        tokio::task::spawn_blocking(move || s.check_complete(threads()))
            .await
            .map_err(|e| AppError::Failed(e.to_string()))??;
        torrents.push((manifest, storage));
    }
    let mut app = App::bind(opts.listen, opts.config).await?;
    if let Some(ring_opts) = &opts.ring {
        let nodes: Vec<String> = torrents
            .iter()
            .flat_map(|(m, _)| m.nodes.iter().cloned())
            .collect();
        app.join_ring(ring_opts, &nodes).await;
    }
    let mut hashes = Vec::new();
    let mut handles = Vec::new();
    let mut names = Vec::new();
    for (manifest, storage) in torrents {
        let n = manifest.piece_count() as usize;
        let handle = app.add_torrent(&manifest, storage, vec![true; n]);
        if let Some(ring) = app.ring() {
            ring.track(handle.clone());
        }
        handles.push(handle);
        hashes.push(manifest.info_hash);
        names.push(manifest.name);
    }
    let stop = shutdown_signal();
    print_listening(app.local_addr(), &hashes, opts.json);
    let served = serve(&handles, &names, stop, opts.json).await;
    if opts.json {
        print_stats(&handles);
    }
    app.shutdown().await;
    served
}

/// Serves until `stop`, saying so when a torrent stops on an error (its
/// data changed on disk); the other torrents go on. Fails once every
/// torrent has stopped.
async fn serve(
    handles: &[TorrentHandle],
    names: &[String],
    stop: impl std::future::Future<Output = ()>,
    json: bool,
) -> Result<(), AppError> {
    use futures_util::StreamExt;
    let mut failures: futures_util::stream::FuturesUnordered<_> = handles
        .iter()
        .zip(names)
        .map(|(h, name)| {
            let mut stats = h.stats.clone();
            async move {
                let error = stats
                    .wait_for(|s| s.error.is_some())
                    .await
                    .ok()
                    .and_then(|s| s.error.clone());
                (h.info_hash, name, error)
            }
        })
        .collect();
    let mut stop = std::pin::pin!(stop);
    let mut stopped = 0;
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            Some((info_hash, name, error)) = failures.next() => {
                // No error: the torrent ended because the process is ending.
                let Some(error) = error else { continue };
                stopped += 1;
                if json {
                    let v = serde_json::json!({"event": "stopped", "info_hash": info_hash.to_hex(),
                        "name": name, "error": error});
                    print_line(&v.to_string());
                }
                if stopped == handles.len() {
                    return Err(AppError::NothingToServe { name: name.clone(), error });
                }
                eprintln!("songswarm: stopped serving {name}: {error}");
            }
        }
    }
}

/// What `leech` needs.
#[derive(Clone, Debug)]
pub struct LeechOptions {
    /// What to download: a manifest file, or an info-hash to find in the ring.
    pub target: LeechTarget,
    /// Download directory.
    pub out: PathBuf,
    /// Peers to dial.
    pub peers: Vec<SocketAddr>,
    /// Listen address.
    pub listen: SocketAddr,
    /// Keep serving after completion.
    pub seed_after: bool,
    /// Swarm tunables and limits.
    pub config: SwarmConfig,
    /// Ring membership (None: peers from `peers` only).
    pub ring: Option<ring::RingOptions>,
    /// JSON output.
    pub json: bool,
}

/// The outcome of a completed download.
#[derive(Clone, Debug)]
pub struct LeechSummary {
    /// The torrent.
    pub info_hash: Id,
    /// Final counters.
    pub stats: TorrentStats,
    /// Seconds from start to completion.
    pub seconds: f64,
}

impl LeechSummary {
    /// The `done` line of the CLI contract.
    pub fn to_json(&self) -> String {
        let s = &self.stats;
        let rate = if self.seconds > 0.0 {
            s.total_bytes as f64 / self.seconds
        } else {
            0.0
        };
        serde_json::json!({
            "event": "done",
            "info_hash": self.info_hash.to_hex(),
            "bytes": s.total_bytes,
            "seconds": self.seconds,
            "rate_bytes_per_sec": rate,
            "peers": s.peers_seen,
            "uploaded_bytes": s.uploaded_bytes,
            "downloaded_bytes": s.downloaded_bytes,
            "resumed_pieces": s.resumed_pieces,
        })
        .to_string()
    }
}

/// What `leech` downloads.
#[derive(Clone, Debug)]
pub enum LeechTarget {
    /// A manifest file.
    Manifest(PathBuf),
    /// Only an info-hash: the manifest comes from the swarm (BEP 9).
    InfoHash(Id),
}

impl LeechTarget {
    /// A path that exists is a manifest; otherwise 40 hex digits are an
    /// info-hash; anything else is taken as a (missing) manifest path, so the
    /// error names the file.
    pub fn parse(arg: &str) -> LeechTarget {
        let path = PathBuf::from(arg);
        match arg.parse::<Id>() {
            Ok(hash) if !path.exists() => LeechTarget::InfoHash(hash),
            _ => LeechTarget::Manifest(path),
        }
    }
}

/// Downloads a torrent; returns once every piece is verified on disk (and,
/// with `seed_after`, after SIGINT/SIGTERM).
pub async fn leech(opts: LeechOptions) -> Result<LeechSummary, AppError> {
    let start = Instant::now();
    if opts.out.exists() && !opts.out.is_dir() {
        return Err(AppError::OutNotDir(opts.out.clone()));
    }
    let mut app = App::bind(opts.listen, opts.config.clone()).await?;
    let manifest = match &opts.target {
        LeechTarget::Manifest(path) => {
            let manifest = load(path)?;
            if let Some(ring_opts) = &opts.ring {
                app.join_ring(ring_opts, &manifest.nodes).await;
            }
            manifest
        }
        LeechTarget::InfoHash(info_hash) => {
            let ring_opts = opts.ring.as_ref().ok_or(AppError::NeedsRing)?;
            app.join_ring(ring_opts, &[]).await;
            let ring = app.ring().expect("just joined");
            let manifest = ring.fetch_manifest(*info_hash, &opts.peers).await?;
            std::fs::create_dir_all(&opts.out).map_err(|e| AppError::Failed(e.to_string()))?;
            let saved = opts.out.join(format!("{info_hash}.torrent"));
            manifest.save(&saved).map_err(|source| AppError::Manifest {
                path: saved.clone(),
                source,
            })?;
            if !opts.json {
                print_line(&format!(
                    "metadata of {} fetched from the swarm, saved as {}",
                    manifest.name,
                    saved.display()
                ));
            }
            manifest
        }
    };
    let storage = Arc::new(Storage::open_or_create(&opts.out, &manifest)?);
    let s = storage.clone();
    let have = tokio::task::spawn_blocking(move || s.verify_all(threads()))
        .await
        .map_err(|e| AppError::Failed(e.to_string()))?;
    let handle = app.add_torrent(&manifest, storage.clone(), have);
    if let Some(ring) = app.ring() {
        ring.track(handle.clone());
    }
    // One listener for the whole run: a signal at any point after
    // `listening` (during the download or right after `done`) is seen.
    let mut stop = std::pin::pin!(shutdown_signal());
    print_listening(app.local_addr(), &[manifest.info_hash], opts.json);
    let _ = handle
        .events
        .send(TorrentEvent::AddPeers(opts.peers.clone()))
        .await;
    let bar = progress::Progress::start(handle.stats.clone(), manifest.name.clone());
    let mut stats = handle.stats.clone();
    let outcome = tokio::select! {
        r = stats.wait_for(|s| s.complete || s.error.is_some()) => r.map(|s| s.clone()).ok(),
        _ = &mut stop => None,
    };
    bar.finish();
    let Some(done) = outcome else {
        let s = handle.stats.borrow().clone();
        app.shutdown().await;
        return Err(AppError::Interrupted {
            have: s.have_pieces,
            total: s.piece_count,
        });
    };
    if let Some(e) = done.error {
        app.shutdown().await;
        return Err(AppError::Failed(e));
    }
    // Every piece is verified; a file that was longer before is cut to size.
    tokio::task::spawn_blocking(move || storage.trim_excess())
        .await
        .map_err(|e| AppError::Failed(e.to_string()))??;
    let summary = LeechSummary {
        info_hash: manifest.info_hash,
        stats: done,
        seconds: start.elapsed().as_secs_f64(),
    };
    if opts.json {
        print_line(&summary.to_json());
    } else {
        let mb = summary.stats.total_bytes as f64 / 1e6;
        print_line(&format!(
            "done: {} ({mb:.1} MB) in {:.2} s, {:.1} MB/s, {} peers",
            manifest.name,
            summary.seconds,
            mb / summary.seconds.max(1e-9),
            summary.stats.peers_seen
        ));
    }
    let mut served = Ok(());
    if opts.seed_after {
        let names = [manifest.name.clone()];
        served = serve(std::slice::from_ref(&handle), &names, stop, opts.json).await;
        if opts.json {
            print_stats(std::slice::from_ref(&handle));
        }
    }
    app.shutdown().await;
    served.map(|()| summary)
}
