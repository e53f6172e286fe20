//! The closing `stats` line of a seeder counts every byte it sent: stopped
//! right after its only leecher finished, it reports exactly what that
//! leecher received (not the count of up to half a second before).

#[path = "support/content.rs"]
mod content;
#[path = "support/procs.rs"]
mod procs;

use content::{song, songswarm, with_manifest, Maker, DEADLINE};
use procs::Proc;

#[test]
fn the_seeders_stats_line_is_exact_at_once() {
    let (dir, src, content, manifest) = with_manifest(song, Maker::Songswarm);
    let total = content.total_len(&src);

    let mut cmd = songswarm();
    cmd.arg("seed").arg(&manifest).arg("--data").arg(&src);
    cmd.args(["--listen", "127.0.0.1:0", "--json"]);
    let mut seed = Proc::spawn("songswarm seed", cmd);
    let addr = seed.expect_listening(DEADLINE);

    let mut cmd = songswarm();
    cmd.arg("leech")
        .arg(&manifest)
        .arg("--out")
        .arg(dir.path().join("dst"));
    cmd.args(["--peer", &addr, "--listen", "127.0.0.1:0", "--json"]);
    let mut leech = Proc::spawn("songswarm leech", cmd);
    let (_, done) = leech.expect_event("done", DEADLINE);
    seed.terminate();
    let (_, stats) = seed.expect_event("stats", DEADLINE);
    seed.expect_success(DEADLINE);
    leech.expect_success(DEADLINE);

    let received = done["downloaded_bytes"].as_u64().expect("downloaded_bytes");
    assert_eq!(received, total, "the leecher got a block twice: {done}");
    assert_eq!(
        stats["uploaded_bytes"].as_u64(),
        Some(received),
        "the seeder's stats line: {stats}"
    );
}
