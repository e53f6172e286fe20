//! One seeder → one leecher on loopback, songswarm against libtorrent (and
//! rqbit when it is on PATH: `cargo install rqbit`) in the same run,
//! alternating (sw, lt, rq, sw, …) so all see the same machine. Then
//! songswarm and libtorrent with each other, either way round ("sw seed->lt":
//! a songswarm seeder, a libtorrent leecher): what a user of a
//! libtorrent-based client gets from songswarm, and gives it.
//!
//! Run 0 is an uncounted warm-up. `cargo bench --bench transfer`; knobs: `SONGSWARM_BENCH_RUNS` (5),
//! `SONGSWARM_BENCH_MB` (1024, MiB of random data), `SONGSWARM_BENCH_PIECE`
//! (bytes per piece; default `songswarm create`'s rule, 1 MiB for 1 GiB). Data and downloads live in
//! tmpfs (/dev/shm) so the disk is not what is measured.
//!
//! Per run: throughput (MB = 10^6 bytes, from the start of the transfer to
//! the leecher's `done` line as this harness saw them; the start is
//! songswarm's `listening` line, libtorrent's first connection because
//! libtorrent only dials on its next half-second tick, or rqbit's line with
//! its initial check results, printed just before it dials), the leecher's
//! and the seeder's CPU seconds over the transfer, both sides' peak
//! anonymous memory ("anon": peak `RssAnon`, sampled; see
//! `support/measure.rs`), and the leecher's peak RSS (`VmHWM`, which also
//! counts the pages of files it maps: libtorrent maps the file it writes).
//! libtorrent runs inside `/usr/bin/python3` (`tests/support/lt_peer.py`),
//! so its figures include the interpreter's; the bench prints that share.
//! Every leecher is kept alive after `done` (`--seed-after`, `--linger`,
//! rqbit without `--exit-on-finish`) so /proc can still be read then.
//! Every run's download is compared byte for byte with the source; a
//! difference (or a `done` line with the wrong byte count) stops the bench
//! with a panic, in a measured run as in the warm-up.
//!
//! Every seeder sends a lone leecher its whole bitfield (songswarm's
//! `--super-seed auto` super-seeds only while several leechers are there).
//! The last line says what a libtorrent leecher gets from a songswarm
//! seeder, as a share of what a libtorrent seeder gives it.

#[path = "support/floor.rs"]
mod floor;
#[path = "support/measure.rs"]
mod measure;
#[path = "../tests/support/procs.rs"]
mod procs;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use floor::Floor;
use measure::{
    bench_mode, cpu_seconds, env_u64, idle_python_anon, median, on_path, peak_rss_bytes, AnonPeak,
    SAMPLE_EVERY,
};
use procs::{assert_same_file, free_ports, lt_peer, require_libtorrent, write_random, Proc};

/// Long enough for a slow gigabyte; only there to turn a hang into a failure.
const DEADLINE: Duration = Duration::from_secs(600);

#[derive(Clone, Copy, PartialEq, Debug)]
enum Tool {
    Songswarm,
    Libtorrent,
    Rqbit,
}

impl Tool {
    fn label(self) -> &'static str {
        match self {
            Tool::Songswarm => "songswarm",
            Tool::Libtorrent => "libtorrent",
            Tool::Rqbit => "rqbit",
        }
    }
}

/// Who seeds and who leeches in one series of runs: a tool with itself, or
/// songswarm with libtorrent either way (how fast the two trade is what a
/// user of a libtorrent-based client sees).
#[derive(Clone, Copy, PartialEq, Debug)]
struct Pair {
    seed: Tool,
    leech: Tool,
}

impl Pair {
    fn label(self) -> String {
        if self.seed == self.leech {
            self.seed.label().to_string()
        } else {
            let short = |t: Tool| match t {
                Tool::Songswarm => "sw",
                Tool::Libtorrent => "lt",
                Tool::Rqbit => "rq",
            };
            format!("{} seed->{}", short(self.seed), short(self.leech))
        }
    }
}

/// rqbit with everything but the peer wire off: no DHT, trackers, local
/// discovery, port mapping or HTTP API.
fn rqbit(listen: Option<u16>) -> Command {
    let mut cmd = Command::new("rqbit");
    cmd.args([
        "--disable-dht",
        "--disable-dht-persistence",
        "--disable-trackers",
        "--disable-lsd",
        "--disable-upnp-port-forward",
        "--ipv4-only",
    ]);
    match listen {
        Some(port) => cmd.args([
            "--listen-ip",
            "127.0.0.1",
            "--listen-port",
            &port.to_string(),
        ]),
        None => cmd.arg("--disable-tcp-listen"),
    };
    cmd.env("NO_COLOR", "1");
    cmd
}

/// rqbit's line once it has checked what is on disk (so a seeder is ready
/// and a leecher dials next).
fn rqbit_checked(line: &str) -> bool {
    line.contains("Initial check results")
}

/// One transfer's figures.
struct Sample {
    /// Seconds from the start of the transfer to the leecher's `done` line:
    /// from its `listening` line (songswarm) or its first connection
    /// (libtorrent).
    seconds: f64,
    /// Seconds from the leecher's `listening` line to its `done` line.
    wall_seconds: f64,
    /// The leecher's own idea of its download time.
    self_seconds: f64,
    /// Bytes per second / 10^6.
    mb_per_s: f64,
    /// Leecher user+system CPU seconds at `done`.
    leech_cpu: f64,
    /// Seeder CPU seconds spent during this transfer.
    seed_cpu: f64,
    /// Leecher peak anonymous memory (`RssAnon`), MiB.
    leech_anon_mib: f64,
    /// Seeder peak anonymous memory over this transfer, MiB.
    seed_anon_mib: f64,
    /// Leecher peak RSS (`VmHWM`, mapped file pages included), MiB.
    leech_rss_mib: f64,
}

const MIB: f64 = 1024.0 * 1024.0;

/// A seeder kept up for all runs of one tool (as seeder).
struct Seeder {
    /// The process.
    proc: Proc,
    /// Where leechers find it.
    addr: String,
}

fn start_seeder(tool: Tool, manifest: &Path, data: &Path) -> Result<Seeder, String> {
    let mut proc = match tool {
        Tool::Songswarm => {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_songswarm"));
            cmd.env("SONGSWARM_NO_RING", "1"); // a pure peer-wire measurement
            cmd.arg("seed").arg(manifest).arg("--data").arg(data);
            cmd.args(["--listen", "127.0.0.1:0", "--json"]);
            Proc::spawn("songswarm seed", cmd)
        }
        Tool::Libtorrent => {
            let mut cmd = lt_peer("seed");
            cmd.arg(manifest).arg("--data").arg(data);
            cmd.args(["--listen", "127.0.0.1:0", "--high-performance"]);
            cmd.args(["--timeout", &DEADLINE.as_secs().to_string()]);
            Proc::spawn("lt seed", cmd)
        }
        Tool::Rqbit => {
            let port = free_ports(1)[0];
            let mut cmd = rqbit(Some(port));
            cmd.args(["download", "--disable-http-api", "--overwrite", "-o"]);
            cmd.arg(data).arg(manifest);
            let mut proc = Proc::spawn("rqbit seed", cmd);
            proc.try_line("initial check", DEADLINE, rqbit_checked)?;
            return Ok(Seeder {
                proc,
                addr: format!("127.0.0.1:{port}"),
            });
        }
    };
    let (_, ready) = proc.try_event("listening", DEADLINE)?;
    let addr = ready["addr"].as_str().ok_or("no addr")?.to_string();
    Ok(Seeder { proc, addr })
}

/// One transfer to a new leecher of `tool` in `out`; panics if what it
/// downloaded differs from `want` (`rel` is the file's path under `out`).
fn run_once(
    tool: Tool,
    seeder: &Seeder,
    manifest: &Path,
    out: &Path,
    (want, rel): (&Path, &Path),
) -> Result<Sample, String> {
    let data_len = std::fs::metadata(want).map_err(|e| e.to_string())?.len();
    let seed_pid = seeder.proc.pid();
    let seed_anon = AnonPeak::start(seed_pid);
    let mut leech = match tool {
        Tool::Songswarm => {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_songswarm"));
            cmd.env("SONGSWARM_NO_RING", "1"); // a pure peer-wire measurement
            cmd.arg("leech").arg(manifest).arg("--out").arg(out);
            cmd.args(["--peer", &seeder.addr, "--listen", "127.0.0.1:0"]);
            cmd.args(["--seed-after", "--json"]);
            Proc::spawn("songswarm leech", cmd)
        }
        Tool::Libtorrent => {
            let mut cmd = lt_peer("leech");
            cmd.arg(manifest).arg("--out").arg(out);
            cmd.args(["--peer", &seeder.addr, "--high-performance", "--linger"]);
            cmd.args(["--timeout", &DEADLINE.as_secs().to_string()]);
            Proc::spawn("lt leech", cmd)
        }
        Tool::Rqbit => {
            let mut cmd = rqbit(None);
            cmd.args(["download", "--disable-http-api", "--initial-peers"]);
            cmd.arg(&seeder.addr).arg("-o").arg(out).arg(manifest);
            Proc::spawn("rqbit leech", cmd)
        }
    };
    let leech_anon = AnonPeak::start(leech.pid());
    let listening = match tool {
        Tool::Rqbit => leech.try_line("initial check", DEADLINE, rqbit_checked)?,
        _ => leech.try_event("listening", DEADLINE)?.0,
    };
    let seed_cpu0 = cpu_seconds(seed_pid).unwrap_or(f64::NAN);
    // songswarm and rqbit dial their peer at once; libtorrent waits for its
    // next tick (~0.5 s), a start-up latency this bench does not count.
    let started = match tool {
        Tool::Songswarm | Tool::Rqbit => listening,
        Tool::Libtorrent => leech.try_event("connected", DEADLINE)?.0,
    };
    let (finished, done) = match tool {
        // rqbit prints no byte count: the whole torrent is the data file.
        Tool::Rqbit => (
            leech.try_line("finished", DEADLINE, |l| {
                l.contains("torrent finished downloading")
            })?,
            serde_json::json!({ "bytes": data_len }),
        ),
        _ => leech.try_event("done", DEADLINE)?,
    };
    // Read /proc at once: the leecher is alive and idle now.
    let leech_cpu = cpu_seconds(leech.pid()).unwrap_or(f64::NAN);
    let rss = peak_rss_bytes(leech.pid()).unwrap_or(0);
    let seed_cpu = cpu_seconds(seed_pid).unwrap_or(f64::NAN) - seed_cpu0;
    let leech_anon = leech_anon.finish();
    let seed_anon = seed_anon.finish();
    match tool {
        Tool::Songswarm | Tool::Rqbit => leech.terminate(),
        Tool::Libtorrent => leech.close_stdin(),
    }
    leech.wait_exit(Duration::from_secs(30));

    let bytes = done["bytes"].as_u64().ok_or("done line without bytes")?;
    // Not an Err: a wrong download must stop the bench, not be skipped.
    assert_eq!(
        bytes,
        data_len,
        "{} leecher's done line counts {bytes} bytes, the data has {data_len}",
        tool.label()
    );
    assert_same_file(want, &out.join(rel));
    let seconds = (finished - started).as_secs_f64();
    Ok(Sample {
        seconds,
        wall_seconds: (finished - listening).as_secs_f64(),
        self_seconds: done["seconds"].as_f64().unwrap_or(f64::NAN),
        mb_per_s: bytes as f64 / seconds / 1e6,
        leech_cpu,
        seed_cpu,
        leech_anon_mib: leech_anon as f64 / MIB,
        seed_anon_mib: seed_anon as f64 / MIB,
        leech_rss_mib: rss as f64 / MIB,
    })
}

fn print_sample(run: u64, label: &str, s: &Sample) {
    let own = if s.self_seconds.is_nan() {
        "none".to_string() // rqbit prints no download time of its own
    } else {
        format!("{:.2} s", s.self_seconds)
    };
    println!(
        "run {run}{} {:<11} {:>8.1} MB/s  {:>6.2} s (from listening {:>6.2} s, self-reported {own:>6})  leech CPU {:>5.2} s  seed CPU {:>5.2} s  leech anon {:>6.1} MiB  seed anon {:>6.1} MiB  leech RSS {:>7.1} MiB  bytes ok",
        if run == 0 { " (warm-up)" } else { "" },
        label,
        s.mb_per_s,
        s.seconds,
        s.wall_seconds,
        s.leech_cpu,
        s.seed_cpu,
        s.leech_anon_mib,
        s.seed_anon_mib,
        s.leech_rss_mib
    );
}

/// Median figures of one pair over its measured runs.
#[derive(Clone, Copy)]
struct Medians {
    /// MB/s.
    mb_per_s: f64,
    /// The slowest and the fastest run, MB/s (a short transfer's rate
    /// moves with a few milliseconds of scheduling).
    mb_per_s_range: (f64, f64),
    /// Leecher CPU seconds.
    leech_cpu: f64,
    /// Seeder CPU seconds.
    seed_cpu: f64,
    /// Leecher peak anonymous memory, MiB.
    leech_anon: f64,
    /// Seeder peak anonymous memory, MiB.
    seed_anon: f64,
    /// Leecher peak RSS, MiB.
    leech_rss: f64,
}

impl Medians {
    fn of(samples: &[Sample]) -> Medians {
        let col = |f: fn(&Sample) -> f64| median(&samples.iter().map(f).collect::<Vec<_>>());
        let rates = samples.iter().map(|s| s.mb_per_s);
        Medians {
            mb_per_s: col(|s| s.mb_per_s),
            mb_per_s_range: (
                rates.clone().fold(f64::INFINITY, f64::min),
                rates.fold(f64::NEG_INFINITY, f64::max),
            ),
            leech_cpu: col(|s| s.leech_cpu),
            seed_cpu: col(|s| s.seed_cpu),
            leech_anon: col(|s| s.leech_anon_mib),
            seed_anon: col(|s| s.seed_anon_mib),
            leech_rss: col(|s| s.leech_rss_mib),
        }
    }
}

/// songswarm's medians against another tool's, each as "how many times
/// better": throughput over theirs, and their CPU and memory over ours, so
/// every figure above 1 favours songswarm.
fn print_ratios(other: &str, sw: Medians, them: Medians) {
    println!(
        "  songswarm vs {other}: throughput {:.2}x  leech CPU {:.2}x less  seed CPU {:.2}x less  leech anon {:.2}x less  seed anon {:.2}x less  (leech peak RSS {:.1}x less, but that counts mapped files)",
        sw.mb_per_s / them.mb_per_s,
        them.leech_cpu / sw.leech_cpu,
        them.seed_cpu / sw.seed_cpu,
        them.leech_anon / sw.leech_anon,
        them.seed_anon / sw.seed_anon,
        them.leech_rss / sw.leech_rss
    );
}

/// Prints how much of libtorrent's anonymous memory is the Python
/// interpreter's: an idle python3, then one that has imported libtorrent
/// (no session yet). Whatever a session allocates counts as libtorrent's.
fn print_python_share() {
    let mib = |b: Option<u64>| b.map_or("?".to_string(), |b| format!("{:.1}", b as f64 / MIB));
    let bare = idle_python_anon(procs::PYTHON, "pass");
    let with_lt = idle_python_anon(procs::PYTHON, "import libtorrent");
    println!(
        "libtorrent runs in {}: idle, the interpreter alone holds {} MiB anon, with libtorrent imported {} MiB; both are inside libtorrent's figures below",
        procs::PYTHON,
        mib(bare),
        mib(with_lt)
    );
}

/// Makes the manifest with `songswarm create`, or with libtorrent if that
/// fails (said so on stdout), so the comparison can still run.
fn make_manifest(data: &Path, manifest: &Path, piece: Option<u64>) {
    let mut create = Command::new(env!("CARGO_BIN_EXE_songswarm"));
    create.arg("create").arg(data).arg("--out").arg(manifest);
    if let Some(piece) = piece {
        create.args(["--piece-length", &piece.to_string()]);
    }
    let out = create.output().expect("run songswarm create");
    if out.status.success() {
        return;
    }
    println!(
        "note: songswarm create failed ({}); using libtorrent's create_torrent, 1 MiB pieces",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let mut cmd = lt_peer("create");
    cmd.arg(data).arg("--out").arg(manifest);
    cmd.args(["--piece-length", "1048576"]);
    procs::run_ok("lt_peer.py create", cmd);
}

fn main() {
    require_libtorrent();
    let full = bench_mode();
    let runs = env_u64("SONGSWARM_BENCH_RUNS", if full { 5 } else { 1 });
    let mib = env_u64("SONGSWARM_BENCH_MB", if full { 1024 } else { 8 });
    if !full {
        println!("transfer: smoke run (use `cargo bench --bench transfer` to measure)");
    }
    let shm = Path::new("/dev/shm");
    let base: PathBuf = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        println!("note: no /dev/shm; using the temp dir (disk speed will count)");
        std::env::temp_dir()
    };
    let dir = tempfile::Builder::new()
        .prefix("songswarm-bench-")
        .tempdir_in(&base)
        .expect("bench dir");
    let src = dir.path().join("src");
    let rel = Path::new("bench.bin");
    let data = src.join(rel);
    println!(
        "transfer: {mib} MiB of random data, {runs} runs per tool, in {}",
        dir.path().display()
    );
    let bytes = mib * 1024 * 1024;
    write_random(&data, bytes, 42);
    let manifest = dir.path().join("bench.torrent");
    let piece = std::env::var("SONGSWARM_BENCH_PIECE")
        .ok()
        .map(|_| env_u64("SONGSWARM_BENCH_PIECE", 0));
    make_manifest(&data, &manifest, piece);
    if let Some(piece) = piece {
        println!("pieces of {piece} bytes (SONGSWARM_BENCH_PIECE)");
    }
    println!(
        "memory: anon = peak RssAnon (/proc/PID/status, sampled every {} ms): heap, stacks, anonymous maps, not mapped or tmpfs file pages; RSS = VmHWM, which counts those too",
        SAMPLE_EVERY.as_millis()
    );
    print_python_share();
    let mut candidates = vec![Tool::Songswarm, Tool::Libtorrent];
    if on_path("rqbit") {
        candidates.push(Tool::Rqbit);
    } else {
        println!("note: rqbit not on PATH (`cargo install rqbit` adds it); skipped");
    }

    let mut tools = Vec::new();
    let mut seeders = Vec::new();
    for tool in candidates {
        match start_seeder(tool, &manifest, &src) {
            Ok(s) => {
                tools.push(tool);
                seeders.push(s);
            }
            Err(why) => println!(
                "note: {} seeder did not start, skipped: {why}",
                tool.label()
            ),
        }
    }
    let mut pairs: Vec<Pair> = tools.iter().map(|&t| Pair { seed: t, leech: t }).collect();
    if tools.contains(&Tool::Songswarm) && tools.contains(&Tool::Libtorrent) {
        for (seed, leech) in [
            (Tool::Songswarm, Tool::Libtorrent),
            (Tool::Libtorrent, Tool::Songswarm),
        ] {
            pairs.push(Pair { seed, leech });
        }
    }
    let seeder_of = |t: Tool| &seeders[tools.iter().position(|x| *x == t).expect("seeder")];
    let mut samples: Vec<Vec<Sample>> = pairs.iter().map(|_| Vec::new()).collect();
    // Run 0 is a warm-up, not counted: the first gigabyte written to fresh
    // tmpfs pages costs several times the CPU of later ones (first touch of
    // the memory), which would land on whichever tool happens to go first.
    let first = if full { 0 } else { 1 };
    for run in first..=runs {
        for (i, &pair) in pairs.iter().enumerate() {
            let label = pair.label();
            let out = dir.path().join(format!("leech-{label}-{run}"));
            let seeder = seeder_of(pair.seed);
            match run_once(pair.leech, seeder, &manifest, &out, (&data, rel)) {
                Ok(s) => {
                    print_sample(run, &label, &s);
                    if run > 0 {
                        samples[i].push(s);
                    }
                }
                Err(why) if full => println!("run {run} {label:<11} FAILED: {why}"),
                Err(why) => panic!("{label} failed: {why}"),
            }
            let _ = std::fs::remove_dir_all(&out);
        }
    }
    drop(seeders);

    println!();
    println!("medians over {runs} runs ({mib} MiB):");
    let mut by_tool = Vec::new();
    for (i, &pair) in pairs.iter().enumerate() {
        let m = Medians::of(&samples[i]);
        println!(
            "  {:<11} {:>8.1} MB/s ({:.0}-{:.0})  leech CPU {:>5.2} s  seed CPU {:>5.2} s  leech anon {:>6.1} MiB  seed anon {:>6.1} MiB  leech RSS {:>7.1} MiB  ({} ok runs, bytes checked in each)",
            pair.label(),
            m.mb_per_s,
            m.mb_per_s_range.0,
            m.mb_per_s_range.1,
            m.leech_cpu,
            m.seed_cpu,
            m.leech_anon,
            m.seed_anon,
            m.leech_rss,
            samples[i].len()
        );
        if pair.seed == pair.leech {
            by_tool.push((pair.seed, m));
        }
    }
    let get = |t: Tool| by_tool.iter().find(|(x, _)| *x == t).map(|(_, m)| *m);
    let sw_to_lt = pairs
        .iter()
        .position(|p| p.seed == Tool::Songswarm && p.leech == Tool::Libtorrent)
        .map(|i| Medians::of(&samples[i]));
    if let (Some(from_sw), Some(lt)) = (sw_to_lt, get(Tool::Libtorrent)) {
        println!(
            "  a libtorrent leecher gets {:.0} % from a songswarm seeder of what a libtorrent seeder gives it (target >= 90 %)",
            100.0 * from_sw.mb_per_s / lt.mb_per_s
        );
    }
    if let (Some(sw), Some(rq)) = (get(Tool::Songswarm), get(Tool::Rqbit)) {
        print_ratios("rqbit", sw, rq);
    }
    if let (Some(sw), Some(lt)) = (get(Tool::Songswarm), get(Tool::Libtorrent)) {
        print_ratios("libtorrent", sw, lt);
        println!("  targets: throughput >= 2.00x libtorrent, songswarm leech peak RSS < 64 MiB");
        // /proc counts CPU in 10 ms ticks: a smoke run's few MiB are too few.
        if full {
            let floor = Floor::measure(&data, &dir.path().join("floor.bin"));
            let ceiling = floor.ceiling(bytes);
            println!(
                "floor, CPU seconds any verifying client spends on these {mib} MiB: read {:.2} s, loopback TCP {:.2} s, SHA-1 {:.2} s, page-cache write {:.2} s",
                floor.read, floor.tcp, floor.sha1, floor.write
            );
            println!(
                "  all cores on that alone: at most {ceiling:.1} MB/s = {:.2}x libtorrent; songswarm reached {:.0} % of it",
                ceiling / lt.mb_per_s,
                100.0 * sw.mb_per_s / ceiling
            );
        }
    }
}
