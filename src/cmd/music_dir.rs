//! A music library as a directory tree: its songs (for `create --per-song`)
//! and its manifests (for `seed --library`).
//!
//! The rule that ties them: a manifest at `LIB/a/b/song.flac.torrent` has its
//! data under `DATA/a/b/` (`DATA` is `--data`, by default `LIB` itself), so
//! `create MUSIC --per-song -o MUSIC` writes each song's manifest next to it
//! and `seed --library MUSIC` serves them all. Symbolic links are not
//! followed and hidden entries (names starting with `.`, like the resume
//! records' directory) are skipped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::output::Output;
use crate::app::{hashing_threads, load_manifest, resume, AppError};
use crate::manifest::Manifest;
use crate::storage::Storage;

/// Extensions of the files `create --per-song` takes for songs.
pub const SONG_EXTENSIONS: &[&str] = &[
    "flac", "mp3", "ogg", "oga", "opus", "m4a", "mp4", "aac", "wav", "aif", "aiff", "wma", "ape",
    "wv", "mka",
];

/// Every regular file under `root` (recursively, through no link, hidden
/// entries skipped) for which `keep` holds, as paths relative to `root`,
/// sorted.
fn walk(root: &Path, keep: &dyn Fn(&Path) -> bool) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        for entry in std::fs::read_dir(root.join(&rel))? {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            // The entry's own type: a link is a link, never what it points at.
            let kind = entry.file_type()?;
            let path = rel.join(&name);
            if kind.is_dir() {
                dirs.push(path);
            } else if kind.is_file() && keep(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn has_extension(path: &Path, wanted: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| wanted.iter().any(|w| e.eq_ignore_ascii_case(w)))
}

/// The songs under `root`, relative to it.
pub fn songs(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    walk(root, &|p| has_extension(p, SONG_EXTENSIONS))
}

/// The manifests (`*.torrent`) under `root`, relative to it.
pub fn manifests(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    walk(root, &|p| has_extension(p, &["torrent"]))
}

/// Where the data of the manifest `rel` (relative to the library) lives:
/// the same relative directory under `data`.
pub fn data_root(data: &Path, rel: &Path) -> PathBuf {
    match rel.parent() {
        Some(dir) => data.join(dir),
        None => data.to_path_buf(),
    }
}

/// Loads the manifest `rel` of the library `dir` and opens and checks its
/// data under `data`, on this thread (hashing on `threads`).
fn open_one(
    dir: &Path,
    data: &Path,
    rel: &Path,
    recheck: bool,
    threads: usize,
) -> Result<(Manifest, Arc<Storage>), AppError> {
    let manifest = load_manifest(&dir.join(rel))?;
    let root = data_root(data, rel);
    let storage = resume::open_seeding_now(&root, &manifest, recheck, threads)?;
    Ok((manifest, storage))
}

/// Loads and checks every manifest under `dir` (its data under `data`),
/// a share of them on each core; one that cannot be served is skipped with a warning
/// naming it. Fails only when nothing can be served.
pub async fn open_all(
    dir: &Path,
    data: &Path,
    recheck: bool,
    out: Output,
) -> Result<Vec<(Manifest, Arc<Storage>)>, AppError> {
    let empty = |why: String| AppError::EmptyLibrary {
        dir: dir.to_path_buf(),
        why,
    };
    let found = manifests(dir).map_err(|e| empty(e.to_string()))?;
    if found.is_empty() {
        return Err(empty("no *.torrent file under it".into()));
    }
    let total = found.len();
    // One blocking thread per core, each opening and checking every n-th
    // manifest in turn (hashing on its own thread): a restart of 10,000
    // songs paid two hand-offs between threads per song before.
    let threads = hashing_threads().min(total);
    let hashing = (hashing_threads() / threads).max(1);
    let mut jobs = Vec::with_capacity(threads);
    for first in 0..threads {
        let mine: Vec<(usize, PathBuf)> = found
            .iter()
            .enumerate()
            .skip(first)
            .step_by(threads)
            .map(|(i, rel)| (i, rel.clone()))
            .collect();
        let (dir, data) = (dir.to_path_buf(), data.to_path_buf());
        jobs.push(tokio::task::spawn_blocking(move || {
            mine.into_iter()
                .map(|(i, rel)| (i, open_one(&dir, &data, &rel, recheck, hashing)))
                .collect::<Vec<_>>()
        }));
    }
    let mut opened = Vec::with_capacity(total);
    for job in jobs {
        let done = job.await.map_err(|e| AppError::Failed(e.to_string()))?;
        opened.extend(done);
    }
    opened.sort_by_key(|(i, _)| *i);
    let opened = opened.into_iter().map(|(_, r)| r);
    let mut served = Vec::with_capacity(total);
    let mut last_error = None;
    for result in opened {
        match result {
            Ok(torrent) => served.push(torrent),
            Err(e) => {
                out.warn(format_args!("skipped: {e}"));
                last_error = Some(e.to_string());
            }
        }
    }
    match (served.is_empty(), last_error) {
        (true, Some(e)) => Err(empty(format!(
            "none of {total} manifests could be served; the last: {e}"
        ))),
        _ => Ok(served),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_songs_and_manifests_but_no_links_or_hidden_entries() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("Artist/Album")).unwrap();
        std::fs::create_dir_all(root.join(".songswarm-resume")).unwrap();
        for f in [
            "a.flac",
            "Artist/Album/01.MP3",
            "Artist/Album/cover.jpg",
            "Artist/Album/01.MP3.torrent",
            ".songswarm-resume/x.flac",
        ] {
            std::fs::write(root.join(f), b"x").unwrap();
        }
        std::os::unix::fs::symlink(root.join("a.flac"), root.join("link.flac")).unwrap();
        std::os::unix::fs::symlink(root.join("Artist"), root.join("Linked")).unwrap();
        assert_eq!(
            songs(root).unwrap(),
            [
                PathBuf::from("Artist/Album/01.MP3"),
                PathBuf::from("a.flac")
            ]
        );
        let m = manifests(root).unwrap();
        assert_eq!(m, [PathBuf::from("Artist/Album/01.MP3.torrent")]);
        assert_eq!(
            data_root(Path::new("/d"), &m[0]),
            Path::new("/d/Artist/Album")
        );
        assert_eq!(
            data_root(Path::new("/d"), Path::new("x.torrent")),
            Path::new("/d")
        );
    }
}
