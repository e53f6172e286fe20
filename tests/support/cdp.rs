//! Headless Chromium driven over the DevTools protocol: start the browser
//! on a free port, attach to its page over a websocket, evaluate scripts,
//! send keys. Every wait ends in a failure at a deadline.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// How long any one step may take before the test fails.
pub const CDP_DEADLINE: Duration = Duration::from_secs(60);

/// A headless Chromium with one page attached; killed when dropped.
pub struct Browser {
    /// The browser process.
    child: Process,
    /// The page's DevTools socket.
    ws: WebSocket<TcpStream>,
    /// The next command id.
    next_id: u64,
    /// Holds the browser's profile; removed when dropped.
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Asked to close, the browser ends its own helper processes; killed,
        // it would leave them to whoever reaps orphans.
        let close = json!({"id": 0, "method": "Browser.close"});
        let _ = self.ws.send(Message::Text(close.to_string().into()));
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The browser process, killed if it is still running when dropped (after
/// `Browser`'s own drop, or when starting it fails half-way).
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Browser {
    /// Starts `chromium` headless, with media allowed to play without a
    /// click, and attaches to its first page.
    pub fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox", // tests run as root in a container
                "--disable-gpu",
                "--no-first-run",
                "--mute-audio",
                "--disable-crash-reporter",
                "--disable-breakpad",
                "--autoplay-policy=no-user-gesture-required",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(Process)
            .expect("start chromium");
        let port = devtools_port(profile.path());
        let ws_url = page_socket(port);
        let socket = TcpStream::connect(("127.0.0.1", port)).expect("DevTools socket");
        socket.set_read_timeout(Some(CDP_DEADLINE)).unwrap();
        let (ws, _) = tungstenite::client(ws_url.as_str(), socket).expect("DevTools websocket");
        let mut browser = Browser {
            child,
            ws,
            next_id: 1,
            _profile: profile,
        };
        browser.call("Page.enable", json!({}));
        browser.call("Runtime.enable", json!({}));
        browser
    }

    /// Sends one command and returns its result (events in between are
    /// skipped); fails on a protocol error.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"id": id, "method": method, "params": params});
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .expect("send to DevTools");
        loop {
            let text = match self.ws.read().expect("read from DevTools") {
                Message::Text(t) => t.to_string(),
                Message::Close(_) => panic!("DevTools closed the socket"),
                _ => continue,
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] != json!(id) {
                continue;
            }
            if !v["error"].is_null() {
                panic!("{method}: {}", v["error"]);
            }
            return v["result"].clone();
        }
    }

    /// Evaluates `expr` in the page (awaiting a promise) and returns its
    /// value; fails on an exception.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "awaitPromise": true, "returnByValue": true}),
        );
        if !r["exceptionDetails"].is_null() {
            panic!("{expr}: {}", r["exceptionDetails"]);
        }
        r["result"]["value"].clone()
    }

    /// Opens `url` and waits until its document has loaded.
    pub fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        self.wait_for("the page to load", "document.readyState === 'complete'");
    }

    /// Evaluates `expr` every 50 ms until it is true; fails at the deadline
    /// with the value of `self.diagnose` in the message.
    pub fn wait_for(&mut self, what: &str, expr: &str) {
        let end = Instant::now() + CDP_DEADLINE;
        while self.eval(expr) != json!(true) {
            if Instant::now() > end {
                let state = self.eval(DIAGNOSE);
                panic!("timed out waiting for {what} ({expr}); page state: {state}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Presses and releases a key (`key` as in KeyboardEvent.key).
    pub fn press(&mut self, key: &str, code: &str, key_code: u32, shift: bool) {
        let modifiers = if shift { 8 } else { 0 };
        for kind in ["keyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": kind, "key": key, "code": code,
                       "windowsVirtualKeyCode": key_code, "modifiers": modifiers}),
            );
        }
    }

    /// Makes the page a phone screen `width` CSS pixels wide.
    pub fn phone(&mut self, width: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": 740, "deviceScaleFactor": 1, "mobile": true}),
        );
    }

    /// A PNG of the page as it looks now.
    pub fn screenshot(&mut self, to: &Path) {
        use base64_png::decode;
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        std::fs::write(to, decode(r["data"].as_str().unwrap())).unwrap();
    }
}

/// What a failed wait prints about the page's audio element.
const DIAGNOSE: &str = "(() => { const a = document.querySelector('audio'); \
    return a ? {src: a.src, paused: a.paused, t: a.currentTime, ready: a.readyState, \
    net: a.networkState, err: a.error && a.error.message, log: window.testLog} : 'no audio'; })()";

/// The port Chromium wrote to `DevToolsActivePort` in its profile.
fn devtools_port(profile: &Path) -> u16 {
    let file = profile.join("DevToolsActivePort");
    let end = Instant::now() + CDP_DEADLINE;
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            if let Some(port) = text.lines().next().and_then(|l| l.parse().ok()) {
                return port;
            }
        }
        assert!(Instant::now() < end, "chromium wrote no DevToolsActivePort");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The DevTools websocket URL of the browser's first page.
fn page_socket(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("DevTools HTTP");
    s.set_read_timeout(Some(CDP_DEADLINE)).unwrap();
    write!(
        s,
        "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    // Read by Content-Length: the DevTools server keeps the socket open.
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    let body = loop {
        let n = s.read(&mut buf).expect("DevTools HTTP answer");
        assert!(n > 0, "DevTools closed before answering");
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply).to_string();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .expect("Content-Length");
        if body.len() >= length {
            break body[..length].to_string();
        }
    };
    let targets: Value = serde_json::from_str(&body).expect("targets JSON");
    targets
        .as_array()
        .and_then(|all| all.iter().find(|t| t["type"] == "page"))
        .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        .expect("a page target")
        .to_string()
}

/// Base64 decoding for screenshots (the standard alphabet, padded).
mod base64_png {
    pub fn decode(text: &str) -> Vec<u8> {
        let value = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            _ => 63,
        };
        let clean: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
        let mut out = Vec::with_capacity(clean.len() * 3 / 4);
        for chunk in clean.chunks(4) {
            let mut acc = 0u32;
            for (i, &c) in chunk.iter().enumerate() {
                acc |= u32::from(value(c)) << (18 - 6 * i);
            }
            let bytes = acc.to_be_bytes();
            out.extend_from_slice(&bytes[1..chunk.len()]);
        }
        out
    }
}
