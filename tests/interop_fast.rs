//! The fast extension (BEP 6) with libtorrent, both ways, with it and
//! without it (`--no-fast-extension`): the album goes through every time,
//! and libtorrent's own wire log shows which way it went (have-all, or a
//! bitfield).
//!
//! libtorrent missing is a failure that says to run scripts/install-test-deps.

#[path = "support/content.rs"]
mod content;
#[path = "support/procs.rs"]
mod procs;

use content::{album, assert_same_content, songswarm, with_manifest, Maker, DEADLINE};
use procs::{lt_peer, require_libtorrent, Proc};

/// libtorrent's log of the messages on the wire, for one transfer.
fn wire_log(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).expect("libtorrent's peer log")
}

/// `songswarm seed` (no super-seeding, so a complete seed says so at once)
/// serves a libtorrent leecher.
fn songswarm_seeds(fast: bool) -> String {
    require_libtorrent();
    let (dir, src, content, manifest) = with_manifest(album, Maker::Songswarm);
    let mut cmd = songswarm();
    cmd.arg("seed").arg(&manifest).arg("--data").arg(&src);
    cmd.args(["--listen", "127.0.0.1:0", "--json", "--super-seed", "off"]);
    if !fast {
        cmd.arg("--no-fast-extension");
    }
    let mut seed = Proc::spawn("songswarm seed", cmd);
    let addr = seed.expect_listening(DEADLINE);
    let log = dir.path().join("lt.log");
    let mut cmd = lt_peer("leech");
    cmd.arg(&manifest).arg("--out").arg(dir.path().join("dst"));
    cmd.args(["--peer", &addr, "--timeout", "60", "--peer-log"])
        .arg(&log);
    let mut lt = Proc::spawn("lt leech", cmd);
    lt.expect_event("done", DEADLINE);
    lt.expect_success(DEADLINE);
    assert_same_content(&content, &src, &dir.path().join("dst"));
    seed.terminate();
    seed.wait_exit(DEADLINE);
    wire_log(&log)
}

/// libtorrent seeds; `songswarm leech` downloads.
fn libtorrent_seeds(fast: bool) -> String {
    require_libtorrent();
    let (dir, src, content, manifest) = with_manifest(album, Maker::Songswarm);
    let log = dir.path().join("lt.log");
    let mut cmd = lt_peer("seed");
    cmd.arg(&manifest)
        .arg("--data")
        .arg(&src)
        .arg("--peer-log")
        .arg(&log);
    let mut seed = Proc::spawn("lt seed", cmd);
    let addr = seed.expect_listening(DEADLINE);
    let mut cmd = songswarm();
    cmd.arg("leech")
        .arg(&manifest)
        .arg("--out")
        .arg(dir.path().join("dst"));
    cmd.args(["--peer", &addr, "--listen", "127.0.0.1:0", "--json"]);
    if !fast {
        cmd.arg("--no-fast-extension");
    }
    let mut leech = Proc::spawn("songswarm leech", cmd);
    leech.expect_event("done", DEADLINE);
    leech.expect_success(DEADLINE);
    assert_same_content(&content, &src, &dir.path().join("dst"));
    seed.close_stdin();
    seed.expect_success(DEADLINE);
    wire_log(&log)
}

#[test]
fn songswarm_seeds_libtorrent_with_the_fast_extension() {
    let log = songswarm_seeds(true);
    assert!(log.contains("HAVE_ALL"), "no have-all on the wire:\n{log}");
}

#[test]
fn songswarm_seeds_libtorrent_without_the_fast_extension() {
    let log = songswarm_seeds(false);
    assert!(!log.contains("HAVE_ALL"), "have-all without BEP 6:\n{log}");
    assert!(log.contains("BITFIELD"), "no bitfield on the wire:\n{log}");
}

#[test]
fn libtorrent_seeds_songswarm_with_the_fast_extension() {
    let log = libtorrent_seeds(true);
    assert!(log.contains("HAVE_ALL"), "no have-all on the wire:\n{log}");
}

#[test]
fn libtorrent_seeds_songswarm_without_the_fast_extension() {
    let log = libtorrent_seeds(false);
    assert!(!log.contains("HAVE_ALL"), "have-all without BEP 6:\n{log}");
    assert!(log.contains("BITFIELD"), "no bitfield on the wire:\n{log}");
}
