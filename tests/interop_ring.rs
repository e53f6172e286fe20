//! Interoperability with the ring in the loop: our seeder announces a song in
//! the Chord ring; a libtorrent leecher, given the peer address the ring
//! lists, downloads it. libtorrent knows nothing of the ring; the point is
//! that a peer found through the ring is an ordinary BitTorrent peer.

#[path = "support/content.rs"]
mod content;
#[path = "support/procs.rs"]
mod procs;

use std::time::{Duration, Instant};

use content::{assert_same_content, song, songswarm, with_manifest, Maker, DEADLINE};
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
    let (tmp, src, content, manifest) = with_manifest(song, Maker::Songswarm);
    let dst = tmp.path().join("dst");

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

/// Two processes that know nothing of each other but the LAN: the seeder
/// founds a ring, the leecher finds it by multicast on the loopback
/// interface, joins it, finds the seeder in it and downloads.
#[test]
fn a_leecher_finds_the_ring_by_multicast() {
    if let Err(reason) = loopback_multicast_works() {
        eprintln!("skipped: no multicast on the loopback interface here: {reason}");
        return;
    }
    let (tmp, src, content, manifest) = with_manifest(song, Maker::Songswarm);
    let dst = tmp.path().join("dst");
    // A group of this test run's own, so that no other run answers.
    let group = format!("239.255.77.80:{}", 40000 + std::process::id() % 20000);

    let mut cmd = with_ring();
    cmd.arg("seed").arg(&manifest).arg("--data").arg(&src);
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--discovery-group",
        &group,
        "--json",
    ]);
    let mut seed = Proc::spawn("songswarm seed", cmd);
    seed.expect_event("listening", DEADLINE);

    let mut cmd = with_ring();
    cmd.arg("leech").arg(&manifest).arg("--out").arg(&dst);
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--discovery-group",
        &group,
        "--json",
    ]);
    let mut leech = Proc::spawn("songswarm leech", cmd);
    let (_, done) = leech.expect_event("done", DEADLINE);
    assert_eq!(done["peers"].as_u64(), Some(1), "{done}");
    assert_same_content(&content, &src, &dst);
}

/// Whether a datagram sent to a multicast group on 127.0.0.1 comes back.
fn loopback_multicast_works() -> Result<(), String> {
    use std::net::{Ipv4Addr, UdpSocket};
    let group = Ipv4Addr::new(239, 255, 77, 81);
    let rx = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(|e| e.to_string())?;
    rx.join_multicast_v4(&group, &Ipv4Addr::LOCALHOST)
        .map_err(|e| e.to_string())?;
    rx.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let port = rx.local_addr().map_err(|e| e.to_string())?.port();
    let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
    tx.set_multicast_loop_v4(true).map_err(|e| e.to_string())?;
    tx.send_to(b"probe", (group, port))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 8];
    rx.recv_from(&mut buf)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
