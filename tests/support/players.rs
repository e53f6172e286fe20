//! What the real-player tests share: the tools they need (installed by
//! `scripts/install-test-deps`), real songs made by ffmpeg, and a swarm of
//! a rate-capped seeder and a `songswarm play` that streams while it
//! downloads. Needs `e2e_harness` beside it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::e2e_harness::{seed, Proc};

/// True when `tool` is on PATH. When it is not: a loud skip, unless
/// `SONGSWARM_REQUIRE_PLAYERS` is set (as `scripts/test` and CI set it),
/// which makes the test fail instead.
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return true;
    }
    let required = std::env::var_os("SONGSWARM_REQUIRE_PLAYERS").is_some_and(|v| !v.is_empty());
    assert!(
        !required,
        "{tool} is not installed and SONGSWARM_REQUIRE_PLAYERS is set: run scripts/install-test-deps"
    );
    eprintln!(
        "\n!!!!!!!!\n!!! SKIPPED: {tool} is not installed (scripts/install-test-deps installs it;\n\
         !!! set SONGSWARM_REQUIRE_PLAYERS=1 to make this a failure)\n!!!!!!!!\n"
    );
    false
}

/// An audio format ffmpeg writes for the tests.
#[derive(Clone, Copy, Debug)]
pub enum Format {
    /// FLAC: stereo 44.1 kHz noise, about 1.1 MB per 10 s.
    Flac,
    /// MP3 at 128 kbit/s (160 KB per 10 s).
    Mp3,
}

/// Writes `secs` seconds of real audio (a tone over noise, so it does not
/// compress away) tagged with a title, an artist and an album.
pub fn make_song(dir: &Path, name: &str, format: Format, secs: u32) -> PathBuf {
    let out = dir.join(name);
    let source = format!(
        "sine=frequency=440:sample_rate=44100:duration={secs},\
         aformat=channel_layouts=stereo[s];\
         anoisesrc=color=pink:amplitude=0.5:sample_rate=44100:duration={secs},\
         aformat=channel_layouts=stereo[n];[s][n]amix=inputs=2"
    );
    let codec: &[&str] = match format {
        Format::Flac => &["-c:a", "flac"],
        Format::Mp3 => &["-c:a", "libmp3lame", "-b:a", "128k"],
    };
    let status = Command::new("ffmpeg")
        .args([
            "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", &source,
        ])
        .args(codec)
        .args([
            "-metadata",
            "title=Test Tone",
            "-metadata",
            "artist=The Testers",
        ])
        .args(["-metadata", "album=Test Album"])
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg could not write {name}");
    out
}

/// `songswarm create` for `song`, with `piece_length`; returns the manifest.
pub fn create(song: &Path, piece_length: u64) -> PathBuf {
    let manifest = song.with_extension("torrent");
    let status = Command::new(env!("CARGO_BIN_EXE_songswarm"))
        .arg("create")
        .arg(song)
        .arg("--out")
        .arg(&manifest)
        .args(["--piece-length", &piece_length.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run songswarm create");
    assert!(status.success(), "create {}", song.display());
    manifest
}

/// A seeder capped at `upload_rate` bytes per second and a `play` of its
/// song that has nothing yet; both killed when dropped.
pub struct Streaming {
    /// Holds the player's download; removed when dropped.
    pub out: tempfile::TempDir,
    /// The seeder.
    pub seeder: Proc,
    /// `songswarm play`.
    pub player: Proc,
    /// `http://ADDR/songs/…`.
    pub song_url: String,
    /// `http://ADDR/`.
    pub player_url: String,
}

/// Seeds `manifest` (data in `data`) slowly and starts `play` on it.
pub fn stream(manifest: &Path, data: &Path, upload_rate: u64) -> Streaming {
    stream_with(manifest, data, upload_rate, None, &[])
}

/// The same, with the bytes `have` of the single file `song` already in
/// the player's directory (zeros elsewhere: the player verifies what is
/// there at start, as after a restart, and downloads the rest), and
/// `extra` flags for `play`.
pub fn stream_with(
    manifest: &Path,
    data: &Path,
    upload_rate: u64,
    have: Option<(&Path, &[std::ops::Range<usize>])>,
    extra: &[&str],
) -> Streaming {
    let rate = upload_rate.to_string();
    let (seeder, addr) = seed(&[manifest], data, &["--max-upload-rate", &rate]);
    let out = tempfile::tempdir().unwrap();
    if let Some((song, ranges)) = have {
        let all = std::fs::read(song).unwrap();
        let mut partial = vec![0u8; all.len()];
        for r in ranges {
            partial[r.clone()].copy_from_slice(&all[r.clone()]);
        }
        std::fs::write(out.path().join(song.file_name().unwrap()), partial).unwrap();
    }
    let (m, o) = (
        manifest.display().to_string(),
        out.path().display().to_string(),
    );
    let mut args = vec!["play", &m, "--out", &o, "--peer", &addr];
    args.extend(["--listen", "127.0.0.1:0", "--http", "0", "--json"]);
    args.extend(extra);
    let mut player = Proc::start(&args);
    let playing = loop {
        let v = player.json();
        if v["event"] == "playing" {
            break v;
        }
    };
    Streaming {
        out,
        seeder,
        player,
        song_url: playing["song_url"].as_str().unwrap().to_string(),
        player_url: playing["player_url"].as_str().unwrap().to_string(),
    }
}

impl Streaming {
    /// `GET {player_url}{path}` as JSON (a plain HTTP/1.1 request).
    pub fn api(&self, path: &str) -> serde_json::Value {
        use std::io::{Read, Write};
        let host = self
            .player_url
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let mut s = std::net::TcpStream::connect(host).unwrap();
        s.set_read_timeout(Some(crate::e2e_harness::DEADLINE))
            .unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        let (head, body) = reply.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        serde_json::from_str(body).unwrap()
    }

    /// The song's torrent progress (`/api/torrents/{hash}`).
    pub fn progress(&self) -> serde_json::Value {
        let hash = self
            .song_url
            .split("/songs/")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        self.api(&format!("/api/torrents/{hash}"))
    }
}
