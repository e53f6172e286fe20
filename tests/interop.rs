//! Interoperability with libtorrent (Debian's python3-libtorrent), both ways:
//! libtorrent seeds and `songswarm leech` downloads, and `songswarm seed`
//! serves a libtorrent leecher. Each side verifies every piece; the test then
//! compares the files byte for byte. A single-file song and a multi-file album
//! whose pieces straddle file boundaries. Swarms of several peers are in
//! `interop_swarm.rs`.
//!
//! libtorrent missing is a failure that says to run scripts/install-test-deps.

#[path = "support/content.rs"]
mod content;
#[path = "support/procs.rs"]
mod procs;

use std::path::Path;

use content::{
    album, assert_same_content, make_manifest, song, songswarm, tempdir, with_manifest, Content,
    Maker, DEADLINE,
};
use procs::{lt_peer, require_libtorrent, Proc};
use serde_json::Value;

/// libtorrent seeds `src`; `songswarm leech` downloads into `dst`.
fn libtorrent_to_songswarm(manifest: &Path, content: &Content, src: &Path, dst: &Path) {
    let mut cmd = lt_peer("seed");
    cmd.arg(manifest).arg("--data").arg(src);
    cmd.args(["--listen", "127.0.0.1:0"]);
    let mut seed = Proc::spawn("lt seed", cmd);
    let (_, ready) = seed.expect_event("listening", DEADLINE);
    let lt_addr = ready["addr"].as_str().expect("addr").to_string();
    let lt_hash = ready["info_hash"].as_str().expect("info_hash").to_string();

    let mut cmd = songswarm();
    cmd.arg("leech").arg(manifest).arg("--out").arg(dst);
    cmd.args(["--peer", &lt_addr, "--listen", "127.0.0.1:0", "--json"]);
    let mut leech = Proc::spawn("songswarm leech", cmd);
    let (_, done) = leech.expect_event("done", DEADLINE);
    leech.expect_success(DEADLINE);

    let total = content.total_len(src);
    assert_eq!(done["info_hash"].as_str(), Some(lt_hash.as_str()), "{done}");
    assert_eq!(done["bytes"].as_u64(), Some(total), "{done}");
    assert_same_content(content, src, dst);

    // libtorrent saw a peer download everything from it.
    seed.close_stdin();
    let (_, stats) = seed.expect_event("stats", DEADLINE);
    let uploaded = stats["total_payload_upload"].as_u64().unwrap_or(0);
    assert!(
        uploaded >= total,
        "libtorrent uploaded {uploaded} of {total}: {stats}"
    );
    seed.expect_success(DEADLINE);
}

/// `songswarm seed` serves `src`; libtorrent downloads into `dst`.
fn songswarm_to_libtorrent(manifest: &Path, content: &Content, src: &Path, dst: &Path) {
    let mut cmd = songswarm();
    cmd.arg("seed").arg(manifest).arg("--data").arg(src);
    cmd.args(["--listen", "127.0.0.1:0", "--json"]);
    let mut seed = Proc::spawn("songswarm seed", cmd);
    let (_, ready) = seed.expect_event("listening", DEADLINE);
    let ss_addr = ready["addr"].as_str().expect("addr").to_string();
    let ss_hashes: Vec<&str> = ready["info_hashes"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();

    let mut cmd = lt_peer("leech");
    cmd.arg(manifest).arg("--out").arg(dst);
    cmd.args(["--peer", &ss_addr, "--timeout", "60"]);
    let mut leech = Proc::spawn("lt leech", cmd);
    let (_, started) = leech.expect_event("listening", DEADLINE);
    let lt_hash = started["info_hash"]
        .as_str()
        .expect("info_hash")
        .to_string();
    assert_eq!(
        ss_hashes,
        vec![lt_hash.as_str()],
        "info-hash disagreement: {ready}"
    );
    let (_, done) = leech.expect_event("done", DEADLINE);
    leech.expect_success(DEADLINE);

    let pieces = done["pieces"].as_u64().unwrap_or(0);
    assert!(pieces > 0, "{done}");
    assert_same_content(content, src, dst);
    // The seeder must still be up (a crash after serving is a bug too).
    seed.terminate();
    seed.wait_exit(DEADLINE);
}

#[test]
fn libtorrent_seeds_song_songswarm_leeches() {
    require_libtorrent();
    let (dir, src, content, manifest) = with_manifest(song, Maker::Songswarm);
    libtorrent_to_songswarm(&manifest, &content, &src, &dir.path().join("dst"));
}

#[test]
fn libtorrent_seeds_album_songswarm_leeches() {
    require_libtorrent();
    let (dir, src, content, manifest) = with_manifest(album, Maker::Songswarm);
    libtorrent_to_songswarm(&manifest, &content, &src, &dir.path().join("dst"));
}

#[test]
fn songswarm_seeds_song_libtorrent_leeches() {
    require_libtorrent();
    let (dir, src, content, manifest) = with_manifest(song, Maker::Songswarm);
    songswarm_to_libtorrent(&manifest, &content, &src, &dir.path().join("dst"));
}

#[test]
fn songswarm_seeds_album_libtorrent_leeches() {
    require_libtorrent();
    let (dir, src, content, manifest) = with_manifest(album, Maker::Songswarm);
    songswarm_to_libtorrent(&manifest, &content, &src, &dir.path().join("dst"));
}

/// A manifest written by libtorrent (no `song` metadata, its own piece
/// length) goes both ways: libtorrent → songswarm, then songswarm seeds the
/// copy it downloaded to a fresh libtorrent leecher.
#[test]
fn libtorrent_made_album_goes_both_ways() {
    require_libtorrent();
    let (dir, src, content, manifest) = with_manifest(album, Maker::Libtorrent);
    let middle = dir.path().join("middle");
    libtorrent_to_songswarm(&manifest, &content, &src, &middle);
    songswarm_to_libtorrent(&manifest, &content, &middle, &dir.path().join("dst"));
}

/// The helper itself: libtorrent seeds to libtorrent through `lt_peer.py`, so
/// a failure in the tests above points at songswarm, not at the harness.
#[test]
fn helper_libtorrent_to_libtorrent() {
    require_libtorrent();
    let (dir, src, content, manifest) = with_manifest(album, Maker::Libtorrent);

    let mut cmd = lt_peer("seed");
    cmd.arg(&manifest).arg("--data").arg(&src);
    let mut seed = Proc::spawn("lt seed", cmd);
    let addr = seed.expect_listening(DEADLINE);

    let dst = dir.path().join("dst");
    let mut cmd = lt_peer("leech");
    cmd.arg(&manifest).arg("--out").arg(&dst);
    cmd.args(["--peer", &addr, "--timeout", "60"]);
    let mut leech = Proc::spawn("lt leech", cmd);
    leech.expect_event("done", DEADLINE);
    leech.expect_success(DEADLINE);
    assert_same_content(&content, &src, &dst);
}

/// One songswarm process seeds a song and an album on one port; two
/// libtorrent leechers, one per torrent, are told apart by info-hash.
#[test]
fn songswarm_seeds_two_torrents_on_one_port() {
    require_libtorrent();
    let dir = tempdir();
    let src = dir.path().join("src");
    let song = song(&src);
    let album = album(&src);
    let song_m = dir.path().join("song.torrent");
    let album_m = dir.path().join("album.torrent");
    make_manifest(Maker::Songswarm, &song, &song_m);
    make_manifest(Maker::Songswarm, &album, &album_m);

    let mut cmd = songswarm();
    cmd.arg("seed")
        .arg(&song_m)
        .arg(&album_m)
        .arg("--data")
        .arg(&src);
    cmd.args(["--listen", "127.0.0.1:0", "--json"]);
    let mut seed = Proc::spawn("songswarm seed", cmd);
    let (_, ready) = seed.expect_event("listening", DEADLINE);
    assert_eq!(
        ready["info_hashes"].as_array().map(Vec::len),
        Some(2),
        "{ready}"
    );
    let addr = ready["addr"].as_str().expect("addr").to_string();

    let mut leechers = Vec::new();
    for (name, manifest) in [("song", &song_m), ("album", &album_m)] {
        let mut cmd = lt_peer("leech");
        cmd.arg(manifest).arg("--out").arg(dir.path().join(name));
        cmd.args(["--peer", &addr, "--timeout", "60"]);
        leechers.push(Proc::spawn(&format!("lt leech {name}"), cmd));
    }
    for l in leechers.iter_mut() {
        l.expect_event("done", DEADLINE);
        l.expect_success(DEADLINE);
    }
    assert_same_content(&song, &src, &dir.path().join("song"));
    assert_same_content(&album, &src, &dir.path().join("album"));
    seed.terminate();
    seed.wait_exit(DEADLINE);
}
