//! A whole library in one seeding process: `LIBRARY_SONGS` songs (default
//! 10,000) of 1 MB on tmpfs, one manifest each (`create --per-song`),
//! served by `seed --library`:
//!
//! - time to ready (the `listening` line) on the first start (every piece
//!   hashed) and on a restart (resume records: no song read), and the bytes
//!   the restart read (`rchar` of /proc/PID/io);
//! - peak anonymous memory (`RssAnon`), open descriptors (/proc/PID/fd) and
//!   of them song files, idle CPU over `LIBRARY_IDLE_SECS` (default 5);
//! - with the ring (the seeder founds a one-node ring and announces every
//!   song): ring writes a second in steady state, from its `/metrics`, and
//!   the CPU share over the same window (the budget's steady cost);
//! - libtorrent (python3-libtorrent) adding the same torrents in seed mode
//!   (no check, as its `seed_mode` flag promises), in the same run: time to
//!   every torrent seeding, anonymous memory, descriptors, idle CPU.
//!
//! `cargo bench --bench library`; `LIBRARY_SONGS=2000` for a smaller run;
//! `LIBRARY_BIN=path/to/songswarm` measures another build of the binary.

#[path = "support/measure.rs"]
mod measure;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use measure::{cpu_seconds, env_u64, AnonPeak};

const MB: usize = 1 << 20;

/// The binary measured: this build's, or `LIBRARY_BIN` (another build's,
/// to compare two versions in the same conditions).
fn songswarm() -> Command {
    match std::env::var_os("LIBRARY_BIN") {
        Some(bin) => Command::new(bin),
        None => Command::new(env!("CARGO_BIN_EXE_songswarm")),
    }
}

/// Song `i`: 1 MB of cheap pseudo-random bytes (xorshift), distinct per song.
fn write_songs(dir: &Path, n: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut buf = vec![0u8; MB];
    for i in 0..n {
        let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let sub = dir.join(format!("{:03}", i / 1000));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("{i:05}.flac")), &buf).unwrap();
    }
}

/// Descriptors of `pid`: all, and those that are files under `under`.
fn descriptors(pid: u32, under: &Path) -> (usize, usize) {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return (0, 0);
    };
    let targets: Vec<PathBuf> = fds
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .collect();
    let files = targets.iter().filter(|t| t.starts_with(under)).count();
    (targets.len(), files)
}

/// `rchar` of /proc/PID/io: bytes the process read by any system call.
fn read_chars(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|l| l.strip_prefix("rchar: ").map(|v| v.trim().parse().ok()))
        })
        .flatten()
        .unwrap_or(0)
}

/// CPU share of `pid` over `secs` of idleness.
fn idle_cpu(pid: u32, secs: u64) -> f64 {
    let before = cpu_seconds(pid).unwrap_or(0.0);
    std::thread::sleep(Duration::from_secs(secs)); // measuring, not waiting on an event
    (cpu_seconds(pid).unwrap_or(0.0) - before) / secs as f64 * 100.0
}

fn sigterm(child: &mut Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}

/// A `GET /metrics` sum of the lines starting with `prefix`.
fn metric(http: &str, prefix: &str) -> f64 {
    let Ok(mut s) = TcpStream::connect(http) else {
        return 0.0;
    };
    let _ = write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

struct Run {
    ready: f64,
    anon: u64,
    fds: (usize, usize),
    cpu: f64,
    rchar: u64,
    ring_writes: Option<f64>,
}

/// One `seed --library` start: until ready, then idle measurements.
fn seed_run(music: &Path, ring: bool, idle: u64) -> Run {
    let mut cmd = songswarm();
    cmd.args(["seed", "--library"]).arg(music).args([
        "--listen",
        "127.0.0.1:0",
        "--json",
        "--http",
        "127.0.0.1:0",
    ]);
    match ring {
        true => cmd.args(["--no-discovery"]).env_remove("SONGSWARM_NO_RING"),
        false => cmd.args(["--no-ring"]),
    };
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let peak = AnonPeak::start(pid);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next().expect("a listening line").unwrap();
    let ready = start.elapsed().as_secs_f64();
    let rchar = read_chars(pid);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let http = v["http"].as_str().unwrap().to_string();
    std::thread::spawn(move || lines.for_each(drop));
    let mut ring_cpu = f64::NAN;
    let ring_writes = ring.then(|| {
        // Steady state: after the first burst of the budget. The CPU share
        // over the same window is the ring's steady cost (announces and
        // lookups at the budget), not idleness.
        std::thread::sleep(Duration::from_secs(3));
        let key = "songswarm_ring_quorum_ops_total{op=\"write\"";
        let a = metric(&http, key);
        ring_cpu = idle_cpu(pid, idle);
        (metric(&http, key) - a) / idle as f64
    });
    let fds = descriptors(pid, music);
    let cpu = match ring {
        true => ring_cpu,
        false => idle_cpu(pid, idle),
    };
    sigterm(&mut child);
    Run {
        ready,
        anon: peak.finish(),
        fds,
        cpu,
        rchar,
        ring_writes,
    }
}

/// libtorrent adding every manifest in seed mode; prints its own timing.
const LT_SCRIPT: &str = r#"
import json, os, sys, time
import libtorrent as lt
root = sys.argv[1]
s = lt.session({'listen_interfaces': '127.0.0.1:0', 'enable_dht': False,
    'enable_lsd': False, 'enable_upnp': False, 'enable_natpmp': False,
    'alert_mask': 0})
paths = []
for d, _, files in os.walk(root):
    paths += [os.path.join(d, f) for f in files if f.endswith('.torrent')]
start = time.monotonic()
for p in paths:
    s.async_add_torrent({'ti': lt.torrent_info(p), 'save_path': os.path.dirname(p),
        'flags': lt.torrent_flags.seed_mode})
while True:
    ts = s.get_torrents()
    if len(ts) == len(paths) and all(t.status().is_seeding for t in ts):
        break
    time.sleep(0.01)
print(json.dumps({'ready': time.monotonic() - start, 'torrents': len(ts)}), flush=True)
sys.stdin.read()
"#;

fn libtorrent_run(music: &Path, idle: u64) -> Option<Run> {
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", LT_SCRIPT])
        .arg(music)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()?;
    let pid = child.id();
    let peak = AnonPeak::start(pid);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next()?.ok()?;
    let v: serde_json::Value = serde_json::from_str(&line).ok()?;
    let fds = descriptors(pid, music);
    let cpu = idle_cpu(pid, idle);
    drop(child.stdin.take());
    let _ = child.wait();
    Some(Run {
        ready: v["ready"].as_f64()?,
        anon: peak.finish(),
        fds,
        cpu,
        rchar: 0,
        ring_writes: None,
    })
}

fn print(what: &str, r: &Run) {
    println!(
        "{what:<34} ready {:7.3} s  anon {:6.1} MB  fds {:5} (song files {:3})  idle CPU {:5.2} %  read {:8.1} MB{}",
        r.ready,
        r.anon as f64 / 1e6,
        r.fds.0,
        r.fds.1,
        r.cpu,
        r.rchar as f64 / 1e6,
        r.ring_writes
            .map(|w| format!("  ring writes {w:.1}/s"))
            .unwrap_or_default()
    );
}

fn main() {
    let n = env_u64("LIBRARY_SONGS", 10_000);
    let idle = env_u64("LIBRARY_IDLE_SECS", 5);
    let base = match Path::new("/dev/shm").is_dir() {
        true => PathBuf::from("/dev/shm"),
        false => std::env::temp_dir(),
    };
    let dir = tempfile::tempdir_in(base).unwrap();
    let music = dir.path().join("music");
    let t = Instant::now();
    write_songs(&music, n);
    println!(
        "library: {n} songs of 1 MB in {} ({:.1} s to write)",
        music.display(),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let out = songswarm()
        .arg("create")
        .arg(&music)
        .args(["--per-song", "-o"])
        .arg(&music)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("create --per-song: {:.2} s", t.elapsed().as_secs_f64());

    print(
        "songswarm, no ring, first start",
        &seed_run(&music, false, idle),
    );
    print(
        "songswarm, no ring, restart",
        &seed_run(&music, false, idle),
    );
    print("songswarm, ring, restart", &seed_run(&music, true, idle));
    match libtorrent_run(&music, idle) {
        Some(r) => print("libtorrent, seed mode", &r),
        None => {
            println!("libtorrent: python3-libtorrent not available (scripts/install-test-deps)")
        }
    }
    let _ = std::io::stdout().flush();
}
