//! Our manifests against libtorrent's and mktorrent's: the same info-hash,
//! name, pieces and files, both for manifests we build and for manifests
//! they build. Needs /usr/bin/python3 with libtorrent and mktorrent
//! (scripts/install-test-deps installs both); without them these tests fail.

#[path = "support/manifest_lt.rs"]
mod lt;
#[path = "support/manifest_verify.rs"]
mod verify;

use std::path::{Path, PathBuf};
use std::process::Command;

use lt::{lt_create, lt_info, LtView};
use songswarm::manifest::{build, BuildOptions, Manifest};
use verify::verify_pieces;

/// Asserts that our parse and libtorrent's agree on everything that matters.
fn assert_same(ours: &Manifest, lt: &LtView) {
    assert_eq!(ours.info_hash.to_hex(), lt.info_hash, "info-hash");
    assert_eq!(ours.name, lt.name);
    assert_eq!(ours.piece_count(), lt.num_pieces);
    assert_eq!(ours.piece_length, lt.piece_length);
    assert_eq!(ours.total_length, lt.total_size);
    let ours_files: Vec<(String, u64, bool)> = ours
        .files
        .iter()
        .zip(ours.pad_files())
        .map(|(f, pad)| (f.path.to_str().unwrap().to_string(), f.length, pad))
        .collect();
    let lt_files: Vec<(String, u64, bool)> = lt
        .files
        .iter()
        .map(|f| (f.path.clone(), f.size, f.pad))
        .collect();
    assert_eq!(ours_files, lt_files);
}

/// Deterministic pseudo-random bytes, different per seed.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// An album directory: `root/Album/{01 one.flac, 02 two.flac, extra/cover.jpg,
/// empty.txt, .hidden}`.
fn album(root: &Path) -> PathBuf {
    let dir = root.join("Album");
    std::fs::create_dir_all(dir.join("extra")).unwrap();
    std::fs::write(dir.join("01 one.flac"), data(300_001, 1)).unwrap();
    std::fs::write(dir.join("02 two.flac"), data(65_536, 2)).unwrap();
    std::fs::write(dir.join("extra/cover.jpg"), data(40_000, 3)).unwrap();
    std::fs::write(dir.join("empty.txt"), b"").unwrap();
    std::fs::write(dir.join(".hidden"), b"not shared").unwrap();
    dir
}

#[test]
fn our_single_file_manifest_matches_libtorrent() {
    let tmp = tempfile::tempdir().unwrap();
    let song = tmp.path().join("song.flac");
    std::fs::write(&song, data(1_234_567, 7)).unwrap();
    let opts = BuildOptions {
        title: Some("A Title".into()),
        nodes: vec!["127.0.0.1:7000".into()],
        ..BuildOptions::default()
    };
    let ours = build(&[song], &opts).unwrap();
    let out = tmp.path().join("song.torrent");
    ours.save(&out).unwrap();
    assert_eq!(Manifest::load(&out).unwrap(), ours);
    assert_same(&ours, &lt_info(&out));
    assert_eq!(verify_pieces(&ours, tmp.path()), Ok(ours.piece_count()));
}

#[test]
fn our_album_manifest_matches_libtorrent() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = album(tmp.path());
    let ours = build(&[dir], &BuildOptions::default()).unwrap();
    let paths: Vec<&Path> = ours.files.iter().map(|f| f.path.as_path()).collect();
    assert_eq!(
        paths,
        [
            "Album/01 one.flac",
            "Album/02 two.flac",
            "Album/empty.txt",
            "Album/extra/cover.jpg"
        ]
        .map(Path::new)
    );
    let out = tmp.path().join("album.torrent");
    ours.save(&out).unwrap();
    assert_same(&ours, &lt_info(&out));
    verify_pieces(&ours, tmp.path()).unwrap();
}

#[test]
fn libtorrent_v1_manifest_loads_with_its_info_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = album(tmp.path());
    let out = tmp.path().join("lt.torrent");
    let made = lt_create(&dir, &out, 32768, "v1");
    let ours = Manifest::load(&out).unwrap();
    assert_same(&ours, &made);
    // libtorrent, unlike `create`, shares hidden files too.
    assert_eq!(ours.files.len(), 5);
    verify_pieces(&ours, tmp.path()).unwrap();
}

#[test]
fn libtorrent_hybrid_manifest_loads_with_pad_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = album(tmp.path());
    let out = tmp.path().join("hybrid.torrent");
    let made = lt_create(&dir, &out, 16384, "hybrid");
    assert!(
        made.files.iter().any(|f| f.pad),
        "libtorrent made pad files"
    );
    let ours = Manifest::load(&out).unwrap();
    // Hybrid torrents carry a v2 `file tree` in info and `piece layers`
    // at the top: the v1 info-hash still covers the raw info bytes.
    assert_same(&ours, &made);
    verify_pieces(&ours, tmp.path()).unwrap();
}

/// Runs mktorrent with a 2^15 piece length.
fn mktorrent(path: &Path, out: &Path) {
    let status = Command::new("mktorrent")
        .args(["-l", "15", "-o"])
        .arg(out)
        .arg(path)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run mktorrent: {e}; run scripts/install-test-deps"));
    assert!(status.success(), "mktorrent failed");
}

#[test]
fn mktorrent_manifests_load_with_libtorrents_info_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = album(tmp.path());
    let single = tmp.path().join("single.flac");
    std::fs::write(&single, data(100_000, 9)).unwrap();
    for (input, name) in [(&dir, "dir.torrent"), (&single, "single.torrent")] {
        let out = tmp.path().join(name);
        mktorrent(input, &out);
        let ours = Manifest::load(&out).unwrap();
        assert_same(&ours, &lt_info(&out));
        assert_eq!(ours.piece_length, 1 << 15);
        verify_pieces(&ours, tmp.path()).unwrap();
    }
}

#[test]
fn to_bytes_of_a_foreign_manifest_keeps_its_info_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = album(tmp.path());
    let out = tmp.path().join("hybrid.torrent");
    let made = lt_create(&dir, &out, 32768, "hybrid");
    let ours = Manifest::load(&out).unwrap();
    let again = tmp.path().join("again.torrent");
    std::fs::write(&again, ours.to_bytes()).unwrap();
    assert_eq!(Manifest::load(&again).unwrap().info_hash, ours.info_hash);
    assert_eq!(lt_info(&again).info_hash, made.info_hash);
}
