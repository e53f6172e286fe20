//! Child processes for the interop tests and the benchmarks: the `songswarm`
//! binary and the libtorrent helper `lt_peer.py`, driven through their stdout
//! JSON lines, with deadlines that turn a hang into a failure and a Drop guard
//! that kills whatever is still running.
//!
//! Shared by `tests/interop.rs` and `benches/*.rs` through `#[path]`, so not
//! every item is used by every includer.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use rand::{RngCore, SeedableRng};
use serde_json::Value;

/// The Python that has Debian's `python3-libtorrent`.
pub const PYTHON: &str = "/usr/bin/python3";

/// The libtorrent peer helper.
pub fn lt_peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/lt_peer.py")
}

/// Panics (never skips) when libtorrent is missing, saying how to get it.
pub fn require_libtorrent() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = CHECKED.get_or_init(|| {
        let out = Command::new(PYTHON)
            .args(["-c", "import libtorrent; print(libtorrent.__version__)"])
            .output();
        match out {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
            Err(e) => Err(e.to_string()),
        }
    });
    if let Err(why) = result {
        panic!(
            "{PYTHON} cannot import libtorrent ({}); run scripts/install-test-deps",
            why.trim()
        );
    }
}

/// A `Command` running `lt_peer.py MODE ...`.
pub fn lt_peer(mode: &str) -> Command {
    let mut cmd = Command::new(PYTHON);
    cmd.arg(lt_peer_script()).arg(mode);
    cmd
}

/// One line a child printed, and when the reader saw it.
pub struct Line {
    /// When the line arrived (for timing transfers from the outside).
    pub at: Instant,
    /// The line without its newline.
    pub text: String,
}

/// A running child process; killed and reaped on drop.
pub struct Proc {
    /// A short name for failure messages ("lt seed", "songswarm leech").
    name: String,
    /// The process; `None` once it has been reaped.
    child: Option<Child>,
    /// Its stdin, kept open until `close_stdin` (lt_peer.py stops on EOF).
    stdin: Option<ChildStdin>,
    /// Stdout lines, read on a thread so a deadline can bound every wait.
    lines: Receiver<Line>,
    /// Everything written to stderr so far, to explain failures.
    stderr: Arc<Mutex<String>>,
    /// How it exited, once reaped.
    status: Option<ExitStatus>,
    /// The last stdout lines read, to explain failures (e.g. progress).
    recent: std::collections::VecDeque<String>,
}

impl Proc {
    /// Starts `cmd` with piped stdio.
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {cmd:?}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for text in BufReader::new(stdout).lines() {
                let Ok(text) = text else { break };
                let line = Line {
                    at: Instant::now(),
                    text,
                };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock().expect("stderr lock").push_str(&text);
            }
        });
        let stdin = child.stdin.take();
        Proc {
            name: name.to_string(),
            child: Some(child),
            stdin,
            lines,
            stderr,
            status: None,
            recent: std::collections::VecDeque::new(),
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// What the child wrote to stderr so far (the last 4 KiB).
    pub fn stderr_tail(&self) -> String {
        let all = self.stderr.lock().expect("stderr lock").clone();
        let cut = all.len().saturating_sub(4096);
        let cut = (cut..all.len())
            .find(|&i| all.is_char_boundary(i))
            .unwrap_or(all.len());
        all[cut..].to_string()
    }

    /// Waits for the next stdout line that is a JSON object whose `event` is
    /// `event`, skipping other lines. Panics on time-out or exit, with stderr.
    pub fn expect_event(&mut self, event: &str, timeout: Duration) -> (Instant, Value) {
        self.try_event(event, timeout)
            .unwrap_or_else(|why| panic!("{why}"))
    }

    /// Like `expect_event`, but says what went wrong instead of panicking.
    pub fn try_event(
        &mut self,
        event: &str,
        timeout: Duration,
    ) -> Result<(Instant, Value), String> {
        let mut found = None;
        let at =
            self.try_line(
                &format!("{event:?} event"),
                timeout,
                |text| match serde_json::from_str::<Value>(text) {
                    Ok(v) if v.get("event").and_then(Value::as_str) == Some(event) => {
                        found = Some(v);
                        true
                    }
                    _ => false,
                },
            )?;
        Ok((at, found.expect("the matching line's value")))
    }

    /// Waits for the next stdout line `matches` accepts, skipping others;
    /// says what went wrong (naming `what`) on time-out or exit.
    pub fn try_line(
        &mut self,
        what: &str,
        timeout: Duration,
        mut matches: impl FnMut(&str) -> bool,
    ) -> Result<Instant, String> {
        let deadline = Instant::now() + timeout;
        let name = self.name.clone();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if self.recent.len() == 5 {
                        self.recent.pop_front();
                    }
                    self.recent.push_back(line.text.clone());
                    if matches(&line.text) {
                        return Ok(line.at);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let err = self.stderr_tail();
                    let out = Vec::from(self.recent.clone()).join("\n");
                    return Err(format!(
                        "{name}: no {what} line within {timeout:?}; last stdout lines:\n{out}\nstderr:\n{err}"
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // Stdout is closed, so it is exiting; a few seconds only
                    // bound a process that closed stdout and hangs.
                    let status = self.wait_exit(Duration::from_secs(5));
                    let err = self.stderr_tail();
                    return Err(format!(
                        "{name}: exited ({status}) before printing a {what} line; stderr:\n{err}"
                    ));
                }
            }
        }
    }

    /// The `addr` of the child's `listening` line ("127.0.0.1:PORT").
    pub fn expect_listening(&mut self, timeout: Duration) -> String {
        let (_, v) = self.expect_event("listening", timeout);
        v["addr"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: listening line without addr: {v}", self.name))
            .to_string()
    }

    /// Closes the child's stdin (lt_peer.py prints its stats and exits).
    pub fn close_stdin(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
    }

    /// Sends SIGTERM (songswarm's clean shutdown signal).
    pub fn terminate(&self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
    }

    /// Waits for the child to exit, polling until `timeout`; kills it if it
    /// does not and panics. Returns the same status again once reaped.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let Some(child) = self.child.as_mut() else {
            return self.status.expect("a reaped child has a status");
        };
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    self.status = Some(status);
                    return status;
                }
                Ok(None) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(10));
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    self.child = None;
                    let err = self.stderr_tail();
                    panic!(
                        "{}: still running after {timeout:?}; stderr:\n{err}",
                        self.name
                    );
                }
                Err(e) => panic!("{}: wait failed: {e}", self.name),
            }
        }
    }

    /// Waits for a successful exit; panics with stderr otherwise.
    pub fn expect_success(&mut self, timeout: Duration) {
        let status = self.wait_exit(timeout);
        if !status.success() {
            let err = self.stderr_tail();
            panic!("{}: exited with {status}; stderr:\n{err}", self.name);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs a short command to completion and returns its stdout; panics with
/// stderr if it fails.
pub fn run_ok(name: &str, mut cmd: Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{name}: cannot start {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{name}: {cmd:?} exited with {}; stderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes `len` bytes of seeded pseudo-random data to `path`.
pub fn write_random(path: &Path, len: u64, seed: u64) {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).expect("create data dir");
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut file = std::io::BufWriter::new(fs::File::create(path).expect("create data file"));
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill_bytes(&mut buf[..n]);
        file.write_all(&buf[..n]).expect("write data file");
        left -= n as u64;
    }
    file.flush().expect("flush data file");
}

/// Asserts two files have the same bytes, saying where they first differ.
/// Streams both, so a benchmark's gigabyte needs no gigabyte of memory.
pub fn assert_same_file(want: &Path, got: &Path) {
    let open = |p: &Path| {
        let f = fs::File::open(p).unwrap_or_else(|e| panic!("open {}: {e}", p.display()));
        let len = f.metadata().expect("metadata").len();
        (BufReader::with_capacity(1 << 20, f), len)
    };
    let (mut a, a_len) = open(want);
    let (mut b, b_len) = open(got);
    assert_eq!(
        a_len,
        b_len,
        "{} has {b_len} bytes, want {a_len}",
        got.display()
    );
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut at = 0u64;
    while at < a_len {
        let n = (a_len - at).min(x.len() as u64) as usize;
        a.read_exact(&mut x[..n]).expect("read wanted file");
        b.read_exact(&mut y[..n]).expect("read got file");
        if let Some(i) = x[..n].iter().zip(&y[..n]).position(|(p, q)| p != q) {
            panic!(
                "{} differs from {} at byte {}",
                got.display(),
                want.display(),
                at + i as u64
            );
        }
        at += n as u64;
    }
}

/// `n` free loopback ports, found by binding and releasing them (for peers
/// that must know each other's addresses before they start).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}
