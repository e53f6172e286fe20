//! A peer that lies while a player streams: `songswarm play` with a
//! corrupting peer and a slow honest seeder. The player's GET gets exactly
//! the song, never a corrupt byte; the liar is dropped mid-stream and never
//! dialled again; `/metrics` counts the pieces that failed their check.

use std::sync::atomic::Ordering;

#[path = "support/blocking_http.rs"]
mod blocking_http;
#[path = "support/e2e_harness.rs"]
mod e2e_harness;
#[path = "support/liar.rs"]
mod liar;
#[path = "support/prometheus.rs"]
mod prometheus;

use e2e_harness::{make_torrent, seed, wait_until, Proc, DEADLINE};
use liar::corrupting_peer;
use prometheus::{parse_prometheus, sample};
use songswarm::manifest::Manifest;

/// `GET path` from `host`: (head, body).
fn get(host: &str, path: &str) -> (String, Vec<u8>) {
    blocking_http::get(host, path, DEADLINE)
}

#[test]
fn a_lying_peer_during_a_stream_is_dropped_and_the_player_gets_the_song() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let (data, manifest_path) = make_torrent(&src, "track.ogg", 2_000_000, 64 * 1024, 9);
    let manifest = Manifest::load(&manifest_path).unwrap();
    let (liar_addr, liar) = corrupting_peer(&manifest, data.clone());
    // The honest seeder is slow (4 s for the song), so the liar is asked.
    let (_honest, honest) = seed(&[&manifest_path], &src, &["--max-upload-rate", "500000"]);
    let out = dir.path().join("out").display().to_string();
    let m = manifest_path.display().to_string();
    let mut player = Proc::start(&[
        "play",
        &m,
        "--out",
        &out,
        "--peer",
        &liar_addr,
        "--peer",
        &honest,
        "--listen",
        "127.0.0.1:0",
        "--http",
        "0",
        "--json",
    ]);
    let playing = loop {
        let v = player.json();
        if v["event"] == "playing" {
            break v;
        }
    };
    let url = playing["song_url"].as_str().unwrap();
    let (host, path) = url.trim_start_matches("http://").split_once('/').unwrap();
    let (head, body) = get(host, &format!("/{path}"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body.len(), data.len());
    assert!(body == data, "the player got bytes that are not the song's");
    assert!(
        liar.served.load(Ordering::SeqCst) > 0,
        "the liar was never asked"
    );
    wait_until("the liar to be dropped", || {
        liar.closed.load(Ordering::SeqCst) == 1
    });
    assert_eq!(liar.connections.load(Ordering::SeqCst), 1, "dialled again");
    let (_, metrics) = get(host, "/metrics");
    let samples = parse_prometheus(&String::from_utf8(metrics).unwrap());
    let label = format!("{{info_hash=\"{}\"}}", manifest.info_hash.to_hex());
    let failed = sample(&samples, &format!("songswarm_pieces_failed_total{label}"));
    assert!(
        failed.is_some_and(|f| f >= 1.0),
        "failed pieces: {failed:?}"
    );
}
