//! `songswarm play` as a user runs it: by info-hash alone (the swarm and
//! the manifest come from the ring), an album's song by `--file`, the URLs it prints
//! as text, and a clear error for a song the album does not have.

#[path = "support/blocking_http.rs"]
mod blocking_http;
#[path = "support/e2e_harness.rs"]
mod e2e_harness;
#[path = "support/procs.rs"]
mod procs;

use e2e_harness::{make_torrent, seed, Proc, DEADLINE};
use songswarm::manifest::Manifest;

/// `GET url`: (head, body).
fn get(url: &str) -> (String, Vec<u8>) {
    let (host, path) = url.trim_start_matches("http://").split_once('/').unwrap();
    blocking_http::get(host, &format!("/{path}"), DEADLINE)
}

/// `songswarm …` in the ring (the harness's processes run without one).
fn in_ring(args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_songswarm"));
    cmd.env_remove("SONGSWARM_NO_RING").args(args);
    cmd
}

#[test]
fn play_by_info_hash_finds_the_swarm_in_the_ring_and_prints_the_urls() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let (data, manifest) = make_torrent(&src, "song.mp3", 700_000, 32 * 1024, 3);
    let hash = Manifest::load(&manifest).unwrap().info_hash.to_hex();
    let mut node = procs::Proc::spawn(
        "node",
        in_ring(&["node", "--listen", "127.0.0.1:0", "--json"]),
    );
    let ring = node.expect_listening(DEADLINE);
    let (m, s) = (manifest.display().to_string(), src.display().to_string());
    let ring_args = [
        "--listen",
        "127.0.0.1:0",
        "--bootstrap",
        &ring,
        "--no-discovery",
    ];
    let mut seed_args = vec!["seed", &m, "--data", &s, "--json"];
    seed_args.extend(ring_args);
    let mut seeder = procs::Proc::spawn("seed", in_ring(&seed_args));
    seeder.expect_listening(DEADLINE);
    let out = dir.path().join("out").display().to_string();
    // Text output, as a person sees it.
    let mut play_args = vec!["play", &hash, "--out", &out, "--http", "0"];
    play_args.extend(ring_args);
    let mut player = procs::Proc::spawn("play", in_ring(&play_args));
    let (mut song_url, mut page_url) = (String::new(), String::new());
    player
        .try_line("web player", DEADLINE, |line| {
            if let Some(url) = line.strip_prefix("song        ") {
                song_url = url.to_string();
            }
            if let Some(url) = line.strip_prefix("web player  ") {
                page_url = url.to_string();
            }
            !page_url.is_empty()
        })
        .unwrap_or_else(|why| panic!("{why}"));
    assert!(
        song_url.starts_with("http://127.0.0.1:"),
        "{song_url}: not on loopback"
    );
    assert!(song_url.ends_with(&format!("/songs/{hash}")), "{song_url}");
    let (head, body) = get(&song_url);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body == data, "the song differs");
    let (head, page) = get(&page_url);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(String::from_utf8_lossy(&page).contains("<audio"));
}

#[test]
fn play_picks_an_album_song_and_refuses_one_it_does_not_have() {
    let dir = tempfile::tempdir().unwrap();
    let album = dir.path().join("src").join("album");
    std::fs::create_dir_all(&album).unwrap();
    let mut songs = Vec::new();
    for (i, name) in ["01 a.flac", "02 b.flac"].iter().enumerate() {
        let data: Vec<u8> = (0..50_000u32).map(|b| (b * 7 + i as u32) as u8).collect();
        std::fs::write(album.join(name), &data).unwrap();
        songs.push(data);
    }
    let manifest = dir.path().join("album.torrent");
    let created = std::process::Command::new(env!("CARGO_BIN_EXE_songswarm"))
        .arg("create")
        .arg(&album)
        .arg("--out")
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let (_seeder, addr) = seed(&[&manifest], &dir.path().join("src"), &[]);
    let m = manifest.display().to_string();
    let out = dir.path().join("out").display().to_string();
    let args = |file: &'static str| {
        vec![
            "play".to_string(),
            m.clone(),
            "--file".into(),
            file.into(),
            "--out".into(),
            out.clone(),
            "--peer".into(),
            addr.clone(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--http".into(),
            "0".into(),
            "--json".into(),
        ]
    };
    let second = args("1");
    let mut player = Proc::start(&second.iter().map(String::as_str).collect::<Vec<_>>());
    let playing = loop {
        let v = player.json();
        if v["event"] == "playing" {
            break v;
        }
    };
    let url = playing["song_url"].as_str().unwrap();
    assert!(url.ends_with("/1"), "{url}");
    assert!(get(url).1 == songs[1], "song 1 differs");
    drop(player);

    let third = args("2");
    let mut wrong =
        Proc::start_watching_stderr(&third.iter().map(String::as_str).collect::<Vec<_>>());
    let error = wrong.err_line();
    assert!(error.contains("--file 2"), "{error}");
    assert!(error.contains("2 file(s)"), "{error}");
    assert!(!wrong.wait_success(), "play of a missing song succeeded");
}

#[test]
fn play_by_info_hash_from_a_named_peer_needs_no_ring() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let (data, manifest) = make_torrent(&src, "song.mp3", 700_000, 32 * 1024, 4);
    let hash = Manifest::load(&manifest).unwrap().info_hash.to_hex();
    // A seeder that super-seeds whoever comes: the player says it streams
    // and is shown every piece all the same.
    let (_seeder, addr) = seed(&[&manifest], &src, &["--super-seed", "on"]);
    let out = dir.path().join("out").display().to_string();
    let mut player = Proc::start(&[
        "play",
        &hash,
        "--out",
        &out,
        "--peer",
        &addr,
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
    assert!(url.ends_with(&format!("/songs/{hash}")), "{url}");
    let (head, body) = get(url);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body == data, "the song differs");
    assert!(
        dir.path()
            .join("out")
            .join(format!("{hash}.torrent"))
            .exists(),
        "the fetched manifest was saved in --out"
    );
    // The streaming counters are in /metrics (how many pieces were late
    // depends on how soon the stream opened against the download).
    let metrics = format!("{}/metrics", url.split("/songs/").next().unwrap());
    let text = String::from_utf8(get(&metrics).1).unwrap();
    for name in [
        "songswarm_stream_late_pieces_total",
        "songswarm_stream_rescued_blocks_total",
    ] {
        let key = format!("{name}{{info_hash=\"{hash}\"}} ");
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(key.as_str()))
            .and_then(|v| v.trim().parse::<f64>().ok());
        assert!(value.is_some_and(|v| v >= 0.0), "no {name}:\n{text}");
    }
}

#[test]
fn play_by_info_hash_without_ring_or_peer_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out").display().to_string();
    let hash = "607cbc70c0d7de3ada58fde5d97320fecfaf870e";
    let mut player = Proc::start_watching_stderr(&[
        "play",
        hash,
        "--out",
        &out,
        "--listen",
        "127.0.0.1:0",
        "--http",
        "0",
    ]);
    let error = player.err_line();
    assert!(error.contains("--peer"), "{error}");
    assert!(!player.wait_success(), "play without a swarm succeeded");
}
