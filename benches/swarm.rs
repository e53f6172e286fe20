//! One seeder and N leechers started together on loopback, every peer's
//! upload capped at u bytes/s, songswarm against libtorrent in the same run.
//!
//! `cargo bench --bench swarm`; knobs: `SONGSWARM_SWARM_LEECHERS` (8),
//! `SONGSWARM_SWARM_BYTES` (20 000 000), `SONGSWARM_SWARM_RATE` (2 000 000
//! bytes/s), `SONGSWARM_SWARM_PIECE_LENGTH` (`create`'s choice),
//! `SONGSWARM_BENCH_RUNS` (1), `SONGSWARM_SWARM_TOOLS` (`songswarm,libtorrent`:
//! which swarms to run; the quick loop may skip libtorrent, reported numbers
//! need both, alternating in one run), `SONGSWARM_SWARM_LT_SEED` (`super`:
//! how libtorrent's seeder seeds, see below).
//!
//! Both swarms get the same manifest (so the same pieces) and the same caps.
//! A songswarm seeder super-seeds eight leechers that arrive together
//! (announces pieces one peer at a time, no bitfield; `--super-seed auto`,
//! or `SONGSWARM_SWARM_SW_SEED`), so libtorrent's seeder super-seeds too: libtorrent's
//! `super_seeding` flag (`super`), or with its `strict_super_seeding`
//! setting as well (`strict`), or not at all (`plain`, a normal seed: what
//! the README's figures before this knob measured). The bench fails if
//! libtorrent does not report the mode on.
//!
//! The best any swarm can do is T* = max(F/u_seed, N·F/(u_seed + Σ u_leech)):
//! the seeder must send one copy, and all N copies must cross someone's
//! capped uplink. Efficiency = T* / (time the last leecher finished, counted
//! from the first leecher's `listening` line). Also printed: how many copies
//! of the file the seeder uploaded (1.0 is the ideal).
//!
//! Every leecher is told about the seeder and all other leechers, at ports
//! chosen up front. Leechers keep serving after they finish. Once all are
//! done, every leecher's file is compared byte for byte with the source, in
//! every run; a difference panics (a full run goes on past other failures,
//! not past that one).
//!
//! Memory: the peak anonymous memory (`RssAnon`, sampled; see
//! `support/measure.rs`) of the seeder and of each leecher over the run.
//! libtorrent's figures include its Python interpreter (a few MiB; the
//! transfer bench prints how much).

#[path = "support/measure.rs"]
mod measure;
#[path = "../tests/support/procs.rs"]
mod procs;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use measure::{bench_mode, env_u64, median, written_bytes, AnonPeak};
use procs::{assert_same_file, free_ports, lt_peer, require_libtorrent, write_random, Proc};
use serde_json::Value;

/// Only there to turn a stuck swarm into a failure.
const DEADLINE: Duration = Duration::from_secs(300);

/// The shared file's name (in the source directory and every download).
const SONG: &str = "song.flac";

const MIB: f64 = 1024.0 * 1024.0;

/// How libtorrent's seeder seeds (`SONGSWARM_SWARM_LT_SEED`).
#[derive(Clone, Copy, PartialEq)]
enum LtSeed {
    /// A normal seed: its whole bitfield to every peer.
    Plain,
    /// libtorrent's `super_seeding` torrent flag.
    Super,
    /// `super_seeding` with the `strict_super_seeding` setting.
    Strict,
}

impl LtSeed {
    fn from_env() -> LtSeed {
        match std::env::var("SONGSWARM_SWARM_LT_SEED").as_deref() {
            Err(_) | Ok("super") => LtSeed::Super,
            Ok("strict") => LtSeed::Strict,
            Ok("plain") => LtSeed::Plain,
            Ok(other) => panic!("SONGSWARM_SWARM_LT_SEED={other:?}: want super, strict or plain"),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            LtSeed::Plain => "a plain seed (whole bitfield), not super-seeding",
            LtSeed::Super => "super-seeding (torrent_flags.super_seeding)",
            LtSeed::Strict => "strict super-seeding (super_seeding + strict_super_seeding)",
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Tool {
    Songswarm,
    Libtorrent,
}

impl Tool {
    fn label(self) -> &'static str {
        match self {
            Tool::Songswarm => "songswarm",
            Tool::Libtorrent => "libtorrent",
        }
    }
}

/// The fixed parameters of a swarm run.
struct Setup {
    /// Number of leechers.
    leechers: usize,
    /// File size in bytes.
    bytes: u64,
    /// Upload cap of every peer, bytes/s.
    rate: u64,
    /// How a libtorrent seeder seeds.
    lt_seed: LtSeed,
    /// songswarm's `--super-seed` (`SONGSWARM_SWARM_SW_SEED`: auto, on, off).
    sw_seed: String,
}

impl Setup {
    /// The lower bound on the time of the last leecher.
    fn t_star(&self) -> f64 {
        let (f, u, n) = (self.bytes as f64, self.rate as f64, self.leechers as f64);
        (f / u).max(n * f / (u + n * u))
    }
}

/// What one swarm run showed.
struct Outcome {
    /// Seconds from the first leecher's `listening` to each one's `done`.
    finish: Vec<f64>,
    /// Seeder upload in copies of the file, and where that figure came from.
    seeder_copies: (f64, &'static str),
    /// The same figure worked out from the leechers' counts, as a cross-check.
    by_leechers: (f64, &'static str),
    /// Payload all leechers uploaded, bytes (at exit, or at their `done`).
    leechers_up: u64,
    /// Seconds between the first and the last leecher's `listening` line.
    spread: f64,
    /// The seeder's own count from its closing `stats` line, in copies.
    seed_own: Option<f64>,
    /// The seeder's peak anonymous memory, bytes.
    seed_anon: u64,
    /// Each leecher's peak anonymous memory, bytes.
    leech_anon: Vec<u64>,
}

fn songswarm() -> Command {
    // These runs name their peers with --peer: no ring, no LAN discovery
    // (which would also let parallel tests find each other).
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_songswarm"));
    cmd.env("SONGSWARM_NO_RING", "1");
    cmd
}

fn spawn_seeder(tool: Tool, setup: &Setup, manifest: &Path, data: &Path) -> Proc {
    let rate = setup.rate.to_string();
    match tool {
        Tool::Songswarm => {
            let mut cmd = songswarm();
            cmd.arg("seed").arg(manifest).arg("--data").arg(data);
            cmd.args([
                "--listen",
                "127.0.0.1:0",
                "--json",
                "--max-upload-rate",
                &rate,
                "--super-seed",
                &setup.sw_seed,
            ]);
            Proc::spawn("songswarm seed", cmd)
        }
        Tool::Libtorrent => {
            let mut cmd = lt_peer("seed");
            cmd.arg(manifest).arg("--data").arg(data);
            cmd.args(["--listen", "127.0.0.1:0", "--upload-rate", &rate]);
            match setup.lt_seed {
                LtSeed::Plain => {}
                LtSeed::Super => {
                    cmd.arg("--super-seed");
                }
                LtSeed::Strict => {
                    cmd.arg("--strict-super-seed");
                }
            }
            Proc::spawn("lt seed", cmd)
        }
    }
}

fn spawn_leecher(
    tool: Tool,
    setup: &Setup,
    manifest: &Path,
    out: &Path,
    listen: &str,
    peers: &[String],
) -> Proc {
    let rate = setup.rate.to_string();
    let mut cmd = match tool {
        Tool::Songswarm => {
            let mut cmd = songswarm();
            cmd.arg("leech").arg(manifest).arg("--out").arg(out);
            cmd.args([
                "--listen",
                listen,
                "--json",
                "--seed-after",
                "--max-upload-rate",
                &rate,
            ]);
            cmd
        }
        Tool::Libtorrent => {
            let mut cmd = lt_peer("leech");
            cmd.arg(manifest).arg("--out").arg(out);
            cmd.args(["--listen", listen, "--linger", "--upload-rate", &rate]);
            cmd.args(["--timeout", &DEADLINE.as_secs().to_string()]);
            cmd
        }
    };
    for p in peers {
        cmd.args(["--peer", p]);
    }
    Proc::spawn(&format!("{} leech {listen}", tool.label()), cmd)
}

/// Stops a process the way its tool expects and returns its last stats line
/// if it printed one (lt_peer.py always does; songswarm may).
fn stop(tool: Tool, proc: &mut Proc) -> Option<Value> {
    match tool {
        Tool::Songswarm => proc.terminate(),
        Tool::Libtorrent => proc.close_stdin(),
    }
    let stats = proc
        .try_event("stats", Duration::from_secs(10))
        .ok()
        .map(|(_, v)| v);
    proc.wait_exit(Duration::from_secs(10));
    stats
}

fn uploaded(v: &Value) -> Option<u64> {
    v.get("total_payload_upload")
        .or_else(|| v.get("uploaded_bytes"))
        .and_then(Value::as_u64)
}

fn run_swarm(
    tool: Tool,
    setup: &Setup,
    manifest: &Path,
    data: &Path,
    work: &Path,
) -> Result<Outcome, String> {
    let mut seeder = spawn_seeder(tool, setup, manifest, data);
    let seed_anon = AnonPeak::start(seeder.pid());
    let (_, ready) = seeder.try_event("listening", DEADLINE)?;
    let seed_written0 = written_bytes(seeder.pid());
    let seed_addr = ready["addr"].as_str().ok_or("no addr")?.to_string();
    if tool == Tool::Libtorrent {
        let on = ready["super_seeding"].as_bool() == Some(true);
        // Not an Err: a comparison under the wrong mode must not go on.
        assert_eq!(
            on,
            setup.lt_seed != LtSeed::Plain,
            "libtorrent's seeder reports super_seeding {on}, asked for {}",
            setup.lt_seed.describe()
        );
    }

    let addrs: Vec<String> = free_ports(setup.leechers)
        .into_iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let mut leechers: Vec<Proc> = Vec::new();
    let mut outs: Vec<PathBuf> = Vec::new();
    for (i, me) in addrs.iter().enumerate() {
        let mut peers = vec![seed_addr.clone()];
        peers.extend(addrs.iter().filter(|a| *a != me).cloned());
        let out = work.join(format!("{}-{i}", tool.label()));
        leechers.push(spawn_leecher(tool, setup, manifest, &out, me, &peers));
        outs.push(out);
    }
    let leech_anon: Vec<AnonPeak> = leechers.iter().map(|l| AnonPeak::start(l.pid())).collect();
    let mut up_at: Vec<Instant> = Vec::new();
    for l in leechers.iter_mut() {
        up_at.push(l.try_event("listening", DEADLINE)?.0);
    }
    let start = *up_at.iter().min().ok_or("no leechers")?;
    let all_up = *up_at.iter().max().ok_or("no leechers")?;
    let mut finish = Vec::new();
    let mut done_lines = Vec::new();
    for l in leechers.iter_mut() {
        let (at, done) = l.try_event("done", DEADLINE)?;
        finish.push((at - start).as_secs_f64());
        done_lines.push(done);
    }
    // The seeder is still up: what it has written to its sockets so far.
    let seed_written = match (seed_written0, written_bytes(seeder.pid())) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let leech_anon: Vec<u64> = leech_anon.into_iter().map(AnonPeak::finish).collect();
    let seed_anon = seed_anon.finish();

    // Everyone is done: stop the leechers, then the seeder, collecting stats.
    let mut final_up = Vec::new();
    for l in leechers.iter_mut() {
        final_up.push(stop(tool, l).as_ref().and_then(uploaded));
    }
    let seed_stats = stop(tool, &mut seeder);
    // Every leecher's file, every run; not an Err, so that it stops the bench.
    for (out, done) in outs.iter().zip(&done_lines) {
        assert_eq!(
            done["bytes"].as_u64(),
            Some(setup.bytes),
            "{} leecher in {}: done line with the wrong byte count: {done}",
            tool.label(),
            out.display()
        );
        assert_same_file(&data.join(SONG), &out.join(SONG));
    }
    let copies = |b: u64| b as f64 / setup.bytes as f64;
    // Payload the leechers took in that no leecher sent came from the seeder.
    // Upload counts from `done` lines miss what a leecher sent after
    // finishing, so with them this is an upper bound.
    // Received payload including duplicates, where the leecher reports it.
    let down: u64 = done_lines
        .iter()
        .filter_map(|d| {
            d.get("downloaded_bytes")
                .or_else(|| d.get("total_payload_download"))
                .or_else(|| d.get("bytes"))
                .and_then(Value::as_u64)
        })
        .sum();
    let (up, how) = if final_up.iter().all(Option::is_some) {
        let up = final_up.iter().flatten().sum::<u64>();
        (up, "Σ leecher down − Σ leecher up at exit")
    } else {
        let up = done_lines
            .iter()
            .filter_map(|d| d["uploaded_bytes"].as_u64())
            .sum::<u64>();
        (
            up,
            "upper bound: Σ leecher down − Σ leecher up at their done",
        )
    };
    let by_leechers = (copies(down.saturating_sub(up)), how);
    // songswarm: what its process wrote to sockets (exact; its own `stats`
    // line has under-counted); libtorrent sends with sendmsg, which wchar
    // misses, so there its own count.
    let own = seed_stats.as_ref().and_then(uploaded);
    let seeder_copies = match (tool, seed_written, own) {
        (Tool::Songswarm, Some(w), _) => {
            (copies(w), "seeder's socket writes, /proc/<pid>/io wchar")
        }
        (_, _, Some(up)) => (copies(up), "seeder's own count"),
        _ => by_leechers,
    };
    let seed_own = own.map(copies);
    Ok(Outcome {
        finish,
        seeder_copies,
        by_leechers,
        seed_own,
        leechers_up: up,
        spread: (all_up - start).as_secs_f64(),
        seed_anon,
        leech_anon,
    })
}

/// Writes the song and its manifest (`songswarm create`, else libtorrent's),
/// with `piece_length` if given, else `create`'s own choice.
fn prepare(dir: &Path, bytes: u64, piece_length: Option<u64>) -> (PathBuf, PathBuf) {
    let src = dir.join("src");
    let data = src.join(SONG);
    write_random(&data, bytes, 7);
    let manifest = dir.join("song.torrent");
    let mut cmd = songswarm();
    cmd.arg("create").arg(&data).arg("--out").arg(&manifest);
    if let Some(len) = piece_length {
        cmd.arg("--piece-length").arg(len.to_string());
    }
    let out = cmd.output().expect("run songswarm create");
    if !out.status.success() {
        let len = piece_length.unwrap_or(262_144);
        println!(
            "note: songswarm create failed ({}); using libtorrent's create_torrent, {len}-byte pieces",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let mut cmd = lt_peer("create");
        cmd.arg(&data).arg("--out").arg(&manifest);
        cmd.args(["--piece-length", &len.to_string()]);
        procs::run_ok("lt_peer.py create", cmd);
    }
    (src, manifest)
}

/// Piece length and count of a manifest, read back through libtorrent.
fn piece_geometry(manifest: &Path) -> String {
    let mut cmd = Command::new(procs::PYTHON);
    cmd.arg("-c").arg(
        "import sys, libtorrent as lt; t = lt.torrent_info(sys.argv[1]); \
         print(t.piece_length(), t.num_pieces())",
    );
    cmd.arg(manifest);
    let out = procs::run_ok("piece geometry", cmd);
    let mut it = out.split_whitespace();
    match (it.next(), it.next()) {
        (Some(len), Some(n)) => format!("{n} pieces of {len} bytes"),
        _ => "unknown pieces".to_string(),
    }
}

fn main() {
    require_libtorrent();
    let full = bench_mode();
    let setup = Setup {
        leechers: env_u64("SONGSWARM_SWARM_LEECHERS", if full { 8 } else { 3 }) as usize,
        bytes: env_u64(
            "SONGSWARM_SWARM_BYTES",
            if full { 20_000_000 } else { 2_000_000 },
        ),
        rate: env_u64("SONGSWARM_SWARM_RATE", 2_000_000),
        lt_seed: LtSeed::from_env(),
        sw_seed: std::env::var("SONGSWARM_SWARM_SW_SEED").unwrap_or_else(|_| "auto".into()),
    };
    if !full {
        println!("swarm: smoke run (use `cargo bench --bench swarm` to measure)");
    }
    let runs = env_u64("SONGSWARM_BENCH_RUNS", 1);
    let base = if Path::new("/dev/shm").is_dir() {
        Path::new("/dev/shm").to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = tempfile::Builder::new()
        .prefix("songswarm-swarm-")
        .tempdir_in(base)
        .expect("bench dir");
    let piece_length = std::env::var("SONGSWARM_SWARM_PIECE_LENGTH")
        .ok()
        .map(|_| env_u64("SONGSWARM_SWARM_PIECE_LENGTH", 0));
    let (src, manifest) = prepare(dir.path(), setup.bytes, piece_length);
    let tools: Vec<Tool> = std::env::var("SONGSWARM_SWARM_TOOLS")
        .unwrap_or_else(|_| "songswarm,libtorrent".into())
        .split(',')
        .filter_map(|t| match t.trim() {
            "songswarm" => Some(Tool::Songswarm),
            "libtorrent" => Some(Tool::Libtorrent),
            _ => None,
        })
        .collect();
    let t_star = setup.t_star();
    println!(
        "swarm: 1 seeder + {} leechers, {} bytes ({}), every upload capped at {} B/s, T* = {t_star:.2} s, {runs} run(s)",
        setup.leechers,
        setup.bytes,
        piece_geometry(&manifest),
        setup.rate
    );
    println!(
        "seeders: songswarm --super-seed {}; libtorrent: {}",
        setup.sw_seed,
        setup.lt_seed.describe()
    );
    for run in 1..=runs {
        for &tool in &tools {
            let work = dir.path().join(format!("run-{run}"));
            match run_swarm(tool, &setup, &manifest, &src, &work) {
                Ok(o) => {
                    let last = o.finish.iter().cloned().fold(0.0, f64::max);
                    let first = o.finish.iter().cloned().fold(f64::INFINITY, f64::min);
                    let times: Vec<String> = o.finish.iter().map(|t| format!("{t:.1}")).collect();
                    println!(
                        "run {run} {:<10} last done {last:>6.2} s (first {first:.2} s)  efficiency {:.2}  seeder uploaded {:.2} copies ({})",
                        tool.label(),
                        t_star / last,
                        o.seeder_copies.0,
                        o.seeder_copies.1
                    );
                    println!(
                        "      finish times (s): {}  (all {} listening within {:.2} s of the first)",
                        times.join(" "),
                        setup.leechers,
                        o.spread
                    );
                    println!(
                        "      seeder copies by the leechers' counts: {:.2} ({})",
                        o.by_leechers.0, o.by_leechers.1
                    );
                    if let Some(own) = o.seed_own {
                        println!("      seeder copies by its own stats line: {own:.2}");
                    }
                    let anon: Vec<f64> = o.leech_anon.iter().map(|&b| b as f64 / MIB).collect();
                    println!(
                        "      peak anon memory (RssAnon): seeder {:.1} MiB, leechers median {:.1} MiB, largest {:.1} MiB; every leecher's file byte-identical",
                        o.seed_anon as f64 / MIB,
                        median(&anon),
                        anon.iter().cloned().fold(0.0, f64::max)
                    );
                    // How much of the leechers' capped uplinks the swarm used.
                    let capacity = setup.leechers as f64 * setup.rate as f64 * last;
                    println!(
                        "      leechers uploaded {:.1} MB, {:.0}% of their capacity until the last finished",
                        o.leechers_up as f64 / 1e6,
                        100.0 * o.leechers_up as f64 / capacity
                    );
                }
                Err(why) if full => println!("run {run} {:<10} FAILED: {why}", tool.label()),
                Err(why) => panic!("{} failed: {why}", tool.label()),
            }
            let _ = std::fs::remove_dir_all(&work);
        }
    }
    println!("targets: songswarm efficiency >= 0.85 with 8 leechers, seeder <= 1.3 copies");
}
