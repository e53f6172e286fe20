//! The stream bench's swarm: songswarm seeders of one manifest, and the
//! players it measures against them, a `songswarm play` or an rqbit server
//! (`rqbit_stream`), each with nothing of the song and told of every
//! seeder.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use super::harness::{seed, Proc};
use super::rqbit_stream::Rqbit;
use super::stream_client::{get_text, split_url};

/// Which client plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    Songswarm,
    Rqbit,
}

impl Client {
    pub fn name(self) -> &'static str {
        match self {
            Client::Songswarm => "songswarm",
            Client::Rqbit => "rqbit",
        }
    }
}

/// songswarm seeders of one manifest; killed when dropped.
pub struct Seeders {
    /// The seeders' processes.
    _procs: Vec<Proc>,
    /// Their addresses.
    pub addrs: Vec<String>,
    /// What they seed.
    manifest: PathBuf,
}

impl Seeders {
    /// `seeds` seeders of `manifest` from `data`, each uploading at most
    /// `cap` bytes/s when given.
    pub fn start(manifest: &Path, data: &Path, seeds: usize, cap: Option<u64>) -> Seeders {
        let cap = cap.map(|c| c.to_string());
        let extra: Vec<&str> = match &cap {
            Some(c) => vec!["--max-upload-rate", c],
            None => vec![],
        };
        let (_procs, addrs) = (0..seeds).map(|_| seed(&[manifest], data, &extra)).unzip();
        Seeders {
            _procs,
            addrs,
            manifest: manifest.to_path_buf(),
        }
    }

    /// A fresh player of `client`, ready for its first request.
    pub fn player(&self, client: Client) -> Player {
        match client {
            Client::Songswarm => self.songswarm(),
            Client::Rqbit => Player::Rqbit(Rqbit::start(&self.manifest, &self.addrs)),
        }
    }

    /// A `play` of the song with nothing local, told of every seeder; ready
    /// once it prints the song's URL.
    fn songswarm(&self) -> Player {
        let out = tempfile::tempdir().expect("player dir");
        let (m, o) = (
            self.manifest.display().to_string(),
            out.path().display().to_string(),
        );
        let mut args = vec!["play", m.as_str(), "--out", o.as_str()];
        for a in &self.addrs {
            args.extend(["--peer", a.as_str()]);
        }
        args.extend(["--listen", "127.0.0.1:0", "--http", "0", "--json"]);
        let mut proc = Proc::start(&args);
        let song_url = loop {
            let v = proc.json();
            if v["event"] == "playing" {
                break v["song_url"].as_str().expect("song_url").to_string();
            }
        };
        Player::Songswarm {
            _proc: proc,
            _out: out,
            song_url,
        }
    }
}

/// A player with its HTTP server; killed when dropped.
pub enum Player {
    Songswarm {
        _proc: Proc,
        _out: tempfile::TempDir,
        /// `http://ADDR/songs/HASH`.
        song_url: String,
    },
    Rqbit(Rqbit),
}

impl Player {
    /// Where it serves the song.
    pub fn song_url(&self) -> String {
        match self {
            Player::Songswarm { song_url, .. } => song_url.clone(),
            Player::Rqbit(rq) => rq.song_url(),
        }
    }

    /// The end of the player's own log, where it keeps one (rqbit).
    pub fn log_tail(&self, n: usize) -> Vec<String> {
        match self {
            Player::Songswarm { .. } => Vec::new(),
            Player::Rqbit(rq) => rq.log_tail(n),
        }
    }

    /// A byte in the first piece at or after `share` of the song (else the
    /// first before it) that the player has not verified; None when it has
    /// the whole song. From its own piece map: songswarm's
    /// `/api/torrents/HASH`, rqbit's `/torrents/ID/haves`.
    pub fn unverified_after(&self, share: f64, piece_length: u64) -> Option<u64> {
        match self {
            Player::Songswarm { song_url, .. } => {
                let (host, path) = split_url(song_url);
                let hash = path.trim_start_matches("/songs/");
                let body = get_text(host, &format!("/api/torrents/{hash}"));
                let v: serde_json::Value = serde_json::from_str(&body).expect("JSON progress");
                let map = v["verified"].as_str().expect("a piece map").as_bytes();
                let from = (map.len() as f64 * share) as usize;
                let piece = (from..map.len()).chain(0..from).find(|&i| map[i] == b'0')?;
                Some(piece as u64 * piece_length + 1000)
            }
            Player::Rqbit(rq) => rq.unverified_after(share, piece_length),
        }
    }
}
