//! BEP 47 pad files in storage: zeros that count in the pieces but are never
//! created, never required, and never read from disk (a pad file that does
//! exist there, whatever it holds, is ignored).

#[path = "support/manifest_bencode.rs"]
mod bencode;

use std::fs;
use std::path::Path;

use bencode::{file_entry, B};
use bytes::Bytes;
use sha1::{Digest, Sha1};
use songswarm::manifest::Manifest;
use songswarm::storage::Storage;

const PIECE: usize = 16 * 1024;

/// `Album/{a, .pad/16284, b, .pad/16284, c}`: a and b are 100 bytes, each
/// padded to a piece; c is 10 bytes. Returns the manifest and the real
/// files' bytes.
fn padded_album() -> (Manifest, Vec<(&'static str, Vec<u8>)>) {
    let real = vec![
        ("a", vec![0xa5u8; 100]),
        ("b", (0..100u8).collect()),
        ("c", vec![0x5au8; 10]),
    ];
    let pad = |len: usize| {
        let mut e = file_entry(&[".pad", &len.to_string()], len as i64);
        e.set("attr", B::s("p"));
        e
    };
    let mut stream = Vec::new();
    let mut entries = Vec::new();
    for (i, (name, data)) in real.iter().enumerate() {
        stream.extend_from_slice(data);
        entries.push(file_entry(&[name], data.len() as i64));
        if i < 2 {
            let len = PIECE - data.len();
            stream.resize(stream.len() + len, 0);
            entries.push(pad(len));
        }
    }
    let pieces: Vec<u8> = stream.chunks(PIECE).flat_map(Sha1::digest).collect();
    let info = B::dict([
        ("name", B::s("Album")),
        ("piece length", B::Int(PIECE as i64)),
        ("pieces", B::Bytes(pieces)),
        ("files", B::List(entries)),
    ]);
    let manifest = Manifest::from_bytes(&bencode::torrent(info)).unwrap();
    assert_eq!(manifest.pad_files(), [false, true, false, true, false]);
    (manifest, real)
}

/// The torrent's byte stream of piece `i` (zeros in the pads), as blocks.
fn piece(real: &[(&str, Vec<u8>)], i: usize) -> Vec<Bytes> {
    let mut p = real[i].1.clone();
    if i < 2 {
        p.resize(PIECE, 0);
    }
    vec![Bytes::from(p)]
}

fn assert_real_files_only(out: &Path, real: &[(&str, Vec<u8>)]) {
    let mut names: Vec<String> = fs::read_dir(out.join("Album"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c"], "no .pad directory");
    for (name, data) in real {
        assert_eq!(&fs::read(out.join("Album").join(name)).unwrap(), data);
    }
}

#[test]
fn a_download_never_creates_pad_files() {
    let (manifest, real) = padded_album();
    let out = tempfile::tempdir().unwrap();
    let storage = Storage::open_or_create(out.path(), &manifest).unwrap();
    assert!(!out.path().join("Album/.pad").exists());
    let pieces: Vec<(u32, Vec<Bytes>)> = (0..3).map(|i| (i as u32, piece(&real, i))).collect();
    for result in storage.verify_and_write(&pieces) {
        assert!(result.unwrap(), "piece verified");
    }
    assert_eq!(storage.verify_all(2), [true, true, true]);
    storage.trim_excess().unwrap();
    assert_real_files_only(out.path(), &real);
}

#[test]
fn a_piece_with_bytes_in_its_pad_fails_its_hash() {
    let (manifest, real) = padded_album();
    let out = tempfile::tempdir().unwrap();
    let storage = Storage::open_or_create(out.path(), &manifest).unwrap();
    let mut bad = piece(&real, 0)[0].to_vec();
    bad[PIECE - 1] = 1;
    let results = storage.verify_and_write(&[(0, vec![Bytes::from(bad)])]);
    assert!(!results[0].as_ref().unwrap());
}

#[test]
fn seeding_needs_no_pad_files_and_reads_them_as_zeros() {
    let (manifest, real) = padded_album();
    let data = tempfile::tempdir().unwrap();
    fs::create_dir_all(data.path().join("Album")).unwrap();
    for (name, bytes) in &real {
        fs::write(data.path().join("Album").join(name), bytes).unwrap();
    }
    let storage = Storage::open_existing(data.path(), &manifest).unwrap();
    storage.check_complete(2).unwrap();
    let mut buf = vec![0xffu8; PIECE];
    storage.read(0, 0, &mut buf).unwrap();
    assert_eq!(&buf[..100], &real[0].1[..]);
    assert!(buf[100..].iter().all(|&b| b == 0), "the pad reads as zeros");
    let mut cached = vec![0xffu8; PIECE - 100];
    assert!(storage.read_cached(1, 100, &mut cached).unwrap());
    assert!(cached.iter().all(|&b| b == 0));

    // Pad files another client left on disk, even wrong ones, are ignored.
    let pads = data.path().join("Album/.pad");
    fs::create_dir_all(&pads).unwrap();
    fs::write(pads.join((PIECE - 100).to_string()), b"not zeros").unwrap();
    let storage = Storage::open_existing(data.path(), &manifest).unwrap();
    storage.check_complete(2).unwrap();
}
