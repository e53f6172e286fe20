//! The stream bench's HTTP client: a song `GET` from a byte, timed to its
//! first body byte, then read the way a player reads (at the song's
//! real-time rate, a buffer ahead), every body byte checked against the
//! song. Plain blocking sockets: the bench measures servers, not a client
//! stack.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Audio a reading client keeps ahead of its play position.
pub const BUFFER_SECS: f64 = 10.0;
/// Audio a stalled client waits for before it plays on.
pub const RESUME_SECS: f64 = 1.0;
/// Only there to turn a hang into a failure.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// `http://HOST/PATH` as (HOST, /PATH).
pub fn split_url(url: &str) -> (&str, &str) {
    let rest = url.trim_start_matches("http://");
    let slash = rest.find('/').unwrap_or(rest.len());
    rest.split_at(slash)
}

/// One plain HTTP/1.1 exchange (`Connection: close`): (status, head, body).
pub fn exchange(host: &str, request: &str, body: &[u8]) -> std::io::Result<(u16, String, Vec<u8>)> {
    let mut s = TcpStream::connect(host)?;
    s.set_read_timeout(Some(DEADLINE))?;
    let head = format!("{request}\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply)?;
    let end = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of head"))?;
    let head = String::from_utf8_lossy(&reply[..end]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))?;
    Ok((status, head, reply[end + 4..].to_vec()))
}

/// A plain GET's body as text; panics unless it is a 200.
pub fn get_text(host: &str, path: &str) -> String {
    let (status, head, body) = exchange(host, &format!("GET {path} HTTP/1.1"), b"")
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(status, 200, "{path}: {head}");
    String::from_utf8(body).expect("UTF-8")
}

/// A song GET being read; every body byte is checked against the song.
pub struct Get<'a> {
    stream: TcpStream,
    /// The whole song, to check the body against.
    song: &'a [u8],
    /// Where the body starts in the song.
    from: u64,
    /// Body bytes in (and checked) so far.
    received: u64,
    /// The server ended the body before the song's end.
    pub cut: bool,
}

impl<'a> Get<'a> {
    /// Sends `GET` from byte `from` and waits for the first body byte:
    /// (time to it, the body). Err when the server answers without a body
    /// (a status other than 200 or 206: the caller may try again).
    pub fn open(url: &str, from: u64, song: &'a [u8]) -> Result<(Duration, Get<'a>), String> {
        let (host, path) = split_url(url);
        let mut stream = TcpStream::connect(host).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        let sent = Instant::now();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nRange: bytes={from}-\r\n\r\n"
        )
        .map_err(|e| e.to_string())?;
        let mut head = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut get = Get {
            stream,
            song,
            from,
            received: 0,
            cut: false,
        };
        loop {
            let n = get.stream.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!(
                    "closed before the body: {:?}",
                    String::from_utf8_lossy(&head)
                ));
            }
            head.extend_from_slice(&buf[..n]);
            if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                let status = String::from_utf8_lossy(&head[..end]).to_string();
                if !(status.starts_with("HTTP/1.1 206") || status.starts_with("HTTP/1.1 200")) {
                    return Err(status);
                }
                assert!(
                    from == 0 || status.starts_with("HTTP/1.1 206"),
                    "a range request answered whole: {status}"
                );
                let body = head[end + 4..].to_vec();
                if !body.is_empty() {
                    get.check(&body);
                    return Ok((sent.elapsed(), get));
                }
                break;
            }
        }
        let n = get.stream.read(&mut buf).map_err(|e| e.to_string())?;
        assert!(n > 0, "the body ended before its first byte");
        let elapsed = sent.elapsed();
        get.check(&buf[..n]);
        Ok((elapsed, get))
    }

    /// Checks `bytes`, the next of the body, against the song.
    fn check(&mut self, bytes: &[u8]) {
        let at = (self.from + self.received) as usize;
        let want = &self.song[at..at + bytes.len()];
        assert!(
            want == bytes,
            "wrong bytes in the body at song byte {at} ({} bytes)",
            bytes.len()
        );
        self.received += bytes.len() as u64;
    }

    /// Reads at `byte_rate` for `secs` of play from the first byte: (stalls,
    /// time stalled). A stall: the play position reached the last byte in;
    /// it ends once [`RESUME_SECS`] of audio is in.
    pub fn play(&mut self, byte_rate: f64, secs: f64) -> (u32, Duration) {
        let start = Instant::now();
        let left = self.song.len() as u64 - self.from;
        let target = ((secs * byte_rate) as u64).min(left);
        let (mut played, mut last) = (0u64, start);
        let (mut stalls, mut stalled, mut since) = (0u32, Duration::ZERO, None::<Instant>);
        let mut buf = vec![0u8; 64 * 1024];
        self.stream
            .set_read_timeout(Some(Duration::from_millis(5)))
            .expect("timeout");
        while played < target {
            let now = Instant::now();
            if since.is_some_and(|t| now - t > DEADLINE) {
                println!("  (gave up: no audio for {} s)", DEADLINE.as_secs());
                break;
            }
            match since {
                None => {
                    played += ((now - last).as_secs_f64() * byte_rate) as u64;
                    if played >= self.received && played < target {
                        played = self.received;
                        stalls += 1;
                        since = Some(now);
                    }
                }
                Some(t)
                    if self.received >= (played + (RESUME_SECS * byte_rate) as u64).min(left) =>
                {
                    stalled += now - t;
                    since = None;
                }
                Some(_) => {}
            }
            last = now;
            if self.received < left && self.received < played + (BUFFER_SECS * byte_rate) as u64 {
                match self.stream.read(&mut buf) {
                    Ok(0) => {
                        self.cut = true;
                        break;
                    }
                    Ok(n) => self.check(&buf[..n]),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(e) => panic!("reading the song: {e}"),
                }
            } else {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        if let Some(t) = since {
            stalled += t.elapsed();
        }
        (stalls, stalled)
    }

    /// Body bytes in and checked so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Ends the request (the client goes away).
    pub fn close(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}
