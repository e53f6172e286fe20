//! A seeder of many files under a low open-file limit: song files go
//! through a bounded cache of open files, so the process starts, accepts
//! every peer and serves every song (before the cache it held one
//! descriptor per file and could not even start here).

#[path = "support/e2e_harness.rs"]
mod harness;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};

use harness::{assert_finishes_with, leech, make_torrent, Proc};
use songswarm::manifest::Manifest;

/// Songs seeded by the one process: more than the descriptors it may open.
const SONGS: usize = 200;
/// The process's open-file limit (soft and hard).
const LIMIT: u32 = 128;
/// Idle peers that each hold a connection to a different song.
const IDLE_PEERS: usize = 40;

fn handshake(addr: &str, info_hash: [u8; 20]) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(harness::DEADLINE)).unwrap();
    let mut hs = vec![19u8];
    hs.extend_from_slice(b"BitTorrent protocol");
    hs.extend_from_slice(&[0; 8]);
    hs.extend_from_slice(&info_hash);
    hs.extend_from_slice(b"-XX0000-openfilestest");
    s.write_all(&hs[..68]).unwrap();
    let mut back = [0u8; 68];
    s.read_exact(&mut back)
        .expect("the seeder answers the handshake");
    assert_eq!(&back[28..48], &info_hash, "handshake for the right song");
    s
}

/// Regular files under `dir` that `pid` holds open.
fn files_open_under(pid: u32, dir: &Path) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                .filter(|target| target.starts_with(dir))
                .count()
        })
        .unwrap_or(0)
}

fn soft_and_hard_limit(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    let mut parts = line.split_whitespace().skip(3);
    (
        parts.next().unwrap().to_string(),
        parts.next().unwrap().to_string(),
    )
}

#[test]
fn many_songs_under_a_low_open_file_limit_are_all_served() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let songs: Vec<(Vec<u8>, PathBuf)> = (0..SONGS)
        .map(|i| make_torrent(&src, &format!("song{i:03}.flac"), 40_000, 16_384, i as u64))
        .collect();
    let mut args: Vec<String> = vec!["seed".into()];
    args.extend(songs.iter().map(|(_, m)| m.display().to_string()));
    for a in [
        "--data",
        src.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--json",
    ] {
        args.push(a.into());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut seeder = Proc::start_with_fd_limit(LIMIT, LIMIT, &refs);
    let addr = seeder.listening();
    let pid = seeder.child.id();

    let hashes: Vec<[u8; 20]> = songs
        .iter()
        .map(|(_, m)| Manifest::load(m).unwrap().info_hash.0)
        .collect();
    let idle: Vec<TcpStream> = (0..IDLE_PEERS)
        .map(|i| handshake(&addr, hashes[i]))
        .collect();

    let out = dir.path().join("out");
    for i in [SONGS - 1, SONGS / 2, 0] {
        let (data, manifest) = &songs[i];
        let (mut leecher, _) = leech(manifest, &out, &[&addr], &[]);
        assert_finishes_with(&mut leecher, &out.join(format!("song{i:03}.flac")), data);
    }
    // The idle peers are still connected: each still gets an answer.
    for (i, mut s) in idle.into_iter().enumerate() {
        // Drain what the seeder sent; an end of stream means it hung up.
        s.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => panic!("idle peer {i} was disconnected"),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("idle peer {i}: {e}"),
            }
        }
    }
    let open = files_open_under(pid, &src);
    assert!(
        open <= (LIMIT / 4) as usize,
        "{open} song files open, more than a quarter of the limit"
    );
}

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let (_, manifest) = make_torrent(&src, "a.flac", 10_000, 16_384, 1);
    let m = manifest.display().to_string();
    let args = [
        "seed",
        &m,
        "--data",
        src.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--json",
    ];
    let mut seeder = Proc::start_with_fd_limit(64, 512, &args);
    seeder.listening();
    assert_eq!(
        soft_and_hard_limit(seeder.child.id()),
        ("512".to_string(), "512".to_string())
    );
}
