//! The catalog end to end with real processes on loopback: an album seeded
//! on one process is found by `songswarm search` through another ring
//! node, listed by `library`, and played with `play <WORDS>`; `leech
//! <INFO-HASH>` gets the manifest from the ring when no peer answers; and
//! `dht put`/`dht get` store and read a value.

#[path = "support/blocking_http.rs"]
mod blocking_http;
#[path = "support/e2e_harness.rs"]
mod e2e_harness;
#[path = "support/manifest_audio.rs"]
mod manifest_audio;
#[path = "support/procs.rs"]
mod procs;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e_harness::DEADLINE;
use procs::Proc;
use serde_json::Value;
use songswarm::manifest::Manifest;

/// `songswarm …` in the ring (the harness's processes run without one).
fn in_ring(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_songswarm"));
    cmd.env_remove("SONGSWARM_NO_RING").args(args);
    cmd
}

/// A one-shot command's stdout, or its error line.
fn one_shot(args: &[&str]) -> Result<String, String> {
    let out = in_ring(args).output().expect("songswarm runs");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `search WORDS --json` through `node`, asked again until it finds
/// something (the seeder publishes once it has joined).
fn search_until_found(node: &str, words: &[&str]) -> Vec<Value> {
    let deadline = Instant::now() + DEADLINE;
    let mut last = String::new();
    while Instant::now() < deadline {
        let mut args = vec!["search"];
        args.extend(words);
        args.extend(["--node", node, "--json"]);
        match one_shot(&args) {
            Ok(out) => {
                let v: Value = serde_json::from_str(out.trim()).expect("one JSON object");
                let results = v["results"].as_array().expect("results").clone();
                if !results.is_empty() {
                    return results;
                }
                last = out;
            }
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("search {words:?} found nothing in time; last answer: {last}");
}

/// An album of two tagged WAV songs and its manifest.
fn album(dir: &Path) -> (std::path::PathBuf, Vec<Vec<u8>>) {
    let album = dir.join("src").join("Paper Seasons");
    std::fs::create_dir_all(&album).unwrap();
    let tracks = [("01.wav", "Harbour Lights"), ("02.wav", "Static Orbit")];
    let mut bytes = Vec::new();
    for (name, title) in tracks {
        let path = album.join(name);
        manifest_audio::write_wav(&path, 1500);
        manifest_audio::tag_file(&path, title, "Kite Orchestra", "Paper Seasons");
        bytes.push(std::fs::read(&path).unwrap());
    }
    let manifest = dir.join("album.torrent");
    let created = Command::new(env!("CARGO_BIN_EXE_songswarm"))
        .arg("create")
        .arg(&album)
        .arg("--out")
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    (manifest, bytes)
}

#[test]
fn an_album_seeded_on_one_node_is_searched_listed_and_played_from_another() {
    let dir = tempfile::tempdir().unwrap();
    let (manifest, tracks) = album(dir.path());
    let hash = Manifest::load(&manifest).unwrap().info_hash.to_hex();
    let mut node = Proc::spawn(
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
    let (m, s) = (manifest.display().to_string(), dir.path().join("src"));
    let s = s.display().to_string();
    let mut seed_args = vec!["seed", &m, "--data", &s, "--json"];
    seed_args.extend(ring_args);
    let mut seeder = Proc::spawn("seed", in_ring(&seed_args));
    seeder.expect_listening(DEADLINE);

    // Words in any case, accents and order; every word must match.
    let hits = search_until_found(&ring, &["KITE", "harbour"]);
    assert_eq!(hits.len(), 1, "{hits:?}");
    let hit = &hits[0];
    assert_eq!(hit["title"], "Harbour Lights");
    assert_eq!(hit["artist"], "Kite Orchestra");
    assert_eq!(hit["album"], "Paper Seasons");
    assert_eq!(hit["info_hash"], hash.as_str());
    assert_eq!(hit["file"], 0);
    assert!(hit["duration_ms"].as_u64().unwrap() > 1000, "{hit}");
    assert_eq!(hit["seeders"], 1, "the seeder is live: {hit}");
    // Both songs share the album's words.
    let both = search_until_found(&ring, &["paper", "seasons"]);
    assert_eq!(both.len(), 2, "{both:?}");
    let none = one_shot(&["search", "harbour", "nothing", "--node", &ring, "--json"]).unwrap();
    let none: Value = serde_json::from_str(none.trim()).unwrap();
    assert_eq!(none["results"].as_array().unwrap().len(), 0, "{none}");
    let text = one_shot(&["search", "orbit", "--node", &ring]).unwrap();
    assert!(
        text.starts_with("Static Orbit  |  Kite Orchestra  |  Paper Seasons"),
        "{text}"
    );
    let err = one_shot(&["search", "the", "--node", &ring]).unwrap_err();
    assert!(err.contains("no word to search for"), "{err}");

    // The library lists every song once.
    let lib = one_shot(&["library", "--node", &ring, "--json"]).unwrap();
    let titles: Vec<String> = lib
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["title"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(titles, ["Harbour Lights", "Static Orbit"], "{lib}");

    // `play <WORDS>` plays the best match: the album's second song.
    let out = dir.path().join("out").display().to_string();
    let mut play_args = vec![
        "play", "static", "orbit", "--out", &out, "--http", "0", "--json",
    ];
    play_args.extend(ring_args);
    let mut player = Proc::spawn("play", in_ring(&play_args));
    let (_, playing) = player.expect_event("playing", DEADLINE);
    assert_eq!(playing["title"], "Static Orbit");
    let url = playing["song_url"].as_str().unwrap();
    assert!(url.ends_with(&format!("/songs/{hash}/1")), "{url}");
    let (host, path) = url.trim_start_matches("http://").split_once('/').unwrap();
    let (head, body) = blocking_http::get(host, &format!("/{path}"), DEADLINE);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        body == tracks[1],
        "the song played differs from the one seeded"
    );
    drop(player);

    // With no peer answering, `leech <INFO-HASH>` still gets the manifest:
    // the ring holds it.
    drop(seeder);
    let out2 = dir.path().join("out2");
    let o2 = out2.display().to_string();
    let mut leech_args = vec!["leech", &hash, "--out", &o2];
    leech_args.extend(ring_args);
    let mut leecher = Proc::spawn("leech", in_ring(&leech_args));
    leecher
        .try_line("metadata", DEADLINE, |l| {
            l.starts_with("metadata of Paper Seasons fetched")
        })
        .unwrap_or_else(|why| panic!("{why}"));
    let saved = Manifest::load(&out2.join(format!("{hash}.torrent"))).unwrap();
    assert_eq!(saved.info_hash.to_hex(), hash);
}

#[test]
fn dht_put_and_get_store_a_value_under_its_sha1() {
    let mut node = Proc::spawn(
        "node",
        in_ring(&["node", "--listen", "127.0.0.1:0", "--json"]),
    );
    let ring = node.expect_listening(DEADLINE);
    let mut other = Proc::spawn(
        "node 2",
        in_ring(&[
            "node",
            "--listen",
            "127.0.0.1:0",
            "--json",
            "--bootstrap",
            &ring,
        ]),
    );
    let second = other.expect_listening(DEADLINE);
    // A ring of two holds two replicas: W = 2 can be met.
    let deadline = Instant::now() + DEADLINE;
    let put = loop {
        match one_shot(&["dht", "put", "hello, ring", "--node", &ring, "--json"]) {
            Ok(out) => break serde_json::from_str::<Value>(out.trim()).unwrap(),
            Err(e) if Instant::now() > deadline => panic!("dht put never succeeded: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let key = put["key"].as_str().unwrap().to_string();
    assert_eq!(key, songswarm::id::Id::hash(b"hello, ring").to_hex());
    let got = one_shot(&["dht", "get", &key, "--node", &second]).unwrap();
    assert_eq!(got.trim_end(), "hello, ring");
    let missing = songswarm::id::Id::hash(b"never stored").to_hex();
    let err = one_shot(&["dht", "get", &missing, "--node", &second]).unwrap_err();
    assert!(err.contains("holds no value"), "{err}");
    let json = one_shot(&["dht", "get", &missing, "--node", &ring, "--json"]).unwrap();
    assert!(json.contains("\"found\":false"), "{json}");
}
