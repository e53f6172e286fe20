//! The floor of the transfer bench: the CPU any verifying client must
//! spend on the data (read, loopback TCP, SHA-1, page-cache write),
//! measured in the bench's own process, and the throughput it allows.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use songswarm::piece_hash::{digests_of, LANES};

use crate::measure::cpu_seconds;

/// CPU seconds of the work any verifying client must do for `data`,
/// measured in this process on this machine: one read of it (the seeder),
/// its trip through loopback TCP in 1 MiB writes and reads (both ends), the
/// SHA-1 of every byte, 1 MiB pieces hashed four at a time (the fastest way
/// we know), and one write into a new file beside it (the leecher). Each is
/// the least of five passes, taken after the transfers:
/// noise only adds to a floor, and the first write into memory the machine
/// has not used for a while costs twice as much (0.74 against 0.31 s per GiB
/// here), which a median of three still caught.
pub struct Floor {
    /// Reading the data once.
    pub read: f64,
    /// Its trip through loopback TCP, both ends.
    pub tcp: f64,
    /// SHA-1 of every byte.
    pub sha1: f64,
    /// Writing it into a new file.
    pub write: f64,
}

impl Floor {
    pub fn measure(data: &Path, scratch: &Path) -> Floor {
        let me = std::process::id();
        let cpu = || cpu_seconds(me).expect("own /proc/<pid>/stat");
        let mut buf = vec![0u8; 1 << 20];
        let mut pass = |f: &mut dyn FnMut(&mut [u8])| {
            let t0 = cpu();
            f(&mut buf);
            cpu() - t0
        };
        let (mut read, mut tcp, mut sha1, mut write) = (vec![], vec![], vec![], vec![]);
        for _ in 0..5 {
            read.push(pass(&mut |buf| {
                let mut file = File::open(data).expect("open bench data");
                while file.read(buf).expect("read bench data") > 0 {}
            }));
            let len = std::fs::metadata(data).expect("bench data").len();
            tcp.push(pass(&mut |buf| loopback_copy(buf, len)));
            sha1.push(pass(&mut |buf| {
                let pieces = len.div_ceil(buf.len() as u64);
                let group = [&*buf; LANES];
                for _ in 0..pieces.div_ceil(LANES as u64) {
                    std::hint::black_box(digests_of(&group));
                }
            }));
            write.push(pass(&mut |buf| {
                let mut file = File::create(scratch).expect("create scratch file");
                for _ in 0..len.div_ceil(buf.len() as u64) {
                    file.write_all(buf).expect("write scratch file");
                }
            }));
            std::fs::remove_file(scratch).expect("remove scratch file");
        }
        let least = |xs: &[f64]| xs.iter().copied().fold(f64::INFINITY, f64::min);
        Floor {
            read: least(&read),
            tcp: least(&tcp),
            sha1: least(&sha1),
            write: least(&write),
        }
    }

    /// The highest throughput, MB/s, for `bytes` when every core does this
    /// work and nothing else: no peer-wire framing, no scheduling, no
    /// waiting.
    pub fn ceiling(&self, bytes: u64) -> f64 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        bytes as f64 / ((self.read + self.tcp + self.sha1 + self.write) / cores) / 1e6
    }
}

/// Sends `len` bytes of `buf` (repeated) from one thread to another over a
/// loopback TCP connection.
fn loopback_copy(buf: &mut [u8], len: u64) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let chunk = buf.to_vec();
    let sender = std::thread::spawn(move || {
        let mut out = std::net::TcpStream::connect(addr).expect("connect loopback");
        for _ in 0..len.div_ceil(chunk.len() as u64) {
            out.write_all(&chunk).expect("send over loopback");
        }
    });
    let (mut input, _) = listener.accept().expect("accept loopback");
    while input.read(buf).expect("receive over loopback") > 0 {}
    sender.join().expect("sender thread");
}
