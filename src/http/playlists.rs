//! Playlists over HTTP, for the web player (README, "The JSON API"):
//! anyone's read by owner key and name, the user's own listed, made and
//! edited. The same ring code as `songswarm playlist` ([`crate::playlist`])
//! through this process's ring node, signed with the user's key from the
//! config directory. Every write is compare-and-swap on the version the
//! editor saw: a change made meanwhile elsewhere is a 409, never
//! overwritten.
//!
//! - `GET /api/identity`: our public key.
//! - `GET /api/playlists`: our playlists (those made here).
//! - `POST /api/playlists` `{name, tracks?}`: a new playlist of ours.
//! - `GET /api/playlists/{owner}/{name}`: anyone's, its tracks described.
//! - `PUT /api/playlists/{owner}/{name}` `{version, tracks}`: replace the
//!   tracks (reorder, remove by position).
//! - `POST /api/playlists/{owner}/{name}/tracks` `{tracks, version?}`: append.
//! - `DELETE /api/playlists/{owner}/{name}/tracks` `{tracks?, positions?,
//!   version?}`: remove.

use std::path::PathBuf;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::refused::{fail, refuse, Refused};
use super::tracks::describe;
use super::HttpContext;
use crate::chord::driver::ChordHandle;
use crate::id::Id;
use crate::identity::{hex, parse_hex32, Identity, KEY_FILE};
use crate::playlist::own::{self, read_index, Base};
use crate::playlist::ring::{self, PlaylistError};
use crate::playlist::{check_name, PlaylistRef};

/// Why a process outside a ring cannot answer.
const NOT_IN_RING: &str = "this process is not in a ring: start it with the ring (no --no-ring)";

mod json;
pub use json::{Create, OwnSummary, PlaylistJson, Replace, TrackEdit};

fn status_of(e: &PlaylistError) -> StatusCode {
    match e {
        PlaylistError::Form(_) | PlaylistError::Item(_) | PlaylistError::BadEdit(_) => {
            StatusCode::BAD_REQUEST
        }
        PlaylistError::Conflict { .. } | PlaylistError::Exists { .. } => StatusCode::CONFLICT,
        PlaylistError::NotFound(_) => StatusCode::NOT_FOUND,
        PlaylistError::Ring(_) | PlaylistError::BadAnswer { .. } => StatusCode::BAD_GATEWAY,
        PlaylistError::Index(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn playlist_error(e: PlaylistError) -> Response {
    fail(status_of(&e), e)
}

/// The ring node and the user's identity, or the answer saying why not.
fn ring_and_me(ctx: &HttpContext) -> Result<(ChordHandle, Identity, PathBuf), Refused> {
    let chord = ctx
        .chord
        .get()
        .cloned()
        .ok_or_else(|| refuse(StatusCode::SERVICE_UNAVAILABLE, NOT_IN_RING))?;
    let dir = ctx.identity_dir.clone();
    let me = Identity::load_or_create(&dir).map_err(|e| {
        refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot load the identity: {e}"),
        )
    })?;
    Ok((chord, me, dir))
}

fn parse_tracks(tracks: &[String]) -> Result<Vec<Id>, Refused> {
    tracks
        .iter()
        .map(|t| {
            t.parse::<Id>().map_err(|_| {
                refuse(
                    StatusCode::BAD_REQUEST,
                    format!("{t:?} is not an info-hash (40 hex digits)"),
                )
            })
        })
        .collect()
}

/// `{owner}/{name}` of a route, which must be ours for a change.
fn reference(owner: &str, name: String) -> Result<PlaylistRef, Refused> {
    let owner = parse_hex32(owner).ok_or_else(|| {
        refuse(
            StatusCode::BAD_REQUEST,
            format!("{owner:?} is not an owner key (64 hex digits)"),
        )
    })?;
    check_name(&name).map_err(|e| refuse(StatusCode::BAD_REQUEST, e))?;
    Ok(PlaylistRef { owner, name })
}

fn own_reference(owner: &str, name: String, me: &Identity) -> Result<PlaylistRef, Refused> {
    let r = reference(owner, name)?;
    if r.owner != me.public() {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!("{r} is not yours: only its owner can change it (open it read-only, or make your own)"),
        ));
    }
    Ok(r)
}

async fn render(
    ctx: &HttpContext,
    chord: &ChordHandle,
    r: &PlaylistRef,
    version: u64,
    tracks: &[Id],
    records: usize,
    mine: bool,
) -> PlaylistJson {
    PlaylistJson {
        playlist: r.to_string(),
        owner: hex(&r.owner),
        name: r.name.clone(),
        version,
        mine,
        records,
        tracks: describe(ctx, chord, tracks).await,
    }
}

/// True if the user has an identity already. Reads never make one: a
/// GET must change nothing (another site can make a browser send one);
/// the first change (`POST`) makes it, as `songswarm id` would.
fn has_identity(ctx: &HttpContext) -> bool {
    ctx.identity_dir.join(KEY_FILE).exists()
}

/// `GET /api/identity` (`public_key` null until the first change).
pub async fn identity(State(ctx): State<HttpContext>) -> Response {
    if !has_identity(&ctx) {
        return Json(serde_json::json!({ "public_key": null })).into_response();
    }
    match Identity::load_or_create(&ctx.identity_dir) {
        Ok(me) => Json(serde_json::json!({ "public_key": me.public_hex() })).into_response(),
        Err(e) => fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot load the identity: {e}"),
        ),
    }
}

/// `GET /api/playlists`.
pub async fn list(State(ctx): State<HttpContext>) -> Response {
    if !has_identity(&ctx) {
        let none = serde_json::json!({ "owner": null, "playlists": [] });
        return Json(none).into_response();
    }
    let (mut chord, me, dir) = match ring_and_me(&ctx) {
        Ok(x) => x,
        Err(answer) => return answer.into_response(),
    };
    let mut playlists = Vec::new();
    for name in read_index(&dir) {
        let r = PlaylistRef {
            owner: me.public(),
            name: name.clone(),
        };
        let loaded = match ring::read(&mut chord, &r).await {
            Ok(l) => l,
            Err(e) => return playlist_error(e),
        };
        playlists.push(OwnSummary {
            playlist: r.to_string(),
            name,
            version: loaded.as_ref().map(|l| l.seq),
            tracks: loaded.map_or(0, |l| l.tracks.len()),
        });
    }
    Json(serde_json::json!({ "owner": me.public_hex(), "playlists": playlists })).into_response()
}

/// `GET /api/playlists/{owner}/{name}`.
pub async fn show(
    State(ctx): State<HttpContext>,
    Path((owner, name)): Path<(String, String)>,
) -> Response {
    // Anyone's playlist reads without our identity (mine: false then).
    let Some(mut chord) = ctx.chord.get().cloned() else {
        return fail(StatusCode::SERVICE_UNAVAILABLE, NOT_IN_RING);
    };
    let me = has_identity(&ctx)
        .then(|| Identity::load_or_create(&ctx.identity_dir).ok())
        .flatten();
    let r = match reference(&owner, name) {
        Ok(r) => r,
        Err(answer) => return answer.into_response(),
    };
    match ring::read(&mut chord, &r).await {
        Ok(Some(l)) => {
            let mine = me.is_some_and(|me| r.owner == me.public());
            Json(render(&ctx, &chord, &r, l.seq, &l.tracks, l.records, mine).await).into_response()
        }
        Ok(None) => playlist_error(PlaylistError::NotFound(r.to_string())),
        Err(e) => playlist_error(e),
    }
}

/// Edits our playlist `name` and answers with it (`created`: 201).
async fn apply(
    ctx: &HttpContext,
    name: &str,
    base: Base,
    created: bool,
    change: impl FnOnce(&mut Vec<Id>) -> Result<(), PlaylistError>,
) -> Response {
    let (mut chord, me, dir) = match ring_and_me(ctx) {
        Ok(x) => x,
        Err(answer) => return answer.into_response(),
    };
    match own::edit(&mut chord, &me, &dir, name, base, change).await {
        Ok(e) => {
            let view = render(
                ctx,
                &chord,
                &e.playlist,
                e.version,
                &e.tracks,
                e.records,
                true,
            )
            .await;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(view)).into_response()
        }
        Err(e) => playlist_error(e),
    }
}

fn me_of(ctx: &HttpContext) -> Result<Identity, Refused> {
    Identity::load_or_create(&ctx.identity_dir).map_err(|e| {
        refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot load the identity: {e}"),
        )
    })
}

/// What every edit of a playlist checks first: `owner/name` is ours, and
/// `tracks` parse.
fn own_edit(
    ctx: &HttpContext,
    owner: &str,
    name: String,
    tracks: &[String],
) -> Result<(PlaylistRef, Vec<Id>), Refused> {
    let me = me_of(ctx)?;
    let r = own_reference(owner, name, &me)?;
    Ok((r, parse_tracks(tracks)?))
}

/// `POST /api/playlists`.
pub async fn create(State(ctx): State<HttpContext>, Json(body): Json<Create>) -> Response {
    let tracks = match parse_tracks(&body.tracks) {
        Ok(t) => t,
        Err(answer) => return answer.into_response(),
    };
    apply(&ctx, &body.name, Base::New, true, |list| {
        list.extend(tracks);
        Ok(())
    })
    .await
}

/// `PUT /api/playlists/{owner}/{name}`.
pub async fn replace(
    State(ctx): State<HttpContext>,
    Path((owner, name)): Path<(String, String)>,
    Json(body): Json<Replace>,
) -> Response {
    let (r, tracks) = match own_edit(&ctx, &owner, name, &body.tracks) {
        Ok(x) => x,
        Err(answer) => return answer.into_response(),
    };
    apply(&ctx, &r.name, Base::Version(body.version), false, |list| {
        *list = tracks;
        Ok(())
    })
    .await
}

/// `POST /api/playlists/{owner}/{name}/tracks`.
pub async fn append(
    State(ctx): State<HttpContext>,
    Path((owner, name)): Path<(String, String)>,
    Json(body): Json<TrackEdit>,
) -> Response {
    let (r, tracks) = match own_edit(&ctx, &owner, name, &body.tracks) {
        Ok((r, t)) if !t.is_empty() && body.positions.is_empty() => (r, t),
        Ok(_) => return fail(StatusCode::BAD_REQUEST, "give the tracks to append"),
        Err(answer) => return answer.into_response(),
    };
    let base = body.version.map_or(Base::Latest, Base::Version);
    apply(&ctx, &r.name, base, false, |list| {
        list.extend(tracks);
        Ok(())
    })
    .await
}

/// `DELETE /api/playlists/{owner}/{name}/tracks`.
pub async fn remove(
    State(ctx): State<HttpContext>,
    Path((owner, name)): Path<(String, String)>,
    Json(body): Json<TrackEdit>,
) -> Response {
    let (r, tracks) = match own_edit(&ctx, &owner, name, &body.tracks) {
        Ok(x) => x,
        Err(answer) => return answer.into_response(),
    };
    if tracks.is_empty() && body.positions.is_empty() {
        return fail(
            StatusCode::BAD_REQUEST,
            "give tracks or positions to remove",
        );
    }
    let base = body.version.map_or(Base::Latest, Base::Version);
    let positions = body.positions;
    apply(&ctx, &r.name, base, false, move |list| {
        if let Some(&p) = positions.iter().find(|&&p| p >= list.len()) {
            let n = list.len();
            return Err(PlaylistError::BadEdit(format!(
                "position {p} is past the end: the playlist has {n} tracks, numbered from 0"
            )));
        }
        let mut i = 0;
        list.retain(|t| {
            let keep = !positions.contains(&i) && !tracks.contains(t);
            i += 1;
            keep
        });
        Ok(())
    })
    .await
}
