//! rqbit as the stream bench's other player: `rqbit server start` with its
//! HTTP API on loopback, the torrent added over that API with the seeders
//! as its only peers, the song read from `/torrents/{id}/stream/0`.
//!
//! Everything but the peer wire and the API is off: no DHT (nor its state
//! file), trackers, local discovery, UPnP, listening socket (it dials the
//! seeders; nobody dials it) or session persistence; IPv4 only. Its API
//! listens on 127.0.0.1 only. Its own output (stats lines, logs) goes to a
//! file in its directory, shown when it fails.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::stream_client::{exchange, DEADLINE};

/// A running `rqbit server` with one torrent added; killed when dropped.
pub struct Rqbit {
    child: Child,
    /// Its download folder and log (removed when dropped).
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT` of its HTTP API.
    api: String,
    /// The torrent's id in its session.
    id: u64,
}

/// A free loopback port (bound, read and let go: another process could
/// take it in between, which would fail the start loudly).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Rqbit {
    /// Starts a server, waits for its API, adds `manifest` with `peers` as
    /// its initial peers and nothing on disk.
    pub fn start(manifest: &Path, peers: &[String]) -> Rqbit {
        let dir = tempfile::tempdir().expect("rqbit dir");
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).expect("rqbit out dir");
        let api = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.path().join("rqbit.log")).expect("rqbit log");
        let child = Command::new("rqbit")
            .args([
                "--disable-dht",
                "--disable-dht-persistence",
                "--disable-trackers",
                "--disable-lsd",
                "--disable-upnp-port-forward",
                "--disable-tcp-listen",
                "--ipv4-only",
                "--http-api-listen-addr",
                &api,
                "server",
                "start",
                "--disable-persistence",
            ])
            .arg(&out)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("rqbit");
        let mut rq = Rqbit {
            child,
            dir,
            api,
            id: 0,
        };
        let end = Instant::now() + DEADLINE;
        while exchange(&rq.api, "GET / HTTP/1.1", b"").is_err() {
            if Instant::now() > end || rq.child.try_wait().ok().flatten().is_some() {
                rq.fail("its API never answered");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let torrent = std::fs::read(manifest).expect("the manifest");
        let query = format!(
            "overwrite=true&output_folder={}&initial_peers={}",
            out.display(),
            peers.join(",")
        );
        let request = format!(
            "POST /torrents?{query} HTTP/1.1\r\nContent-Type: application/x-bittorrent\r\n\
             Content-Length: {}",
            torrent.len()
        );
        let (status, head, body) = exchange(&rq.api, &request, &torrent).expect("POST /torrents");
        if status != 200 {
            rq.fail(&format!(
                "adding the torrent: {head}\n{}",
                String::from_utf8_lossy(&body)
            ));
        }
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON from POST /torrents");
        rq.id = v["id"].as_u64().expect("the torrent's id");
        // Ready as a `play` is when it prints its URL: the torrent is live
        // (its files checked; its piece map answers).
        let end = Instant::now() + DEADLINE;
        while rq.haves().0 != 200 {
            if Instant::now() > end {
                rq.fail("the torrent never went live");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        rq
    }

    /// `GET /torrents/ID/haves` as a bitfield: (status, head, bits).
    fn haves(&self) -> (u16, String, Vec<u8>) {
        let request = format!(
            "GET /torrents/{}/haves HTTP/1.1\r\nAccept: application/octet-stream",
            self.id
        );
        exchange(&self.api, &request, b"").expect("GET haves")
    }

    /// The song's stream URL.
    pub fn song_url(&self) -> String {
        format!("http://{}/torrents/{}/stream/0", self.api, self.id)
    }

    /// A byte in the first piece at or after `share` of the song (else the
    /// first before it) that rqbit does not have; None when it has it all.
    pub fn unverified_after(&self, share: f64, piece_length: u64) -> Option<u64> {
        let (status, head, bits) = self.haves();
        assert_eq!(status, 200, "haves: {head}");
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("x-bitfield-len:")
                    .map(|v| v.trim().to_string())
            })
            .and_then(|v| v.parse().ok())
            .expect("x-bitfield-len");
        // Most significant bit first, as on the peer wire.
        let has = |i: usize| bits[i / 8] & (0x80 >> (i % 8)) != 0;
        let from = (len as f64 * share) as usize;
        let piece = (from..len).chain(0..from).find(|&i| !has(i))?;
        Some(piece as u64 * piece_length + 1000)
    }

    /// The last `n` lines of rqbit's own output (its log and stats lines).
    pub fn log_tail(&self, n: usize) -> Vec<String> {
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        let mut tail: Vec<String> = log.lines().rev().take(n).map(str::to_string).collect();
        tail.reverse();
        tail
    }

    /// Panics with `why` and the end of rqbit's log.
    fn fail(&self, why: &str) -> ! {
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!("rqbit: {why}\n{}", tail.join("\n"));
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("rqbit.log")
    }
}

impl Drop for Rqbit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
