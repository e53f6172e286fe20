//! Validating decoded metainfo: safe paths, file placement, piece geometry.
//!
//! Relies only on what `decode` established: well-formed bencode with the
//! fields of the right types, within the size limits.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::decode::{check_single_dict, invalid, read_info, RawFile};
use super::{FileEntry, Manifest, ManifestError};
use crate::geometry::piece_count;
use crate::id::Id;

/// Checks that `addr` looks like `host:port` with a port in 1..=65535.
pub(super) fn check_node_addr(addr: &str) -> Result<(), ManifestError> {
    let bad = |reason: &str| invalid("nodes[]", format!("{addr:?}: {reason}"));
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| bad("expected host:port"))?;
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("bad host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(bad("bad port")),
    }
}

/// Checks one path component (or the torrent name) for anything that could
/// escape the data root or not be a plain file name.
fn check_component(component: &str, whole: &str) -> Result<(), ManifestError> {
    let unsafe_path = |reason| ManifestError::UnsafePath {
        path: whole.to_string(),
        reason,
    };
    if component.is_empty() {
        return Err(unsafe_path("empty path component"));
    }
    if component == "." || component == ".." {
        return Err(unsafe_path("`.` or `..` component"));
    }
    if component.contains('/') || component.contains('\\') {
        return Err(unsafe_path(
            "path separator inside a component (absolute or nested path)",
        ));
    }
    if component.contains('\0') {
        return Err(unsafe_path("NUL byte in a component"));
    }
    Ok(())
}

/// Parses and validates an info dictionary into a manifest (without `nodes`).
pub(super) fn parse_info(info: &[u8]) -> Result<Manifest, ManifestError> {
    // Structure first (and the whole span), then the fields we use.
    check_single_dict(info)?;
    let raw = read_info(info)?;
    let name = raw.name.ok_or(ManifestError::Missing("info.name"))?;
    check_component(&name, &name)?;
    let piece_length = raw
        .piece_length
        .ok_or(ManifestError::Missing("info.piece length"))?;
    let Some(pieces_raw) = raw.pieces else {
        if raw.meta_version == Some(2) {
            return Err(invalid(
                "info",
                "BitTorrent v2-only manifests are not supported",
            ));
        }
        return Err(ManifestError::Missing("info.pieces"));
    };
    if pieces_raw.len() % 20 != 0 {
        return Err(ManifestError::PiecesNotMultipleOf20(pieces_raw.len()));
    }
    let files = match (raw.length, raw.files) {
        (Some(length), None) => vec![FileEntry {
            path: PathBuf::from(&name),
            length,
            offset: 0,
        }],
        (None, Some(list)) => place_files(&name, list)?,
        (Some(_), Some(_)) => {
            return Err(invalid("info", "has both `length` and `files`"));
        }
        (None, None) => return Err(ManifestError::Missing("info.length or info.files")),
    };
    let total_length = match files.last() {
        Some(last) => last
            .offset
            .checked_add(last.length)
            .ok_or_else(|| invalid("info", "total length overflows"))?,
        None => 0,
    };
    if total_length == 0 {
        return Err(invalid(
            "info",
            "the torrent holds no data (total length 0)",
        ));
    }
    let expected = piece_count(total_length, piece_length);
    let actual = (pieces_raw.len() / 20) as u64;
    if actual != expected {
        return Err(ManifestError::PieceCountMismatch {
            actual,
            expected,
            total_length,
            piece_length,
        });
    }
    let pieces = pieces_raw
        .chunks_exact(20)
        .map(|c| {
            let mut h = [0u8; 20];
            h.copy_from_slice(c);
            h
        })
        .collect();
    Ok(Manifest {
        info_hash: Id::hash(info),
        name,
        piece_length,
        pieces,
        files,
        total_length,
        song: raw.song,
        nodes: Vec::new(),
        info_bytes: info.to_vec(),
    })
}

/// Validates the paths of a multi-file torrent and lays the files end to end.
fn place_files(name: &str, list: Vec<RawFile>) -> Result<Vec<FileEntry>, ManifestError> {
    if list.is_empty() {
        return Err(invalid("info.files", "is empty"));
    }
    let mut files = Vec::with_capacity(list.len());
    // File path -> is it a pad file.
    let mut seen_files: HashMap<String, bool> = HashMap::new();
    let mut seen_dirs = HashSet::new();
    let mut offset = 0u64;
    for raw in list {
        let whole = raw.components.join("/");
        if raw.components.is_empty() {
            return Err(ManifestError::UnsafePath {
                path: whole,
                reason: "empty path",
            });
        }
        for component in &raw.components {
            check_component(component, &whole)?;
        }
        // A path may not repeat, nor be both a file and a directory.
        for depth in 1..raw.components.len() {
            let dir = raw.components[..depth].join("/");
            if seen_files.contains_key(&dir) {
                return Err(ManifestError::UnsafePath {
                    path: whole,
                    reason: "a parent directory is also listed as a file",
                });
            }
            seen_dirs.insert(dir);
        }
        // Pad files are named by size, so several pad files may share a
        // path; a pad file may never share a real file's path.
        let repeated = match seen_files.insert(whole.clone(), raw.pad) {
            None => false,
            Some(was_pad) => !(was_pad && raw.pad),
        };
        if seen_dirs.contains(&whole) || repeated {
            return Err(ManifestError::UnsafePath {
                path: whole,
                reason: "listed twice, or both a file and a directory",
            });
        }
        let mut path = PathBuf::from(name);
        path.extend(&raw.components);
        files.push(FileEntry {
            path,
            length: raw.length,
            offset,
        });
        offset = offset
            .checked_add(raw.length)
            .ok_or_else(|| invalid("info.files", "total length overflows"))?;
    }
    Ok(files)
}
