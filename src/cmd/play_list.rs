//! `songswarm play OWNER/NAME`: play a playlist from the ring, in order,
//! with the next track prefetched.
//!
//! The playlist is read through this process's own ring node. Each track
//! is found by its info-hash (manifest and swarm from the ring), served
//! over HTTP like `play`'s one song, and handed to `--player` (its turn
//! ends when the player exits: a player quit early is a skip) or, without
//! one, played by the clock for its duration while the web player or any
//! client fetches it. While a track plays, the next one's download starts
//! as soon as the current one is complete or [`PREFETCH_LEAD`] of it
//! remain, so its first byte comes from local disk; one track ahead only.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use serde::Serialize;

use super::output::{Answer, Event, Output};
use super::play::{start_player_child, PlayArgs, PlayError};
use crate::app::ring::Ring;
use crate::app::{hashing_threads, App, AppError};
use crate::http::body::new_stream_id;
use crate::http::catalog::song_of;
use crate::http::song_path;
use crate::id::Id;
use crate::playlist::ring::{self as playlist_ring, PlaylistError};
use crate::playlist::PlaylistRef;
use crate::storage::Storage;
use crate::swarm::coordinator::TorrentHandle;
use crate::swarm::TorrentEvent;

/// How much of the current track may remain when the next one's download
/// starts (at the latest).
pub const PREFETCH_LEAD: Duration = Duration::from_secs(30);

/// How long the playlist's first read is retried while the node joins.
const READ_DEADLINE: Duration = Duration::from_secs(30);

/// What `play` was given: a playlist `OWNER/NAME`, or a song (a manifest
/// or an info-hash). Other readings (search words) slot in here.
pub enum PlayTarget {
    /// A playlist in the ring.
    Playlist(PlaylistRef),
    /// One song, as `play` always took it.
    Song(String),
}

impl PlayTarget {
    /// `OWNER/NAME` with OWNER 64 hex digits and a valid name is a
    /// playlist unless a file of that name exists; anything else a song.
    pub fn parse(arg: &str) -> PlayTarget {
        match PlaylistRef::parse(arg) {
            Some(Ok(r)) if !std::path::Path::new(arg).exists() => PlayTarget::Playlist(r),
            _ => PlayTarget::Song(arg.to_string()),
        }
    }
}

/// The line printed as each track's turn starts.
#[derive(Debug, Serialize)]
pub struct TrackView {
    /// Its place in the playlist, from 1.
    pub position: usize,
    /// Tracks in the playlist.
    pub of: usize,
    /// The track.
    pub info_hash: Id,
    /// Its title (or the torrent's name).
    pub title: String,
    /// Where it is served.
    pub song_url: String,
    /// True if its download started while the previous track played.
    pub prefetched: bool,
    /// True if its first piece was on disk, verified, as its turn began.
    pub first_byte_local: bool,
}

impl Answer for TrackView {
    fn to_text(&self) -> String {
        let ahead = if self.prefetched { " (prefetched)" } else { "" };
        format!(
            "{}/{} {}{ahead}\nsong        {}",
            self.position, self.of, self.title, self.song_url
        )
    }

    fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["event"] = "track".into();
        v
    }
}

/// One track started: its torrent and where it is served.
struct Track {
    /// Its coordinator.
    handle: TorrentHandle,
    /// The song's URL.
    url: String,
    /// Its title (or the torrent's name).
    title: String,
    /// Its length in play time, if known.
    duration: Option<Duration>,
}

/// Plays the playlist `r` until its end or SIGINT/SIGTERM.
pub async fn run(args: PlayArgs, r: PlaylistRef) -> Result<(), PlayError> {
    let out = Output::new(args.json);
    let ring_opts = args.ring.options().ok_or(AppError::NeedsRing)?;
    let mut app = App::bind(args.listen, args.rates.config()).await?;
    app.set_download_dir(args.out.clone().unwrap_or_else(super::play::default_out));
    let http = app.serve_http(args.http).await?;
    app.keep_playlists_of(crate::identity::default_config_dir());
    let ring_node = app.join_ring(&ring_opts, &[]).await;
    let mut chord = ring_node.chord.clone();
    // The node may still be joining: its reads fail until it is a member.
    let deadline = Instant::now() + READ_DEADLINE;
    let loaded = loop {
        match playlist_ring::read(&mut chord, &r).await {
            Ok(Some(loaded)) => break loaded,
            Ok(None) => return Err(AppError::Failed(format!("no playlist {r} in the ring")).into()),
            Err(PlaylistError::Ring(e)) if Instant::now() < deadline => {
                tracing::debug!("reading the playlist: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(AppError::Failed(format!("playlist {r}: {e}")).into()),
        }
    };
    out.print(&Event::Listening {
        addr: app.local_addr(),
        info_hashes: &loaded.tracks,
        http: Some(http),
    });
    let played = play_all(&app, &args, &loaded.tracks, http, out).await;
    app.shutdown().await;
    played
}

async fn play_all(
    app: &App,
    args: &PlayArgs,
    tracks: &[Id],
    http: std::net::SocketAddr,
    out: Output,
) -> Result<(), PlayError> {
    let Some(ring) = app.ring() else {
        return Err(AppError::NeedsRing.into());
    };
    let dir = args.out.clone().unwrap_or_else(super::play::default_out);
    let mut stop = Box::pin(crate::app::shutdown::signal());
    let mut next: Option<Track> = None;
    for (i, &info_hash) in tracks.iter().enumerate() {
        let prefetched = next.is_some();
        let current = match next.take() {
            Some(track) => track,
            None => start_track(app, ring, info_hash, &dir, http).await?,
        };
        let local = current.handle.verified.borrow().has(0);
        out.print(&Event::Answer(&TrackView {
            position: i + 1,
            of: tracks.len(),
            info_hash,
            title: current.title.clone(),
            song_url: current.url.clone(),
            prefetched,
            first_byte_local: local,
        }));
        // The player's exit, waited for on a thread of its own.
        let mut player = match &args.player {
            Some(command) => {
                let mut child = start_player_child(command, &current.url)?;
                Some(tokio::task::spawn_blocking(move || child.wait()))
            }
            None => None,
        };
        let started = Instant::now();
        let end = current.duration.map(|d| started + d);
        let mut stats = current.handle.stats.clone();
        let mut watching = true;
        let following = tracks.get(i + 1).copied();
        let lead_at = end.map(|e| e.checked_sub(PREFETCH_LEAD).unwrap_or(started));
        loop {
            let want_next = following.is_some()
                && next.is_none()
                && (stats.borrow().complete || lead_at.is_some_and(|t| Instant::now() >= t));
            if want_next {
                if let Some(hash) = following {
                    next = Some(start_track(app, ring, hash, &dir, http).await?);
                }
                continue;
            }
            let turn_over = tokio::select! {
                _ = &mut stop => return Ok(()),
                changed = stats.changed(), if watching => {
                    watching = changed.is_ok();
                    false
                }
                _ = async { player.as_mut()?.await.ok() }, if player.is_some() => true,
                _ = tokio::time::sleep_until(end.unwrap_or(started + Duration::from_secs(3600))), if player.is_none() => true,
                _ = tokio::time::sleep_until(lead_at.unwrap_or(started + Duration::from_secs(3600))), if next.is_none() && following.is_some() => false,
            };
            if turn_over {
                break;
            }
        }
    }
    Ok(())
}

/// Finds track `info_hash` in the ring, opens its files under `dir` and
/// starts its download with the song's start first.
async fn start_track(
    app: &App,
    ring: &Ring,
    info_hash: Id,
    dir: &std::path::Path,
    http: std::net::SocketAddr,
) -> Result<Track, PlayError> {
    let fetched = ring
        .fetch_manifest(info_hash, &[], None)
        .await
        .map_err(|e| AppError::Failed(format!("track {info_hash}: {e}")))?;
    let manifest = fetched.manifest;
    let out: PathBuf = dir.join(info_hash.to_hex());
    let storage = Arc::new(Storage::open_or_create(&out, &manifest).map_err(AppError::from)?);
    let s = storage.clone();
    let have = tokio::task::spawn_blocking(move || s.verify_all(hashing_threads()))
        .await
        .map_err(|e| AppError::Failed(e.to_string()))?;
    let handle = app.add_torrent(&manifest, storage, have);
    ring.track(handle.clone(), Some(fetched.looked_up));
    let _ = handle
        .events
        .send(TorrentEvent::AddPeers(fetched.peers))
        .await;
    let entry = app.catalog().get(&info_hash);
    let song = entry.and_then(|e| song_of(e, 0).ok());
    let index = (manifest.files.len() > 1).then_some(0);
    let url = format!("http://{http}{}", song_path(&info_hash, index));
    let (title, duration) = match &song {
        Some(song) => {
            let _ = handle
                .events
                .send(TorrentEvent::StreamAt {
                    id: new_stream_id(),
                    offset: song.span.offset,
                    end: song.span.end(),
                    byte_rate: song.byte_rate,
                })
                .await;
            let title = song
                .meta
                .title
                .clone()
                .unwrap_or_else(|| manifest.name.clone());
            let duration = song.meta.duration_ms.map(Duration::from_millis);
            (title, duration)
        }
        None => (manifest.name.clone(), None),
    };
    Ok(Track {
        handle,
        url,
        title,
        duration,
    })
}
