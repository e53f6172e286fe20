//! The ring's library in the web player, in headless Chromium: a song
//! seeded in a ring is found by typing a word into the search box, played
//! by a click on the result, and listed under its artist in the library.
//! Without chromium or ffmpeg the test skips loudly, or fails when
//! SONGSWARM_REQUIRE_PLAYERS is set.

#[path = "support/cdp.rs"]
mod cdp;
#[path = "support/e2e_harness.rs"]
mod e2e_harness;
#[path = "support/players.rs"]
mod players;
#[path = "support/procs.rs"]
mod procs;

use cdp::Browser;
use e2e_harness::DEADLINE;
use players::{create, have, make_song, Format};

fn in_ring(args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_songswarm"));
    cmd.env_remove("SONGSWARM_NO_RING").args(args);
    cmd
}

/// Types the search (Enter) again once a second until a result shows:
/// the song is published a moment after the seeder joins.
const SEARCH_UNTIL_FOUND: &str =
    "(() => { if (document.querySelector('#results li.hit')) return true; \
    if (Date.now() - (window.lastAsk || 0) < 1000) return false; \
    window.lastAsk = Date.now(); const q = document.getElementById('q'); q.value = 'tône'; \
    q.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' })); return false; })()";

#[test]
fn type_a_word_see_the_song_play_it_and_find_it_in_the_library() {
    if !(have("ffmpeg") && have("chromium")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let song = make_song(dir.path(), "tone.flac", Format::Flac, 20);
    let manifest = create(&song, 32 * 1024);
    let mut node = procs::Proc::spawn(
        "node",
        in_ring(&["node", "--listen", "127.0.0.1:0", "--json"]),
    );
    let ring = node.expect_listening(DEADLINE);
    let (m, d) = (
        manifest.display().to_string(),
        dir.path().display().to_string(),
    );
    let args = [
        "seed",
        &m,
        "--data",
        &d,
        "--json",
        "--http",
        "0",
        "--listen",
        "127.0.0.1:0",
        "--bootstrap",
        &ring,
        "--no-discovery",
    ];
    let mut seeder = procs::Proc::spawn("seed", in_ring(&args));
    let (_, listening) = seeder.expect_event("listening", DEADLINE);
    let http = listening["http"]
        .as_str()
        .expect("an HTTP address")
        .to_string();

    let mut b = Browser::start();
    b.open(&format!("http://{http}/"));
    b.wait_for("the search box", "!!document.getElementById('q')");
    // Accents and case do not matter: "tône" finds "Test Tone".
    b.wait_for("a search result", SEARCH_UNTIL_FOUND);
    let shown = b.eval("document.querySelector('#results li.hit').textContent");
    let shown = shown.as_str().unwrap();
    for part in ["Test Tone", "The Testers", "Test Album", "0:20", "1 seeder"] {
        assert!(shown.contains(part), "{part} not in {shown:?}");
    }
    b.eval("document.querySelector('#results li.hit').click(), true");
    b.wait_for(
        "the song to play",
        "!document.getElementById('audio').paused && document.getElementById('audio').currentTime > 1",
    );
    let now = b.eval("document.getElementById('now').textContent");
    assert!(now.as_str().unwrap().contains("Test Tone"), "{now}");

    // The library, by artist: open the artist, see the song.
    b.eval("document.getElementById('browse').click(), true");
    b.wait_for(
        "the artist in the library",
        "[...document.querySelectorAll('#results .artist h3')].some(h => h.textContent === 'The Testers')",
    );
    b.eval("document.querySelector('#results .artist h3').click(), true");
    b.wait_for(
        "the album and its song, shown",
        "(() => { const li = document.querySelector('#results .artist.open li.hit'); \
         return !!li && li.offsetHeight > 0 && li.textContent.includes('Test Tone') \
         && document.querySelector('#results .artist.open h4').textContent === 'Test Album'; })()",
    );
    if let Some(shot) = std::env::var_os("SONGSWARM_SCREENSHOT") {
        b.screenshot(std::path::Path::new(&shot));
    }
}
