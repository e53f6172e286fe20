//! A small HTTP/1.1 client on a raw socket, for tests that must see exactly
//! what a server sends (status, headers, every body byte) and must be able
//! to stop reading or hang up mid-body.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Every wait here ends in a failure after this long.
pub const HTTP_DEADLINE: Duration = Duration::from_secs(60);

/// A whole answer.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: HashMap<String, String>,
    /// The body as received.
    pub body: Vec<u8>,
}

impl Reply {
    /// A header's value, or "" when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}

/// Sends `METHOD target` with `headers` (and `Connection: close`).
pub async fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.expect("send");
    stream
}

/// Reads the status line and headers; returns them with the body bytes
/// that came along.
pub async fn read_head(stream: &mut TcpStream) -> (u16, HashMap<String, String>, Vec<u8>) {
    let mut buf = Vec::new();
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(HTTP_DEADLINE, stream.read(&mut chunk))
            .await
            .expect("no answer in time")
            .expect("read");
        assert!(n > 0, "connection closed before the headers ended");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, buf[end + 4..].to_vec())
}

/// Reads exactly `n` more bytes (or fails at the deadline).
pub async fn read_exactly(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(HTTP_DEADLINE, stream.read_exact(&mut buf))
        .await
        .expect("body bytes did not come in time")
        .expect("read body");
    buf
}

/// One request, the whole answer (the body is read until the server closes).
pub async fn fetch(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut stream = send(addr, method, target, headers).await;
    let (status, headers, mut body) = read_head(&mut stream).await;
    tokio::time::timeout(HTTP_DEADLINE, stream.read_to_end(&mut body))
        .await
        .expect("body did not end in time")
        .expect("read body");
    Reply {
        status,
        headers,
        body,
    }
}

/// `GET target`.
pub async fn get(addr: SocketAddr, target: &str) -> Reply {
    fetch(addr, "GET", target, &[]).await
}

/// `GET target` with one `Range`.
pub async fn get_range(addr: SocketAddr, target: &str, range: &str) -> Reply {
    fetch(addr, "GET", target, &[("Range", range)]).await
}
