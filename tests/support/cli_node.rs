//! A bare ring node (`songswarm node`) as a child process, killed when
//! dropped, and waiting for a ring of them to form: the CLI tests' ring.
//!
//! Shared through `#[path]`, so not every item is used by every includer.
#![allow(dead_code)]

use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub struct Node(pub Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `songswarm node --listen LISTEN [--bootstrap B]`.
pub fn start_node(listen: &str, bootstrap: Option<&str>) -> Node {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_songswarm"));
    cmd.args(["node", "--listen", listen]);
    if let Some(b) = bootstrap {
        cmd.args(["--bootstrap", b]);
    }
    Node(cmd.spawn().expect("spawn node"))
}

/// A free loopback port (released again; the node binds it right after).
pub fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

/// Runs `dht ring --json` against `node` until `ok` holds for its output,
/// and returns that output; fails after a minute.
pub fn wait_ring_state(node: &str, ok: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = Command::new(env!("CARGO_BIN_EXE_songswarm"))
            .args(["dht", "ring", "--node", node, "--json"])
            .output()
            .expect("run songswarm");
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
            if ok(&v) {
                return v;
            }
        }
        assert!(Instant::now() < deadline, "the ring never settled: {out:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until every node of `nodes` sees all the others as successors.
pub fn wait_ring(nodes: &[String]) {
    let others = nodes.len() - 1;
    for node in nodes {
        wait_ring_state(node, |v| {
            v["successors"]
                .as_array()
                .is_some_and(|s| s.len() == others)
        });
    }
}
