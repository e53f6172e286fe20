//! Playlists in the web player, in headless Chromium: a playlist of two
//! songs made through the JSON API is opened by OWNER/NAME, its tracks
//! are listed in order, the first plays, and the second is fetched ahead
//! and marked so. Without chromium or ffmpeg the test skips loudly, or
//! fails when SONGSWARM_REQUIRE_PLAYERS is set.

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

use std::time::{Duration, Instant};

use cdp::Browser;
use e2e_harness::DEADLINE;
use players::{create, have, make_song, Format};

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

#[test]
fn open_a_playlist_see_it_in_order_play_it_and_see_the_next_fetched_ahead() {
    if !(have("ffmpeg") && have("chromium")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Two songs of other lengths: other bytes, other info-hashes.
    let songs = [("one.flac", 30), ("two.flac", 20)];
    let manifests: Vec<_> = songs
        .iter()
        .map(|&(name, secs)| create(&make_song(dir.path(), name, Format::Flac, secs), 32 * 1024))
        .collect();
    let hashes: Vec<String> = manifests
        .iter()
        .map(|m| {
            songswarm::manifest::Manifest::load(m)
                .unwrap()
                .info_hash
                .to_hex()
        })
        .collect();
    let (a, b) = (free_addr(), free_addr());
    let _a = cli_node::start_node(&a, None);
    let _b = cli_node::start_node(&b, Some(&a));
    let mut seed = std::process::Command::new(env!("CARGO_BIN_EXE_songswarm"));
    seed.env_remove("SONGSWARM_NO_RING")
        .env("SONGSWARM_CONFIG_DIR", dir.path().join("me"))
        .arg("seed")
        .args(&manifests)
        .arg("--data")
        .arg(dir.path())
        .args(["--json", "--http", "0", "--listen", "127.0.0.1:0"])
        .args(["--bootstrap", &a, "--no-discovery"]);
    let mut seeder = procs::Proc::spawn("seed", seed);
    let (_, listening) = seeder.expect_event("listening", DEADLINE);
    let http = listening["http"]
        .as_str()
        .expect("an HTTP address")
        .to_string();

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
    let (_, ahead) = http_request::get_json(&http, "/api/prefetch");
    assert_eq!(ahead["info_hash"], hashes[1].as_str(), "{ahead}");
    if let Some(shot) = std::env::var_os("SONGSWARM_SCREENSHOT") {
        b.screenshot(std::path::Path::new(&shot));
    }
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
    let a = free_addr();
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
