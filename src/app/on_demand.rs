//! Torrents started and stopped while the process runs, for the HTTP
//! room's [`Fetcher`]: a search result played in the web player, or its
//! track ahead. The manifest comes from the ring (the song's metadata
//! record, else its swarm by BEP 9), the data goes under the download
//! directory, one directory per info-hash (as `play` lays it out), and a
//! torrent started here can be stopped again: its coordinator ends and the
//! process forgets it; its verified pieces stay on disk and count when it
//! is started again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::hashing_threads;
use super::listener::Router;
use super::ring::Ring;
use super::shutdown::Shutdown;
use crate::config::SwarmConfig;
use crate::http::prefetch::{Fetcher, Pending};
use crate::http::Catalog;
use crate::id::Id;
use crate::manifest::Manifest;
use crate::storage::Storage;
use crate::swarm::coordinator::{self, CoordinatorParams, TorrentHandle};
use crate::swarm::rate::RateLimits;
use crate::swarm::TorrentEvent;

/// Longest wait for a song's manifest.
const MANIFEST_DEADLINE: Duration = Duration::from_secs(20);

/// What starting a torrent takes: clones of the process's parts.
#[derive(Clone)]
pub struct Parts {
    /// Where the listener hands peer connections.
    pub(super) router: Router,
    /// The torrents the HTTP room serves.
    pub(super) catalog: Catalog,
    /// Swarm tunables.
    pub(super) config: SwarmConfig,
    /// Process-wide rate caps.
    pub(super) limits: Arc<RateLimits>,
    /// Our peer id.
    pub(super) peer_id: [u8; 20],
    /// The listen address.
    pub(super) local_addr: SocketAddr,
    /// The process's token and tracker.
    pub(super) shutdown: Shutdown,
}

impl Parts {
    /// Starts a torrent whose data is opened and checked, running until
    /// `cancel`.
    pub fn add(
        &self,
        manifest: Arc<Manifest>,
        storage: Arc<Storage>,
        have: Vec<bool>,
        cancel: CancellationToken,
    ) -> TorrentHandle {
        let info = bytes::Bytes::from_owner(super::InfoBytes(manifest.clone()));
        let handle = coordinator::spawn(CoordinatorParams {
            info_hash: manifest.info_hash,
            storage,
            config: self.config.clone(),
            have,
            peer_id: self.peer_id,
            listen: Some(self.local_addr),
            limits: self.limits.clone(),
            cancel,
            tracker: self.shutdown.tracker(),
            rng_seed: rand::random(),
            info: Some(info),
        });
        self.router
            .torrents
            .insert(manifest.info_hash, handle.clone());
        self.catalog.insert(manifest, handle.clone());
        handle
    }
}

/// The process's [`Fetcher`].
pub struct OnDemand {
    /// How to start a torrent.
    pub(super) parts: Parts,
    /// The ring membership, once joined.
    pub(super) ring: Arc<OnceLock<Ring>>,
    /// The download directory.
    pub(super) dir: PathBuf,
    /// The torrents started here, with the token that stops each.
    pub(super) started: Mutex<HashMap<Id, CancellationToken>>,
    /// One start at a time, so two requests do not start one torrent twice.
    pub(super) starting: tokio::sync::Mutex<()>,
}

impl OnDemand {
    async fn start_now(self: Arc<Self>, info_hash: Id) -> Result<bool, String> {
        let _one = self.starting.lock().await;
        if self.parts.catalog.get(&info_hash).is_some() {
            return Ok(false);
        }
        let ring = self
            .ring
            .get()
            .ok_or("this process is not in a ring")?
            .clone();
        let fetched = ring
            .fetch_manifest(info_hash, &[], Some(MANIFEST_DEADLINE))
            .await
            .map_err(|e| e.to_string())?;
        let manifest = fetched.manifest;
        let out = self.dir.join(info_hash.to_hex());
        let storage =
            Arc::new(Storage::open_or_create(&out, &manifest).map_err(|e| e.to_string())?);
        let s = storage.clone();
        let have = tokio::task::spawn_blocking(move || s.verify_all(hashing_threads()))
            .await
            .map_err(|e| e.to_string())?;
        let token = self.parts.shutdown.token().child_token();
        let handle = self
            .parts
            .add(Arc::new(manifest), storage, have, token.clone());
        ring.track(handle.clone(), Some(fetched.looked_up));
        let _ = handle
            .events
            .send(TorrentEvent::AddPeers(fetched.peers))
            .await;
        self.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(info_hash, token);
        Ok(true)
    }
}

/// The [`Fetcher`] of a process, over an `Arc` so its futures own it.
pub struct SharedOnDemand(pub Arc<OnDemand>);

impl Fetcher for SharedOnDemand {
    fn start(&self, info_hash: Id) -> Pending<Result<bool, String>> {
        Box::pin(self.0.clone().start_now(info_hash))
    }

    fn stop(&self, info_hash: Id) -> bool {
        let token = self
            .0
            .started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&info_hash);
        let Some(token) = token else {
            return false;
        };
        self.0.parts.router.torrents.remove(&info_hash);
        self.0.parts.catalog.remove(&info_hash);
        token.cancel();
        true
    }
}

/// `$XDG_CACHE_HOME/songswarm`, else `~/.cache/songswarm`, else
/// `./songswarm-cache`: where songs fetched to play are kept.
pub fn default_download_dir() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(cache) = var("XDG_CACHE_HOME") {
        return PathBuf::from(cache).join("songswarm");
    }
    match var("HOME") {
        Some(home) => PathBuf::from(home).join(".cache").join("songswarm"),
        None => PathBuf::from("songswarm-cache"),
    }
}
