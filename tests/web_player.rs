//! The web player in headless Chromium, against `songswarm play` while the
//! song still downloads from a seeder capped at 1.5× its bit rate. The
//! player starts with the song's first 40 % on disk (as after a restart),
//! so it plays at once whatever order the rest comes in: the page lists
//! the song, plays it (`playing` fires, `currentTime` advances), seeks to a
//! place whose pieces are not downloaded yet and plays on from there;
//! space pauses and plays, → moves on; it fits a 360-px phone screen.
//! Without chromium or ffmpeg the test skips loudly, or fails when
//! SONGSWARM_REQUIRE_PLAYERS is set.

#[path = "support/cdp.rs"]
mod cdp;
#[path = "support/e2e_harness.rs"]
mod e2e_harness;
#[path = "support/players.rs"]
mod players;

use cdp::Browser;
use players::{create, have, make_song, stream_with, Format};

const SECS: u32 = 60;
const PIECE: u64 = 32 * 1024;

/// Listeners the test puts on the page's audio element: every event of
/// interest, with the position it happened at.
const RECORD: &str = "(() => { window.testLog = []; const a = document.getElementById('audio'); \
    for (const ev of ['playing', 'pause', 'seeking', 'seeked', 'waiting', 'error']) \
      a.addEventListener(ev, () => window.testLog.push([ev, a.currentTime])); return true; })()";

#[test]
fn the_web_player_plays_seeks_into_missing_pieces_and_plays_on() {
    if !(have("ffmpeg") && have("chromium")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let song = make_song(dir.path(), "tone.flac", Format::Flac, SECS);
    let manifest = create(&song, PIECE);
    let size = std::fs::metadata(&song).unwrap().len();
    let first = (size as usize * 2 / 5) / PIECE as usize * PIECE as usize;
    let rate = size / u64::from(SECS) * 3 / 2;
    let s = stream_with(
        &manifest,
        dir.path(),
        rate,
        Some((&song, std::slice::from_ref(&(0..first)))),
        &[],
    );
    let path = s.song_url.split_once("/songs/").map(|(_, p)| p).unwrap();
    let row = format!("li.song[data-url='/songs/{path}']");

    let mut b = Browser::start();
    b.open(&s.player_url);
    b.wait_for(
        "the song in the list",
        &format!("!!document.querySelector(\"{row}\")"),
    );
    let listed = b.eval(&format!("document.querySelector(\"{row}\").textContent"));
    let listed = listed.as_str().unwrap();
    for shown in ["Test Tone", "The Testers", "Test Album", "1:00"] {
        assert!(listed.contains(shown), "{shown} not in {listed:?}");
    }
    assert_eq!(b.eval(RECORD), true);

    // Play: the row's click, as a person would.
    b.eval(&format!("document.querySelector(\"{row}\").click(), true"));
    b.wait_for("playing", "window.testLog.some(e => e[0] === 'playing')");
    b.wait_for(
        "currentTime to advance",
        "document.getElementById('audio').currentTime > 1",
    );
    b.wait_for(
        "the download share on the page",
        &format!("/%|✓/.test(document.querySelector(\"{row} .pct\").textContent)"),
    );

    // Seek to a piece that is not there yet, well past the play position.
    let progress = s.progress();
    let map = progress["verified"].as_str().unwrap().as_bytes().to_vec();
    let pieces = map.len();
    let missing = (pieces / 2..pieces * 9 / 10)
        .find(|&p| map[p] == b'0' && map[p + 1] == b'0')
        .unwrap_or_else(|| panic!("no missing piece to seek to: {progress}"));
    let target = (missing as f64 + 0.5) * PIECE as f64 / size as f64 * f64::from(SECS);
    eprintln!(
        "seeking to {target:.1} s: piece {missing} of {pieces}, {}% downloaded",
        progress["downloaded_percent"]
    );
    // Through the page's slider, as a drag would end.
    let seeked = std::time::Instant::now();
    b.eval(&format!(
        "(() => {{ const s = document.getElementById('seek'); s.value = {target}; \
         s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change')); return true; }})()"
    ));
    b.wait_for("the seek", "window.testLog.some(e => e[0] === 'seeked')");
    b.wait_for(
        "playing on past the seek",
        &format!(
            "!document.getElementById('audio').paused && \
             document.getElementById('audio').currentTime > {}",
            target + 1.5
        ),
    );
    let at = b
        .eval("document.getElementById('audio').currentTime")
        .as_f64()
        .unwrap();
    assert!(at < target + 30.0, "position {at} after a seek to {target}");
    eprintln!(
        "played on from {target:.1} s, {:.1} s after the seek (1.5 s of it playing)",
        seeked.elapsed().as_secs_f64()
    );

    // Space pauses and plays; → moves 5 s on.
    b.press(" ", "Space", 32, false);
    b.wait_for("space to pause", "document.getElementById('audio').paused");
    let before = b
        .eval("document.getElementById('audio').currentTime")
        .as_f64()
        .unwrap();
    b.press("ArrowRight", "ArrowRight", 39, false);
    let after = b
        .eval("document.getElementById('audio').currentTime")
        .as_f64()
        .unwrap();
    assert!(
        (after - before - 5.0).abs() < 0.5,
        "→ moved from {before} to {after}"
    );
    b.press(" ", "Space", 32, false);
    b.wait_for("space to play", "!document.getElementById('audio').paused");

    // A phone: nothing wider than 360 px, the controls on screen.
    b.phone(360);
    b.wait_for("the phone layout", "window.innerWidth === 360");
    let fits = b.eval(
        "(() => { const w = document.documentElement.scrollWidth; \
         const r = document.getElementById('play').getBoundingClientRect(); \
         const t = document.getElementById('time').getBoundingClientRect(); \
         return [w, r.right, t.right, r.bottom, window.innerHeight]; })()",
    );
    let v: Vec<f64> = fits
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!(v[0] <= 360.0, "the page is {} px wide", v[0]);
    assert!(v[1] <= 360.0 && v[2] <= 360.0, "controls off screen: {v:?}");
    assert!(v[3] <= v[4], "the play button is below the screen: {v:?}");
    if let Some(shot) = std::env::var_os("SONGSWARM_SCREENSHOT") {
        b.screenshot(std::path::Path::new(&shot));
    }
}
