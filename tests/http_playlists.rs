//! Playlists and the track ahead over the web player's JSON API, against
//! real processes on loopback: a ring of three, one serving HTTP with the
//! user's identity. Made, edited (append, reorder, remove) and read in
//! order; a stale version is a 409 and nothing is overwritten; another
//! user's playlist is read-only; changes from another site, without a JSON
//! body or with broken JSON are refused with a clear 4xx and the process
//! goes on. And: a track fetched ahead is cancelled by a skip (its torrent
//! stops, its verified data stays and counts when it is fetched again).

#[path = "support/cli_node.rs"]
mod cli_node;
#[path = "support/http_request.rs"]
mod http_request;
#[path = "support/procs.rs"]
mod procs;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cli_node::{free_addr, start_node, wait_ring};
use http_request::{get_json, json, request};
use serde_json::Value;
use songswarm::id::Id;

const BIN: &str = env!("CARGO_BIN_EXE_songswarm");
const DEADLINE: Duration = Duration::from_secs(90);

fn track(n: u32) -> String {
    Id::hash(&n.to_be_bytes()).to_hex()
}

/// `songswarm node` serving HTTP, with `config` as its config directory.
fn http_node(listen: &str, bootstrap: &str, config: &Path, cache: &Path) -> (procs::Proc, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["node", "--listen", listen, "--bootstrap", bootstrap])
        .args(["--http", "0", "--json"])
        .env("SONGSWARM_CONFIG_DIR", config)
        .env("XDG_CACHE_HOME", cache);
    let mut p = procs::Proc::spawn("http node", cmd);
    let (_, v) = p.expect_event("listening", DEADLINE);
    let http = v["http"].as_str().expect("an HTTP address").to_string();
    (p, http)
}

fn tracks_of(v: &Value) -> Vec<String> {
    v["tracks"]
        .as_array()
        .expect("tracks")
        .iter()
        .map(|t| t["info_hash"].as_str().expect("hex").to_string())
        .collect()
}

#[test]
fn playlists_made_edited_and_read_over_http() {
    let addrs: Vec<String> = (0..3).map(|_| free_addr()).collect();
    let dirs = tempfile::tempdir().unwrap();
    let (alice, bob) = (dirs.path().join("alice"), dirs.path().join("bob"));
    let _a = start_node(&addrs[0], None);
    let _b = start_node(&addrs[1], Some(&addrs[0]));
    let (_c, h) = http_node(&addrs[2], &addrs[0], &alice, dirs.path());
    wait_ring(&addrs);

    // Reads make no identity; the first change does.
    let (status, me) = get_json(&h, "/api/identity");
    assert_eq!((status, &me["public_key"]), (200, &Value::Null), "{me}");
    let (_, mine) = get_json(&h, "/api/playlists");
    assert_eq!(mine["playlists"], serde_json::json!([]));
    assert!(!alice.join("identity.key").exists());
    let (t1, t2, t3) = (track(1), track(2), track(3));

    // Made with two tracks, then a third appended: in order.
    let body = format!(r#"{{"name":"road trip","tracks":["{t1}","{t2}"]}}"#);
    let (status, made) = json(&h, "POST", "/api/playlists", &body);
    assert_eq!(status, 201, "{made}");
    let made: Value = serde_json::from_str(&made).unwrap();
    let (_, me) = get_json(&h, "/api/identity");
    let key = me["public_key"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 64);
    assert_eq!(made["owner"], key.as_str());
    assert_eq!(
        (made["version"].as_u64(), made["mine"].as_bool()),
        (Some(1), Some(true))
    );
    let path = format!("/api/playlists/{key}/road%20trip");
    let body = format!(r#"{{"tracks":["{t3}"],"version":1}}"#);
    let (status, v) = json(&h, "POST", &format!("{path}/tracks"), &body);
    assert_eq!(status, 200, "{v}");
    let (status, v) = get_json(&h, &path);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["version"], 2);
    assert_eq!(tracks_of(&v), [t1.clone(), t2.clone(), t3.clone()]);
    assert_eq!(v["playlist"], format!("{key}/road trip"));

    // Reordered, then the first removed by position.
    let body = format!(r#"{{"version":2,"tracks":["{t3}","{t1}","{t2}"]}}"#);
    let (status, v) = json(&h, "PUT", &path, &body);
    assert_eq!(status, 200, "{v}");
    let (status, v) = json(
        &h,
        "DELETE",
        &format!("{path}/tracks"),
        r#"{"positions":[0]}"#,
    );
    assert_eq!(status, 200, "{v}");
    let (_, v) = get_json(&h, &path);
    assert_eq!(
        (v["version"].as_u64(), tracks_of(&v)),
        (Some(4), vec![t1.clone(), t2.clone()])
    );

    // Another device of the same user writes version 5 (the CLI, through
    // another node); the page's edit made on version 4 is a conflict.
    let out = Command::new(BIN)
        .args(["playlist", "add", "road trip", &t3, "--node", &addrs[0]])
        .env("SONGSWARM_CONFIG_DIR", &alice)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body = format!(r#"{{"version":4,"tracks":["{t2}"]}}"#);
    let (status, why) = json(&h, "PUT", &path, &body);
    assert_eq!(status, 409, "{why}");
    assert!(
        why.contains("changed elsewhere") && why.contains("version 5"),
        "{why}"
    );
    let (_, v) = get_json(&h, &path);
    assert_eq!(v["version"], 5, "nothing overwritten: {v}");
    assert_eq!(tracks_of(&v), [t1.clone(), t2.clone(), t3.clone()]);
    let (status, why) = json(&h, "POST", "/api/playlists", r#"{"name":"road trip"}"#);
    assert_eq!(status, 409, "{why}");
    let (status, mine) = get_json(&h, "/api/playlists");
    assert_eq!(status, 200);
    assert_eq!(mine["playlists"][0]["name"], "road trip");
    assert_eq!(mine["playlists"][0]["version"], 5);

    // Bob's playlist: readable, not writable, by Alice.
    let out = Command::new(BIN)
        .args([
            "playlist", "create", "mix", &t2, "--node", &addrs[1], "--json",
        ])
        .env("SONGSWARM_CONFIG_DIR", &bob)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made: Value = serde_json::from_slice(&out.stdout).unwrap();
    let bobs = made["playlist"].as_str().unwrap().replace("/mix", "");
    let (status, v) = get_json(&h, &format!("/api/playlists/{bobs}/mix"));
    assert_eq!((status, v["mine"].as_bool()), (200, Some(false)), "{v}");
    assert_eq!(tracks_of(&v), std::slice::from_ref(&t2));
    let body = format!(r#"{{"tracks":["{t1}"]}}"#);
    let (status, why) = json(
        &h,
        "POST",
        &format!("/api/playlists/{bobs}/mix/tracks"),
        &body,
    );
    assert_eq!(status, 403, "{why}");
    assert!(why.contains("not yours"), "{why}");

    // Cross-site, not JSON, broken JSON, bad values: refused, nothing made.
    let evil = [
        ("Content-Type", "application/json"),
        ("Origin", "http://evil.example"),
    ];
    let (status, why) = request(&h, "POST", "/api/playlists", &evil, r#"{"name":"evil"}"#);
    assert_eq!(status, 403, "{why}");
    assert!(why.contains("another site"), "{why}");
    let own = format!("http://{h}");
    let same = [
        ("Content-Type", "application/json"),
        ("Origin", own.as_str()),
    ];
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let (status, why) = request(&h, "POST", "/api/playlists", &form, "name=evil");
    assert_eq!(status, 415, "{why}");
    let (status, why) = json(&h, "POST", "/api/playlists", r#"{"name": "evil""#);
    assert!((400..500).contains(&status), "{status} {why}");
    let (status, why) = json(&h, "POST", "/api/playlists", r#"{"nme": "evil"}"#);
    assert!((400..500).contains(&status), "{status} {why}");
    let (status, why) = json(
        &h,
        "POST",
        "/api/playlists",
        r#"{"name":"evil","tracks":["zz"]}"#,
    );
    assert_eq!(status, 400, "{why}");
    assert!(why.contains("not an info-hash"), "{why}");
    let (status, why) = json(
        &h,
        "DELETE",
        &format!("{path}/tracks"),
        r#"{"positions":[9]}"#,
    );
    assert_eq!(status, 400, "{why}");
    let (status, _) = get_json(&h, &format!("/api/playlists/{key}/evil"));
    assert_eq!(status, 404, "no playlist was made by the refused requests");
    let (_, v) = get_json(&h, &path);
    assert_eq!(v["version"], 5, "the refused edit changed nothing: {v}");
    // The page's own origin passes; the process answers on.
    let (status, why) = request(&h, "POST", "/api/playlists", &same, r#"{"name":"ok"}"#);
    assert_eq!(status, 201, "{why}");
}

/// Polls `GET /api/prefetch` until `ok` holds of it.
fn wait_ahead(h: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, v) = get_json(h, "/api/prefetch");
        if status == 200 && ok(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: last {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_skip_cancels_the_track_fetched_ahead_and_keeps_its_data() {
    let dirs = tempfile::tempdir().unwrap();
    let song = dirs.path().join("ahead.bin");
    procs::write_random(&song, 4 << 20, 7);
    let manifest = dirs.path().join("ahead.torrent");
    let out = Command::new(BIN)
        .arg("create")
        .arg(&song)
        .arg("--out")
        .arg(&manifest)
        .args(["--piece-length", "32768", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = songswarm::manifest::Manifest::load(&manifest)
        .unwrap()
        .info_hash
        .to_hex();

    let ring = free_addr();
    let _a = start_node(&ring, None);
    let cache = dirs.path().join("cache");
    let (_web, h) = http_node(&free_addr(), &ring, &dirs.path().join("me"), &cache);
    // A slow seeder, so that the fetch is still going when it is skipped.
    let mut seed = Command::new(BIN);
    seed.env_remove("SONGSWARM_NO_RING")
        .arg("seed")
        .arg(&manifest)
        .arg("--data")
        .arg(dirs.path())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--bootstrap",
            &ring,
            "--no-discovery",
        ])
        .args(["--max-upload-rate", "200000", "--json"]);
    let mut seeder = procs::Proc::spawn("seed", seed);
    seeder.expect_event("listening", DEADLINE);

    // The page says the next track is this song, which the process lacks:
    // it is started from its metadata in the ring (published by the seed).
    let body = format!(r#"{{"info_hash":"{hash}","file":0}}"#);
    let deadline = Instant::now() + DEADLINE;
    let ahead = loop {
        let (status, v) = json(&h, "PUT", "/api/prefetch", &body);
        if status == 200 {
            break serde_json::from_str::<Value>(&v).unwrap();
        }
        assert!(Instant::now() < deadline, "never prefetched: {status} {v}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        (ahead["info_hash"].as_str(), ahead["started_here"].as_bool()),
        (Some(hash.as_str()), Some(true))
    );
    let fetching = wait_ahead(&h, "pieces arriving", |v| {
        v["downloaded_percent"].as_f64().is_some_and(|p| p > 0.0)
    });
    assert_eq!(fetching["fetching"], true, "{fetching}");
    let before = fetching["downloaded_percent"].as_f64().unwrap();
    assert!(
        before < 100.0,
        "the slow seeder sent everything already: {fetching}"
    );
    let (_, torrents) = get_json(&h, "/api/torrents");
    assert!(torrents.to_string().contains(&hash), "{torrents}");

    // A skip: the track ahead is cancelled, its torrent stopped.
    let (status, v) = json(&h, "DELETE", "/api/prefetch", "{}");
    assert_eq!(status, 200, "{v}");
    assert!(v.contains(&hash), "{v}");
    let (_, now) = get_json(&h, "/api/prefetch");
    assert_eq!(now, Value::Null);
    let (_, torrents) = get_json(&h, "/api/torrents");
    assert!(
        !torrents.to_string().contains(&hash),
        "still running: {torrents}"
    );
    let data = cache.join("songswarm").join(&hash).join("ahead.bin");
    assert!(data.exists(), "the data was deleted: {}", data.display());

    // Fetched ahead again: what was verified counts at once.
    let (status, v) = json(&h, "PUT", "/api/prefetch", &body);
    assert_eq!(status, 200, "{v}");
    let again: Value = serde_json::from_str(&v).unwrap();
    assert_eq!(again["started_here"], true, "{again}");
    let kept = again["downloaded_percent"].as_f64().unwrap();
    assert!(kept >= before, "verified data lost: {kept} % < {before} %");
}
