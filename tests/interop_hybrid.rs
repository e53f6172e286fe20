//! A hybrid (BitTorrent v1 + v2) torrent made by libtorrent, both ways. Its
//! files carry BEP 47 pad files (`attr` = `p`, under `.pad/`) that align
//! every file to a piece boundary: zeros that count in the v1 pieces but are
//! never on disk. songswarm seeds from the layout libtorrent leaves (real
//! files only) and leeches into it, writing no pad file; every byte is
//! compared. Needs /usr/bin/python3 with libtorrent.

#[path = "support/content.rs"]
mod content;
#[path = "support/procs.rs"]
mod procs;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use content::{assert_same_content, songswarm, tempdir, Content, DEADLINE};
use procs::{lt_peer, require_libtorrent, run_ok, write_random, Proc, PYTHON};
use songswarm::manifest::Manifest;

/// Odd sizes, none a multiple of the 16 KiB piece: a pad file follows every
/// file (libtorrent pads the last one too, to a whole last piece).
const TRACKS: [(&str, u64); 5] = [
    ("01 opening.flac", 300_001),
    ("02 interlude.flac", 16_385),
    ("03 silence.flac", 1),
    ("04 theme.flac", 262_143),
    ("05 coda.flac", 77_777),
];

/// The album under `root/album`, and a hybrid manifest of it made by
/// libtorrent; returns the content and libtorrent's v1 info-hash.
fn hybrid_album(root: &Path, manifest: &Path) -> (Content, String) {
    let mut files = Vec::new();
    for (i, (name, len)) in TRACKS.iter().enumerate() {
        let rel = Path::new("album").join(name);
        write_random(&root.join(&rel), *len, 200 + i as u64);
        files.push(rel);
    }
    let content = Content {
        input: root.join("album"),
        files,
        piece_length: Some(16_384),
    };
    let helper =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/manifest_lt_infohash.py");
    let mut cmd = Command::new(PYTHON);
    cmd.arg(helper)
        .args([OsStr::new("create"), content.input.as_os_str()])
        .arg(manifest)
        .args(["16384", "hybrid"]);
    let made: serde_json::Value =
        serde_json::from_str(&run_ok("libtorrent create hybrid", cmd)).expect("JSON");
    let pads = made["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter(|f| f["pad"] == true)
        .count();
    assert_eq!(pads, TRACKS.len(), "libtorrent padded every file: {made}");
    let hash = made["info_hash"].as_str().expect("info_hash").to_string();
    (content, hash)
}

/// Every regular file under `dir`, relative to it, sorted (songswarm's
/// resume records left out).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.ends_with(songswarm::storage::resume::RESUME_DIR) {
                continue;
            }
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).expect("under base").to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Asserts `dir` holds exactly the album's files (no `.pad/`), byte for byte.
fn assert_exact_layout(content: &Content, src: &Path, dir: &Path) {
    let mut want = content.files.clone();
    want.sort();
    assert_eq!(files_under(dir), want, "files under {}", dir.display());
    assert_same_content(content, src, dir);
}

/// `songswarm seed` serves `data`; libtorrent downloads into `dst`.
fn songswarm_to_libtorrent(manifest: &Path, v1: &str, data: &Path, dst: &Path) {
    let mut cmd = songswarm();
    cmd.arg("seed").arg(manifest).arg("--data").arg(data);
    cmd.args(["--listen", "127.0.0.1:0", "--json"]);
    let mut seed = Proc::spawn("songswarm seed", cmd);
    let (_, ready) = seed.expect_event("listening", DEADLINE);
    assert_eq!(ready["info_hashes"][0].as_str(), Some(v1), "{ready}");
    let addr = ready["addr"].as_str().expect("addr").to_string();

    let mut cmd = lt_peer("leech");
    cmd.arg(manifest).arg("--out").arg(dst);
    cmd.args(["--peer", &addr, "--timeout", "60"]);
    let mut leech = Proc::spawn("lt leech", cmd);
    let (_, done) = leech.expect_event("done", DEADLINE);
    leech.expect_success(DEADLINE);
    let total = Manifest::load(manifest).expect("manifest").piece_count();
    assert_eq!(done["pieces"].as_u64(), Some(u64::from(total)), "{done}");
    seed.terminate();
    seed.wait_exit(DEADLINE);
}

/// libtorrent seeds `data`; `songswarm leech` downloads into `dst`.
fn libtorrent_to_songswarm(manifest: &Path, v1: &str, data: &Path, dst: &Path) {
    let mut cmd = lt_peer("seed");
    cmd.arg(manifest).arg("--data").arg(data);
    let mut seed = Proc::spawn("lt seed", cmd);
    let addr = seed.expect_listening(DEADLINE);

    let mut cmd = songswarm();
    cmd.arg("leech").arg(manifest).arg("--out").arg(dst);
    cmd.args(["--peer", &addr, "--listen", "127.0.0.1:0", "--json"]);
    let mut leech = Proc::spawn("songswarm leech", cmd);
    let (_, done) = leech.expect_event("done", DEADLINE);
    leech.expect_success(DEADLINE);
    assert_eq!(done["info_hash"].as_str(), Some(v1), "{done}");
    seed.close_stdin();
    seed.expect_event("stats", DEADLINE);
    seed.expect_success(DEADLINE);
}

#[test]
fn songswarm_seeds_a_libtorrent_hybrid_from_the_layout_libtorrent_leaves() {
    require_libtorrent();
    let dir = tempdir();
    let src = dir.path().join("src");
    let manifest = dir.path().join("hybrid.torrent");
    let (content, v1) = hybrid_album(&src, &manifest);
    // libtorrent leaves the album without pad files: first as made, then as
    // libtorrent itself downloads it.
    let lt_copy = dir.path().join("lt-copy");
    libtorrent_seeds_libtorrent(&manifest, &src, &lt_copy);
    assert_exact_layout(&content, &src, &lt_copy);
    for (data, dst) in [(&src, "dst-from-src"), (&lt_copy, "dst-from-lt-copy")] {
        let dst = dir.path().join(dst);
        songswarm_to_libtorrent(&manifest, &v1, data, &dst);
        assert_same_content(&content, &src, &dst);
    }
}

#[test]
fn libtorrent_seeds_a_hybrid_songswarm_leeches_writing_no_pad_file() {
    require_libtorrent();
    let dir = tempdir();
    let src = dir.path().join("src");
    let manifest = dir.path().join("hybrid.torrent");
    let (content, v1) = hybrid_album(&src, &manifest);
    let dst = dir.path().join("dst");
    libtorrent_to_songswarm(&manifest, &v1, &src, &dst);
    assert_exact_layout(&content, &src, &dst);
    // What songswarm leaves seeds libtorrent in turn.
    let again = dir.path().join("again");
    songswarm_to_libtorrent(&manifest, &v1, &dst, &again);
    assert_same_content(&content, &src, &again);
}

/// The harness itself: libtorrent to libtorrent, so a failure above points
/// at songswarm.
fn libtorrent_seeds_libtorrent(manifest: &Path, data: &Path, dst: &Path) {
    let mut cmd = lt_peer("seed");
    cmd.arg(manifest).arg("--data").arg(data);
    let mut seed = Proc::spawn("lt seed", cmd);
    let addr = seed.expect_listening(DEADLINE);
    let mut cmd = lt_peer("leech");
    cmd.arg(manifest).arg("--out").arg(dst);
    cmd.args(["--peer", &addr, "--timeout", "60"]);
    let mut leech = Proc::spawn("lt leech", cmd);
    leech.expect_event("done", DEADLINE);
    leech.expect_success(DEADLINE);
}
