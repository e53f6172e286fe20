//! Building a manifest from audio files: lay out the inputs, choose the
//! piece length, hash, read tags, encode `info` with bendy.
//!
//! What the inputs become:
//!
//! - one file: a single-file manifest named after the file;
//! - one directory: a multi-file manifest (an album) named after the
//!   directory, holding every regular file below it sorted by path, hidden
//!   files and directories (name starting with `.`) skipped, symbolic links to
//!   files followed, symbolic links to directories skipped;
//! - several files: they must all sit in the same directory; the manifest is
//!   an album named after that directory holding just those files, sorted by
//!   name. Directories cannot be mixed in.
//!
//! In every case the data root for seeding is the directory that holds the
//! manifest's name (the parent of the file or album directory).
//!
//! Song metadata: a single file gets `info.song` from its tags, each field
//! overridden by the corresponding option. An album gets a `song` dictionary
//! per audio file (its tags, with `artist` and `album` overridden by the
//! options) and an album-level `info.song` whose `title` is the title option,
//! `artist`/`album` the option or else the value all files agree on, `codec`
//! the one all files share, and `duration_ms` the sum when every file has one.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use bendy::encoding::{Encoder, SingleItemEncoder};

use super::piece_length::{
    default_piece_length, default_song_piece_length, mostly_songs, MIN_BUILD_PIECE_LENGTH,
};
use super::tags::merge_songs;
use super::validate::check_node_addr;
use super::{Manifest, ManifestError, SongMeta, MAX_DEPTH, MAX_FILES, MAX_PATH_COMPONENTS};
use crate::piece_hash::digests_of;

mod output;
pub use output::check_output;

/// Bytes read at once while hashing; the pieces in them are hashed together.
const HASH_BUFFER: u64 = 16 << 20;

/// What `create` may set beyond the input files.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Piece length in bytes (a power of two); `None` picks
    /// [`default_song_piece_length`] for songs, else
    /// [`default_piece_length`].
    pub piece_length: Option<u64>,
    /// Song title; overrides the tag (for an album: the album-level title).
    pub title: Option<String>,
    /// Artist; overrides the tags.
    pub artist: Option<String>,
    /// Album; overrides the tags.
    pub album: Option<String>,
    /// Chord bootstrap addresses (`host:port`) for the top-level `nodes`.
    pub nodes: Vec<String>,
}

/// One input file and where it goes in the manifest.
struct Source {
    /// Where to read it.
    disk: PathBuf,
    /// Its path below the manifest name (empty for a single-file manifest).
    components: Vec<String>,
    /// Its length when listed; it must not change while hashed.
    length: u64,
}

/// Builds a manifest from audio files or one album directory (see the
/// module documentation for the layout rules).
pub fn build(inputs: &[PathBuf], opts: &BuildOptions) -> Result<Manifest, ManifestError> {
    let (name, sources, single) = lay_out(inputs)?;
    let total = sources
        .iter()
        .try_fold(0u64, |sum, s| sum.checked_add(s.length))
        .ok_or_else(|| ManifestError::BadInput("inputs are too large".into()))?;
    if total == 0 {
        return Err(ManifestError::BadInput(
            "nothing to share: the input files are empty".into(),
        ));
    }
    let disk: Vec<&Path> = sources.iter().map(|s| s.disk.as_path()).collect();
    let (song, file_songs) = merge_songs(&disk, single, opts);
    let is_song = |s: Option<&SongMeta>| s.is_some_and(|s| s.codec.is_some());
    let songs = match single {
        true => is_song(song.as_ref()),
        false => mostly_songs(
            sources
                .iter()
                .zip(&file_songs)
                .map(|(s, f)| (s.length, is_song(f.as_ref()))),
        ),
    };
    let piece_length = match opts.piece_length {
        None if songs => default_song_piece_length(total),
        None => default_piece_length(total),
        Some(len)
            if len.is_power_of_two()
                && (MIN_BUILD_PIECE_LENGTH..=super::MAX_PIECE_LENGTH).contains(&len) =>
        {
            len
        }
        Some(len) => {
            return Err(ManifestError::BadInput(format!(
                "piece length {len} must be a power of two between {MIN_BUILD_PIECE_LENGTH} and {}",
                super::MAX_PIECE_LENGTH
            )))
        }
    };
    for node in &opts.nodes {
        check_node_addr(node)?;
    }
    let pieces = hash_pieces(&sources, piece_length)?;
    let info = encode_info(
        &name,
        piece_length,
        &pieces,
        &sources,
        single,
        song.as_ref(),
        &file_songs,
    )
    .map_err(|e| ManifestError::BadInput(format!("cannot encode the manifest: {e}")))?;
    // Parse what we wrote: a built manifest passes the same checks as any.
    let mut manifest = Manifest::from_info_bytes(&info)?;
    manifest.nodes = opts.nodes.clone();
    Ok(manifest)
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ManifestError + '_ {
    move |source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The final path component of `path` (resolving `.`/`..`) as UTF-8.
fn base_name(path: &Path) -> Result<String, ManifestError> {
    let resolved;
    let path = match path.file_name() {
        Some(_) => path,
        None => {
            resolved = fs::canonicalize(path).map_err(io_err(path))?;
            &resolved
        }
    };
    let bad = |what: &str| ManifestError::BadInput(format!("{}: {what}", path.display()));
    let name = path
        .file_name()
        .ok_or_else(|| bad("has no name to give the manifest"))?;
    name.to_str()
        .map(str::to_string)
        .ok_or_else(|| bad("name is not UTF-8"))
}

/// Turns the inputs into (name, sources, single-file?).
fn lay_out(inputs: &[PathBuf]) -> Result<(String, Vec<Source>, bool), ManifestError> {
    let Some(first) = inputs.first() else {
        return Err(ManifestError::BadInput("no input files given".into()));
    };
    let meta = fs::metadata(first).map_err(io_err(first))?;
    if inputs.len() == 1 {
        let name = base_name(first)?;
        if meta.is_dir() {
            let mut sources = Vec::new();
            walk(first, &mut Vec::new(), &mut sources)?;
            if sources.is_empty() {
                return Err(ManifestError::BadInput(format!(
                    "{}: no files to share in this directory",
                    first.display()
                )));
            }
            sources.sort_by(|a, b| a.components.cmp(&b.components));
            return Ok((name, sources, false));
        }
        let source = Source {
            disk: first.clone(),
            components: Vec::new(),
            length: meta.len(),
        };
        return Ok((name, vec![source], true));
    }
    // Several files: an album of exactly these, named after their directory.
    let parent_of = |path: &PathBuf| -> Result<PathBuf, ManifestError> {
        let full = fs::canonicalize(path).map_err(io_err(path))?;
        Ok(full.parent().map(Path::to_path_buf).unwrap_or_default())
    };
    let parent = parent_of(first)?;
    let mut sources: Vec<Source> = Vec::new();
    for input in inputs {
        let meta = fs::metadata(input).map_err(io_err(input))?;
        if !meta.is_file() {
            return Err(ManifestError::BadInput(format!(
                "{}: with several inputs, each must be a file (give one directory for an album)",
                input.display()
            )));
        }
        if parent_of(input)? != parent {
            return Err(ManifestError::BadInput(format!(
                "{}: several files must all be in the same directory ({})",
                input.display(),
                parent.display()
            )));
        }
        let file_name = base_name(input)?;
        if sources.iter().any(|s| s.components[0] == file_name) {
            continue; // the same file named twice
        }
        sources.push(Source {
            disk: input.clone(),
            components: vec![file_name],
            length: meta.len(),
        });
    }
    sources.sort_by(|a, b| a.components.cmp(&b.components));
    Ok((base_name(&parent)?, sources, false))
}

/// Collects the regular files below `dir`, skipping hidden entries.
fn walk(dir: &Path, prefix: &mut Vec<String>, out: &mut Vec<Source>) -> Result<(), ManifestError> {
    if prefix.len() >= MAX_PATH_COMPONENTS {
        return Err(ManifestError::BadInput(format!(
            "{}: nested too deep",
            dir.display()
        )));
    }
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(ManifestError::BadInput(format!(
                "{}: name is not UTF-8",
                path.display()
            )));
        };
        if name.starts_with('.') {
            continue;
        }
        let file_type = entry.file_type().map_err(io_err(&path))?;
        if file_type.is_dir() {
            prefix.push(name);
            walk(&path, prefix, out)?;
            prefix.pop();
            continue;
        }
        // Follow links to files (not to directories: no loops).
        let meta = fs::metadata(&path).map_err(io_err(&path))?;
        if !meta.is_file() {
            tracing::debug!(path = %path.display(), "skipped: not a regular file");
            continue;
        }
        if out.len() == MAX_FILES {
            return Err(ManifestError::BadInput(format!(
                "{}: more than {MAX_FILES} files",
                dir.display()
            )));
        }
        let mut components = prefix.clone();
        components.push(name);
        out.push(Source {
            disk: path,
            components,
            length: meta.len(),
        });
    }
    Ok(())
}

/// SHA-1 of every piece of the sources laid end to end. They are read
/// `HASH_BUFFER` bytes at a time (at least one piece), and the pieces of each
/// read are hashed together.
fn hash_pieces(sources: &[Source], piece_length: u64) -> Result<Vec<[u8; 20]>, ManifestError> {
    let piece = piece_length as usize;
    let mut buf = vec![0u8; piece * (HASH_BUFFER / piece_length).max(1) as usize];
    let mut filled = 0;
    let mut pieces = Vec::new();
    let mut hash = |data: &[u8]| pieces.extend(digests_of(&data.chunks(piece).collect::<Vec<_>>()));
    for source in sources {
        let mut file = fs::File::open(&source.disk).map_err(io_err(&source.disk))?;
        let mut read_total = 0u64;
        loop {
            let n = match file.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(&source.disk)(e)),
            };
            read_total += n as u64;
            if read_total > source.length {
                break; // reported below
            }
            filled += n;
            if filled == buf.len() {
                hash(&buf);
                filled = 0;
            }
        }
        if read_total != source.length {
            return Err(ManifestError::BadInput(format!(
                "{}: changed size while being hashed",
                source.disk.display()
            )));
        }
    }
    hash(&buf[..filled]);
    Ok(pieces)
}

type EncodeResult = Result<(), bendy::encoding::Error>;

/// Emits a `song` dictionary (keys in sorted order, absent fields omitted).
fn emit_song(e: SingleItemEncoder<'_>, song: &SongMeta) -> EncodeResult {
    e.emit_dict(|mut d| {
        if let Some(v) = &song.album {
            d.emit_pair(b"album", v)?;
        }
        if let Some(v) = &song.artist {
            d.emit_pair(b"artist", v)?;
        }
        if let Some(v) = &song.codec {
            d.emit_pair(b"codec", v)?;
        }
        if let Some(v) = song.duration_ms {
            d.emit_pair(b"duration_ms", v)?;
        }
        if let Some(v) = &song.title {
            d.emit_pair(b"title", v)?;
        }
        Ok(())
    })
}

/// Encodes the info dictionary (bendy checks that the keys are sorted).
fn encode_info(
    name: &str,
    piece_length: u64,
    pieces: &[[u8; 20]],
    sources: &[Source],
    single: bool,
    song: Option<&SongMeta>,
    file_songs: &[Option<SongMeta>],
) -> Result<Vec<u8>, bendy::encoding::Error> {
    let flat: Vec<u8> = pieces.concat();
    let mut encoder = Encoder::new().with_max_depth(MAX_DEPTH);
    encoder.emit_dict(|mut d| {
        if single {
            d.emit_pair(b"length", sources[0].length)?;
        } else {
            d.emit_pair_with(b"files", |e| {
                e.emit_list(|list| {
                    for (i, source) in sources.iter().enumerate() {
                        list.emit_dict(|mut f| {
                            f.emit_pair(b"length", source.length)?;
                            f.emit_pair(b"path", source.components.as_slice())?;
                            if let Some(Some(song)) = file_songs.get(i) {
                                f.emit_pair_with(b"song", |e| emit_song(e, song))?;
                            }
                            Ok(())
                        })?;
                    }
                    Ok(())
                })
            })?;
        }
        d.emit_pair(b"name", name)?;
        d.emit_pair(b"piece length", piece_length)?;
        d.emit_pair_with(b"pieces", |e| e.emit_bytes(&flat))?;
        if let Some(song) = song {
            d.emit_pair_with(b"song", |e| emit_song(e, song))?;
        }
        Ok(())
    })?;
    encoder.get_output()
}

#[cfg(test)]
mod tests;
