//! The `node` and `dht` commands, as a user runs them.

use std::process::{Command, Output};

#[path = "support/cli_node.rs"]
mod cli_node;
use cli_node::{free_addr, start_node, wait_ring_state};

const BIN: &str = env!("CARGO_BIN_EXE_songswarm");

fn dht(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("dht")
        .args(args)
        .output()
        .expect("run songswarm")
}

#[test]
fn node_and_dht_commands_work_together() {
    let a = free_addr();
    let b = free_addr();
    let mut first = start_node(&a, None);
    let _second = start_node(&b, Some(&a));
    let ring = wait_ring_state(&a, |v| {
        v["successors"].as_array().is_some_and(|s| s.len() == 1)
    });
    assert_eq!(ring["successors"][0], b.as_str());
    assert_eq!(ring["predecessor"], b.as_str());

    let hash = "11f6ad8ec52a2984abaafd7c3b516503785c2072";
    let out = dht(&[
        "announce",
        hash,
        "127.0.0.1:6881",
        "--node",
        &b,
        "--seeder",
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    // Announces are bound to their source: from 127.0.0.1, another
    // address is refused, with the reason, and nothing is stored.
    {
        let out = dht(&["announce", hash, "10.0.0.5:6881", "--node", &b]);
        assert!(!out.status.success(), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("refused: 10.0.0.5:6881 is not at 127.0.0.1"),
            "{err}"
        );
    }
    let out = dht(&["peers", hash, "--node", &a, "--json"]);
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["peers"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["peers"][0]["peer"], "127.0.0.1:6881");
    assert_eq!(v["peers"][0]["role"], "seeder");

    let out = dht(&["lookup", hash, "--node", &a, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["replicas"].as_array().unwrap().len(), 2);

    let out = dht(&["peers", "not-a-hash", "--node", &a]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("40 hexadecimal"));

    // SIGTERM: a clean leave, exit status 0.
    let pid = first.0.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let status = first.0.wait().expect("wait");
    assert!(status.success(), "{status:?}");
}
