//! `songswarm play OWNER/NAME` with real processes on loopback: a playlist
//! made through one node plays in order from another process, which finds
//! each track in the ring, hands each to the player in turn, and starts
//! the next track's download while the current one plays (its first
//! piece is on disk, verified, when its turn begins).

#[path = "support/e2e_harness.rs"]
mod e2e_harness;
#[path = "support/procs.rs"]
mod procs;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use e2e_harness::{make_torrent, DEADLINE};
use songswarm::manifest::Manifest;

fn in_ring(args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_songswarm"));
    cmd.env_remove("SONGSWARM_NO_RING").args(args);
    cmd
}

#[test]
fn a_playlist_plays_in_order_with_the_next_track_prefetched() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let songs: Vec<(Vec<u8>, String, String)> = [("one.mp3", 1), ("two.mp3", 2), ("three.mp3", 3)]
        .iter()
        .map(|(name, seed)| {
            let (data, manifest) = make_torrent(&src, name, 400_000, 32 * 1024, *seed);
            let hash = Manifest::load(&manifest).unwrap().info_hash.to_hex();
            (data, manifest.display().to_string(), hash)
        })
        .collect();
    let mut node = procs::Proc::spawn(
        "node",
        in_ring(&["node", "--listen", "127.0.0.1:0", "--json"]),
    );
    let ring = node.expect_listening(DEADLINE);
    let ring_args = [
        "--listen",
        "127.0.0.1:0",
        "--bootstrap",
        &ring,
        "--no-discovery",
    ];
    let s = src.display().to_string();
    let mut seed_args = vec![
        "seed",
        &songs[0].1,
        &songs[1].1,
        &songs[2].1,
        "--data",
        &s,
        "--json",
    ];
    seed_args.extend(ring_args);
    let mut seeder = procs::Proc::spawn("seed", in_ring(&seed_args));
    seeder.expect_listening(DEADLINE);

    // The playlist, made through the bare node: two, three, one.
    let config = dir.path().join("config");
    let order = [&songs[1].2, &songs[2].2, &songs[0].2];
    let mut create = in_ring(&[
        "playlist", "create", "mix", order[0], order[1], order[2], "--node", &ring, "--json",
    ]);
    let made = create
        .env("SONGSWARM_CONFIG_DIR", &config)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let id = in_ring(&["id", "--json"])
        .env("SONGSWARM_CONFIG_DIR", &config)
        .output()
        .unwrap();
    let id: serde_json::Value = serde_json::from_slice(&id.stdout).unwrap();
    let reference = format!("{}/mix", id["public_key"].as_str().unwrap());

    // The player fetches the song, notes its URL, and takes a moment to
    // play it (its playback, during which the next track is prefetched).
    let log = dir.path().join("played.log");
    let player = dir.path().join("player.sh");
    std::fs::write(
        &player,
        format!(
            "#!/bin/sh\ncurl -sf -o /dev/null \"$1\" && echo \"$1\" >> {}\nsleep 2\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&player, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = dir.path().join("out").display().to_string();
    let p = player.display().to_string();
    let mut play_args = vec![
        "play", &reference, "--player", &p, "--out", &out, "--http", "0", "--json",
    ];
    play_args.extend(ring_args);
    let mut play = procs::Proc::spawn("play", in_ring(&play_args));
    for (i, hash) in order.iter().enumerate() {
        let (_, track) = play.expect_event("track", DEADLINE);
        assert_eq!(track["position"], i + 1);
        assert_eq!(track["info_hash"], hash.as_str());
        if i > 0 {
            assert_eq!(track["prefetched"], true, "track {}: {track}", i + 1);
            assert_eq!(track["first_byte_local"], true, "track {}: {track}", i + 1);
        }
    }
    play.expect_success(Duration::from_secs(60));
    let played = std::fs::read_to_string(&log).unwrap();
    let hashes: Vec<&str> = played
        .lines()
        .map(|l| l.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(hashes, order.iter().map(|h| h.as_str()).collect::<Vec<_>>());
    for (data, _, hash) in &songs {
        let name =
            ["one.mp3", "two.mp3", "three.mp3"][songs.iter().position(|s| &s.2 == hash).unwrap()];
        let got = std::fs::read(dir.path().join("out").join(hash).join(name)).unwrap();
        assert!(&got == data, "{name} differs");
    }
}
