//! Helpers of the loopback end-to-end tests: test data and manifests, and
//! `songswarm` child processes whose stdout lines are read with deadlines.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha1::{Digest, Sha1};

/// Every wait in these tests ends in a failure after this long.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Writes `len` random bytes to `dir/name` and a single-file manifest for it
/// to `dir/name.torrent`; returns (data, manifest path).
pub fn make_torrent(
    dir: &Path,
    name: &str,
    len: usize,
    piece_length: usize,
    seed: u64,
) -> (Vec<u8>, PathBuf) {
    let mut rng = StdRng::seed_from_u64(seed);
    let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), &data).unwrap();
    let mut pieces = Vec::new();
    for chunk in data.chunks(piece_length) {
        pieces.extend_from_slice(&Sha1::digest(chunk));
    }
    // Keys in sorted order, as bencode requires.
    let mut info = Vec::new();
    info.extend_from_slice(format!("d6:lengthi{len}e4:name{}:{name}", name.len()).as_bytes());
    info.extend_from_slice(
        format!("12:piece lengthi{piece_length}e6:pieces{}:", pieces.len()).as_bytes(),
    );
    info.extend_from_slice(&pieces);
    info.push(b'e');
    let mut torrent = b"d4:info".to_vec();
    torrent.extend_from_slice(&info);
    torrent.push(b'e');
    let path = dir.join(format!("{name}.torrent"));
    std::fs::write(&path, torrent).unwrap();
    (data, path)
}

/// A running `songswarm` process; killed when dropped.
pub struct Proc {
    /// The child.
    pub child: Child,
    /// Its stdout, line by line.
    lines: mpsc::Receiver<String>,
    /// Its stderr, line by line, when started with `start_watching_stderr`.
    errors: Option<mpsc::Receiver<String>>,
    /// What it was started with (for failure messages).
    pub what: String,
}

/// The lines of `from`, read on a thread of their own.
fn lines_of(from: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Proc {
    /// Starts `songswarm args…`; its stderr goes to the test's.
    pub fn start(args: &[&str]) -> Proc {
        Proc::spawn(args, false)
    }

    /// Starts `songswarm args…` with its stderr read by `err_line`.
    pub fn start_watching_stderr(args: &[&str]) -> Proc {
        Proc::spawn(args, true)
    }

    /// Starts `songswarm args…` under a shell's `ulimit -n` of `soft`
    /// descriptors (and `hard` as the hard limit).
    pub fn start_with_fd_limit(soft: u32, hard: u32, args: &[&str]) -> Proc {
        let mut cmd = Command::new("sh");
        let script = format!("ulimit -S -n {soft} && ulimit -H -n {hard} && exec \"$0\" \"$@\"");
        cmd.arg("-c")
            .arg(script)
            .arg(env!("CARGO_BIN_EXE_songswarm"));
        Proc::spawn_command(cmd, args, false)
    }

    fn spawn(args: &[&str], watch_stderr: bool) -> Proc {
        let cmd = Command::new(env!("CARGO_BIN_EXE_songswarm"));
        Proc::spawn_command(cmd, args, watch_stderr)
    }

    fn spawn_command(mut cmd: Command, args: &[&str], watch_stderr: bool) -> Proc {
        // These runs name their peers with --peer: no ring, no LAN discovery.
        let mut child = cmd
            .env("SONGSWARM_NO_RING", "1")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(if watch_stderr {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .expect("spawn songswarm");
        let lines = lines_of(child.stdout.take().unwrap());
        let errors = child.stderr.take().map(lines_of);
        Proc {
            child,
            lines,
            errors,
            what: args.join(" ").chars().take(300).collect(),
        }
    }

    /// The next stderr line, or a panic at the deadline / end of output.
    pub fn err_line(&mut self) -> String {
        let errors = self.errors.as_ref().expect("stderr is not watched");
        match errors.recv_timeout(DEADLINE) {
            Ok(l) => l,
            Err(e) => panic!("{}: no stderr line ({e})", self.what),
        }
    }

    /// The next stdout line, or a panic at the deadline / end of output.
    pub fn line(&mut self) -> String {
        match self.lines.recv_timeout(DEADLINE) {
            Ok(l) => l,
            Err(e) => panic!("{}: no output line ({e})", self.what),
        }
    }

    /// The next line as JSON.
    pub fn json(&mut self) -> serde_json::Value {
        let l = self.line();
        serde_json::from_str(&l).unwrap_or_else(|e| panic!("{}: not JSON: {l:?}: {e}", self.what))
    }

    /// Reads the `listening` JSON line and returns the address.
    pub fn listening(&mut self) -> String {
        let v = self.json();
        assert_eq!(v["event"], "listening", "{}: {v}", self.what);
        v["addr"].as_str().unwrap().to_string()
    }

    /// Waits for the process to exit; returns whether it succeeded.
    pub fn wait_success(&mut self) -> bool {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(Instant::now() < end, "{}: did not exit", self.what);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts a seeder of `manifests` in `data` on a free loopback port.
pub fn seed(manifests: &[&Path], data: &Path, extra: &[&str]) -> (Proc, String) {
    let mut args: Vec<String> = vec!["seed".into()];
    args.extend(manifests.iter().map(|m| m.display().to_string()));
    args.extend([
        "--data".into(),
        data.display().to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--json".into(),
    ]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut p = Proc::start(&refs);
    let addr = p.listening();
    (p, addr)
}

/// One single-file torrent in a fresh temp dir (`dir/src`, 32 KiB pieces),
/// served by one seeder.
pub struct Seeded {
    /// Holds everything; removed when dropped.
    pub dir: tempfile::TempDir,
    /// The file's bytes.
    pub data: Vec<u8>,
    /// Its manifest.
    pub manifest: PathBuf,
    /// The seeder.
    pub seeder: Proc,
    /// Where it listens.
    pub addr: String,
}

/// Writes `name` (`len` random bytes from `seed`) and serves it.
pub fn seeded(name: &str, len: usize, seed: u64) -> Seeded {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let (data, manifest) = make_torrent(&src, name, len, 32 * 1024, seed);
    let (seeder, addr) = self::seed(&[&manifest], &src, &[]);
    Seeded {
        dir,
        data,
        manifest,
        seeder,
        addr,
    }
}

/// Starts a leecher of `manifest` into `out`, dialling `peers`.
pub fn leech(manifest: &Path, out: &Path, peers: &[&str], extra: &[&str]) -> (Proc, String) {
    let mut args: Vec<String> = vec!["leech".into(), manifest.display().to_string()];
    args.extend([
        "--out".into(),
        out.display().to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--json".into(),
    ]);
    for p in peers {
        args.extend(["--peer".into(), p.to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut p = Proc::start(&refs);
    let addr = p.listening();
    (p, addr)
}

/// Waits for a leecher's `done` line and clean exit, then asserts that
/// `file` holds exactly `data`.
pub fn assert_finishes_with(leecher: &mut Proc, file: &Path, data: &[u8]) {
    let done = leecher.json();
    assert_eq!(done["event"], "done", "{}: {done}", leecher.what);
    assert!(leecher.wait_success(), "{}: exit status", leecher.what);
    let got = std::fs::read(file).unwrap();
    assert_eq!(got.len(), data.len(), "length of {}", file.display());
    assert!(got == data, "content of {} differs", file.display());
}

/// Polls `cond` every few milliseconds until it holds; panics at the deadline.
/// (Waiting on an observable event, not sleeping for a guessed time.)
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Bytes of a file actually allocated on disk (a download writes pieces at
/// their offsets, so the file is sparse until complete).
pub fn allocated_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| m.blocks() * 512)
        .unwrap_or(0)
}
