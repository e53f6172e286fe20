//! One process: one listener, one Chord node, any number of torrents.
//!
//! - [`listener`]: the single accept loop and the first-byte router (peer
//!   wire to a torrent's coordinator, anything else to the Chord node).
//! - [`shutdown`]: the one wait for SIGINT/SIGTERM, and the token and
//!   tracker every task of the process runs under.
//! - [`ring`]: joining the ring and keeping the torrents announced in it.
//! - [`on_demand`]: torrents the HTTP room starts and stops (a search
//!   result played, the web player's track ahead).
//! - [`pace`]: the bounded, jittered rate of a process's ring traffic.
//! - [`progress`]: progress bars of downloads.
//! - [`stall`]: why a download makes no progress, and when to give up.
//! - [`resume`]: fast resume: trusting unchanged files at start, and the
//!   record of a download's progress.
//! - [`demo`]: the whole system in one process (`songswarm demo`).
//! - [`error`]: what can go wrong, for the user.
//! - [`alloc`]: the heap's settings, set first thing in `main`.
//! - [`fds`]: the open-file limit, shared by sockets and song files.
//!
//! [`App::serve_http`] starts the HTTP room ([`crate::http`]) on the
//! process's token and tracker.
//!
//! The commands, one room up (`cmd`), make processes out of an [`App`];
//! nothing here knows them.

pub mod alloc;
pub mod demo;
pub mod error;
pub mod fds;
pub mod listener;
pub mod on_demand;
pub mod pace;
pub mod progress;
pub mod resume;
pub mod ring;
pub mod shutdown;
pub mod stall;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::chord::driver::ChordHandle;
use crate::config::SwarmConfig;
use crate::http::{Catalog, HttpContext, HttpServer};
use crate::manifest::{Manifest, ManifestError};
use crate::storage::Storage;
use crate::swarm::coordinator::TorrentHandle;
use crate::swarm::rate::RateLimits;

pub use error::AppError;
use listener::{Listener, Router};
use shutdown::Shutdown;

/// Longest a ring member takes to leave cleanly at shutdown.
const LEAVE_LIMIT: Duration = Duration::from_secs(10);
/// Longest the process's tasks take to end once cancelled.
const STOP_LIMIT: Duration = Duration::from_secs(5);

/// A running process: its listener, its torrents, its ring membership.
pub struct App {
    /// Where the listener hands connections: the torrents and the Chord node.
    router: Router,
    /// The bound listen address.
    local_addr: SocketAddr,
    /// Our peer id: `-SW0100-` + 12 random bytes.
    peer_id: [u8; 20],
    /// Process-wide rate caps.
    limits: Arc<RateLimits>,
    /// Swarm tunables.
    config: SwarmConfig,
    /// The token and tracker of every task of the process.
    shutdown: Shutdown,
    /// Our ring membership and announcers (None: peers from --peer only).
    ring: Option<ring::Ring>,
    /// Every torrent with its manifest, for the HTTP room.
    catalog: Catalog,
    /// The ring membership again, for torrents started on demand.
    ring_slot: Arc<OnceLock<ring::Ring>>,
    /// Where torrents started on demand download to.
    download_dir: PathBuf,
    /// Whose playlists this process keeps alive once it joins the ring
    /// (the config directory of their owner), if anyone's.
    keep_playlists_of: Option<PathBuf>,
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
        fds::size_file_cache(config.max_open_files);
        let listener = Listener::bind(listen)?;
        let app = App {
            router: Router::default(),
            local_addr: listener.local_addr(),
            peer_id: new_peer_id(),
            limits: Arc::new(RateLimits::new(
                config.max_upload_rate,
                config.max_download_rate,
            )),
            config,
            shutdown: Shutdown::default(),
            ring: None,
            catalog: Catalog::default(),
            ring_slot: Arc::default(),
            download_dir: on_demand::default_download_dir(),
            keep_playlists_of: None,
        };
        let run = listener.run(app.router.clone(), app.shutdown.clone());
        app.shutdown.spawn(run);
        Ok(app)
    }

    /// A process that is only a ring node (`songswarm node`, and the bare
    /// nodes of the demo and the tests): no torrents, and the listener
    /// closes when the node ends, left or killed, as the process would
    /// exit. `leave` and `kill` on the handle wait for that.
    pub async fn bare_node(
        listen: SocketAddr,
        ring: &ring::RingOptions,
    ) -> Result<ChordHandle, AppError> {
        Ok(App::bare_node_serving(listen, ring, None, None).await?.0)
    }

    /// [`App::bare_node`], with an HTTP server (`/metrics`) on `http`;
    /// returns the node and the HTTP server's bound address.
    pub async fn bare_node_serving(
        listen: SocketAddr,
        ring: &ring::RingOptions,
        http: Option<SocketAddr>,
        keep_playlists_of: Option<PathBuf>,
    ) -> Result<(ChordHandle, Option<SocketAddr>), AppError> {
        let mut app = App::bind(listen, SwarmConfig::default()).await?;
        app.keep_playlists_of = keep_playlists_of;
        let http = match http {
            Some(addr) => Some(app.serve_http(addr).await?),
            None => None,
        };
        let chord = app.join_ring(ring, &[]).await.chord.clone();
        let (stopped, shutdown) = (chord.stopped(), app.shutdown.clone());
        chord.spawn(async move {
            stopped.cancelled().await;
            shutdown.stop(STOP_LIMIT).await;
        });
        Ok((chord, http))
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
        self.add_shared_torrent(Arc::new(manifest.clone()), storage, have)
    }

    /// [`App::add_torrent`] of a manifest the caller keeps too (a library
    /// holds one copy of each manifest, not one per user of it).
    pub fn add_shared_torrent(
        &self,
        manifest: Arc<Manifest>,
        storage: Arc<Storage>,
        have: Vec<bool>,
    ) -> TorrentHandle {
        self.parts()
            .add(manifest, storage, have, self.shutdown.token())
    }

    fn parts(&self) -> on_demand::Parts {
        on_demand::Parts {
            router: self.router.clone(),
            catalog: self.catalog.clone(),
            config: self.config.clone(),
            limits: self.limits.clone(),
            peer_id: self.peer_id,
            local_addr: self.local_addr,
            shutdown: self.shutdown.clone(),
        }
    }

    /// Where torrents started on demand (from the web player) download.
    pub fn set_download_dir(&mut self, dir: PathBuf) {
        self.download_dir = dir;
    }

    /// Serves songs, the JSON API, `/metrics` and the web player on `addr`
    /// until the process stops; returns the bound address.
    pub async fn serve_http(&self, addr: SocketAddr) -> Result<SocketAddr, AppError> {
        let server = HttpServer::bind(addr).await?;
        let bound = server.local_addr();
        let mut ctx = HttpContext::new(
            self.catalog.clone(),
            self.router.chord.clone(),
            self.shutdown.token(),
        );
        let fetcher = on_demand::OnDemand {
            parts: self.parts(),
            ring: self.ring_slot.clone(),
            dir: self.download_dir.clone(),
            started: Default::default(),
            starting: Default::default(),
        };
        ctx.fetcher = Some(Arc::new(on_demand::SharedOnDemand(Arc::new(fetcher))));
        self.shutdown.spawn(server.run(ctx));
        Ok(bound)
    }

    /// Keeps the playlists of the owner whose config directory is `dir`
    /// alive in the ring once this process joins it (they expire unless
    /// written again).
    pub fn keep_playlists_of(&mut self, dir: PathBuf) {
        self.keep_playlists_of = Some(dir);
    }

    /// Joins (or founds) the ring on this process's port; `manifest_nodes`
    /// are bootstrap hints from the manifests.
    pub async fn join_ring(
        &mut self,
        opts: &ring::RingOptions,
        manifest_nodes: &[String],
    ) -> &ring::Ring {
        let joined = ring::Ring::join(opts, self.local_addr, manifest_nodes).await;
        if let Some(dir) = self.keep_playlists_of.take() {
            crate::playlist::keep::spawn(&joined.chord, dir);
        }
        let _ = self.router.chord.set(joined.chord.clone());
        let _ = self.ring_slot.set(joined.clone());
        self.ring.insert(joined)
    }

    /// Every torrent of the process with its manifest (what the HTTP room
    /// serves).
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Our ring membership, if any.
    pub fn ring(&self) -> Option<&ring::Ring> {
        self.ring.as_ref()
    }

    /// Stops every task and waits for them (bounded). A ring member first
    /// removes its announces and leaves the ring cleanly.
    pub async fn shutdown(mut self) {
        if let Some(ring) = self.ring.take() {
            let _ = tokio::time::timeout(LEAVE_LIMIT, ring.leave()).await;
        }
        self.shutdown.stop(STOP_LIMIT).await;
    }
}

/// A manifest's raw `info` dictionary as bytes that share the manifest.
pub(super) struct InfoBytes(Arc<Manifest>);

impl AsRef<[u8]> for InfoBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0.info_bytes
    }
}

/// Loads a manifest; an error names the file once.
pub fn load_manifest(path: &Path) -> Result<Manifest, AppError> {
    Manifest::load(path).map_err(|source| match source {
        e @ ManifestError::Io { .. } => AppError::ManifestFile(e),
        source => AppError::Manifest {
            path: path.to_path_buf(),
            source,
        },
    })
}

/// Opens the data of a torrent to seed and checks, off the async threads,
/// that it is all there and right.
pub async fn open_complete(data: &Path, manifest: &Manifest) -> Result<Arc<Storage>, AppError> {
    let storage = Arc::new(Storage::open_existing(data, manifest)?);
    let s = storage.clone();
    tokio::task::spawn_blocking(move || s.check_complete(hashing_threads()))
        .await
        .map_err(|e| AppError::Failed(e.to_string()))??;
    Ok(storage)
}

/// Threads that hash pieces when data is checked.
pub fn hashing_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}
