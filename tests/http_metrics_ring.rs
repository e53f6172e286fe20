//! `/metrics` of real processes in a ring on loopback: a bare node, a
//! seeder and a leecher, each with `--http`. The leecher's scrape counts
//! the song's bytes and pieces, the ring lookups it made and their hops,
//! and the quorum read that found the swarm; the seeder's counts its upload
//! and the quorum write of its announce.

use std::process::Command;
use std::time::{Duration, Instant};

#[path = "support/procs.rs"]
mod procs;
#[path = "support/prometheus.rs"]
mod prometheus;

use procs::{run_ok, write_random, Proc};
use prometheus::{parse_prometheus, sample};

const DEADLINE: Duration = Duration::from_secs(60);
const LEN: u64 = 1_000_000;
const PIECE: u64 = 32 * 1024;

fn songswarm(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_songswarm"));
    cmd.env_remove("SONGSWARM_NO_RING").args(args);
    cmd
}

/// (peer address, HTTP address) from a `listening` line.
fn listening(p: &mut Proc) -> (String, String) {
    let (_, v) = p.expect_event("listening", DEADLINE);
    let field = |k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("{k} in {v}"))
            .to_string()
    };
    (field("addr"), field("http"))
}

/// Scrapes `http` until `ready` holds for its samples; returns them.
fn scrape_until(http: &str, ready: impl Fn(&[(String, f64)]) -> bool) -> Vec<(String, f64)> {
    use std::io::{Read, Write};
    let end = Instant::now() + DEADLINE;
    loop {
        let mut s = std::net::TcpStream::connect(http).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        let (head, body) = reply.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let samples = parse_prometheus(body);
        if ready(&samples) {
            return samples;
        }
        assert!(Instant::now() < end, "metrics never got there:\n{body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn metrics_of_a_ring_a_seeder_and_a_leecher() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write_random(&src.join("song.flac"), LEN, 5);
    let manifest = dir.path().join("song.torrent");
    let piece = PIECE.to_string();
    let (song, m) = (src.join("song.flac"), manifest.display().to_string());
    run_ok(
        "create",
        songswarm(&[
            "create",
            &song.display().to_string(),
            "--out",
            &m,
            "--piece-length",
            &piece,
        ]),
    );

    let mut node = Proc::spawn(
        "node",
        songswarm(&["node", "--listen", "127.0.0.1:0", "--http", "0", "--json"]),
    );
    let (ring, node_http) = listening(&mut node);
    let peer_args = |cmd: &str, dir: &str, path: &str| {
        songswarm(&[
            cmd,
            &m,
            dir,
            path,
            "--listen",
            "127.0.0.1:0",
            "--bootstrap",
            &ring,
            "--no-discovery",
            "--http",
            "0",
            "--json",
        ])
    };
    let mut seeder = Proc::spawn(
        "seed",
        peer_args("seed", "--data", &src.display().to_string()),
    );
    let (_, seed_http) = listening(&mut seeder);
    // The seeder's announce is in the ring before the leecher looks.
    let write_ok = "songswarm_ring_quorum_ops_total{op=\"write\",result=\"ok\"}";
    let seeded = scrape_until(&seed_http, |s| {
        sample(s, write_ok).is_some_and(|v| v >= 1.0)
    });

    let out = dir.path().join("out").display().to_string();
    let mut leech = peer_args("leech", "--out", &out);
    leech.arg("--seed-after");
    let mut leecher = Proc::spawn("leech", leech);
    let (_, leech_http) = listening(&mut leecher);
    let (_, done) = leecher.expect_event("done", DEADLINE);
    let hash = done["info_hash"].as_str().unwrap().to_string();
    let label = format!("{{info_hash=\"{hash}\"}}");
    let read_ok = "songswarm_ring_quorum_ops_total{op=\"read\",result=\"ok\"}";
    let pieces = LEN.div_ceil(PIECE) as f64;
    let got = scrape_until(&leech_http, |s| {
        sample(s, read_ok).is_some_and(|v| v >= 1.0)
            && sample(s, &format!("songswarm_pieces_have{label}")) == Some(pieces)
    });
    let value =
        |s: &[(String, f64)], name: &str| sample(s, name).unwrap_or_else(|| panic!("no {name}"));
    assert_eq!(
        value(&got, &format!("songswarm_downloaded_bytes_total{label}")),
        LEN as f64
    );
    assert_eq!(
        value(&got, &format!("songswarm_pieces_verified_total{label}")),
        pieces
    );
    assert_eq!(
        value(&got, &format!("songswarm_pieces_failed_total{label}")),
        0.0
    );
    // No stream ran: nothing was late, nothing asked of a second peer.
    assert_eq!(
        value(&got, &format!("songswarm_stream_late_pieces_total{label}")),
        0.0
    );
    assert_eq!(
        value(
            &got,
            &format!("songswarm_stream_rescued_blocks_total{label}")
        ),
        0.0
    );
    let lookups = value(&got, "songswarm_ring_lookups_total");
    let hops = value(&got, "songswarm_ring_lookup_hops_total");
    assert!(
        lookups >= 1.0,
        "the leecher joined and looked up: {lookups}"
    );
    assert!(
        hops >= lookups,
        "each lookup asks at least once: {hops} < {lookups}"
    );
    // The seeder sent the song, and its announce was written by quorum.
    let up = format!("songswarm_uploaded_bytes_total{label}");
    let sent = scrape_until(&seed_http, |s| sample(s, &up) == Some(LEN as f64));
    assert_eq!(
        value(&sent, &format!("songswarm_pieces_verified_total{label}")),
        0.0
    );
    assert!(value(&seeded, write_ok) >= 1.0);
    // A bare node has ring counters and no torrent.
    let bare = scrape_until(&node_http, |_| true);
    assert!(sample(&bare, "songswarm_ring_lookups_total").is_some());
    assert!(!bare.iter().any(|(n, _)| n.contains("info_hash")));
}
