//! Fetching a song on demand, and the web player's one track ahead:
//!
//! - `POST /api/fetch` `{info_hash, file?}`: start a torrent this process does
//!   not hold, from its metadata record in the ring (as `songswarm play
//!   <INFO-HASH>` does), so a search result plays in the page.
//! - `PUT /api/prefetch` `{info_hash, file, current?}`: the page's queue
//!   (a playlist or an album) says which track is next, when 30 s of the
//!   current one remain or the current one is complete. Its torrent is
//!   started if need be and its song's start is asked for first, so its
//!   first byte is on disk when its turn comes. One track ahead only: a
//!   new next track cancels the previous one, unless that one is now
//!   `current` (it was played).
//! - `DELETE /api/prefetch` `{current?}`: a skip; the track ahead is
//!   cancelled (same rule).
//! - `GET /api/prefetch`: the track ahead, or null.
//!
//! Cancelling drops the song's priority (its prefetch stream closes) and,
//! if the torrent was started for the prefetch, stops it: nothing more is
//! fetched, and what was verified stays on disk. The page knows the queue
//! and the play clock; this room holds the torrents, so it owns the one
//! slot and what a cancel undoes. The process above (`app`) starts and
//! stops torrents through [`Fetcher`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::body::new_stream_id;
use super::catalog::song_of;
use super::refused::{fail, refuse, Refused};
use super::{song_path, HttpContext};
use crate::id::Id;
use crate::swarm::{StreamId, TorrentEvent};

/// A future a [`Fetcher`] answers with.
pub type Pending<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Starts and stops torrents for the HTTP room (the process implements it).
pub trait Fetcher: Send + Sync {
    /// Starts the torrent `info_hash` from its metadata in the ring unless
    /// the process has it; Ok(true) if it was started now.
    fn start(&self, info_hash: Id) -> Pending<Result<bool, String>>;
    /// Stops a torrent [`Fetcher::start`] started (its verified data stays
    /// on disk); false if it did not start it.
    fn stop(&self, info_hash: Id) -> bool;
}

/// The track ahead.
#[derive(Clone, Debug, Serialize)]
pub struct Ahead {
    /// Its torrent.
    pub info_hash: Id,
    /// Its song in the torrent.
    pub file: usize,
    /// True if its torrent was started for it (a cancel stops it).
    pub started_here: bool,
    /// The stream that asks for the song's start first.
    #[serde(skip)]
    stream: Option<StreamId>,
}

/// The one slot of the track ahead, shared by the handlers.
pub type Slot = Arc<Mutex<Option<Ahead>>>;

/// `GET /api/prefetch`'s answer.
#[derive(Debug, Serialize)]
struct AheadView {
    #[serde(flatten)]
    ahead: Ahead,
    /// Its torrent runs and lacks pieces (it is being fetched).
    fetching: bool,
    /// Share of its pieces verified, 0 to 100.
    downloaded_percent: f64,
}

/// The body of `POST /api/fetch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchBody {
    info_hash: String,
    #[serde(default)]
    file: usize,
}

/// The body of `PUT /api/prefetch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefetchBody {
    info_hash: String,
    #[serde(default)]
    file: usize,
    current: Option<String>,
}

/// The body of `DELETE /api/prefetch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipBody {
    current: Option<String>,
}

fn parse(hash: &str) -> Result<Id, Refused> {
    hash.parse::<Id>().map_err(|_| {
        refuse(
            StatusCode::BAD_REQUEST,
            format!("{hash:?} is not an info-hash (40 hex digits)"),
        )
    })
}

fn lock(slot: &Slot) -> std::sync::MutexGuard<'_, Option<Ahead>> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts `info_hash` if need be; the answer on failure.
async fn ensure(ctx: &HttpContext, info_hash: Id) -> Result<bool, Refused> {
    if ctx.catalog.get(&info_hash).is_some() {
        return Ok(false);
    }
    let Some(fetcher) = &ctx.fetcher else {
        return Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "this process cannot fetch songs on demand",
        ));
    };
    fetcher.start(info_hash).await.map_err(|e| {
        refuse(
            StatusCode::BAD_GATEWAY,
            format!("cannot fetch {info_hash}: {e}"),
        )
    })
}

/// Undoes the track ahead `a`: its stream closes; a torrent started for
/// it stops.
async fn cancel(ctx: &HttpContext, a: Ahead) {
    if let (Some(id), Some(entry)) = (a.stream, ctx.catalog.get(&a.info_hash)) {
        let _ = entry
            .handle
            .events
            .send(TorrentEvent::StreamClosed { id })
            .await;
    }
    if a.started_here {
        if let Some(f) = &ctx.fetcher {
            f.stop(a.info_hash);
        }
    }
}

/// Takes the track ahead out of the slot; cancels it unless it is
/// `current` (then only its prefetch stream closes: the player's own
/// stream now drives it).
async fn clear(ctx: &HttpContext, current: Option<Id>) -> Option<Id> {
    let old = lock(&ctx.prefetch).take()?;
    let id = old.info_hash;
    if Some(id) == current {
        cancel(
            ctx,
            Ahead {
                started_here: false,
                ..old
            },
        )
        .await;
    } else {
        cancel(ctx, old).await;
    }
    Some(id)
}

/// `POST /api/fetch`.
pub async fn fetch(State(ctx): State<HttpContext>, Json(body): Json<FetchBody>) -> Response {
    let info_hash = match parse(&body.info_hash) {
        Ok(id) => id,
        Err(answer) => return answer.into_response(),
    };
    let started = match ensure(&ctx, info_hash).await {
        Ok(s) => s,
        Err(answer) => return answer.into_response(),
    };
    // A search result played: the song is wanted now, not just ahead.
    if let Some(a) = lock(&ctx.prefetch).as_mut() {
        if a.info_hash == info_hash {
            a.started_here = false;
        }
    }
    let Some(entry) = ctx.catalog.get(&info_hash) else {
        return fail(StatusCode::BAD_GATEWAY, "the torrent stopped as it started");
    };
    let count = entry.manifest.files.len();
    if body.file >= count {
        let why = format!(
            "file {}: the torrent has {count} file(s), numbered from 0",
            body.file
        );
        return fail(StatusCode::BAD_REQUEST, why);
    }
    let url = song_path(&info_hash, (count > 1).then_some(body.file));
    Json(serde_json::json!({ "info_hash": info_hash, "started": started, "url": url }))
        .into_response()
}

/// `GET /api/prefetch`.
pub async fn show(State(ctx): State<HttpContext>) -> Response {
    let Some(ahead) = lock(&ctx.prefetch).clone() else {
        return Json(serde_json::Value::Null).into_response();
    };
    let (fetching, downloaded_percent) = match ctx.catalog.get(&ahead.info_hash) {
        Some(e) => {
            let v = e.handle.verified.borrow().clone();
            let n = v.piece_count().max(1);
            let have = (0..v.piece_count()).filter(|&p| v.has(p)).count() as u32;
            (
                have < v.piece_count(),
                f64::from(have) * 100.0 / f64::from(n),
            )
        }
        None => (false, 0.0),
    };
    Json(AheadView {
        ahead,
        fetching,
        downloaded_percent: (downloaded_percent * 10.0).round() / 10.0,
    })
    .into_response()
}

/// `PUT /api/prefetch`.
pub async fn set(State(ctx): State<HttpContext>, Json(body): Json<PrefetchBody>) -> Response {
    let (info_hash, current) = match (parse(&body.info_hash), body.current.as_deref().map(parse)) {
        (Ok(id), None) => (id, None),
        (Ok(id), Some(Ok(c))) => (id, Some(c)),
        (Err(answer), _) | (_, Some(Err(answer))) => return answer.into_response(),
    };
    let same = lock(&ctx.prefetch)
        .as_ref()
        .is_some_and(|a| a.info_hash == info_hash && a.file == body.file);
    if same {
        return show(State(ctx)).await;
    }
    clear(&ctx, current).await;
    let started_here = match ensure(&ctx, info_hash).await {
        Ok(s) => s,
        Err(answer) => return answer.into_response(),
    };
    let Some(entry) = ctx.catalog.get(&info_hash) else {
        return fail(StatusCode::BAD_GATEWAY, "the torrent stopped as it started");
    };
    let song = match song_of(entry.clone(), body.file) {
        Ok(s) => s,
        Err(e) => {
            if started_here {
                if let Some(f) = &ctx.fetcher {
                    f.stop(info_hash);
                }
            }
            return fail(StatusCode::BAD_REQUEST, e);
        }
    };
    let stream = new_stream_id();
    let _ = entry
        .handle
        .events
        .send(TorrentEvent::StreamAt {
            id: stream,
            offset: song.span.offset,
            end: song.span.end(),
            byte_rate: song.byte_rate,
        })
        .await;
    let ahead = Ahead {
        info_hash,
        file: body.file,
        started_here,
        stream: Some(stream),
    };
    // Another request may have filled the slot meanwhile: one ahead only.
    let displaced = lock(&ctx.prefetch).replace(ahead);
    if let Some(old) = displaced {
        cancel(&ctx, old).await;
    }
    show(State(ctx)).await
}

/// `DELETE /api/prefetch`.
pub async fn skip(State(ctx): State<HttpContext>, Json(body): Json<SkipBody>) -> Response {
    let current = match body.current.as_deref().map(parse) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(answer)) => return answer.into_response(),
    };
    let cancelled = clear(&ctx, current).await;
    Json(serde_json::json!({ "cancelled": cancelled })).into_response()
}
