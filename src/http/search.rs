//! The ring's library over HTTP, for the web player (README, "The JSON
//! API"):
//!
//! - `GET /api/search?q=WORDS[&limit=N]`: songs matching every word, best
//!   first (live seeders, then title), as `songswarm search` finds them.
//! - `GET /api/library`: every song in the ring, from a walk around it.
//!
//! A song this process serves carries its `url`; any other has `null`
//! there (`songswarm play <info-hash>` fetches it).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{song_path, HttpContext};
use crate::chord::catalog::{self, query_words};
use crate::chord::client::walk_library;
use crate::chord::driver::ChordHandle;
use crate::chord::records::Song;
use crate::wire::chord::Hit;

/// Most results of one search over HTTP.
const MAX_RESULTS: usize = 100;

/// Most songs `/api/library` lists.
const MAX_LIBRARY: usize = 5000;

/// Longest wait for one node's answer during the library walk.
const WALK_TIMEOUT: Duration = Duration::from_secs(10);

/// The query of `/api/search`.
#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    /// The words.
    #[serde(default)]
    q: String,
    /// Most results (default 30).
    limit: Option<usize>,
}

/// A song as the web player lists it.
#[derive(Debug, Serialize)]
pub struct Listed {
    /// The song.
    #[serde(flatten)]
    song: Song,
    /// Live seeders (search results only).
    #[serde(skip_serializing_if = "Option::is_none")]
    seeders: Option<u32>,
    /// Its URL on this server, if this process has its torrent.
    url: Option<String>,
}

/// The answer of `/api/search`.
#[derive(Debug, Serialize)]
pub struct SearchResults {
    /// The query as given.
    query: String,
    /// The words searched for.
    words: Vec<String>,
    /// Best first.
    results: Vec<Listed>,
}

/// The answer of `/api/library`.
#[derive(Debug, Serialize)]
pub struct Library {
    /// Members of the ring that were asked.
    members: usize,
    /// True if the list stopped at its cap.
    truncated: bool,
    /// Every song, in no particular order.
    songs: Vec<Listed>,
}

fn listed(ctx: &HttpContext, song: Song, seeders: Option<u32>) -> Listed {
    let url = ctx.catalog.get(&song.info_hash).map(|entry| {
        let index = (entry.manifest.files.len() > 1).then_some(song.file as usize);
        song_path(&song.info_hash, index)
    });
    Listed { song, seeders, url }
}

/// The process's ring node; None (answered 503) outside a ring.
fn ring(chord: &Arc<OnceLock<ChordHandle>>) -> Option<ChordHandle> {
    chord.get().cloned()
}

fn not_in_ring() -> Response {
    let why = "this process is not in a ring: start it with the ring (no --no-ring)\n";
    (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
}

/// `GET /api/search?q=WORDS`.
pub async fn search(State(ctx): State<HttpContext>, Query(query): Query<SearchQuery>) -> Response {
    let words = query_words(&query.q);
    if words.is_empty() {
        let why = "q has no word to search for (words of two letters or more)\n";
        return (StatusCode::BAD_REQUEST, why).into_response();
    }
    let Some(chord) = ring(&ctx.chord) else {
        return not_in_ring();
    };
    let limit = query.limit.unwrap_or(30).clamp(1, MAX_RESULTS);
    match catalog::search(&chord, &query.q, limit).await {
        Ok(hits) => {
            let results = hits
                .into_iter()
                .map(|Hit { song, seeders, .. }| listed(&ctx, song, Some(seeders)))
                .collect();
            Json(SearchResults {
                query: query.q,
                words,
                results,
            })
            .into_response()
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("the ring did not answer: {e}\n"),
        )
            .into_response(),
    }
}

/// `GET /api/library`.
pub async fn library(State(ctx): State<HttpContext>) -> Response {
    let Some(chord) = ring(&ctx.chord) else {
        return not_in_ring();
    };
    let mut songs = Vec::new();
    let walked = walk_library(chord.addr(), WALK_TIMEOUT, 100, |_, page| {
        songs.extend(
            page.into_iter()
                .take(MAX_LIBRARY.saturating_sub(songs.len())),
        )
    })
    .await;
    match walked {
        Ok(members) => {
            let truncated = songs.len() >= MAX_LIBRARY;
            let songs = songs.into_iter().map(|s| listed(&ctx, s, None)).collect();
            Json(Library {
                members,
                truncated,
                songs,
            })
            .into_response()
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("the ring walk failed: {e}\n"),
        )
            .into_response(),
    }
}
