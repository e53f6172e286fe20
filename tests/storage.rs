//! Storage: pieces given as blocks land at the right offsets of the right
//! files, including pieces that span file boundaries of an album.

use std::fs;
use std::path::Path;

use bytes::Bytes;
use songswarm::manifest::{build, BuildOptions};
use songswarm::storage::Storage;

/// Deterministic bytes that differ at every offset of every file.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

/// An album whose file sizes cut pieces and blocks at odd places.
fn album(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let album = dir.join("album");
    fs::create_dir_all(&album).unwrap();
    let files = vec![
        ("01.bin".to_string(), pattern(40_000, 1)),
        ("02.bin".to_string(), pattern(1, 2)),
        ("03.bin".to_string(), pattern(70_001, 3)),
    ];
    for (name, data) in &files {
        fs::write(album.join(name), data).unwrap();
    }
    files
}

/// An album in 32 KiB pieces, its byte stream, and empty storage for it.
struct Fixture {
    /// The album's files and their bytes.
    files: Vec<(String, Vec<u8>)>,
    /// The files laid end to end (the torrent's byte stream).
    stream: Vec<u8>,
    /// Where the storage writes.
    out: tempfile::TempDir,
    /// Storage over `out`, every file created empty.
    storage: Storage,
}

fn fixture() -> Fixture {
    let src = tempfile::tempdir().unwrap();
    let files = album(src.path());
    let opts = BuildOptions {
        piece_length: Some(32 * 1024),
        ..Default::default()
    };
    let manifest = build(&[src.path().join("album")], &opts).unwrap();
    let stream: Vec<u8> = files.iter().flat_map(|(_, d)| d.clone()).collect();
    let out = tempfile::tempdir().unwrap();
    let storage = Storage::open_or_create(out.path(), &manifest).unwrap();
    Fixture {
        files,
        stream,
        out,
        storage,
    }
}

/// The torrent's byte stream cut into `piece` (as blocks of at most 16 KiB).
fn blocks_of(stream: &[u8], start: usize, len: usize) -> Vec<Bytes> {
    stream[start..start + len]
        .chunks(16 * 1024)
        .map(Bytes::copy_from_slice)
        .collect()
}

/// Checks and writes one piece: whether it matched.
fn verify_and_write_one(storage: &Storage, piece: u32, blocks: Vec<Bytes>) -> bool {
    let mut results = storage.verify_and_write(&[(piece, blocks)]);
    results.pop().unwrap().unwrap()
}

#[test]
fn pieces_written_as_blocks_rebuild_every_file_of_an_album() {
    let Fixture {
        files,
        stream,
        out,
        storage,
    } = fixture();
    let geometry = storage.geometry();
    assert!(geometry.piece_count > 3, "the album spans several pieces");
    // Pieces in reverse order: each write must not depend on earlier ones.
    for piece in (0..geometry.piece_count).rev() {
        let start = geometry.piece_offset(piece) as usize;
        let len = geometry.piece_len(piece) as usize;
        let blocks = blocks_of(&stream, start, len);
        assert!(verify_and_write_one(&storage, piece, blocks));
    }
    for (name, data) in &files {
        let got = fs::read(out.path().join("album").join(name)).unwrap();
        assert!(got == *data, "{name} differs after writing every piece");
    }
    assert!(storage.verify_all(2).iter().all(|ok| *ok));
}

#[test]
fn a_piece_with_a_wrong_hash_is_not_written() {
    let Fixture {
        stream,
        out,
        storage,
        ..
    } = fixture();
    let mut blocks = blocks_of(&stream, 0, storage.geometry().piece_len(0) as usize);
    let mut bad = blocks[1].to_vec();
    bad[7] ^= 1;
    blocks[1] = Bytes::from(bad);
    assert!(!verify_and_write_one(&storage, 0, blocks));
    let first = fs::read(out.path().join("album").join("01.bin")).unwrap();
    assert!(first.iter().all(|b| *b == 0), "nothing was written");
}

/// Four pieces hashed together, the last one short: the one with a wrong
/// byte is refused and not written, the other three are; the re-check of the
/// whole torrent (also hashing pieces together) finds exactly those three.
#[test]
fn pieces_checked_together_are_judged_one_by_one() {
    let Fixture {
        stream, storage, ..
    } = fixture();
    let geometry = storage.geometry();
    assert_eq!(geometry.piece_count, 4);
    let mut pieces: Vec<(u32, Vec<Bytes>)> = (0..4)
        .map(|i| {
            let start = geometry.piece_offset(i) as usize;
            (i, blocks_of(&stream, start, geometry.piece_len(i) as usize))
        })
        .collect();
    let mut bad = pieces[2].1[0].to_vec();
    bad[100] ^= 1;
    pieces[2].1[0] = Bytes::from(bad);
    let results: Vec<bool> = storage
        .verify_and_write(&pieces)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(results, [true, true, false, true]);
    assert_eq!(storage.verify_all(1), [true, true, false, true]);
    assert_eq!(storage.verify_all(3), [true, true, false, true]);
}

/// The album seeded from a directory made under `parent`: its byte stream,
/// the directory, and storage opened over it for seeding.
fn seeded_album_in(parent: &Path) -> (Vec<u8>, tempfile::TempDir, Storage) {
    let src = tempfile::tempdir_in(parent).unwrap();
    let files = album(src.path());
    let opts = BuildOptions {
        piece_length: Some(32 * 1024),
        ..Default::default()
    };
    let manifest = build(&[src.path().join("album")], &opts).unwrap();
    let stream = files.iter().flat_map(|(_, d)| d.clone()).collect();
    let storage = Storage::open_existing(src.path(), &manifest).unwrap();
    (stream, src, storage)
}

/// Every piece read at odd offsets and lengths (some across file ends)
/// without waiting for a disk: it comes back byte-exact whenever the read
/// says it could, and on tmpfs (held in memory) it always can.
#[test]
fn reads_that_need_no_disk_return_the_bytes_on_disk() {
    let mut parents = vec![std::env::temp_dir()];
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        parents.push(shm.to_path_buf());
    }
    for parent in parents {
        let in_memory = parent.starts_with("/dev/shm");
        let (stream, _src, storage) = seeded_album_in(&parent);
        let geometry = storage.geometry();
        for piece in 0..geometry.piece_count {
            let len = geometry.piece_len(piece);
            for (begin, n) in [(0, len), (1, len - 1), (len / 3, len / 2), (len - 1, 1)] {
                let mut buf = vec![0xAA; n as usize];
                let whole = storage.read_cached(piece, begin, &mut buf).unwrap();
                assert!(whole || !in_memory, "tmpfs read of piece {piece} gave up");
                if whole {
                    let at = (geometry.piece_offset(piece) + u64::from(begin)) as usize;
                    assert!(
                        buf == stream[at..at + n as usize],
                        "piece {piece} from {begin}: wrong bytes ({parent:?})"
                    );
                }
            }
        }
    }
}

/// A file cut short under a seed: reading past its new end is an error
/// that names it, not "would wait for a disk" (which would send the read to
/// a blocking thread to fail there) and not zeros.
#[test]
fn a_read_past_a_shortened_file_fails_instead_of_waiting() {
    let (_, src, storage) = seeded_album_in(&std::env::temp_dir());
    let third = src.path().join("album").join("03.bin");
    fs::OpenOptions::new()
        .write(true)
        .open(&third)
        .unwrap()
        .set_len(10)
        .unwrap();
    let last = storage.geometry().piece_count - 1;
    let mut buf = vec![0; storage.geometry().piece_len(last) as usize];
    let err = storage.read_cached(last, 0, &mut buf).unwrap_err();
    assert!(err.to_string().contains("03.bin"), "{err}");
}
