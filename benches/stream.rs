//! Playing a song over HTTP while it downloads, on loopback: a `songswarm
//! play` that has none of the song and knows its seeders (`--peer`).
//!
//! `cargo bench --bench stream`; knobs: `SONGSWARM_STREAM_SECS` (240: the
//! song's length, an MP3 at 320 kbit/s made by ffmpeg), `SONGSWARM_STREAM_SEEDS`
//! (2 seeders), `SONGSWARM_BENCH_RUNS` (5 runs for the uncapped figures),
//! `SONGSWARM_STREAM_PLAY_SECS` (20: real-time play before and after the
//! seek of the capped run).
//!
//! For the song's default piece length (`songswarm create`'s rule) and for
//! 32 KiB pieces it prints:
//!
//! - *first byte*: from sending `GET /songs/…` to the first body byte, sent
//!   as soon as `play` prints the song's URL (p50 and max over the runs,
//!   each with a fresh player and seeders that upload as fast as they can);
//! - *seek*: right after that first byte, a `Range: bytes=N-` request into
//!   the first piece at or after 70 % of the song that the player's piece
//!   map (`/api/torrents/…`) shows unverified, to its first body byte;
//! - *capped*: every seeder's upload capped at 1.5x the song's bitrate, a
//!   client that reads at the song's real-time rate (it keeps up to 10 s
//!   ahead of its play position, as a player's buffer does) plays the start,
//!   seeks as above and plays on: its first byte, its seek, and its stalls
//!   (its play position reached the last byte it had; it resumes once a
//!   second of audio is in) with their total length.
//!
//! songswarm's seeders super-seed (they announce pieces one at a time), but
//! a player says it streams and gets every piece at once (capped, 32 KiB
//! pieces: the first byte took 9.5 s before that, 2 ms after).
//! `SONGSWARM_STREAM_PIECE` measures one piece length only.
//!
//! rqbit's HTTP stream API would be measured the same way when `rqbit` is on
//! PATH; this bench says so when it is not. Under `cargo test` it runs once,
//! small, as a smoke test.

#[path = "../tests/support/e2e_harness.rs"]
mod harness;
#[path = "support/measure.rs"]
mod measure;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use harness::{seed, Proc};
use measure::{bench_mode, env_u64, median, on_path};

/// Audio a reading client keeps ahead of its play position.
const BUFFER_SECS: f64 = 10.0;
/// Audio a stalled client waits for before it plays on.
const RESUME_SECS: f64 = 1.0;
/// Only there to turn a hang into a failure.
const DEADLINE: Duration = Duration::from_secs(60);

fn main() {
    let full = bench_mode();
    let secs = env_u64("SONGSWARM_STREAM_SECS", if full { 240 } else { 20 });
    let seeds = env_u64("SONGSWARM_STREAM_SEEDS", 2) as usize;
    let runs = env_u64("SONGSWARM_BENCH_RUNS", if full { 5 } else { 1 }) as usize;
    let play = env_u64("SONGSWARM_STREAM_PLAY_SECS", if full { 20 } else { 2 }) as f64;
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).expect("source dir");
    let song = make_song(&src, secs);
    let length = std::fs::metadata(&song).expect("the song").len();
    let byte_rate = length as f64 / secs as f64;
    println!(
        "stream: a {secs} s MP3 at 320 kbit/s ({length} bytes, {:.0} bytes/s), {seeds} seeders on \
         loopback, {runs} runs",
        byte_rate
    );
    let pieces = match std::env::var("SONGSWARM_STREAM_PIECE") {
        Ok(p) => vec![Some(
            p.parse::<u64>().expect("SONGSWARM_STREAM_PIECE: a number"),
        )],
        Err(_) => vec![None, Some(32 * 1024)],
    };
    for piece in pieces {
        let manifest = create(&song, piece, dir.path());
        let piece_length = piece_length_of(&manifest);
        println!(
            "\n{} KiB pieces ({}):",
            piece_length / 1024,
            match piece {
                None => "the default for this song",
                Some(_) => "--piece-length 32768",
            }
        );
        let (mut firsts, mut seeks) = (Vec::new(), Vec::new());
        let seeders = Seeders::start(&manifest, &src, seeds, None);
        for _ in 0..runs {
            let player = seeders.player();
            let (first, mut body) = Get::open(&player.song_url, 0);
            firsts.push(first.as_secs_f64() * 1e3);
            body.close();
            // On loopback a player has the whole song a moment after its
            // first byte: the seek is a fresh player's first request.
            let player = seeders.player();
            let target = player
                .unverified_after(0.7, piece_length)
                .expect("a fresh player lacks most of the song");
            let (seek, mut body) = Get::open(&player.song_url, target);
            seeks.push(seek.as_secs_f64() * 1e3);
            body.close();
        }
        drop(seeders);
        let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        println!(
            "  uncapped: first byte p50 {:.1} ms (max {:.1}), seek into an unfetched piece p50 {:.1} \
             ms (max {:.1})",
            median(&firsts),
            max(&firsts),
            median(&seeks),
            max(&seeks)
        );
        let cap = (1.5 * byte_rate) as u64;
        let seeders = Seeders::start(&manifest, &src, seeds, Some(cap));
        let player = seeders.player();
        let (first, mut body) = Get::open(&player.song_url, 0);
        let before = body.play(byte_rate, play);
        body.close();
        let Some(target) = player.unverified_after(0.7, piece_length) else {
            println!(
                "  capped at {cap} bytes/s per seeder: first byte {:.0} ms, {} stalls ({:.2} s \
                 stalled) in {play:.0} s of play; the whole song was in before the seek",
                first.as_secs_f64() * 1e3,
                before.0,
                before.1.as_secs_f64()
            );
            continue;
        };
        let (seek, mut body) = Get::open(&player.song_url, target);
        let after = body.play(byte_rate, play);
        let (stalls, stalled) = (before.0 + after.0, before.1 + after.1);
        println!(
            "  capped at {cap} bytes/s per seeder: first byte {:.0} ms, seek into an unfetched \
             piece {:.0} ms, {stalls} stalls ({:.2} s stalled) in {:.0} s of play",
            first.as_secs_f64() * 1e3,
            seek.as_secs_f64() * 1e3,
            stalled.as_secs_f64(),
            2.0 * play
        );
    }
    if on_path("rqbit") {
        println!("\nrqbit is on PATH, but this bench does not drive its stream API yet");
    } else {
        println!("\nrqbit: not on PATH, no comparison in this run");
    }
}

/// `secs` seconds of a tone over noise as a 320 kbit/s MP3 with tags.
fn make_song(dir: &Path, secs: u64) -> PathBuf {
    let out = dir.join("song.mp3");
    let source = format!(
        "sine=frequency=440:sample_rate=44100:duration={secs},aformat=channel_layouts=stereo[s];\
         anoisesrc=color=pink:amplitude=0.5:sample_rate=44100:duration={secs},\
         aformat=channel_layouts=stereo[n];[s][n]amix=inputs=2"
    );
    let status = Command::new("ffmpeg")
        .args([
            "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", &source,
        ])
        .args(["-c:a", "libmp3lame", "-b:a", "320k"])
        .args([
            "-metadata",
            "title=Bench Tone",
            "-metadata",
            "artist=The Benchers",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg (scripts/install-test-deps installs it)");
    assert!(status.success(), "ffmpeg could not write the song");
    out
}

/// `songswarm create` for `song`; returns the manifest.
fn create(song: &Path, piece: Option<u64>, dir: &Path) -> PathBuf {
    let manifest = dir.join(format!("song-{}.torrent", piece.unwrap_or(0)));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_songswarm"));
    cmd.arg("create").arg(song).arg("--out").arg(&manifest);
    if let Some(p) = piece {
        cmd.args(["--piece-length", &p.to_string()]);
    }
    let status = cmd
        .stdout(std::process::Stdio::null())
        .status()
        .expect("songswarm create");
    assert!(status.success(), "create {}", song.display());
    manifest
}

/// The piece length a manifest says (its `piece length` key).
fn piece_length_of(manifest: &Path) -> u64 {
    let raw = std::fs::read(manifest).expect("the manifest");
    let key = b"12:piece lengthi";
    let at = raw
        .windows(key.len())
        .position(|w| w == key)
        .expect("a piece length")
        + key.len();
    let digits: String = raw[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .map(|b| *b as char)
        .collect();
    digits.parse().expect("a number")
}

/// Seeders of one manifest; killed when dropped.
struct Seeders {
    /// The seeders' processes.
    _procs: Vec<Proc>,
    /// Their addresses.
    addrs: Vec<String>,
    /// What they seed.
    manifest: PathBuf,
}

impl Seeders {
    fn start(manifest: &Path, data: &Path, seeds: usize, cap: Option<u64>) -> Seeders {
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

    /// A `play` of the song with nothing local, told of every seeder.
    fn player(&self) -> Player {
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
        Player {
            _proc: proc,
            _out: out,
            song_url,
        }
    }
}

/// A `songswarm play`; killed when dropped.
struct Player {
    _proc: Proc,
    _out: tempfile::TempDir,
    /// `http://ADDR/songs/HASH`.
    song_url: String,
}

impl Player {
    /// A byte in the first piece at or after `share` of the song (else
    /// the first before it) that the player has not verified; None when it
    /// has the whole song.
    fn unverified_after(&self, share: f64, piece_length: u64) -> Option<u64> {
        let (host, path) = split_url(&self.song_url);
        let hash = path.trim_start_matches("/songs/");
        let body = get_text(host, &format!("/api/torrents/{hash}"));
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON progress");
        let map = v["verified"].as_str().expect("a piece map").as_bytes();
        let from = (map.len() as f64 * share) as usize;
        let piece = (from..map.len()).chain(0..from).find(|&i| map[i] == b'0')?;
        Some(piece as u64 * piece_length + 1000)
    }
}

/// `http://HOST/PATH` as (HOST, /PATH).
fn split_url(url: &str) -> (&str, &str) {
    let rest = url.trim_start_matches("http://");
    let slash = rest.find('/').unwrap_or(rest.len());
    rest.split_at(slash)
}

/// A plain GET's body as text.
fn get_text(host: &str, path: &str) -> String {
    let mut s = TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("reply");
    let (head, body) = reply.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
    body.to_string()
}

/// A song GET being read.
struct Get {
    stream: TcpStream,
    /// Body bytes in so far.
    received: u64,
}

impl Get {
    /// Sends `GET` from byte `from` and waits for the first body byte:
    /// (time to it, the body).
    fn open(url: &str, from: u64) -> (Duration, Get) {
        let (host, path) = split_url(url);
        let mut stream = TcpStream::connect(host).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        let sent = Instant::now();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nRange: bytes={from}-\r\n\r\n"
        )
        .expect("send");
        let mut head = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = stream.read(&mut buf).expect("read");
            assert!(n > 0, "the server closed before the body");
            head.extend_from_slice(&buf[..n]);
            if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                let status = String::from_utf8_lossy(&head[..12]).to_string();
                assert!(status.contains("206") || status.contains("200"), "{status}");
                let body = (head.len() - end - 4) as u64;
                if body > 0 {
                    return (
                        sent.elapsed(),
                        Get {
                            stream,
                            received: body,
                        },
                    );
                }
                break;
            }
        }
        let n = stream.read(&mut buf).expect("read");
        assert!(n > 0, "the body ended before its first byte");
        (
            sent.elapsed(),
            Get {
                stream,
                received: n as u64,
            },
        )
    }

    /// Reads at `byte_rate` for `secs` of play from the first byte: (stalls,
    /// time stalled).
    fn play(&mut self, byte_rate: f64, secs: f64) -> (u32, Duration) {
        let start = Instant::now();
        let target = (secs * byte_rate) as u64;
        let (mut played, mut last) = (0u64, start);
        let (mut stalls, mut stalled, mut since) = (0u32, Duration::ZERO, None::<Instant>);
        let mut buf = [0u8; 64 * 1024];
        self.stream
            .set_read_timeout(Some(Duration::from_millis(5)))
            .expect("timeout");
        while played < target {
            let now = Instant::now();
            if since.is_some_and(|t| now - t > DEADLINE) {
                println!("  (gave up: no audio for {} s)", DEADLINE.as_secs());
                break;
            }
            match since {
                None => {
                    played += ((now - last).as_secs_f64() * byte_rate) as u64;
                    if played >= self.received {
                        played = self.received;
                        stalls += 1;
                        since = Some(now);
                    }
                }
                Some(t) if self.received >= played + (RESUME_SECS * byte_rate) as u64 => {
                    stalled += now - t;
                    since = None;
                }
                Some(_) => {}
            }
            last = now;
            if self.received < played + (BUFFER_SECS * byte_rate) as u64 {
                match self.stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => self.received += n as u64,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(e) => panic!("reading the song: {e}"),
                }
            } else {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        if let Some(t) = since {
            stalled += t.elapsed();
        }
        (stalls, stalled)
    }

    /// Ends the request (the client goes away).
    fn close(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}
