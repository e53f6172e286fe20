//! Real players against `songswarm play` while the song still downloads
//! from a seeder capped near the song's bit rate: ffprobe reads codec and
//! duration from the song's URL, and a plain GET gets every byte right.
//! Songs are real audio made by ffmpeg. Without ffmpeg the tests skip
//! loudly, or fail when SONGSWARM_REQUIRE_PLAYERS is set.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/e2e_harness.rs"]
mod e2e_harness;
#[path = "support/players.rs"]
mod players;

use e2e_harness::DEADLINE;

const PIECE: usize = 32 * 1024;
use players::{create, have, make_song, stream, stream_with, Format};

/// Runs ffprobe on `url`; returns (codec, duration in seconds).
fn ffprobe(url: &str) -> (String, f64) {
    let mut child = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(["-show_entries", "stream=codec_name:format=duration"])
        .arg(url)
        .stdout(Stdio::piped())
        .spawn()
        .expect("run ffprobe");
    let end = Instant::now() + DEADLINE;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            panic!("ffprobe did not finish on {url}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "ffprobe failed on {url}");
    let v: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let codec = v["streams"][0]["codec_name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let duration = v["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    (codec, duration)
}

/// The player starts with the song's first quarter and its last piece on
/// disk (where a probe reads: headers, seek tables, tags), so the probe's
/// bytes are there whatever order the rest arrives in, and the rest takes
/// about 30 s: the probe ends while the song is still downloading.
#[test]
fn ffprobe_reads_codec_and_duration_of_a_song_still_downloading() {
    if !(have("ffmpeg") && have("ffprobe")) {
        return;
    }
    let formats = [
        (Format::Flac, "tone.flac", "flac"),
        (Format::Mp3, "tone.mp3", "mp3"),
    ];
    for (format, name, codec) in formats {
        let dir = tempfile::tempdir().unwrap();
        let song = make_song(dir.path(), name, format, 60);
        let manifest = create(&song, PIECE as u64);
        let size = std::fs::metadata(&song).unwrap().len() as usize;
        let head = size / 4 / PIECE * PIECE;
        let tail = (size - 1) / PIECE * PIECE;
        let have = [0..head, tail..size];
        let rate = size as u64 / 60 * 3 / 2;
        let s = stream_with(&manifest, dir.path(), rate, Some((&song, &have)), &[]);
        let (got_codec, duration) = ffprobe(&s.song_url);
        assert_eq!(got_codec, codec, "{name}");
        assert!((duration - 60.0).abs() < 0.5, "{name}: duration {duration}");
        let p = s.progress();
        assert_eq!(
            p["complete"], false,
            "{name} finished downloading before ffprobe did: this proved nothing"
        );
        eprintln!(
            "{name}: ffprobe read {codec}, {duration} s with {}% downloaded",
            p["downloaded_percent"]
        );
    }
}

#[test]
fn a_get_while_downloading_returns_exactly_the_song() {
    if !have("ffmpeg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let song = make_song(dir.path(), "tone.mp3", Format::Mp3, 30);
    let manifest = create(&song, 32 * 1024);
    let want = std::fs::read(&song).unwrap();
    // 3× the bit rate: about 10 s to download.
    let s = stream(&manifest, dir.path(), want.len() as u64 / 30 * 3);
    assert_eq!(s.progress()["complete"], false);
    let host = s.song_url.trim_start_matches("http://");
    let (host, path) = host.split_once('/').unwrap();
    let mut conn = std::net::TcpStream::connect(host).unwrap();
    conn.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        conn,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply).unwrap();
    let split = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&reply[..split]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("content-type: audio/mpeg"), "{head}");
    let body = &reply[split + 4..];
    assert_eq!(body.len(), want.len());
    assert!(body == want, "the body differs from the song");
    // The download went on under the stream and completes.
    let end = Instant::now() + DEADLINE;
    while s.progress()["complete"] != true {
        assert!(Instant::now() < end, "the download did not complete");
        std::thread::sleep(Duration::from_millis(100));
    }
    let on_disk = s.out.path().join("tone.mp3");
    assert!(std::fs::read(on_disk).unwrap() == want);
}

#[test]
fn play_starts_the_player_it_is_given_on_the_song_url() {
    if !(have("ffmpeg") && have("ffprobe")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let song = make_song(dir.path(), "tone.mp3", Format::Mp3, 20);
    let manifest = create(&song, 32 * 1024);
    // A "player" that says what it was given and what ffprobe read there.
    let script = dir.path().join("player.sh");
    let report = dir.path().join("report");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nffprobe -v error -of csv=p=0 -show_entries stream=codec_name \"$1\" \
             > {r}.tmp 2>&1\necho \"$1\" >> {r}.tmp\nmv {r}.tmp {r}\n",
            r = report.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let player = script.display().to_string();
    let size = std::fs::metadata(&song).unwrap().len();
    let s = stream_with(
        &manifest,
        dir.path(),
        size / 20 * 3 / 2,
        None,
        &["--player", &player],
    );
    let end = Instant::now() + DEADLINE;
    while !report.exists() {
        assert!(Instant::now() < end, "the player never reported");
        std::thread::sleep(Duration::from_millis(50));
    }
    let said = std::fs::read_to_string(&report).unwrap();
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines, ["mp3", s.song_url.as_str()], "the player's report");
}
