//! Decoding metainfo with the streaming decoder of `bencode` into raw fields.
//!
//! The decoder hands out each value as it goes, so the raw span of `info` is
//! taken straight from the input (`DictDecoder::into_raw`) and hashed as is.
//! Unknown keys are skipped without being stored; the nesting limit is
//! enforced by the decoder, the entry limits here. Cross-field checks (paths,
//! piece geometry) live in `validate`.
//!
//! Names, paths and tags are text: a `name.utf-8` or `path.utf-8` key wins
//! over `name` or `path` (old clients wrote the local encoding there and
//! UTF-8 beside it), and bytes that are not UTF-8 become `_` the way
//! libtorrent turns them, so a file lands where libtorrent puts it.

use super::bencode::{Decoder, DictDecoder, Object};

use super::validate::check_node_addr;
use super::{
    ManifestError, SongMeta, MAX_DEPTH, MAX_DICT_KEYS, MAX_FILES, MAX_NODES, MAX_PATH_COMPONENTS,
    MAX_PIECE_LENGTH, MIN_PIECE_LENGTH,
};

mod text;
use text::{text, utf8};

/// What the top level of a `.torrent` holds that we care about.
pub(super) struct Top<'a> {
    /// The raw info dictionary, as found in the file.
    pub info: &'a [u8],
    /// Chord bootstrap addresses.
    pub nodes: Vec<String>,
}

/// Turns a decoder error into ours, keeping its description.
fn bencode(e: super::bencode::Error) -> ManifestError {
    ManifestError::Bencode(e.to_string())
}

fn wrong(field: impl Into<String>, expected: &'static str) -> ManifestError {
    ManifestError::WrongType {
        field: field.into(),
        expected,
    }
}

pub(super) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ManifestError {
    ManifestError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Reads the next pair of `dict`, counting keys against [`MAX_DICT_KEYS`].
macro_rules! next_pair {
    ($dict:expr, $count:ident, $what:expr) => {{
        let pair = $dict.next_pair().map_err(bencode)?;
        if pair.is_some() {
            $count += 1;
            if $count > MAX_DICT_KEYS {
                return Err(ManifestError::TooMany {
                    what: $what.to_string(),
                    limit: MAX_DICT_KEYS,
                });
            }
        }
        pair
    }};
}

/// Parses the top-level dictionary: finds `info` and reads `nodes`.
pub(super) fn parse_top(bytes: &[u8]) -> Result<Top<'_>, ManifestError> {
    let mut decoder = Decoder::new(bytes).with_max_depth(MAX_DEPTH);
    let object = decoder
        .next_object()
        .map_err(bencode)?
        .ok_or(ManifestError::Bencode("empty input".into()))?;
    let Object::Dict(mut dict) = object else {
        return Err(wrong("(top level)", "a dictionary"));
    };
    let mut info = None;
    let mut nodes = Vec::new();
    let mut count = 0;
    while let Some((key, value)) = next_pair!(dict, count, "(top level)") {
        match key {
            b"info" => match value {
                Object::Dict(d) => info = Some(d.into_raw().map_err(bencode)?),
                _ => return Err(wrong("info", "a dictionary")),
            },
            b"nodes" => nodes = parse_nodes(value)?,
            // Unknown values are consumed (and checked) when dropped.
            _ => {}
        }
    }
    // Trailing bytes after the top-level dictionary are ignored, as other
    // clients do (some tools append a newline).
    let info = info.ok_or(ManifestError::Missing("info"))?;
    Ok(Top { info, nodes })
}

/// Reads `nodes`: `"host:port"` strings, or BEP 5 `[host, port]` pairs.
fn parse_nodes(value: Object<'_, '_>) -> Result<Vec<String>, ManifestError> {
    let Object::List(mut list) = value else {
        return Err(wrong("nodes", "a list"));
    };
    let mut nodes = Vec::new();
    while let Some(item) = list.next_object().map_err(bencode)? {
        if nodes.len() == MAX_NODES {
            return Err(ManifestError::TooMany {
                what: "nodes".into(),
                limit: MAX_NODES,
            });
        }
        let addr = match item {
            Object::Bytes(b) => utf8(b, "nodes[]")?,
            Object::List(mut pair) => {
                let host = match pair.next_object().map_err(bencode)? {
                    Some(Object::Bytes(b)) => utf8(b, "nodes[][0]")?,
                    _ => return Err(wrong("nodes[][0]", "a host string")),
                };
                let port = match pair.next_object().map_err(bencode)? {
                    Some(Object::Integer(i)) => integer(i, "nodes[][1]")?,
                    _ => return Err(wrong("nodes[][1]", "a port integer")),
                };
                if pair.next_object().map_err(bencode)?.is_some() {
                    return Err(invalid("nodes[]", "a [host, port] pair has extra items"));
                }
                if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                }
            }
            _ => return Err(wrong("nodes[]", "a \"host:port\" string")),
        };
        check_node_addr(&addr)?;
        nodes.push(addr);
    }
    Ok(nodes)
}

fn integer(text: &str, field: &str) -> Result<i64, ManifestError> {
    text.parse::<i64>()
        .map_err(|_| invalid(field, format!("integer {text} is out of range")))
}

/// A non-negative length.
fn length(object: Object<'_, '_>, field: &str) -> Result<u64, ManifestError> {
    let Object::Integer(text) = object else {
        return Err(wrong(field, "an integer"));
    };
    let value = integer(text, field)?;
    u64::try_from(value).map_err(|_| ManifestError::NegativeLength(field.to_string()))
}

/// A raw file entry of `info.files` before placement.
pub(super) struct RawFile {
    /// Path components below the torrent name.
    pub(super) components: Vec<String>,
    /// Length in bytes.
    pub(super) length: u64,
    /// Its `song` dictionary, if any.
    pub(super) song: Option<SongMeta>,
    /// A BEP 47 pad file (`attr` contains `p`): zeros that align the next
    /// file to a piece boundary (libtorrent's hybrid torrents have them).
    pub(super) pad: bool,
}

/// The fields of `info`, as read.
#[derive(Default)]
pub(super) struct RawInfo<'a> {
    /// `name`.
    pub(super) name: Option<String>,
    /// `piece length`, already range-checked.
    pub(super) piece_length: Option<u64>,
    /// `pieces`: concatenated SHA-1 hashes, borrowed from the input.
    pub(super) pieces: Option<&'a [u8]>,
    /// `length` of a single-file torrent.
    pub(super) length: Option<u64>,
    /// `files` of a multi-file torrent.
    pub(super) files: Option<Vec<RawFile>>,
    /// `song`.
    pub(super) song: Option<SongMeta>,
    /// `meta version` (2 for BitTorrent v2), to explain a missing `pieces`.
    pub(super) meta_version: Option<i64>,
}

/// Decodes `info` into its fields without cross-checking them.
pub(super) fn read_info(info: &[u8]) -> Result<RawInfo<'_>, ManifestError> {
    let mut decoder = Decoder::new(info).with_max_depth(MAX_DEPTH);
    let object = decoder
        .next_object()
        .map_err(bencode)?
        .ok_or(ManifestError::Bencode("empty info".into()))?;
    let mut dict = match object {
        Object::Dict(dict) => dict,
        _ => return Err(wrong("info", "a dictionary")),
    };
    let mut raw = RawInfo::default();
    let (mut name, mut name_utf8) = (None, None);
    let mut count = 0;
    while let Some((key, value)) = next_pair!(dict, count, "info") {
        match key {
            b"name" => match value {
                Object::Bytes(b) => name = Some(b),
                _ => return Err(wrong("info.name", "a string")),
            },
            // Ignored unless a string, as libtorrent does; `name` is there.
            b"name.utf-8" => {
                if let Object::Bytes(b) = value {
                    name_utf8 = Some(b);
                }
            }
            b"piece length" => {
                let Object::Integer(text) = value else {
                    return Err(wrong("info.piece length", "an integer"));
                };
                let value = integer(text, "info.piece length")?;
                match u64::try_from(value) {
                    Ok(v) if (MIN_PIECE_LENGTH..=MAX_PIECE_LENGTH).contains(&v) => {
                        raw.piece_length = Some(v)
                    }
                    _ => return Err(ManifestError::BadPieceLength(value)),
                }
            }
            b"pieces" => match value {
                Object::Bytes(b) => raw.pieces = Some(b),
                _ => return Err(wrong("info.pieces", "a string")),
            },
            b"length" => raw.length = Some(length(value, "info.length")?),
            b"files" => raw.files = Some(read_files(value)?),
            b"song" => raw.song = Some(read_song(value, "info.song")?),
            b"meta version" => {
                if let Object::Integer(text) = value {
                    raw.meta_version = Some(integer(text, "info.meta version")?);
                }
            }
            _ => {}
        }
    }
    if let Some(b) = name_utf8.or(name) {
        raw.name = Some(text(b, "info.name")?);
    }
    Ok(raw)
}

/// Checks that `info` is exactly one well-formed dictionary, nothing after.
pub(super) fn check_single_dict(info: &[u8]) -> Result<(), ManifestError> {
    let mut decoder = Decoder::new(info).with_max_depth(MAX_DEPTH);
    let span = match decoder.next_object().map_err(bencode)? {
        Some(Object::Dict(dict)) => dict.into_raw().map_err(bencode)?,
        Some(_) => return Err(wrong("info", "a dictionary")),
        None => return Err(ManifestError::Bencode("empty info".into())),
    };
    match info.len() - span.len() {
        0 => Ok(()),
        extra => Err(ManifestError::TrailingData(extra)),
    }
}

/// Reads `info.files`.
fn read_files(value: Object<'_, '_>) -> Result<Vec<RawFile>, ManifestError> {
    let Object::List(mut list) = value else {
        return Err(wrong("info.files", "a list"));
    };
    let mut files = Vec::new();
    while let Some(item) = list.next_object().map_err(bencode)? {
        if files.len() == MAX_FILES {
            return Err(ManifestError::TooMany {
                what: "info.files".into(),
                limit: MAX_FILES,
            });
        }
        let Object::Dict(dict) = item else {
            return Err(wrong("info.files[]", "a dictionary"));
        };
        files.push(read_file(dict)?);
    }
    Ok(files)
}

/// Reads one entry of `info.files`.
fn read_file(mut dict: DictDecoder<'_, '_>) -> Result<RawFile, ManifestError> {
    let (mut components, mut components_utf8) = (None, None);
    let mut len = None;
    let mut song = None;
    let mut pad = false;
    let mut count = 0;
    while let Some((key, value)) = next_pair!(dict, count, "info.files[]") {
        match key {
            b"length" => len = Some(length(value, "info.files[].length")?),
            b"path" => components = Some(read_path(value, "info.files[].path")?),
            // Ignored unless a list, as libtorrent does; `path` is there.
            b"path.utf-8" => {
                if let Object::List(_) = value {
                    components_utf8 = Some(read_path(value, "info.files[].path.utf-8")?);
                }
            }
            b"song" => song = Some(read_song(value, "info.files[].song")?),
            b"attr" => match value {
                Object::Bytes(b) => pad = b.contains(&b'p'),
                _ => return Err(wrong("info.files[].attr", "a string")),
            },
            _ => {}
        }
    }
    Ok(RawFile {
        components: components_utf8
            .or(components)
            .ok_or(ManifestError::Missing("info.files[].path"))?,
        length: len.ok_or(ManifestError::Missing("info.files[].length"))?,
        song,
        pad,
    })
}

/// Reads a file path: a list of strings, each a component.
fn read_path(value: Object<'_, '_>, field: &str) -> Result<Vec<String>, ManifestError> {
    let Object::List(mut list) = value else {
        return Err(wrong(field, "a list of strings"));
    };
    let mut parts = Vec::new();
    while let Some(part) = list.next_object().map_err(bencode)? {
        if parts.len() == MAX_PATH_COMPONENTS {
            return Err(ManifestError::TooMany {
                what: field.into(),
                limit: MAX_PATH_COMPONENTS,
            });
        }
        let Object::Bytes(b) = part else {
            return Err(wrong(field, "a list of strings"));
        };
        parts.push(text(b, field)?);
    }
    Ok(parts)
}

/// Reads a `song` dictionary; unknown keys are ignored.
fn read_song(value: Object<'_, '_>, field: &str) -> Result<SongMeta, ManifestError> {
    let Object::Dict(mut dict) = value else {
        return Err(wrong(field, "a dictionary"));
    };
    let mut song = SongMeta::default();
    let mut count = 0;
    while let Some((key, value)) = next_pair!(dict, count, field) {
        let text = |value: Object<'_, '_>, name: &str| -> Result<String, ManifestError> {
            match value {
                Object::Bytes(b) => text(b, &format!("{field}.{name}")),
                _ => Err(wrong(format!("{field}.{name}"), "a string")),
            }
        };
        match key {
            b"title" => song.title = Some(text(value, "title")?),
            b"artist" => song.artist = Some(text(value, "artist")?),
            b"album" => song.album = Some(text(value, "album")?),
            b"codec" => song.codec = Some(text(value, "codec")?),
            b"duration_ms" => {
                song.duration_ms = Some(length(value, &format!("{field}.duration_ms"))?)
            }
            _ => {}
        }
    }
    Ok(song)
}

/// Per file of an info dictionary: its `song` dictionary and whether it is a
/// pad file.
pub(super) fn parse_file_extras(
    info: &[u8],
) -> Result<Vec<(Option<SongMeta>, bool)>, ManifestError> {
    let raw = read_info(info)?;
    Ok(match raw.files {
        Some(files) => files.into_iter().map(|f| (f.song, f.pad)).collect(),
        None => vec![(None, false)],
    })
}
