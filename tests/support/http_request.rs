//! One blocking HTTP/1.1 request of any method, with headers and a body,
//! for tests that drive a songswarm process's JSON API: (status, body).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// `METHOD path` to `host` with `headers` and `body`; the status code and
/// the body as text.
pub fn request(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(host).expect("connect to the HTTP server");
    s.set_read_timeout(Some(Duration::from_secs(90))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    let text = String::from_utf8_lossy(&reply).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("a whole reply");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    // Small JSON answers come whole; a chunked one is unchunked here.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        unchunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A JSON request as the web player sends it.
pub fn json(host: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    request(
        host,
        method,
        path,
        &[("Content-Type", "application/json")],
        body,
    )
}

/// `GET path`, its JSON.
pub fn get_json(host: &str, path: &str) -> (u16, serde_json::Value) {
    let (status, body) = request(host, "GET", path, &[], "");
    let v = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
    (status, v)
}
