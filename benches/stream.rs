//! Playing a song over HTTP while it downloads, on loopback: a player that
//! has none of the song and knows its seeders, `songswarm play` (`--peer`)
//! and, when `rqbit` is on PATH, rqbit's HTTP stream API
//! (`rqbit server start`, the torrent added with the seeders as its
//! `initial_peers`, `GET /torrents/{id}/stream/0`), in the same run.
//!
//! `cargo bench --bench stream`; knobs: `SONGSWARM_STREAM_SECS` (240: the
//! song's length, an MP3 at 320 kbit/s made by ffmpeg), `SONGSWARM_STREAM_SEEDS`
//! (2 seeders), `SONGSWARM_BENCH_RUNS` (5 runs for the uncapped figures),
//! `SONGSWARM_STREAM_PLAY_SECS` (20: real-time play before and after the
//! seek of the capped run), `SONGSWARM_STREAM_PIECES` (the piece lengths to
//! measure, comma-separated: `default` is `songswarm create`'s choice for
//! the song, a number is bytes for `--piece-length`; default
//! `default,16384,32768,65536,262144`, a length equal to the default's
//! measured once), `SONGSWARM_STREAM_RQBIT=0` leaves rqbit out.
//!
//! For each piece length, one manifest and, for each client, the same
//! seeders (songswarm `seed` processes), it prints:
//!
//! - *first byte*: from sending `GET` (from byte 0) to the first body byte,
//!   sent as soon as the player is ready (songswarm: `play` printed the
//!   song's URL; rqbit: the torrent it was given over its API is live, its
//!   piece map answers; a request answered with an error is sent again,
//!   timed from the first try), p50 and max over the runs, each with a
//!   fresh player and seeders that upload as fast as they can;
//! - *seek*: a fresh player's first request, `Range: bytes=N-` into the
//!   first piece at or after 70 % of the song that its piece map shows
//!   missing, to its first body byte;
//! - *capped*: fresh seeders each capped at 1.5x the song's bitrate
//!   (`seed --max-upload-rate`), a client that reads at the song's
//!   real-time rate (up to 10 s ahead of its play position, as a player's
//!   buffer does) plays the start, seeks as above and plays on: its first
//!   byte, its seek, and its stalls (its play position reached the last
//!   byte it had; it resumes once a second of audio is in) with their total
//!   length.
//!
//! Every body byte read is compared with the song; a difference panics.
//! The seeders super-seed only while several leechers are connected
//! (`--super-seed auto`), so each player, of either client, gets their
//! whole bitfield. Under `cargo test` it runs once, small, as a smoke test.

#[path = "../tests/support/e2e_harness.rs"]
mod harness;
#[path = "support/measure.rs"]
mod measure;
#[path = "support/rqbit_stream.rs"]
mod rqbit_stream;
#[path = "support/stream_client.rs"]
mod stream_client;
#[path = "support/stream_players.rs"]
mod stream_players;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use measure::{bench_mode, env_u64, median, on_path};
use stream_client::{Get, DEADLINE};
use stream_players::{Client, Player, Seeders};

/// What the bench measures by default, in bytes (`None`: `create`'s choice).
const CANDIDATES: &str = "default,16384,32768,65536,262144";

/// One client's figures for one piece length (milliseconds).
struct Figures {
    firsts: Vec<f64>,
    seeks: Vec<f64>,
    capped_first: f64,
    /// None when the whole song was in before the seek.
    capped_seek: Option<f64>,
    stalls: u32,
    stalled: Duration,
    /// The body ended before the song did, during the play before the
    /// seek or after it.
    cut: [bool; 2],
    played: f64,
}

/// The song and how the bench plays it.
struct Setup {
    song: PathBuf,
    bytes: Vec<u8>,
    byte_rate: f64,
    seeds: usize,
    runs: usize,
    play: f64,
}

fn main() {
    let full = bench_mode();
    let secs = env_u64("SONGSWARM_STREAM_SECS", if full { 240 } else { 20 });
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).expect("source dir");
    let song = make_song(&src, secs);
    let bytes = std::fs::read(&song).expect("the song");
    let setup = Setup {
        byte_rate: bytes.len() as f64 / secs as f64,
        bytes,
        song,
        seeds: env_u64("SONGSWARM_STREAM_SEEDS", 2) as usize,
        runs: env_u64("SONGSWARM_BENCH_RUNS", if full { 5 } else { 1 }) as usize,
        play: env_u64("SONGSWARM_STREAM_PLAY_SECS", if full { 20 } else { 2 }) as f64,
    };
    println!(
        "stream: a {secs} s MP3 at 320 kbit/s ({} bytes, {:.0} bytes/s), {} seeders on loopback, \
         {} runs; capped: {} bytes/s per seeder (1.5x the bitrate)",
        setup.bytes.len(),
        setup.byte_rate,
        setup.seeds,
        setup.runs,
        (1.5 * setup.byte_rate) as u64
    );
    let mut clients = vec![Client::Songswarm];
    if !on_path("rqbit") {
        println!("rqbit: not on PATH (scripts/install-bench-tools), no comparison in this run");
    } else if env_u64("SONGSWARM_STREAM_RQBIT", 1) == 0 {
        println!("rqbit: left out (SONGSWARM_STREAM_RQBIT=0)");
    } else {
        clients.push(Client::Rqbit);
    }
    let list = std::env::var("SONGSWARM_STREAM_PIECES")
        .unwrap_or_else(|_| (if full { CANDIDATES } else { "default" }).to_string());
    let mut done: Vec<u64> = Vec::new();
    let mut table = Vec::new();
    for item in list.split(',').map(str::trim) {
        let piece = match item {
            "default" => None,
            n => Some(
                n.parse::<u64>()
                    .expect("SONGSWARM_STREAM_PIECES: default or bytes"),
            ),
        };
        let manifest = create(&setup.song, piece, dir.path());
        let piece_length = piece_length_of(&manifest);
        if done.contains(&piece_length) {
            continue;
        }
        done.push(piece_length);
        let pieces = (setup.bytes.len() as u64).div_ceil(piece_length);
        let size = std::fs::metadata(&manifest).expect("manifest").len();
        println!(
            "\n{} KiB pieces ({}): {pieces} pieces, a {size}-byte manifest",
            piece_length / 1024,
            match piece {
                None => "create's default for this song".to_string(),
                Some(p) => format!("--piece-length {p}"),
            }
        );
        let mut row = Vec::new();
        for &client in &clients {
            let f = measure_client(client, &setup, &manifest, &src, piece_length);
            print_figures(client, &f);
            row.push((client, f));
        }
        if let [(_, sw), (_, rq)] = &row[..] {
            print_ratios(sw, rq);
        }
        table.push((piece_length, pieces, size, row));
    }
    println!("\nsummary (p50 uncapped; capped: one run):");
    println!("  piece  pieces  manifest  client     first ms  seek ms  capped first  capped seek  stalls");
    for (piece_length, pieces, size, row) in &table {
        for (client, f) in row {
            println!(
                "  {:>3} KiB {pieces:>6} {size:>9}  {:<9} {:>9.1} {:>8.1} {:>13.0} {:>12} {:>4} ({:.2} s)",
                piece_length / 1024,
                client.name(),
                median(&f.firsts),
                median(&f.seeks),
                f.capped_first,
                f.capped_seek.map_or("-".to_string(), |s| format!("{s:.0}")),
                f.stalls,
                f.stalled.as_secs_f64()
            );
        }
    }
}

/// `GET` from `from` until the player answers with a body: (time from the
/// first try to the first body byte, the body); None when no body byte came
/// within [`DEADLINE`] (printed as such, never as a time).
fn open<'a>(player: &Player, from: u64, song: &'a [u8]) -> Option<(Duration, Get<'a>)> {
    let start = Instant::now();
    loop {
        match Get::open(&player.song_url(), from, song) {
            Ok((_, get)) => return Some((start.elapsed(), get)),
            Err(_) if start.elapsed() < DEADLINE => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => {
                println!(
                    "  (no body from {} in {} s: {e})",
                    player.song_url(),
                    DEADLINE.as_secs()
                );
                return None;
            }
        }
    }
}

/// The figures of `client` for `manifest`.
fn measure_client(
    client: Client,
    s: &Setup,
    manifest: &Path,
    src: &Path,
    piece_length: u64,
) -> Figures {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (mut firsts, mut seeks) = (Vec::new(), Vec::new());
    let seeders = Seeders::start(manifest, src, s.seeds, None);
    for _ in 0..s.runs {
        let player = seeders.player(client);
        match open(&player, 0, &s.bytes) {
            Some((first, mut body)) => {
                firsts.push(ms(first));
                body.close();
            }
            None => firsts.push(f64::INFINITY),
        }
        drop(player);
        // On loopback a player has the whole song a moment after its first
        // byte: the seek is a fresh player's first request.
        let player = seeders.player(client);
        let target = player
            .unverified_after(0.7, piece_length)
            .expect("a fresh player lacks most of the song");
        match open(&player, target, &s.bytes) {
            Some((seek, mut body)) => {
                seeks.push(ms(seek));
                body.close();
            }
            None => seeks.push(f64::INFINITY),
        }
    }
    drop(seeders);
    let cap = (1.5 * s.byte_rate) as u64;
    let seeders = Seeders::start(manifest, src, s.seeds, Some(cap));
    let player = seeders.player(client);
    let (first, mut body) = open(&player, 0, &s.bytes).expect("a first byte, capped");
    let before = body.play(s.byte_rate, s.play);
    body.close();
    let mut f = Figures {
        firsts,
        seeks,
        capped_first: ms(first),
        capped_seek: None,
        stalls: before.0,
        stalled: before.1,
        cut: [body.cut, false],
        played: s.play,
    };
    if let Some(target) = player.unverified_after(0.7, piece_length) {
        match open(&player, target, &s.bytes) {
            Some((seek, mut body)) => {
                let after = body.play(s.byte_rate, s.play);
                body.close();
                f.capped_seek = Some(ms(seek));
                f.cut[1] = body.cut;
                f.stalls += after.0;
                f.stalled += after.1;
                f.played += s.play;
            }
            None => f.capped_seek = Some(f64::INFINITY),
        }
    }
    if f.stalls > 0 || f.cut.contains(&true) {
        // What the player said while it stalled (only rqbit keeps a log).
        for line in player.log_tail(6) {
            println!("    {} log: {line}", client.name());
        }
    }
    f
}

fn print_figures(client: Client, f: &Figures) {
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    println!(
        "  {:<9} uncapped: first byte p50 {:.1} ms (max {:.1}), seek into a missing piece p50 \
         {:.1} ms (max {:.1})",
        client.name(),
        median(&f.firsts),
        max(&f.firsts),
        median(&f.seeks),
        max(&f.seeks)
    );
    println!(
        "  {:<9} capped:   first byte {:.0} ms, {}, {} stalls ({:.2} s stalled) in {:.0} s of play{}",
        client.name(),
        f.capped_first,
        match f.capped_seek {
            Some(s) => format!("seek into a missing piece {s:.0} ms"),
            None => "no seek (the whole song was in)".to_string(),
        },
        f.stalls,
        f.stalled.as_secs_f64(),
        f.played,
        match f.cut {
            [false, false] => "",
            [true, false] => " (the body ended early before the seek)",
            [false, true] => " (the body ended early after the seek)",
            [true, true] => " (the body ended early before and after the seek)",
        }
    );
}

/// rqbit's figures as multiples of songswarm's (above 1: songswarm quicker).
fn print_ratios(sw: &Figures, rq: &Figures) {
    let ratio = |a: f64, b: f64| format!("{:.1}x", a / b.max(1e-3));
    println!(
        "  rqbit/songswarm: first byte {}, seek {}, capped first byte {}, capped seek {}; \
         stalls {} against {} ({:.2} s against {:.2} s)",
        ratio(median(&rq.firsts), median(&sw.firsts)),
        ratio(median(&rq.seeks), median(&sw.seeks)),
        ratio(rq.capped_first, sw.capped_first),
        match (rq.capped_seek, sw.capped_seek) {
            (Some(a), Some(b)) => ratio(a, b),
            _ => "-".to_string(),
        },
        rq.stalls,
        sw.stalls,
        rq.stalled.as_secs_f64(),
        sw.stalled.as_secs_f64()
    );
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
