//! One blocking `GET` for tests that drive songswarm processes from plain
//! threads: the whole reply, split into head and body.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// `GET path` from `host` (`IP:PORT`), read until the server closes or
/// `timeout` passes between reads: (head, body).
pub fn get(host: &str, path: &str, timeout: Duration) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    let split = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&reply[..split]).to_string();
    (head, reply[split + 4..].to_vec())
}
