//! Manifests other tools write that are not canonical: dictionary keys out of
//! order, names that are not UTF-8 (with and without `name.utf-8` /
//! `path.utf-8`). Each is read the way libtorrent reads it (same info-hash,
//! same names on disk), and a name made from bad bytes still goes through
//! every path check. Needs /usr/bin/python3 with libtorrent.

#[path = "support/manifest_lt.rs"]
mod lt;

use std::path::{Path, PathBuf};

use lt::lt_info;
use sha1::{Digest, Sha1};
use songswarm::manifest::{Manifest, ManifestError};

/// A bencoded string.
fn s(bytes: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:", bytes.len()).into_bytes();
    out.extend_from_slice(bytes);
    out
}

fn int(i: i64) -> Vec<u8> {
    format!("i{i}e").into_bytes()
}

fn list(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"l".to_vec();
    items.iter().for_each(|i| out.extend_from_slice(i));
    out.push(b'e');
    out
}

/// A dictionary with its keys in exactly the order given.
fn dict(pairs: &[(&[u8], Vec<u8>)]) -> Vec<u8> {
    let mut out = b"d".to_vec();
    for (k, v) in pairs {
        out.extend_from_slice(&s(k));
        out.extend_from_slice(v);
    }
    out.push(b'e');
    out
}

fn pieces(n: usize) -> Vec<u8> {
    s(&vec![7u8; 20 * n])
}

/// A file entry of `info.files`, keys in the order given by `extra` first.
fn file(path: &[&[u8]], len: i64, extra: &[(&[u8], Vec<u8>)]) -> Vec<u8> {
    let path: Vec<Vec<u8>> = path.iter().map(|p| s(p)).collect();
    let mut pairs = extra.to_vec();
    pairs.push((b"path", list(&path)));
    pairs.push((b"length", int(len)));
    dict(&pairs)
}

/// Writes a torrent of `info` (its top level out of order: `nodes` first)
/// and loads it with both parsers.
fn load(dir: &Path, info: &[u8]) -> (Manifest, lt::LtView) {
    let torrent = dict(&[
        (b"nodes", list(&[s(b"127.0.0.1:7000")])),
        (b"info", info.to_vec()),
    ]);
    let path = dir.join("t.torrent");
    std::fs::write(&path, &torrent).unwrap();
    let ours = Manifest::load(&path).unwrap();
    (ours, lt_info(&path))
}

fn sha1_hex(bytes: &[u8]) -> String {
    Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn paths(m: &Manifest) -> Vec<PathBuf> {
    m.files.iter().map(|f| f.path.clone()).collect()
}

fn lt_paths(v: &lt::LtView) -> Vec<PathBuf> {
    v.files.iter().map(|f| PathBuf::from(&f.path)).collect()
}

#[test]
fn unsorted_keys_are_read_and_hashed_as_found() {
    let dir = tempfile::tempdir().unwrap();
    // Every dictionary out of order: the top level (`nodes` before `info`),
    // `info`, each file entry and the song tags.
    let info = dict(&[
        (b"song", dict(&[(b"title", s(b"T")), (b"artist", s(b"A"))])),
        (b"pieces", pieces(2)),
        (b"name", s(b"Album")),
        (
            b"files",
            list(&[
                file(&[b"b.flac"], 20_000, &[]),
                file(
                    &[b"a.flac"],
                    10_000,
                    &[(b"song", dict(&[(b"title", s(b"x"))]))],
                ),
            ]),
        ),
        (b"piece length", int(16384)),
    ]);
    let (ours, lt) = load(dir.path(), &info);
    assert_eq!(ours.info_bytes, info, "info kept verbatim");
    assert_eq!(
        ours.info_hash.to_hex(),
        sha1_hex(&info),
        "hash over raw bytes"
    );
    assert_eq!(ours.info_hash.to_hex(), lt.info_hash, "same as libtorrent");
    assert_eq!(paths(&ours), lt_paths(&lt));
    assert_eq!(ours.nodes, ["127.0.0.1:7000"]);
    assert_eq!(
        ours.song.as_ref().and_then(|s| s.title.as_deref()),
        Some("T")
    );
    assert_eq!(
        ours.file_songs()[1].as_ref().unwrap().title.as_deref(),
        Some("x")
    );
    // Saving it again keeps the same info-hash.
    let again = Manifest::from_bytes(&ours.to_bytes()).unwrap();
    assert_eq!(again.info_hash, ours.info_hash);
}

#[test]
fn non_utf8_names_become_what_libtorrent_makes() {
    let dir = tempfile::tempdir().unwrap();
    let odd: [&[u8]; 7] = [
        b"caf\xe9.flac",          // Latin-1
        b"\xff\xfeA",             // bytes that never start a sequence
        b"\xe2AB" as &[u8],       // a sequence cut short by ASCII
        b"x\xc3",                 // a sequence cut short by the end
        b"\xc0\xae\xc0\xae",      // overlong `..`: must not decode to it
        b"\xed\xa0\x80z",         // a UTF-16 surrogate
        b"\xf8\x88\x80\x80\x80k", // a five-byte sequence
    ];
    let files: Vec<Vec<u8>> = odd
        .iter()
        .enumerate()
        .map(|(i, name)| file(&[format!("d{i}").as_bytes(), name], 1000, &[]))
        .collect();
    let info = dict(&[
        (b"files", list(&files)),
        (b"name", s(b"Alb\xfcm")),
        (b"piece length", int(16384)),
        (b"pieces", pieces(1)),
    ]);
    let (ours, lt) = load(dir.path(), &info);
    assert_eq!(ours.info_hash.to_hex(), lt.info_hash);
    assert_eq!(ours.name, lt.name);
    assert_eq!(paths(&ours), lt_paths(&lt));
    assert_eq!(ours.name, "Alb_m");
    assert_eq!(ours.files[4].path, Path::new("Alb_m/d4/__"));
}

#[test]
fn utf8_keys_win_over_the_raw_names() {
    let dir = tempfile::tempdir().unwrap();
    let files = list(&[
        file(
            &[b"\x93\xfa\x96{"],
            1000,
            &[(b"path.utf-8", list(&[s("日本".as_bytes())]))],
        ),
        // A valid `path` loses to `path.utf-8` too, as in libtorrent.
        file(
            &[b"plain"],
            1000,
            &[(b"path.utf-8", list(&[s(b"sub"), s(b"fancy")]))],
        ),
        // Without one, the raw name (made valid) is used.
        file(&[b"raw\xff"], 1000, &[]),
    ]);
    let info = dict(&[
        (b"files", files),
        (b"name", s(b"\x83A\x83\x8b")),
        (b"name.utf-8", s("アル".as_bytes())),
        (b"piece length", int(16384)),
        (b"pieces", pieces(1)),
    ]);
    let (ours, lt) = load(dir.path(), &info);
    assert_eq!(ours.info_hash.to_hex(), lt.info_hash);
    assert_eq!(ours.name, "アル");
    assert_eq!(ours.name, lt.name);
    assert_eq!(
        paths(&ours),
        ["アル/日本", "アル/sub/fancy", "アル/raw_"].map(PathBuf::from)
    );
    assert_eq!(paths(&ours), lt_paths(&lt));
}

/// Parses `info` (without libtorrent): the error, if any.
fn refused(info: &[u8]) -> Option<ManifestError> {
    let mut torrent = b"d4:info".to_vec();
    torrent.extend_from_slice(info);
    torrent.push(b'e');
    Manifest::from_bytes(&torrent).err()
}

fn multi(name_pairs: &[(&[u8], Vec<u8>)], entry: Vec<u8>) -> Vec<u8> {
    let mut pairs: Vec<(&[u8], Vec<u8>)> = vec![(b"files", list(&[entry]))];
    pairs.extend_from_slice(name_pairs);
    pairs.push((b"piece length", int(16384)));
    pairs.push((b"pieces", pieces(1)));
    dict(&pairs)
}

#[test]
fn names_from_bad_bytes_or_utf8_keys_pass_every_path_check() {
    let ok_name: &[(&[u8], Vec<u8>)] = &[(b"name", s(b"A"))];
    let unsafe_path =
        |e: Option<ManifestError>| matches!(e, Some(ManifestError::UnsafePath { .. }));
    // Bad bytes do not hide a separator, `..` or NUL from the checks.
    for component in [&b"a/\xff"[..], b"\xff\\..", b"..", b"\xff\0", b"/\xfe"] {
        let info = multi(ok_name, file(&[component], 1, &[]));
        assert!(unsafe_path(refused(&info)), "{component:?}");
    }
    // `path.utf-8` is checked like `path`: it is the one used.
    for hostile in [
        &[&b".."[..]][..],
        &[b"a", b""],
        &[b"/etc"],
        &[b"x\0"],
        &[b"."],
    ] {
        let hostile: Vec<Vec<u8>> = hostile.iter().map(|c| s(c)).collect();
        let entry = file(&[b"ok"], 1, &[(b"path.utf-8", list(&hostile))]);
        assert!(unsafe_path(refused(&multi(ok_name, entry))), "{hostile:?}");
    }
    // `name.utf-8` likewise.
    for hostile in [&b".."[..], b"a/b", b"", b"\xff/"] {
        let names: &[(&[u8], Vec<u8>)] = &[(b"name", s(b"A")), (b"name.utf-8", s(hostile))];
        let info = multi(names, file(&[b"ok"], 1, &[]));
        assert!(unsafe_path(refused(&info)), "{hostile:?}");
    }
    // A `path.utf-8` that is not a list is ignored (libtorrent ignores it);
    // a `path` that is not a list is refused as before.
    let entry = file(&[b"ok"], 1, &[(b"path.utf-8", int(3))]);
    assert!(refused(&multi(ok_name, entry)).is_none());
    let entry = dict(&[(b"length", int(1)), (b"path", int(3))]);
    assert!(matches!(
        refused(&multi(ok_name, entry)),
        Some(ManifestError::WrongType { .. })
    ));
    // Oversize names are refused before any conversion.
    let long = vec![0xffu8; 2000];
    let info = multi(ok_name, file(&[&long], 1, &[]));
    assert!(matches!(
        refused(&info),
        Some(ManifestError::Invalid { .. })
    ));
}
