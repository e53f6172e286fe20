//! The JSON API the web player polls (README, "The JSON API"):
//!
//! - `GET /api/songs`: every torrent with its songs and their tags.
//! - `GET /api/torrents`: every torrent's progress.
//! - `GET /api/torrents/{info-hash}`: one torrent's progress.
//!
//! Progress is the coordinator's published counters, at most half a second
//! old, and its verified pieces (per song and as a piece map) as of the
//! request; rates are averaged over the last few seconds of polls.

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::catalog::{self, Entry};
use super::{song_path, HttpContext};
use crate::id::Id;

/// A torrent and its songs, as `/api/songs` lists them.
#[derive(Debug, Serialize)]
pub struct TorrentSongs {
    /// The torrent.
    pub info_hash: Id,
    /// Its name (the file, or the album's directory).
    pub name: String,
    /// The torrent's tags (for an album: the album's).
    pub title: Option<String>,
    /// Performing artist.
    pub artist: Option<String>,
    /// Album.
    pub album: Option<String>,
    /// Play time of the whole torrent, when the manifest gives it.
    pub duration_ms: Option<u64>,
    /// Its songs, one per file, in torrent order.
    pub files: Vec<SongInfo>,
}

/// One song of a torrent.
#[derive(Debug, Serialize)]
pub struct SongInfo {
    /// File index, as in the song's URL.
    pub index: usize,
    /// Path inside the torrent.
    pub path: String,
    /// Bytes.
    pub length: u64,
    /// Title (the file's tags, else the torrent's for a single file).
    pub title: Option<String>,
    /// Artist.
    pub artist: Option<String>,
    /// Album.
    pub album: Option<String>,
    /// Play time.
    pub duration_ms: Option<u64>,
    /// Codec from the manifest.
    pub codec: Option<String>,
    /// The `Content-Type` its URL answers with.
    pub content_type: &'static str,
    /// Its URL, relative to the server.
    pub url: String,
}

/// One torrent's progress.
#[derive(Debug, Serialize)]
pub struct Progress {
    /// The torrent.
    pub info_hash: Id,
    /// Its name.
    pub name: String,
    /// Verified pieces.
    pub have_pieces: u32,
    /// All pieces.
    pub piece_count: u32,
    /// Verified share of the torrent, 0 to 100.
    pub downloaded_percent: f64,
    /// Every piece is verified.
    pub complete: bool,
    /// Peers connected now.
    pub peers: usize,
    /// Bytes per second received lately.
    pub download_rate: u64,
    /// Bytes per second sent lately.
    pub upload_rate: u64,
    /// Piece bytes received in all.
    pub downloaded_bytes: u64,
    /// Piece bytes sent in all.
    pub uploaded_bytes: u64,
    /// Bytes of the torrent.
    pub total_bytes: u64,
    /// Why the torrent stopped, if it did.
    pub error: Option<String>,
    /// Per song (file), its verified share.
    pub files: Vec<FileProgress>,
    /// One character per piece, `1` when verified, else `0`.
    pub verified: String,
}

/// One song's progress.
#[derive(Debug, Serialize)]
pub struct FileProgress {
    /// File index, as in the song's URL.
    pub index: usize,
    /// Verified share of the pieces the file lies in, 0 to 100.
    pub downloaded_percent: f64,
}

/// `GET /api/songs`.
pub async fn songs(State(ctx): State<HttpContext>) -> Json<Vec<TorrentSongs>> {
    Json(
        ctx.catalog
            .list()
            .into_iter()
            .map(|e| songs_of(&e))
            .collect(),
    )
}

/// `GET /api/torrents`.
pub async fn torrents(State(ctx): State<HttpContext>) -> Json<Vec<Progress>> {
    let now = Instant::now();
    Json(
        ctx.catalog
            .list()
            .into_iter()
            .map(|e| progress_of(&e, now))
            .collect(),
    )
}

/// `GET /api/torrents/{hash}`.
pub async fn torrent(State(ctx): State<HttpContext>, Path(hash): Path<String>) -> Response {
    let Ok(info_hash) = hash.parse::<Id>() else {
        return (StatusCode::BAD_REQUEST, "not an info-hash\n").into_response();
    };
    match ctx.catalog.get(&info_hash) {
        Some(e) => Json(progress_of(&e, Instant::now())).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("no torrent {info_hash} here\n"),
        )
            .into_response(),
    }
}

fn songs_of(entry: &std::sync::Arc<Entry>) -> TorrentSongs {
    let m = &entry.manifest;
    let single = m.files.len() == 1;
    // Pad files (BEP 47) are zeros between songs, not songs.
    let pads = m.pad_files();
    let files = (0..m.files.len())
        .filter(|&i| !pads.get(i).copied().unwrap_or(false))
        .filter_map(|i| catalog::song_of(entry.clone(), i).ok())
        .map(|song| SongInfo {
            index: song.index,
            path: m.files[song.index].path.to_string_lossy().into_owned(),
            length: song.span.length,
            title: song.meta.title.clone(),
            artist: song.meta.artist.clone(),
            album: song.meta.album.clone(),
            duration_ms: song.meta.duration_ms,
            codec: song.meta.codec.clone(),
            content_type: song.content_type,
            url: song_path(&m.info_hash, (!single).then_some(song.index)),
        })
        .collect();
    let tags = m.song.clone().unwrap_or_default();
    TorrentSongs {
        info_hash: m.info_hash,
        name: m.name.clone(),
        title: tags.title,
        artist: tags.artist,
        album: tags.album,
        duration_ms: tags.duration_ms,
        files,
    }
}

fn progress_of(entry: &Entry, now: Instant) -> Progress {
    let s = entry.handle.stats.borrow().clone();
    let (download_rate, upload_rate) = entry
        .meter
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .sample(now, s.downloaded_bytes, s.uploaded_bytes);
    let verified = entry.handle.verified.borrow().clone();
    let map = (0..verified.piece_count())
        .map(|p| if verified.has(p) { '1' } else { '0' })
        .collect();
    let piece_length = entry.handle.storage.geometry().piece_length.max(1);
    let files = entry
        .manifest
        .files
        .iter()
        .enumerate()
        .map(|(index, f)| {
            let (have, all) = if f.length == 0 {
                (0, 0)
            } else {
                let first = (f.offset / piece_length) as u32;
                let last = ((f.offset + f.length - 1) / piece_length) as u32;
                let have = (first..=last).filter(|&p| verified.has(p)).count();
                (have as u32, last - first + 1)
            };
            FileProgress {
                index,
                downloaded_percent: percent(have, all),
            }
        })
        .collect();
    Progress {
        info_hash: entry.manifest.info_hash,
        name: entry.manifest.name.clone(),
        have_pieces: s.have_pieces,
        piece_count: s.piece_count,
        downloaded_percent: percent(s.have_pieces, s.piece_count),
        complete: s.complete,
        peers: s.peers,
        download_rate,
        upload_rate,
        downloaded_bytes: s.downloaded_bytes,
        uploaded_bytes: s.uploaded_bytes,
        total_bytes: s.total_bytes,
        error: s.error,
        files,
        verified: map,
    }
}

/// `have` of `all` as a percentage with one decimal (all of nothing: 100).
fn percent(have: u32, all: u32) -> f64 {
    if all == 0 {
        return 100.0;
    }
    (f64::from(have) * 1000.0 / f64::from(all)).round() / 10.0
}
