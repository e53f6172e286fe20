//! The demo's listener: a peer that holds none of the album plays one song
//! over HTTP while the swarm downloads, as a player does: it asks for the
//! song's start, then seeks ahead; the report gives the time to each first
//! byte and checks every byte it got against the original.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{loopback_any, start_peer};
use crate::app::{App, AppError};
use crate::config::SwarmConfig;
use crate::http::probe::{self, Fetched};
use crate::http::song_path;
use crate::manifest::Manifest;
use crate::storage::Storage;
use crate::swarm::coordinator::TorrentHandle;

/// How much the seek reads: a few seconds of a compressed song.
const SEEK_READ: usize = 256 * 1024;

/// What playing one song over HTTP showed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PlayReport {
    /// The song's URL on the listener's HTTP server.
    pub url: String,
    /// The web player's URL on the same server.
    pub player_url: String,
    /// The song's path in the torrent.
    pub file: String,
    /// Its length in bytes.
    pub bytes: u64,
    /// Milliseconds from the GET to the first body byte.
    pub first_byte_ms: f64,
    /// Where the seek went, bytes into the song.
    pub seek_to: u64,
    /// Milliseconds from the seek's GET to its first body byte.
    pub seek_ms: f64,
    /// Whether the seek's piece was already verified when it was asked for.
    pub seek_was_local: bool,
    /// Every byte served (the whole song and the seek's) equals the original.
    pub verified: bool,
}

/// A peer with an HTTP server and none of the torrent, in the ring.
pub(super) struct Listener {
    pub(super) app: App,
    handle: TorrentHandle,
    http: SocketAddr,
}

impl Listener {
    /// Starts it, downloading into `dir`, joined through `bootstrap`.
    pub(super) async fn start(
        manifest: &Manifest,
        dir: &Path,
        bootstrap: SocketAddr,
        config: &SwarmConfig,
    ) -> Result<Listener, AppError> {
        let storage = Arc::new(Storage::open_or_create(dir, manifest)?);
        let have = vec![false; manifest.piece_count() as usize];
        let (app, handle) = start_peer(manifest, storage, have, bootstrap, config).await?;
        let http = app.serve_http(loopback_any()).await?;
        Ok(Listener { app, handle, http })
    }

    /// Plays the torrent's largest file from `data`'s original: the whole
    /// song from its start, and meanwhile a seek to two thirds of it.
    pub(super) async fn play(
        &self,
        manifest: &Manifest,
        data: &Path,
    ) -> Result<PlayReport, AppError> {
        let (index, file) = manifest
            .files
            .iter()
            .enumerate()
            .max_by_key(|(_, f)| f.length)
            .ok_or_else(|| AppError::Failed("the torrent has no files".into()))?;
        let index = (manifest.files.len() > 1).then_some(index);
        let path = song_path(&manifest.info_hash, index);
        let original = std::fs::read(data.join(&file.path)).unwrap_or_default();
        let length = usize::try_from(file.length).unwrap_or(usize::MAX);

        let seek_to = file.length * 2 / 3;
        let piece = (file.offset + seek_to) / manifest.piece_length;
        let seek_was_local = self.handle.verified.borrow().has(piece as u32);
        // Both at once, as a person who skips ahead right after pressing play.
        let (whole, seek) = tokio::join!(
            probe::get(self.http, &path, 0, length),
            probe::get(self.http, &path, seek_to, SEEK_READ)
        );
        let (whole, seek) = (probe_result(whole)?, probe_result(seek)?);

        let from = usize::try_from(seek_to).unwrap_or(usize::MAX);
        let verified = whole.body == original
            && original.get(from..from + seek.body.len()) == Some(&seek.body[..])
            && !seek.body.is_empty();
        Ok(PlayReport {
            url: format!("http://{}{path}", self.http),
            player_url: format!("http://{}/", self.http),
            file: file.path.display().to_string(),
            bytes: file.length,
            first_byte_ms: millis(whole.first_byte),
            seek_to,
            seek_ms: millis(seek.first_byte),
            seek_was_local,
            verified,
        })
    }
}

fn probe_result(result: Result<Fetched, probe::ProbeError>) -> Result<Fetched, AppError> {
    result.map_err(|e| AppError::Failed(format!("the demo's player: {e}")))
}

fn millis(d: Option<Duration>) -> f64 {
    d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}
