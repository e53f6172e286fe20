//! `GET` and `HEAD /songs/{info-hash}` (a single-file torrent) and
//! `/songs/{info-hash}/{file-index}` (a song of an album).
//!
//! The handler resolves the URL through the catalog (the manifest's file
//! list is the only way to a file), asks [`range::answer`] for the status
//! and the bytes, and renders them. `HEAD` is answered from the manifest
//! alone: it opens no stream, so it never starts a download.

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::body::{song_body, BodyParams};
use super::catalog::{Song, SongError};
use super::range::{self, Answer, Conditions};
use super::HttpContext;

/// `/songs/{hash}`.
pub async fn whole_torrent(
    State(ctx): State<HttpContext>,
    method: Method,
    Path(hash): Path<String>,
    headers: HeaderMap,
) -> Response {
    let requested = Instant::now();
    let song = ctx.catalog.song(&hash, None);
    serve(&ctx, &method, &headers, song, requested)
}

/// `/songs/{hash}/{index}`.
pub async fn one_file(
    State(ctx): State<HttpContext>,
    method: Method,
    Path((hash, index)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let requested = Instant::now();
    let song = ctx.catalog.song(&hash, Some(&index));
    serve(&ctx, &method, &headers, song, requested)
}

fn serve(
    ctx: &HttpContext,
    method: &Method,
    headers: &HeaderMap,
    song: Result<Song, SongError>,
    requested: Instant,
) -> Response {
    let song = match song {
        Ok(song) => song,
        Err(e) => return refuse(&e),
    };
    let len = song.span.length;
    let answer = range::answer(&conditions(headers), len, &song.etag);
    let bytes = answer.bytes(len);
    let mut response = Response::builder()
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, &song.etag)
        .header(header::CONTENT_TYPE, song.content_type);
    response = match answer {
        Answer::Full => response.status(StatusCode::OK),
        Answer::Partial { start, end } => response
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, range::content_range(start, end, len)),
        Answer::NotModified => response.status(StatusCode::NOT_MODIFIED),
        Answer::Unsatisfiable => response
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(header::CONTENT_RANGE, range::unsatisfied_range(len)),
    };
    if answer != Answer::NotModified {
        response = response.header(header::CONTENT_LENGTH, bytes.end - bytes.start);
    }
    let body = if *method == Method::HEAD || bytes.is_empty() {
        axum::body::Body::empty()
    } else {
        let handle = &song.entry.handle;
        song_body(BodyParams {
            events: handle.events.clone(),
            verified: handle.verified.clone(),
            storage: handle.storage.clone(),
            start: song.span.offset + bytes.start,
            end: song.span.offset + bytes.end,
            byte_rate: song.byte_rate,
            seek: bytes.start > 0,
            requested,
            metrics: ctx.metrics.stream.clone(),
            cancel: ctx.cancel.clone(),
        })
    };
    response
        .body(body)
        .unwrap_or_else(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())
}

/// The headers that decide the answer. A header that is not visible ASCII
/// counts as present and malformed.
fn conditions(headers: &HeaderMap) -> Conditions<'_> {
    let get = |name| {
        headers
            .get(name)
            .map(|v: &HeaderValue| v.to_str().unwrap_or(""))
    };
    Conditions {
        range: get(header::RANGE),
        if_range: get(header::IF_RANGE),
        if_none_match: get(header::IF_NONE_MATCH),
    }
}

/// A clear 4xx for a URL that names no song.
fn refuse(e: &SongError) -> Response {
    let status = match e {
        SongError::BadHash | SongError::BadIndex => StatusCode::BAD_REQUEST,
        SongError::UnknownHash(_) | SongError::NoSuchFile { .. } | SongError::NeedsIndex(_) => {
            StatusCode::NOT_FOUND
        }
    };
    (status, format!("{e}\n")).into_response()
}
