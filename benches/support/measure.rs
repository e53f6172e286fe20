//! What the benchmarks measure about a child process, read from /proc while
//! it is still alive (a reaped child has no /proc entry, and a zombie has no
//! memory map left to report a peak RSS from), plus medians and env knobs.
//!
//! Memory is compared as anonymous memory, the same count for every client:
//! the peak of `RssAnon` in /proc/<pid>/status, sampled every
//! [`SAMPLE_EVERY`]. That is the process's own heap, thread stacks,
//! anonymous mappings and private copies of file pages; it leaves out pages
//! of files the process maps (`RssFile`, and `RssShmem` for a file on tmpfs,
//! where the benchmarks keep their data). Peak RSS (`VmHWM`) counts those
//! too, so a client that maps the file it downloads (libtorrent 2) shows
//! the file's size there, not its own appetite.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Clock ticks per second for /proc/<pid>/stat times (`getconf CLK_TCK`).
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// User + system CPU seconds the process has used so far (all its threads).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields resume after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line; `rest` starts at 3.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// A `kB` field of /proc/<pid>/status, in bytes.
fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Peak resident set size in bytes (`VmHWM`), mapped file pages included.
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    status_bytes(pid, "VmHWM")
}

/// Resident anonymous memory in bytes now (`RssAnon`; see the module doc).
pub fn anon_bytes(pid: u32) -> Option<u64> {
    status_bytes(pid, "RssAnon")
}

/// How often [`AnonPeak`] reads `RssAnon`: a read costs some tens of
/// microseconds of this process's time, not the measured one's, and a
/// transfer lasts seconds, so a peak shorter than this is all it can miss.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// The kernel keeps a peak of the whole RSS (`VmHWM`) but none of its
/// anonymous part, so a thread samples it until told to stop.
pub struct AnonPeak {
    /// Set to end the sampling thread.
    stop: Arc<AtomicBool>,
    /// Largest `RssAnon` seen so far, bytes.
    peak: Arc<AtomicU64>,
    /// The sampling thread, joined by `finish`.
    thread: Option<JoinHandle<()>>,
    /// The process sampled, for one last read in `finish`.
    pid: u32,
}

impl AnonPeak {
    /// Starts sampling `pid`; the thread ends by itself if the process goes.
    pub fn start(pid: u32) -> AnonPeak {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (s, p) = (Arc::clone(&stop), Arc::clone(&peak));
        let thread = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match anon_bytes(pid) {
                    Some(b) => p.fetch_max(b, Ordering::Relaxed),
                    None => break,
                };
                thread::sleep(SAMPLE_EVERY);
            }
        });
        AnonPeak {
            stop,
            peak,
            thread: Some(thread),
            pid,
        }
    }

    /// Stops sampling (after one last read) and returns the peak in bytes.
    pub fn finish(mut self) -> u64 {
        self.stop_thread();
        if let Some(b) = anon_bytes(self.pid) {
            self.peak.fetch_max(b, Ordering::Relaxed);
        }
        self.peak.load(Ordering::Relaxed)
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for AnonPeak {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// Anonymous memory of an idle `python3` that has run `code` and printed a
/// line, in bytes: the interpreter's share of every figure for a client
/// driven from Python (libtorrent through lt_peer.py). None if it failed.
pub fn idle_python_anon(python: &str, code: &str) -> Option<u64> {
    let script = format!("{code}\nimport sys\nprint('ready', flush=True)\nsys.stdin.read()\n");
    let mut child = Command::new(python)
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut line = String::new();
    let ready = child
        .stdout
        .take()
        .map(|out| BufReader::new(out).read_line(&mut line).is_ok() && line.trim() == "ready");
    // Let any start-up threads settle before the reading.
    thread::sleep(Duration::from_millis(200));
    let anon = ready
        .unwrap_or(false)
        .then(|| anon_bytes(child.id()))
        .flatten();
    let _ = child.kill();
    let _ = child.wait();
    anon
}

/// The median of `xs` (mean of the middle two for an even count).
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// An unsigned integer from the environment, or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={s:?} is not a whole number")),
        Err(_) => default,
    }
}

/// Whether `program` is on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// Bytes the process has passed to write(2)-family calls so far (`wchar` in
/// /proc/<pid>/io). For a seeder that writes nothing to disk this is what it
/// sent on its sockets: payload plus a fraction of a percent of framing.
/// Calls that bypass write(2) (sendmsg, as boost.asio uses) are not counted.
pub fn written_bytes(pid: u32) -> Option<u64> {
    let io = fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let line = io.lines().find(|l| l.starts_with("wchar:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// True under `cargo bench` (which passes `--bench`); false under
/// `cargo test --all-targets`, where a benchmark runs once, small, as a smoke
/// test that fails loudly instead of printing FAILED and going on.
pub fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}
