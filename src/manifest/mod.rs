//! Manifests: BitTorrent v1 metainfo (BEP 3) with song metadata.
//!
//! A manifest is an ordinary `.torrent` file, so any BitTorrent client reads
//! it. The `info` dictionary holds `name`, `piece length`, `pieces` and either
//! `length` (one file) or `files` (an album directory). songswarm adds:
//!
//! - `info.song`: a dictionary with `title`, `artist`, `album` (strings),
//!   `duration_ms` (integer) and `codec` (string), every key optional. It sits
//!   inside `info` so the info-hash covers it; other clients ignore it. In a
//!   multi-file manifest it describes the album (its `album` and `artist`).
//! - `info.files[i].song`: optionally, the same dictionary per file of an
//!   album, read with [`Manifest::file_songs`].
//! - top-level `nodes`: Chord bootstrap addresses as `"host:port"` strings
//!   (BEP 5's `[host, port]` pairs are accepted too).
//!
//! The info-hash is SHA-1 over the raw bytes of `info` exactly as found in the
//! file, never over a re-encoding, so it matches every other client even for
//! dictionaries we do not fully understand.
//!
//! Manifests are untrusted input. Parsing never panics and rejects, with an
//! error that names the field: unsafe paths (absolute, `..`, `.`, empty
//! components, separators inside a component), a piece count that does not
//! match the total length, zero or absurd piece lengths, a `pieces` string
//! whose length is not a multiple of 20, negative lengths, more than
//! [`MAX_FILES`] files, nesting deeper than [`MAX_DEPTH`], dictionaries with
//! more than [`MAX_DICT_KEYS`] keys, and files above [`MAX_METAINFO_BYTES`].
//! Dictionary keys must be unique; like libtorrent, keys out of order are
//! read (old tools wrote them so), and so are names that are not UTF-8: a
//! `name.utf-8` / `path.utf-8` key wins, else each bad sequence becomes `_`,
//! and the result is checked as a path like any other name.
//!
//! Layout: `bencode` is the streaming reader, `decode` reads bencode into
//! raw fields, `validate` checks them and places the files, `build` hashes
//! audio files into a new manifest (encoding with bendy), `tags` reads song
//! metadata with lofty and merges it with flags.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::geometry::{FileSpan, Geometry};
use crate::id::Id;

mod bencode;
mod build;
mod decode;
mod piece_length;
mod tags;
mod validate;

pub use build::{build, check_output, BuildOptions};
pub use piece_length::{
    default_piece_length, default_song_piece_length, MIN_BUILD_PIECE_LENGTH, SONG_TARGET_PIECES,
};

/// Largest metainfo file accepted, in bytes.
pub const MAX_METAINFO_BYTES: u64 = 16 << 20;
/// Deepest nesting of lists and dictionaries accepted.
pub const MAX_DEPTH: usize = 32;
/// Most files in one manifest.
pub const MAX_FILES: usize = 10_000;
/// Most keys in one dictionary, and most entries in a list we keep.
pub const MAX_DICT_KEYS: usize = 1_000;
/// Most components in one file path.
pub const MAX_PATH_COMPONENTS: usize = 64;
/// Most Chord bootstrap addresses in `nodes`.
pub const MAX_NODES: usize = 256;
/// Longest string we keep (a path component, a tag, a node address), in bytes.
pub const MAX_STRING_BYTES: usize = 1_024;
/// Smallest piece length accepted when reading.
pub const MIN_PIECE_LENGTH: u64 = 1 << 10;
/// Largest piece length accepted when reading (a piece is held in memory).
pub const MAX_PIECE_LENGTH: u64 = 64 << 20;

/// A parsed, validated manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// SHA-1 of the raw `info` bytes as found in the file: the swarm's key.
    pub info_hash: Id,
    /// `info.name`, validated as a single safe path component.
    pub name: String,
    /// Bytes per piece (every piece but the last, which may be shorter).
    pub piece_length: u64,
    /// SHA-1 of each piece, in order (shared with the torrent's storage:
    /// a library holds each list once).
    pub pieces: Arc<[[u8; 20]]>,
    /// The files in torrent order; a single-file torrent has one entry.
    pub files: Vec<FileEntry>,
    /// Sum of the file lengths: the length of the torrent's byte stream.
    pub total_length: u64,
    /// `info.song`: the song (or, for an album, the album's) metadata.
    pub song: Option<SongMeta>,
    /// Top-level `nodes`: Chord bootstrap addresses as `"host:port"`.
    pub nodes: Vec<String>,
    /// The raw bencoded info dictionary, kept verbatim for the info-hash and
    /// for serving metadata to peers (BEP 9).
    pub info_bytes: Vec<u8>,
}

/// One file of a manifest, placed in the torrent's byte stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative path under the data root, including the torrent name:
    /// `name` for a single file, `name/a/b.flac` for an album. Validated: not
    /// absolute, no `..`, `.` or empty components.
    pub path: PathBuf,
    /// Length in bytes.
    pub length: u64,
    /// Offset of the file's first byte in the torrent's byte stream.
    pub offset: u64,
}

/// Song metadata carried inside `info` (so the info-hash covers it).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SongMeta {
    /// Song title (for an album manifest: unset, or the album title).
    pub title: Option<String>,
    /// Performing artist.
    pub artist: Option<String>,
    /// Album the song belongs to.
    pub album: Option<String>,
    /// Play time in milliseconds.
    pub duration_ms: Option<u64>,
    /// Audio codec, lower case: `flac`, `mp3`, `wav`, `vorbis`, `opus`, …
    pub codec: Option<String>,
}

/// Why a manifest could not be read or built.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The metainfo is bigger than any sane manifest.
    #[error("metainfo is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Size found.
        size: u64,
        /// [`MAX_METAINFO_BYTES`].
        limit: u64,
    },
    /// The bytes are not well-formed bencode (truncated, garbled, a key
    /// given twice, nested too deep).
    #[error("malformed bencode: {0}")]
    Bencode(String),
    /// Extra bytes after the info dictionary.
    #[error("{0} bytes of trailing data after the info dictionary")]
    TrailingData(usize),
    /// A required field is absent.
    #[error("missing field `{0}`")]
    Missing(&'static str),
    /// A field has the wrong bencode type.
    #[error("field `{field}` must be {expected}")]
    WrongType {
        /// The field, as a dotted path.
        field: String,
        /// What it should have been.
        expected: &'static str,
    },
    /// A field has a value that is not allowed.
    #[error("field `{field}`: {reason}")]
    Invalid {
        /// The field, as a dotted path.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file path (or the name) could escape the data root or is unusable.
    #[error("unsafe path {path:?}: {reason}")]
    UnsafePath {
        /// The offending path as written in the manifest.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A length field is negative.
    #[error("field `{0}` is negative")]
    NegativeLength(String),
    /// The piece length is zero or out of the accepted range.
    #[error("piece length {0} is out of range ({MIN_PIECE_LENGTH}..={MAX_PIECE_LENGTH} bytes)")]
    BadPieceLength(i64),
    /// `pieces` is not a whole number of 20-byte hashes.
    #[error("`pieces` is {0} bytes, not a multiple of 20")]
    PiecesNotMultipleOf20(usize),
    /// The number of piece hashes does not fit the total length.
    #[error("{actual} piece hashes but {total_length} bytes in pieces of {piece_length} need {expected}")]
    PieceCountMismatch {
        /// Hashes found in `pieces`.
        actual: u64,
        /// ceil(total_length / piece_length).
        expected: u64,
        /// Sum of the file lengths.
        total_length: u64,
        /// The piece length.
        piece_length: u64,
    },
    /// A list or dictionary has more entries than allowed.
    #[error("`{what}` has more than {limit} entries")]
    TooMany {
        /// The list or dictionary, as a dotted path.
        what: String,
        /// The limit that was exceeded.
        limit: usize,
    },
    /// Building: the inputs given to `create` cannot form one manifest.
    #[error("{0}")]
    BadInput(String),
}

impl Manifest {
    /// Parses a whole `.torrent` file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if bytes.len() as u64 > MAX_METAINFO_BYTES {
            return Err(ManifestError::TooLarge {
                size: bytes.len() as u64,
                limit: MAX_METAINFO_BYTES,
            });
        }
        let top = decode::parse_top(bytes)?;
        let mut manifest = validate::parse_info(top.info)?;
        manifest.nodes = top.nodes;
        Ok(manifest)
    }

    /// Parses just a bencoded info dictionary (as received over BEP 9).
    pub fn from_info_bytes(info: &[u8]) -> Result<Manifest, ManifestError> {
        if info.len() as u64 > MAX_METAINFO_BYTES {
            return Err(ManifestError::TooLarge {
                size: info.len() as u64,
                limit: MAX_METAINFO_BYTES,
            });
        }
        validate::parse_info(info)
    }

    /// Reads and parses a `.torrent` file, refusing oversize files before
    /// reading them.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        use std::io::Read;
        let io_err = |source| ManifestError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io_err)?;
        let mut bytes = Vec::new();
        // Read one byte past the limit so an oversize file is detected without
        // trusting its metadata.
        file.take(MAX_METAINFO_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err)?;
        Manifest::from_bytes(&bytes)
    }

    /// Serialises a whole `.torrent`: `info` verbatim, plus `nodes` if any.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_top(&self.info_bytes, &self.nodes)
    }

    /// Writes the `.torrent` to `path` atomically: a temporary file in the
    /// same directory, synced, then renamed over `path`, so a reader never
    /// sees half a manifest.
    pub fn save(&self, path: &Path) -> Result<(), ManifestError> {
        use std::io::Write;
        let io_err = |source| ManifestError::Io {
            path: path.to_path_buf(),
            source,
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let file_name = path.file_name().ok_or_else(|| {
            io_err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a file path",
            ))
        })?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file_name);
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        let tmp = dir.join(tmp_name);
        let result = (|| {
            // create_new: never through a link someone left at that name.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            file.write_all(&self.to_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io_err)
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        // Bounded by MAX_METAINFO_BYTES / 20 when parsed.
        self.pieces.len() as u32
    }

    /// The piece layout of the torrent's byte stream.
    pub fn geometry(&self) -> Geometry {
        Geometry::new(self.piece_length, self.total_length)
    }

    /// Where each file lies in the torrent's byte stream, in torrent order.
    pub fn file_spans(&self) -> Vec<FileSpan> {
        self.files
            .iter()
            .map(|f| FileSpan {
                offset: f.offset,
                length: f.length,
            })
            .collect()
    }

    /// Length of piece `index` in bytes: `piece_length`, except the last piece
    /// which holds the remainder. Zero for an index out of range.
    pub fn piece_len(&self, index: u32) -> u32 {
        if index >= self.piece_count() {
            return 0;
        }
        // piece_length ≤ MAX_PIECE_LENGTH < 2^32, so this fits.
        self.geometry().piece_len(index)
    }

    /// Per-file song metadata of a multi-file manifest (`info.files[i].song`),
    /// one entry per file in torrent order; all `None` for a single file.
    pub fn file_songs(&self) -> Vec<Option<SongMeta>> {
        // info_bytes was validated when this manifest was made; a manifest
        // assembled by hand with other bytes just yields no per-file songs.
        self.file_extras()
            .into_iter()
            .map(|(song, _)| song)
            .collect()
    }

    /// Which files are BEP 47 pad files (`attr` contains `p`), in torrent
    /// order. Pad files are zeros that align the next file to a piece
    /// boundary; they take part in the piece geometry but need not be stored.
    /// libtorrent's hybrid (v1 + v2) torrents have them; ours never do.
    pub fn pad_files(&self) -> Vec<bool> {
        self.file_extras().into_iter().map(|(_, pad)| pad).collect()
    }

    fn file_extras(&self) -> Vec<(Option<SongMeta>, bool)> {
        // info_bytes was validated when this manifest was made; a manifest
        // assembled by hand with other bytes just yields no extras.
        decode::parse_file_extras(&self.info_bytes)
            .ok()
            .filter(|extras| extras.len() == self.files.len())
            .unwrap_or_else(|| vec![(None, false); self.files.len()])
    }
}

/// Encodes a whole `.torrent` around raw info bytes: `{info, nodes}`.
fn encode_top(info: &[u8], nodes: &[String]) -> Vec<u8> {
    // bendy's encoder cannot splice raw bytes in, so the two-key outer
    // dictionary is written here; keys in sorted order ("info" < "nodes").
    let mut out = Vec::with_capacity(info.len() + 64);
    out.extend_from_slice(b"d4:info");
    out.extend_from_slice(info);
    if !nodes.is_empty() {
        out.extend_from_slice(b"5:nodesl");
        for node in nodes {
            out.extend_from_slice(node.len().to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(node.as_bytes());
        }
        out.push(b'e');
    }
    out.push(b'e');
    out
}
