//! The songs this process knows: every torrent's manifest beside its
//! coordinator's handle, and what a song URL resolves to.
//!
//! A URL names a song by info-hash and file index; the only way from a URL
//! to bytes on disk is through the manifest's file list, by that index (the
//! path of a file is never read from a URL).

use std::sync::{Arc, Mutex};

use dashmap::DashMap;

use super::rates::RateMeter;
use crate::geometry::FileSpan;
use crate::id::Id;
use crate::manifest::{Manifest, SongMeta};
use crate::swarm::coordinator::TorrentHandle;

/// Byte rate assumed for a song whose manifest gives no duration: CD audio
/// (44.1 kHz, 16 bit, stereo = 1411 kbit/s), more than any compressed
/// stream and as much as typical lossless, so the deadlines it yields err
/// on the early side.
pub const DEFAULT_BYTE_RATE: u64 = 176_400;

/// One torrent the process serves or downloads.
#[derive(Debug)]
pub struct Entry {
    /// Its manifest: the file list and song tags URLs resolve through.
    pub manifest: Arc<Manifest>,
    /// Its coordinator: progress, verified pieces, storage, the inbox.
    pub handle: TorrentHandle,
    /// Recent byte counts, for the rates the JSON API reports.
    pub(super) meter: Mutex<RateMeter>,
}

/// The torrents of the process by info-hash; cheap to clone, every clone
/// sees the same map.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// Every torrent added to the process; removed only when one started
    /// on demand is stopped.
    torrents: Arc<DashMap<Id, Arc<Entry>>>,
}

impl Catalog {
    /// Adds a torrent (or replaces one with the same info-hash).
    pub fn insert(&self, manifest: Arc<Manifest>, handle: TorrentHandle) {
        let entry = Entry {
            manifest,
            handle,
            meter: Mutex::new(RateMeter::default()),
        };
        self.torrents
            .insert(entry.handle.info_hash, Arc::new(entry));
    }

    /// Forgets a torrent (stopped on demand; its data stays on disk).
    pub fn remove(&self, info_hash: &Id) {
        self.torrents.remove(info_hash);
    }

    /// The torrent `info_hash`, if the process has it.
    pub fn get(&self, info_hash: &Id) -> Option<Arc<Entry>> {
        self.torrents.get(info_hash).map(|e| e.value().clone())
    }

    /// Every torrent, by name (then info-hash), for stable listings.
    pub fn list(&self) -> Vec<Arc<Entry>> {
        let mut all: Vec<Arc<Entry>> = self.torrents.iter().map(|e| e.value().clone()).collect();
        all.sort_by(|a, b| {
            (&a.manifest.name, a.manifest.info_hash).cmp(&(&b.manifest.name, b.manifest.info_hash))
        });
        all
    }
}

/// Why a song URL names no song (each is a 4xx).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SongError {
    /// The info-hash is not 40 hex digits.
    #[error("not an info-hash: expected 40 hex digits")]
    BadHash,
    /// The file index is not a decimal number.
    #[error("not a file index: expected a decimal number")]
    BadIndex,
    /// The process has no torrent with this info-hash.
    #[error("no torrent {0} here")]
    UnknownHash(Id),
    /// The torrent has fewer files.
    #[error("file {index} out of range: the torrent has {count} files")]
    NoSuchFile {
        /// The index asked for.
        index: usize,
        /// Files in the torrent.
        count: usize,
    },
    /// An album's URL without a file index.
    #[error("the torrent is an album of {0} files: add /INDEX to the URL")]
    NeedsIndex(usize),
}

/// One song (file) of a torrent, as its URL serves it.
#[derive(Clone, Debug)]
pub struct Song {
    /// The torrent.
    pub entry: Arc<Entry>,
    /// The file's index in the manifest.
    pub index: usize,
    /// Where the file lies in the torrent's byte stream.
    pub span: FileSpan,
    /// Its tags: the file's own, else (one file) the torrent's.
    pub meta: SongMeta,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Strong entity tag (with quotes): the content of an info-hash never
    /// changes, so info-hash and index name these bytes for ever.
    pub etag: String,
    /// Bytes per second of play: length ÷ duration, or the default.
    pub byte_rate: u64,
}

impl Catalog {
    /// Resolves the segments of a song URL: `hash` and, for an album's
    /// song, `index`.
    pub fn song(&self, hash: &str, index: Option<&str>) -> Result<Song, SongError> {
        let info_hash = parse_hash(hash)?;
        let entry = self
            .get(&info_hash)
            .ok_or(SongError::UnknownHash(info_hash))?;
        let count = entry.manifest.files.len();
        let index = match index {
            Some(i) => parse_index(i)?,
            None if count == 1 => 0,
            None => return Err(SongError::NeedsIndex(count)),
        };
        song_of(entry, index)
    }
}

/// The song `index` of a torrent.
pub fn song_of(entry: Arc<Entry>, index: usize) -> Result<Song, SongError> {
    let manifest = &entry.manifest;
    let count = manifest.files.len();
    let file = manifest
        .files
        .get(index)
        .ok_or(SongError::NoSuchFile { index, count })?;
    let own = manifest.file_songs().into_iter().nth(index).flatten();
    let meta = song_tags(own, manifest.song.as_ref(), count == 1);
    let extension = file.path.extension().and_then(|e| e.to_str());
    Ok(Song {
        index,
        span: FileSpan {
            offset: file.offset,
            length: file.length,
        },
        content_type: content_type(meta.codec.as_deref(), extension),
        etag: format!("\"{}-{index}\"", manifest.info_hash.to_hex()),
        byte_rate: byte_rate(file.length, meta.duration_ms),
        meta,
        entry,
    })
}

/// A song's tags: its file's own, each missing one taken from the
/// torrent's. A single file's torrent tags are the song's; an album's
/// describe the album, so its title and duration are not the song's.
fn song_tags(own: Option<SongMeta>, torrent: Option<&SongMeta>, single: bool) -> SongMeta {
    let own = own.unwrap_or_default();
    let Some(all) = torrent else {
        return own;
    };
    let from_all = |mine: Option<String>, theirs: &Option<String>| mine.or_else(|| theirs.clone());
    SongMeta {
        title: if single {
            from_all(own.title, &all.title)
        } else {
            own.title
        },
        artist: from_all(own.artist, &all.artist),
        album: from_all(own.album, &all.album),
        duration_ms: own
            .duration_ms
            .or(if single { all.duration_ms } else { None }),
        codec: from_all(own.codec, &all.codec),
    }
}

fn parse_hash(hash: &str) -> Result<Id, SongError> {
    if hash.len() != 40 {
        return Err(SongError::BadHash);
    }
    hash.parse().map_err(|_| SongError::BadHash)
}

fn parse_index(index: &str) -> Result<usize, SongError> {
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SongError::BadIndex);
    }
    // Too many digits for usize is just a file that is not there.
    Ok(index.parse().unwrap_or(usize::MAX))
}

/// Bytes per second of play of `length` bytes lasting `duration_ms`.
pub fn byte_rate(length: u64, duration_ms: Option<u64>) -> u64 {
    match duration_ms {
        Some(ms) if ms > 0 => (u128::from(length) * 1000 / u128::from(ms)).max(1) as u64,
        _ => DEFAULT_BYTE_RATE,
    }
}

/// The media type of a song: by the manifest's codec, else by the file's
/// extension, else `application/octet-stream` (never missing).
pub fn content_type(codec: Option<&str>, extension: Option<&str>) -> &'static str {
    let by_codec = codec.and_then(|c| match c.to_ascii_lowercase().as_str() {
        "flac" => Some("audio/flac"),
        "mp3" | "mpeg" => Some("audio/mpeg"),
        "vorbis" | "opus" | "ogg" | "speex" => Some("audio/ogg"),
        "mp4" | "m4a" | "alac" => Some("audio/mp4"),
        "aac" => Some("audio/aac"),
        "wav" | "pcm" => Some("audio/wav"),
        "aiff" => Some("audio/aiff"),
        _ => None,
    });
    let by_extension = || {
        extension.and_then(|e| match e.to_ascii_lowercase().as_str() {
            "flac" => Some("audio/flac"),
            "mp3" => Some("audio/mpeg"),
            "ogg" | "oga" | "opus" | "spx" => Some("audio/ogg"),
            "m4a" | "mp4" | "m4b" => Some("audio/mp4"),
            "aac" => Some("audio/aac"),
            "wav" => Some("audio/wav"),
            "aif" | "aiff" => Some("audio/aiff"),
            _ => None,
        })
    };
    by_codec
        .or_else(by_extension)
        .unwrap_or("application/octet-stream")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_by_codec_then_extension() {
        assert_eq!(content_type(Some("flac"), Some("mp3")), "audio/flac");
        assert_eq!(content_type(Some("mp3"), None), "audio/mpeg");
        assert_eq!(content_type(Some("Vorbis"), None), "audio/ogg");
        assert_eq!(content_type(Some("opus"), None), "audio/ogg");
        assert_eq!(content_type(Some("mp4"), None), "audio/mp4");
        assert_eq!(content_type(Some("wav"), None), "audio/wav");
        assert_eq!(content_type(Some("wavpack"), Some("M4A")), "audio/mp4");
        assert_eq!(content_type(None, Some("ogg")), "audio/ogg");
        assert_eq!(content_type(None, Some("txt")), "application/octet-stream");
        assert_eq!(content_type(None, None), "application/octet-stream");
    }

    #[test]
    fn byte_rate_from_duration_or_default() {
        // 3 minutes of 320 kbit/s MP3.
        assert_eq!(byte_rate(7_200_000, Some(180_000)), 40_000);
        assert_eq!(byte_rate(1, Some(10_000_000)), 1);
        assert_eq!(byte_rate(7_200_000, Some(0)), DEFAULT_BYTE_RATE);
        assert_eq!(byte_rate(7_200_000, None), DEFAULT_BYTE_RATE);
    }

    #[test]
    fn a_song_takes_missing_tags_from_its_torrent() {
        let tags = |title: &str, album: Option<&str>, ms| SongMeta {
            title: Some(title.into()),
            artist: None,
            album: album.map(Into::into),
            duration_ms: ms,
            codec: Some("flac".into()),
        };
        let album = tags("The Album", Some("The Album"), Some(3_600_000));
        let own = tags("Track 1", None, Some(200_000));
        let song = song_tags(Some(own.clone()), Some(&album), false);
        assert_eq!(song.title.as_deref(), Some("Track 1"));
        assert_eq!(song.album.as_deref(), Some("The Album"));
        assert_eq!(song.duration_ms, Some(200_000));
        // An album's title and length are not a song's.
        let bare = song_tags(None, Some(&album), false);
        assert_eq!((bare.title, bare.duration_ms), (None, None));
        assert_eq!(bare.codec.as_deref(), Some("flac"));
        // One file: the torrent's tags are the song's.
        let single = song_tags(None, Some(&album), true);
        assert_eq!(single.duration_ms, Some(3_600_000));
        assert_eq!(song_tags(Some(own.clone()), None, false), own);
    }

    #[test]
    fn url_segments_are_parsed_strictly() {
        assert_eq!(parse_hash("zz"), Err(SongError::BadHash));
        assert_eq!(parse_hash(&"g".repeat(40)), Err(SongError::BadHash));
        assert_eq!(parse_hash(&"ab".repeat(21)), Err(SongError::BadHash));
        assert!(parse_hash(&"ab".repeat(20)).is_ok());
        assert_eq!(parse_index(".."), Err(SongError::BadIndex));
        assert_eq!(parse_index("-1"), Err(SongError::BadIndex));
        assert_eq!(parse_index("1/2"), Err(SongError::BadIndex));
        assert_eq!(parse_index(""), Err(SongError::BadIndex));
        assert_eq!(parse_index("3"), Ok(3));
        assert_eq!(parse_index("99999999999999999999999"), Ok(usize::MAX));
        let unknown = Catalog::default().song(&"ab".repeat(20), None);
        assert!(matches!(unknown, Err(SongError::UnknownHash(_))));
    }
}
