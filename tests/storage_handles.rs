//! The process's bounded cache of open files: a torrent with more files
//! than the cache holds reads every byte right, keeps at most the cache's
//! size open, and a file closed by the cache is opened again only if it is
//! still the same regular file, reached through no link.

use std::fs;
use std::path::Path;

use songswarm::manifest::{build, BuildOptions};
use songswarm::storage::{FileCache, Storage};

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect()
}

/// Five files in 16 KiB pieces; returns the byte stream and the storage.
fn album(dir: &Path) -> (Vec<u8>, Storage) {
    let album = dir.join("album");
    fs::create_dir_all(&album).unwrap();
    let mut stream = Vec::new();
    for i in 0..5u8 {
        let data = pattern(20_000 + usize::from(i) * 3_001, i);
        fs::write(album.join(format!("{i}.bin")), &data).unwrap();
        stream.extend(data);
    }
    let opts = BuildOptions {
        piece_length: Some(16 * 1024),
        ..Default::default()
    };
    let manifest = build(&[album], &opts).unwrap();
    (stream, Storage::open_existing(dir, &manifest).unwrap())
}

fn read_piece(storage: &Storage, piece: u32) -> Result<Vec<u8>, String> {
    let mut buf = vec![0; storage.geometry().piece_len(piece) as usize];
    storage
        .read(piece, 0, &mut buf)
        .map(|()| buf)
        .map_err(|e| e.to_string())
}

/// One test, so that the process-wide capacity it sets is not raced.
#[test]
fn more_files_than_the_cache_holds() {
    let cache = FileCache::global();
    cache.set_capacity(2);
    let dir = tempfile::tempdir().unwrap();
    let (stream, storage) = album(dir.path());
    let g = storage.geometry();
    for round in 0..3 {
        for piece in 0..g.piece_count {
            let at = g.piece_offset(piece) as usize;
            let want = &stream[at..at + g.piece_len(piece) as usize];
            assert!(
                read_piece(&storage, piece).unwrap() == want,
                "round {round}, piece {piece}"
            );
            assert!(cache.len() <= 2, "{} files open", cache.len());
        }
    }
    assert!(cache.opens() > 5, "files were closed and opened again");
    assert!(storage.check_complete(2).is_ok());

    // The first file is closed now (the last pieces were read last). A
    // file of the same size put in its place is not read as the song.
    let first = dir.path().join("album/0.bin");
    let other = dir.path().join("other");
    fs::write(&other, pattern(20_000, 99)).unwrap();
    fs::rename(&other, &first).unwrap();
    let err = read_piece(&storage, 0).unwrap_err();
    assert!(err.contains("0.bin") && err.contains("replaced"), "{err}");

    // Nor is a link where the last file was.
    let last_piece = g.piece_count - 1;
    read_piece(&storage, 1).ok();
    read_piece(&storage, 2).ok();
    let last = dir.path().join("album/4.bin");
    fs::rename(&last, dir.path().join("moved")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("moved"), &last).unwrap();
    let err = read_piece(&storage, last_piece).unwrap_err();
    assert!(err.contains("symbolic link"), "{err}");
    drop(storage);
    assert!(cache.is_empty(), "a dropped torrent's files are closed");
}
