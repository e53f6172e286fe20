//! A leecher that makes no progress says why, and with `--give-up-after`
//! exits non-zero with that reason: real processes on loopback, one with
//! no peer at all, one whose only peer (a scripted one) shows every piece
//! and never unchokes it.

#[path = "support/e2e_harness.rs"]
mod e2e_harness;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use e2e_harness::{make_torrent, Proc};
use songswarm::manifest::Manifest;
use songswarm::wire::handshake::Handshake;

/// A scripted peer of the torrent: it answers every connection's
/// handshake, sends a bitfield of every piece, and then reads and ignores
/// whatever comes (it never unchokes). Returns its address.
fn never_unchokes(manifest: &Path) -> String {
    let m = Manifest::load(manifest).unwrap();
    let pieces = m.piece_count() as usize;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let ours = Handshake::new(m.info_hash, [b'C'; 20]).to_bytes();
    let mut bits = vec![0u8; pieces.div_ceil(8)];
    for i in 0..pieces {
        bits[i / 8] |= 0x80 >> (i % 8);
    }
    let mut bitfield = ((1 + bits.len()) as u32).to_be_bytes().to_vec();
    bitfield.push(5);
    bitfield.extend_from_slice(&bits);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let (ours, bitfield) = (ours, bitfield.clone());
            std::thread::spawn(move || {
                let mut theirs = [0u8; 68];
                if s.read_exact(&mut theirs).is_err() {
                    return;
                }
                if s.write_all(&ours)
                    .and_then(|()| s.write_all(&bitfield))
                    .is_err()
                {
                    return;
                }
                let mut buf = [0u8; 4096];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

/// The `stalled` event of a `--json` leecher (skipping other lines).
fn stalled(leecher: &mut Proc) -> serde_json::Value {
    loop {
        let v = leecher.json();
        if v["event"] == "stalled" {
            return v;
        }
    }
}

/// The leecher's last words on stderr, once it gave up.
fn gave_up(leecher: &mut Proc) -> String {
    loop {
        let line = leecher.err_line();
        if line.contains("gave up") {
            return line;
        }
    }
}

#[test]
fn a_leecher_choked_by_its_only_peer_says_so_and_gives_up() {
    let dir = tempfile::tempdir().unwrap();
    let (_, manifest) = make_torrent(&dir.path().join("src"), "song.flac", 300_000, 32 * 1024, 9);
    let peer = never_unchokes(&manifest);
    let (m, out) = (
        manifest.display().to_string(),
        dir.path().join("out").display().to_string(),
    );
    let mut leecher = Proc::start_watching_stderr(&[
        "leech",
        &m,
        "--out",
        &out,
        "--peer",
        &peer,
        "--listen",
        "127.0.0.1:0",
        "--give-up-after",
        "4",
        "--json",
    ]);
    let v = stalled(&mut leecher);
    assert_eq!(v["reason"], "choked by all", "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("1 connected peer"),
        "{v}"
    );
    let last = gave_up(&mut leecher);
    assert!(last.contains("choked by all"), "{last}");
    assert!(!leecher.wait_success(), "a leecher that gave up exited 0");
}

#[test]
fn a_leecher_with_no_peers_says_so_and_gives_up() {
    let dir = tempfile::tempdir().unwrap();
    let (_, manifest) = make_torrent(&dir.path().join("src"), "song.flac", 100_000, 32 * 1024, 10);
    let (m, out) = (
        manifest.display().to_string(),
        dir.path().join("out").display().to_string(),
    );
    let mut leecher = Proc::start_watching_stderr(&[
        "leech",
        &m,
        "--out",
        &out,
        "--listen",
        "127.0.0.1:0",
        "--give-up-after",
        "2",
        "--json",
    ]);
    let v = stalled(&mut leecher);
    assert_eq!(v["reason"], "no peers", "{v}");
    let last = gave_up(&mut leecher);
    assert!(last.contains("no peers"), "{last}");
    assert!(!leecher.wait_success(), "a leecher that gave up exited 0");
}

#[test]
fn a_leecher_by_info_hash_whose_peer_refuses_the_metadata_gives_up_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let (_, manifest) = make_torrent(&dir.path().join("src"), "song.flac", 100_000, 32 * 1024, 11);
    // It speaks no extension protocol, so it can hand over no metadata.
    let peer = never_unchokes(&manifest);
    let hash = Manifest::load(&manifest).unwrap().info_hash.to_hex();
    let out = dir.path().join("out").display().to_string();
    let mut leecher = Proc::start_watching_stderr(&[
        "leech",
        &hash,
        "--out",
        &out,
        "--peer",
        &peer,
        "--listen",
        "127.0.0.1:0",
        "--give-up-after",
        "2",
    ]);
    let last = loop {
        let line = leecher.err_line();
        if line.contains("metadata") {
            break line;
        }
    };
    assert!(last.contains(&peer), "the error names the peer: {last}");
    assert!(
        !leecher.wait_success(),
        "a leecher without metadata exited 0"
    );
}
