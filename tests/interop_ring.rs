//! Interoperability with the ring in the loop: our seeder announces a song in
//! the Chord ring; a libtorrent leecher, given the peer address the ring
//! lists, downloads it. libtorrent knows nothing of the ring; the point is
//! that a peer found through the ring is an ordinary BitTorrent peer.

#[path = "support/content.rs"]
mod content;
#[path = "support/procs.rs"]
mod procs;

use std::time::{Duration, Instant};

use content::{assert_same_content, make_manifest, song, songswarm, tempdir, Maker, DEADLINE};
use procs::{lt_peer, require_libtorrent, Proc};
use serde_json::Value;

/// `songswarm ARGS` with the ring on (the shared builder turns it off).
fn with_ring() -> std::process::Command {
    let mut cmd = songswarm();
    cmd.env_remove("SONGSWARM_NO_RING");
    cmd
}

/// The peers the ring lists for `info_hash`, asked through `node`.
fn ring_peers(node: &str, info_hash: &str) -> Vec<String> {
    let out = with_ring()
        .args(["dht", "peers", info_hash, "--node", node, "--json"])
        .output()
        .expect("run songswarm dht peers");
    if !out.status.success() {
        return Vec::new(); // the ring is still forming
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["peers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["peer"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn libtorrent_downloads_from_a_seeder_found_in_the_ring() {
    require_libtorrent();
    let tmp = tempdir();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    let content = song(&src);
    let manifest = tmp.path().join("song.torrent");
    make_manifest(Maker::Songswarm, &content, &manifest);

    // The seeder founds a ring; a bare node joins it, so that an announce
    // can reach its write quorum of two.
    let mut cmd = with_ring();
    cmd.arg("seed").arg(&manifest).arg("--data").arg(&src);
    cmd.args(["--listen", "127.0.0.1:0", "--no-discovery", "--json"]);
    let mut seed = Proc::spawn("songswarm seed", cmd);
    let (_, ready) = seed.expect_event("listening", DEADLINE);
    let seed_addr = ready["addr"].as_str().expect("addr").to_string();
    let info_hash = ready["info_hashes"][0].as_str().expect("hash").to_string();
    let mut cmd = with_ring();
    cmd.args(["node", "--listen", "127.0.0.1:0", "--bootstrap", &seed_addr]);
    let _node = Proc::spawn("songswarm node", cmd);

    // Wait (bounded) until the ring lists the seeder.
    let start = Instant::now();
    let listed = loop {
        let peers = ring_peers(&seed_addr, &info_hash);
        if peers.contains(&seed_addr) {
            break peers;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the ring never listed the seeder {seed_addr}: {peers:?}\n{}",
            seed.stderr_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    // libtorrent is handed what the ring listed, and nothing else.
    let mut cmd = lt_peer("leech");
    cmd.arg(&manifest).arg("--out").arg(&dst);
    for peer in &listed {
        cmd.args(["--peer", peer]);
    }
    cmd.args(["--timeout", "60"]);
    let mut leech = Proc::spawn("lt leech", cmd);
    leech.expect_event("done", DEADLINE);
    assert_same_content(&content, &src, &dst);
}
