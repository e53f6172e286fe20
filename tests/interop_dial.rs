//! A songswarm seeder dials out: a libtorrent leecher that is told of no
//! peer (it only accepts connections, as clients that ignore loopback or LAN
//! peers do) gets the song from `seed --peer`, and from `leech --seed-after
//! --peer` whose data is complete before it starts.
//!
//! libtorrent missing is a failure that says to run scripts/install-test-deps.

#[path = "support/content.rs"]
mod content;
#[path = "support/procs.rs"]
mod procs;

use std::path::Path;
use std::process::Command;

use content::{assert_same_content, song, songswarm, with_manifest, Maker, DEADLINE};
use procs::{lt_peer, require_libtorrent, Proc};

/// A libtorrent leecher of `manifest` into `out` that dials nobody; its
/// address.
fn listening_leecher(manifest: &Path, out: &Path) -> (Proc, String) {
    let mut cmd = lt_peer("leech");
    cmd.arg(manifest).arg("--out").arg(out);
    cmd.args(["--timeout", "60"]);
    let mut lt = Proc::spawn("lt leech", cmd);
    let addr = lt.expect_listening(DEADLINE);
    (lt, addr)
}

/// Runs the songswarm `cmd` until the libtorrent leecher `lt` is done.
fn serve_until_done(cmd: Command, mut lt: Proc) {
    let mut sw = Proc::spawn("songswarm", cmd);
    sw.expect_event("listening", DEADLINE);
    lt.expect_event("done", DEADLINE);
    lt.expect_success(DEADLINE);
    sw.terminate();
    sw.wait_exit(DEADLINE);
}

#[test]
fn seed_dials_a_leecher_that_only_accepts() {
    require_libtorrent();
    let (dir, src, content, manifest) = with_manifest(song, Maker::Songswarm);
    let dst = dir.path().join("dst");
    let (lt, addr) = listening_leecher(&manifest, &dst);

    let mut cmd = songswarm();
    cmd.arg("seed").arg(&manifest).arg("--data").arg(&src);
    cmd.args(["--listen", "127.0.0.1:0", "--json", "--peer", &addr]);
    serve_until_done(cmd, lt);
    assert_same_content(&content, &src, &dst);
}

#[test]
fn leech_seed_after_with_complete_data_dials_a_leecher_that_only_accepts() {
    require_libtorrent();
    let (dir, src, content, manifest) = with_manifest(song, Maker::Songswarm);
    let dst = dir.path().join("dst");
    let (lt, addr) = listening_leecher(&manifest, &dst);

    // `--out` already holds the whole song: nothing to download.
    let mut cmd = songswarm();
    cmd.arg("leech").arg(&manifest).arg("--out").arg(&src);
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--json",
        "--seed-after",
        "--peer",
        &addr,
    ]);
    serve_until_done(cmd, lt);
    assert_same_content(&content, &src, &dst);
}
