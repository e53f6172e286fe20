//! Playlists in the web player, in headless Chromium: a playlist of two
//! songs made through the JSON API is opened by OWNER/NAME, its tracks
//! are listed in order, the first plays, and the second, held at first
//! only by another peer, is fetched ahead, marked so, and complete on the
//! serving process before the page asks for its first byte. Without
//! chromium or ffmpeg the test skips loudly, or fails when
//! SONGSWARM_REQUIRE_PLAYERS is set.

#[path = "support/cdp.rs"]
mod cdp;
#[path = "support/cli_node.rs"]
mod cli_node;
#[path = "support/e2e_harness.rs"]
mod e2e_harness;
#[path = "support/http_request.rs"]
mod http_request;
#[path = "support/players.rs"]
mod players;
#[path = "support/procs.rs"]
mod procs;

use std::path::Path;
use std::time::{Duration, Instant};

use cdp::Browser;
use e2e_harness::DEADLINE;
use players::{create, have, make_song, Format};

/// `songswarm seed MANIFEST --data DATA` in the ring through `node`, its
/// identity and download cache under `home`; returns it and its HTTP address.
fn seed_in_ring(manifest: &Path, data: &Path, home: &Path, node: &str) -> (procs::Proc, String) {
    let mut seed = std::process::Command::new(env!("CARGO_BIN_EXE_songswarm"));
    seed.env_remove("SONGSWARM_NO_RING")
        .env("SONGSWARM_CONFIG_DIR", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .arg("seed")
        .arg(manifest)
        .arg("--data")
        .arg(data)
        .args(["--json", "--http", "0", "--listen", "127.0.0.1:0"])
        .args(["--bootstrap", node, "--no-discovery"]);
    let mut proc = procs::Proc::spawn("seed", seed);
    let (_, listening) = proc.expect_event("listening", DEADLINE);
    let http = listening["http"].as_str().expect("an HTTP address");
    (proc, http.to_string())
}

/// The torrent `hash` in `GET /api/torrents` of the process at `http`.
fn torrent(http: &str, hash: &str) -> Option<serde_json::Value> {
    let (_, all) = http_request::get_json(http, "/api/torrents");
    let list = all.as_array().cloned().expect("a list of torrents");
    list.into_iter().find(|t| t["info_hash"] == hash)
}

#[test]
fn open_a_playlist_see_it_in_order_play_it_and_the_next_is_local_before_it_plays() {
    if !(have("ffmpeg") && have("chromium")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (here, there) = (dir.path().join("here"), dir.path().join("there"));
    std::fs::create_dir_all(&here).unwrap();
    std::fs::create_dir_all(&there).unwrap();
    // Two songs of other lengths: other bytes, other info-hashes. The
    // serving process holds the first; only another peer holds the second.
    let manifests = [
        create(&make_song(&here, "one.flac", Format::Flac, 30), 32 * 1024),
        create(&make_song(&there, "two.flac", Format::Flac, 20), 32 * 1024),
    ];
    let hashes: Vec<String> = manifests
        .iter()
        .map(|m| {
            songswarm::manifest::Manifest::load(m)
                .unwrap()
                .info_hash
                .to_hex()
        })
        .collect();
    let (a, b) = (cli_node::free_addr(), cli_node::free_addr());
    let _a = cli_node::start_node(&a, None);
    let _b = cli_node::start_node(&b, Some(&a));
    let (_other, _) = seed_in_ring(&manifests[1], &there, &dir.path().join("other"), &a);
    let (_seeder, http) = seed_in_ring(&manifests[0], &here, &dir.path().join("me"), &a);
    assert!(
        torrent(&http, &hashes[1]).is_none(),
        "the serving process must not hold the second song at the start"
    );

    // The playlist, made through the API once the ring takes writes.
    let body = format!(
        r#"{{"name":"evening","tracks":["{}","{}"]}}"#,
        hashes[0], hashes[1]
    );
    let deadline = Instant::now() + DEADLINE;
    let made = loop {
        let (status, v) = http_request::json(&http, "POST", "/api/playlists", &body);
        if status == 201 || status == 409 {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "the playlist was never made: {status} {v}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let (_, me) = http_request::get_json(&http, "/api/identity");
    let key = me["public_key"].as_str().expect("a key").to_string();
    assert!(
        made.contains("evening") || made.contains("exists"),
        "{made}"
    );

    let mut b = Browser::start();
    b.open(&format!("http://{http}/"));
    b.wait_for("the playlist box", "!!document.getElementById('plref')");
    b.eval(&format!(
        "document.getElementById('plref').value = '{key}/evening'; \
         document.getElementById('plopen').click(), true"
    ));
    b.wait_for(
        "the playlist's two tracks",
        "document.querySelectorAll('#playlist li.track').length === 2",
    );
    let order = b.eval(
        "[...document.querySelectorAll('#playlist li.track')].map(li => li.dataset.hash).join(',')",
    );
    assert_eq!(order.as_str().unwrap(), hashes.join(","));
    let first = b.eval("document.querySelector('#playlist li.track').textContent");
    let first = first.as_str().unwrap();
    assert!(
        first.contains("1. Test Tone") && first.contains("0:30"),
        "{first}"
    );

    b.eval("document.querySelector('#playlist li.track').click(), true");
    b.wait_for(
        "the first track to play",
        "!document.getElementById('audio').paused && document.getElementById('audio').currentTime > 0.5",
    );
    let src = b.eval("document.getElementById('audio').src");
    assert!(src.as_str().unwrap().contains(&hashes[0]), "{src}");
    // The first track is complete here: the second is fetched ahead now,
    // and marked (the first is not).
    b.wait_for(
        "the second track marked as fetched ahead",
        &format!(
            "(() => {{ const ls = [...document.querySelectorAll('#playlist li.track')]; \
             return ls[1].classList.contains('prefetching') && !ls[0].classList.contains('prefetching') \
             && ls[1].dataset.hash === '{}' && ls[1].querySelector('.ahead').offsetHeight > 0; }})()",
            hashes[1]
        ),
    );
    // The serving process says the track ahead is complete on its disk...
    let deadline = Instant::now() + DEADLINE;
    let ahead = loop {
        let (_, ahead) = http_request::get_json(&http, "/api/prefetch");
        if ahead["downloaded_percent"] == 100.0 && ahead["fetching"] == false {
            break ahead;
        }
        assert!(
            Instant::now() < deadline,
            "the track ahead never completed here: {ahead}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(ahead["info_hash"], hashes[1].as_str(), "{ahead}");
    assert_eq!(
        ahead["started_here"], true,
        "fetched for the prefetch: {ahead}"
    );
    // ...while the page has not yet asked for any of it: its audio still
    // plays the first track, and no request for the second has been made.
    let asked = b.eval(&format!(
        "document.getElementById('audio').src.includes('{0}') || \
         performance.getEntriesByType('resource').some(e => e.name.includes('/songs/{0}'))",
        hashes[1]
    ));
    assert_eq!(
        asked.as_bool(),
        Some(false),
        "the page asked for the second track before it was complete here"
    );
    let (_, done) = http_request::get_json(&http, &format!("/api/torrents/{}", hashes[1]));
    assert_eq!(done["complete"], true, "{done}");
    if let Some(shot) = std::env::var_os("SONGSWARM_SCREENSHOT") {
        b.screenshot(std::path::Path::new(&shot));
    }
    // Its turn: the end of the first track, reached by a seek.
    b.eval("(a => { a.currentTime = Math.max(0, a.duration - 1); })(document.getElementById('audio')), true");
    b.wait_for(
        "the second track to play",
        &format!(
            "(a => a.src.includes('{}') && !a.paused && a.currentTime > 0.5)(document.getElementById('audio'))",
            hashes[1]
        ),
    );
}

/// Types the search (Enter) again once a second until a result shows: the
/// song is published a moment after the seeder joins.
const SEARCH_UNTIL_FOUND: &str =
    "(() => { if (document.querySelector('#results li.hit')) return true; \
    if (Date.now() - (window.lastAsk || 0) < 1000) return false; \
    window.lastAsk = Date.now(); const q = document.getElementById('q'); q.value = 'tone'; \
    q.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' })); return false; })()";

#[test]
fn a_search_result_this_process_lacks_is_fetched_from_the_ring_and_plays() {
    if !(have("ffmpeg") && have("chromium")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let manifest = create(
        &make_song(dir.path(), "far.flac", Format::Flac, 20),
        32 * 1024,
    );
    let hash = songswarm::manifest::Manifest::load(&manifest)
        .unwrap()
        .info_hash
        .to_hex();
    let a = cli_node::free_addr();
    let _a = cli_node::start_node(&a, None);
    let mut seed = std::process::Command::new(env!("CARGO_BIN_EXE_songswarm"));
    seed.env_remove("SONGSWARM_NO_RING")
        .arg("seed")
        .arg(&manifest)
        .arg("--data")
        .arg(dir.path())
        .args([
            "--json",
            "--listen",
            "127.0.0.1:0",
            "--bootstrap",
            &a,
            "--no-discovery",
        ]);
    let mut seeder = procs::Proc::spawn("seed", seed);
    seeder.expect_event("listening", DEADLINE);
    // The page is served by a node that holds no song.
    let mut node = std::process::Command::new(env!("CARGO_BIN_EXE_songswarm"));
    node.env_remove("SONGSWARM_NO_RING")
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .args([
            "node",
            "--listen",
            "127.0.0.1:0",
            "--bootstrap",
            &a,
            "--http",
            "0",
            "--json",
        ]);
    let mut web = procs::Proc::spawn("node", node);
    let (_, listening) = web.expect_event("listening", DEADLINE);
    let http = listening["http"]
        .as_str()
        .expect("an HTTP address")
        .to_string();

    let mut b = Browser::start();
    b.open(&format!("http://{http}/"));
    b.wait_for("the search box", "!!document.getElementById('q')");
    b.wait_for("a search result", SEARCH_UNTIL_FOUND);
    let remote = b.eval("document.querySelector('#results li.hit').classList.contains('remote')");
    assert_eq!(
        remote.as_bool(),
        Some(true),
        "the node should not hold the song yet"
    );
    b.eval("document.querySelector('#results li.hit').click(), true");
    b.wait_for(
        "the fetched song to play",
        "!document.getElementById('audio').paused && document.getElementById('audio').currentTime > 1",
    );
    let src = b.eval("document.getElementById('audio').src");
    assert!(src.as_str().unwrap().contains(&hash), "{src}");
    let (_, torrents) = http_request::get_json(&http, "/api/torrents");
    assert!(torrents.to_string().contains(&hash), "{torrents}");
}
