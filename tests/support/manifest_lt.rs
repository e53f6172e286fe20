//! libtorrent's view of a `.torrent` file, through
//! `manifest_lt_infohash.py`, to compare with our parse. Needs
//! /usr/bin/python3 with libtorrent; without it the caller fails, saying how
//! to install it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

const PYTHON: &str = "/usr/bin/python3";

/// libtorrent's description of a torrent (see manifest_lt_infohash.py).
#[derive(serde::Deserialize, Debug)]
pub struct LtView {
    pub info_hash: String,
    pub name: String,
    pub num_pieces: u32,
    pub piece_length: u64,
    pub total_size: u64,
    pub files: Vec<LtFile>,
}

/// One file as libtorrent lists it: `path` includes the torrent name.
#[derive(serde::Deserialize, Debug)]
pub struct LtFile {
    pub path: String,
    pub size: u64,
    pub pad: bool,
}

fn helper() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/manifest_lt_infohash.py")
}

/// Runs the libtorrent helper; a missing libtorrent is a failure that says
/// how to fix it.
pub fn libtorrent<S: AsRef<OsStr>>(args: &[S]) -> LtView {
    let out = Command::new(PYTHON)
        .arg(helper())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {PYTHON}: {e}; run scripts/install-test-deps"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        panic!("{PYTHON} cannot import libtorrent ({stderr}): run scripts/install-test-deps");
    }
    assert!(out.status.success(), "libtorrent helper failed: {stderr}");
    serde_json::from_slice(&out.stdout).expect("helper prints JSON")
}

pub fn lt_info(torrent: &Path) -> LtView {
    libtorrent(&[OsStr::new("info"), torrent.as_os_str()])
}

/// libtorrent's manifest of `input` written to `out`, with `piece_length`
/// and `kind` ("v1" or "hybrid").
pub fn lt_create(input: &Path, out: &Path, piece_length: u32, kind: &str) -> LtView {
    libtorrent(&[
        OsStr::new("create"),
        input.as_os_str(),
        out.as_os_str(),
        OsStr::new(&piece_length.to_string()),
        OsStr::new(kind),
    ])
}
