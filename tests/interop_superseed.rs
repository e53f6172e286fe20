//! Super-seeding never stalls a leecher that skips HAVEs: libtorrent with
//! `send_redundant_have = false` tells a seed of no piece it completes
//! (BEP 3 allows it; other clients do it), and still gets the whole song
//! from a songswarm seed, alone under `--super-seed on`, two at once
//! under the default `auto`, and alone in a new `auto` seed's first
//! moments, when it is still super-seeded (it is offered pieces as it
//! asks for them; `scheduler_superseed` shows it never runs dry).
//!
//! libtorrent missing is a failure that says to run scripts/install-test-deps.

#[path = "support/content.rs"]
mod content;
#[path = "support/procs.rs"]
mod procs;

use content::{assert_same_content, song, songswarm, with_manifest, Maker, DEADLINE};
use procs::{lt_peer, require_libtorrent, Proc};

/// A songswarm seed with `flags` serves `leechers` libtorrent leechers
/// that send no redundant HAVE; each must finish with the same bytes.
fn silent_leechers_finish(flags: &[&str], leechers: usize) {
    require_libtorrent();
    let (dir, src, content, manifest) = with_manifest(song, Maker::Songswarm);

    let mut cmd = songswarm();
    cmd.arg("seed").arg(&manifest).arg("--data").arg(&src);
    cmd.args(["--listen", "127.0.0.1:0", "--json"]).args(flags);
    let mut seed = Proc::spawn("songswarm seed", cmd);
    let (_, ready) = seed.expect_event("listening", DEADLINE);
    let addr = ready["addr"].as_str().expect("addr").to_string();

    let mut lts: Vec<Proc> = (0..leechers)
        .map(|i| {
            let mut cmd = lt_peer("leech");
            cmd.arg(&manifest)
                .arg("--out")
                .arg(dir.path().join(format!("dst{i}")));
            cmd.args(["--peer", &addr, "--timeout", "60", "--no-redundant-have"]);
            Proc::spawn(&format!("lt leech {i}"), cmd)
        })
        .collect();
    for lt in lts.iter_mut() {
        lt.expect_event("done", DEADLINE);
        lt.expect_success(DEADLINE);
    }
    for i in 0..leechers {
        assert_same_content(&content, &src, &dir.path().join(format!("dst{i}")));
    }
    seed.terminate();
    seed.wait_exit(DEADLINE);
}

#[test]
fn a_lone_leecher_without_haves_finishes_from_a_super_seed() {
    silent_leechers_finish(&["--super-seed", "on"], 1);
}

#[test]
fn two_leechers_without_haves_finish_from_an_auto_seed() {
    silent_leechers_finish(&[], 2);
}

#[test]
fn a_lone_leecher_without_haves_finishes_from_a_new_auto_seed() {
    silent_leechers_finish(&[], 1);
}
