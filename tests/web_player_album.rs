//! The web player in headless Chromium over an album of three real FLAC
//! songs, all verified, served by the HTTP room in this process: next and
//! previous (buttons and Shift+arrows) stay within the album, and a song
//! that ends is followed by the next. Without chromium or ffmpeg the test
//! skips loudly, or fails when SONGSWARM_REQUIRE_PLAYERS is set.

#[path = "support/cdp.rs"]
mod cdp;
#[path = "support/e2e_harness.rs"]
mod e2e_harness;
#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/http_fixture.rs"]
mod http_fixture;
#[path = "support/manifest_bencode.rs"]
mod manifest_bencode;
#[path = "support/players.rs"]
mod players;

use cdp::Browser;
use http_fixture::{serve, FileSpec};
use players::{have, make_song, Format};

/// JavaScript: the index of the song the audio element plays.
const PLAYING: &str = "+document.getElementById('audio').src.split('/').pop()";

fn playing(b: &mut Browser, index: u32) {
    b.wait_for(
        &format!("song {index} to play"),
        &format!(
            "{PLAYING} === {index} && !document.getElementById('audio').paused && \
             document.getElementById('audio').currentTime > 0"
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_and_previous_stay_within_the_album_and_an_ending_song_moves_on() {
    if !(have("ffmpeg") && have("chromium")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<FileSpec> = ["01 one.flac", "02 two.flac", "03 three.flac"]
        .iter()
        .map(|name| {
            let song = make_song(dir.path(), name, Format::Flac, 4);
            FileSpec {
                name: name.to_string(),
                data: std::fs::read(song).unwrap(),
                codec: Some("flac"),
            }
        })
        .collect();
    let f = serve(&files, 32 * 1024).await;
    f.verify_all();
    let page = format!("http://{}/", f.addr);
    tokio::task::spawn_blocking(move || {
        let mut b = Browser::start();
        b.open(&page);
        b.wait_for("the album", "document.querySelectorAll('li.song').length === 3");
        let heading = b.eval("document.querySelector('.torrent h2').textContent");
        assert_eq!(heading, "Test Album");
        b.eval("document.querySelector('li.song').click(), true");
        playing(&mut b, 0);
        assert_eq!(b.eval("document.getElementById('prev').disabled"), true);
        b.eval("document.getElementById('next').click(), true");
        playing(&mut b, 1);
        b.press("ArrowRight", "ArrowRight", 39, true);
        playing(&mut b, 2);
        assert_eq!(b.eval("document.getElementById('next').disabled"), true);
        b.press("ArrowLeft", "ArrowLeft", 37, true);
        playing(&mut b, 1);
        b.eval("document.getElementById('prev').click(), true");
        playing(&mut b, 0);
        // Near the end of song 0: when it ends, song 1 follows.
        b.wait_for("the length", "isFinite(document.getElementById('audio').duration)");
        b.eval("(a => { a.currentTime = a.duration - 0.5; return true; })(document.getElementById('audio'))");
        playing(&mut b, 1);
        let current = b.eval("document.querySelector('li.song.current').dataset.index");
        assert_eq!(current, "1", "the list marks the song that plays");
    })
    .await
    .unwrap();
}
