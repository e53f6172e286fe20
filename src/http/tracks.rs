//! What a track of a playlist is, for the web player: its tags and, if
//! this process has its torrent, its URL. A track is a torrent (its first
//! song plays, as `songswarm play OWNER/NAME` plays it); its tags come from
//! the torrent here, else from its metadata record in the ring.

use futures_util::future::join_all;
use serde::Serialize;

use super::catalog::song_of;
use super::{song_path, HttpContext};
use crate::chord::catalog::get_value;
use crate::chord::driver::ChordHandle;
use crate::id::Id;
use crate::manifest::Manifest;

/// One track as the web player lists it.
#[derive(Clone, Debug, Serialize)]
pub struct Track {
    /// The torrent.
    pub info_hash: Id,
    /// The song of it that plays (the first).
    pub file: usize,
    /// Title, else the torrent's name; None if nothing is known of it.
    pub title: Option<String>,
    /// Artist.
    pub artist: Option<String>,
    /// Album.
    pub album: Option<String>,
    /// Play time.
    pub duration_ms: Option<u64>,
    /// Its URL on this server, if this process has its torrent.
    pub url: Option<String>,
}

/// The tracks `ids`, described (in order; lookups in parallel).
pub async fn describe(ctx: &HttpContext, chord: &ChordHandle, ids: &[Id]) -> Vec<Track> {
    join_all(ids.iter().map(|&id| one(ctx, chord, id))).await
}

async fn one(ctx: &HttpContext, chord: &ChordHandle, info_hash: Id) -> Track {
    if let Some(entry) = ctx.catalog.get(&info_hash) {
        let single = entry.manifest.files.len() == 1;
        let name = entry.manifest.name.clone();
        if let Ok(song) = song_of(entry, 0) {
            return Track {
                info_hash,
                file: 0,
                title: song.meta.title.or(Some(name)),
                artist: song.meta.artist,
                album: song.meta.album,
                duration_ms: song.meta.duration_ms,
                url: Some(song_path(&info_hash, (!single).then_some(0))),
            };
        }
    }
    let manifest = match get_value(chord, info_hash).await {
        Ok(Some(info)) => Manifest::from_info_bytes(&info).ok(),
        _ => None,
    };
    let Some(m) = manifest else {
        return Track {
            info_hash,
            file: 0,
            title: None,
            artist: None,
            album: None,
            duration_ms: None,
            url: None,
        };
    };
    let own = m.file_songs().into_iter().next().flatten();
    let all = m.song.clone().unwrap_or_default();
    let single = m.files.len() == 1;
    let own = own.unwrap_or_default();
    Track {
        info_hash,
        file: 0,
        title: own
            .title
            .or(if single { all.title } else { None })
            .or(Some(m.name.clone())),
        artist: own.artist.or(all.artist),
        album: own.album.or(all.album),
        duration_ms: own
            .duration_ms
            .or(if single { all.duration_ms } else { None }),
        url: None,
    }
}
