//! What the interop tests share: a song and an album of random data, their
//! manifests (made by songswarm or by libtorrent), and byte-for-byte checks.
//! Included with `#[path]` next to `procs.rs`.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::procs::{assert_same_file, lt_peer, run_ok, write_random};

/// Generous for a few MB on loopback; only there to turn a hang into a failure.
pub const DEADLINE: Duration = Duration::from_secs(60);

pub fn songswarm() -> Command {
    // These runs name their peers with --peer: no ring, no LAN discovery
    // (which would also let parallel tests find each other).
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_songswarm"));
    cmd.env("SONGSWARM_NO_RING", "1");
    cmd
}

/// Some data to share, laid out under `root` the way a seeder expects it.
pub struct Content {
    /// The file or album directory given to `create` (under `root`).
    pub input: PathBuf,
    /// Paths of the files relative to `root` (they include the torrent name).
    pub files: Vec<PathBuf>,
    /// `--piece-length` for `create`; `None` lets the tool choose.
    pub piece_length: Option<u64>,
}

/// A 3 MiB song plus an odd tail, so the last piece is short.
pub fn song(root: &Path) -> Content {
    let rel = PathBuf::from("song.flac");
    write_random(&root.join(&rel), 3 * 1024 * 1024 + 12_345, 1);
    Content {
        input: root.join(&rel),
        files: vec![rel],
        piece_length: None,
    }
}

/// An album of odd-sized tracks with 64 KiB pieces: pieces span file ends, one
/// file is a single byte inside a piece, one is exactly a block plus one.
pub fn album(root: &Path) -> Content {
    let sizes: [(&str, u64); 5] = [
        ("01 opening.flac", 1_000_003),
        ("02 interlude.flac", 16_385),
        ("03 silence.flac", 1),
        ("04 theme.flac", 262_143),
        ("05 coda.flac", 777_777),
    ];
    let mut files = Vec::new();
    for (i, (name, len)) in sizes.iter().enumerate() {
        let rel = Path::new("album").join(name);
        write_random(&root.join(&rel), *len, 100 + i as u64);
        files.push(rel);
    }
    Content {
        input: root.join("album"),
        files,
        piece_length: Some(65_536),
    }
}

/// Who writes the manifest.
#[derive(Clone, Copy)]
pub enum Maker {
    Songswarm,
    Libtorrent,
}

pub fn make_manifest(maker: Maker, content: &Content, out: &Path) {
    match maker {
        Maker::Songswarm => {
            let mut cmd = songswarm();
            cmd.arg("create").arg(&content.input).arg("--out").arg(out);
            if let Some(len) = content.piece_length {
                cmd.arg("--piece-length").arg(len.to_string());
            }
            run_ok("songswarm create", cmd);
        }
        Maker::Libtorrent => {
            let mut cmd = lt_peer("create");
            cmd.arg(&content.input).arg("--out").arg(out);
            cmd.arg("--piece-length")
                .arg(content.piece_length.unwrap_or(262_144).to_string());
            run_ok("lt_peer.py create", cmd);
        }
    }
    assert!(out.is_file(), "no manifest written at {}", out.display());
}

/// Where most interop tests start: a temporary directory, the content
/// `lay_out` ([`song`] or [`album`]) writes under its `src/`, and the
/// manifest `maker` makes of it beside `src/` (`song.torrent`,
/// `album.torrent`). Returns the directory, `src/`, the content and the
/// manifest's path.
pub fn with_manifest(
    lay_out: fn(&Path) -> Content,
    maker: Maker,
) -> (tempfile::TempDir, PathBuf, Content, PathBuf) {
    let dir = tempdir();
    let src = dir.path().join("src");
    let content = lay_out(&src);
    let name = content.input.file_stem().expect("content name");
    let manifest = dir.path().join(name).with_extension("torrent");
    make_manifest(maker, &content, &manifest);
    (dir, src, content, manifest)
}

pub fn assert_same_content(content: &Content, src: &Path, dst: &Path) {
    for rel in &content.files {
        assert_same_file(&src.join(rel), &dst.join(rel));
    }
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("songswarm-interop-")
        .tempdir()
        .expect("tempdir")
}

impl Content {
    /// Total bytes of the content under `root`.
    pub fn total_len(&self, root: &Path) -> u64 {
        self.files
            .iter()
            .map(|f| fs::metadata(root.join(f)).expect("content file").len())
            .sum()
    }
}

/// Copies the single file `rel` from `src` to `dst` keeping only the pieces
/// for which `keep(index)` holds; the others are zeroed (same length), so a
/// client that checks the data on start finds exactly the kept pieces.
pub fn copy_pieces(
    rel: &Path,
    src: &Path,
    dst: &Path,
    piece_length: u64,
    keep: impl Fn(u64) -> bool,
) {
    let mut from = fs::File::open(src.join(rel)).expect("open source");
    let len = from.metadata().expect("metadata").len();
    let to_path = dst.join(rel);
    fs::create_dir_all(to_path.parent().expect("parent")).expect("create dir");
    let mut to = fs::File::create(&to_path).expect("create copy");
    let mut buf = vec![0u8; piece_length as usize];
    let mut index = 0;
    let mut at = 0;
    while at < len {
        let n = piece_length.min(len - at) as usize;
        if keep(index) {
            from.seek(SeekFrom::Start(at)).expect("seek");
            from.read_exact(&mut buf[..n]).expect("read source");
        } else {
            buf[..n].fill(0);
        }
        to.write_all(&buf[..n]).expect("write copy");
        at += n as u64;
        index += 1;
    }
}
