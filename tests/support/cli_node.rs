//! A bare ring node (`songswarm node`) as a child process, killed when
//! dropped: the CLI tests' ring.

use std::process::{Child, Command};

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
