//! Interoperability with libtorrent in swarms of several peers: songswarm
//! and libtorrent leechers completing each other, songswarm fetching from two
//! partial libtorrent peers, a songswarm seed feeding libtorrent leechers that
//! trade, and processes killed mid-transfer on either side.
//!
//! Where a test needs pieces to flow between particular peers it arranges it
//! with the data each peer starts with (`copy_pieces`), not with timing.

#[path = "support/content.rs"]
mod content;
#[path = "support/procs.rs"]
mod procs;

use content::{
    album, assert_same_content, copy_pieces, make_manifest, song, songswarm, tempdir,
    with_manifest, Content, Maker, DEADLINE,
};
use procs::{free_ports, lt_peer, require_libtorrent, Proc};

/// Piece length of the songs in these tests: 49 pieces, so halves are real.
const PIECE: u64 = 65_536;

/// A song with `PIECE`-long pieces and its songswarm-made manifest.
fn song_with_manifest(dir: &std::path::Path) -> (Content, std::path::PathBuf) {
    let content = Content {
        piece_length: Some(PIECE),
        ..song(&dir.join("src"))
    };
    let manifest = dir.join("song.torrent");
    make_manifest(Maker::Songswarm, &content, &manifest);
    (content, manifest)
}

/// A songswarm leecher holding the first half of a song and a libtorrent
/// leecher holding the second half, and no seeder: each can only finish by
/// downloading from the other, so songswarm must serve partial data
/// (bitfield, HAVE, unchoke while leeching) to libtorrent and take pieces from
/// a libtorrent leecher.
#[test]
fn songswarm_and_libtorrent_leechers_complete_each_other() {
    require_libtorrent();
    let dir = tempdir();
    let src = dir.path().join("src");
    let (content, manifest) = song_with_manifest(dir.path());
    let rel = &content.files[0];
    let total = content.total_len(&src);
    let half = total.div_ceil(PIECE) / 2;
    let (ss_dir, lt_dir) = (dir.path().join("ss"), dir.path().join("lt"));
    copy_pieces(rel, &src, &ss_dir, PIECE, |i| i < half);
    copy_pieces(rel, &src, &lt_dir, PIECE, |i| i >= half);

    let ports = free_ports(2);
    let ss_addr = format!("127.0.0.1:{}", ports[0]);
    let lt_addr = format!("127.0.0.1:{}", ports[1]);
    let mut cmd = songswarm();
    cmd.arg("leech").arg(&manifest).arg("--out").arg(&ss_dir);
    cmd.args(["--listen", &ss_addr, "--peer", &lt_addr]);
    cmd.args(["--seed-after", "--json"]);
    let mut ss = Proc::spawn("songswarm leech", cmd);
    let mut cmd = lt_peer("leech");
    cmd.arg(&manifest).arg("--out").arg(&lt_dir);
    cmd.args(["--listen", &lt_addr, "--peer", &ss_addr]);
    cmd.args(["--linger", "--timeout", "60"]);
    let mut lt = Proc::spawn("lt leech", cmd);

    let (_, ss_done) = ss.expect_event("done", DEADLINE);
    lt.expect_event("done", DEADLINE);
    assert_same_content(&content, &src, &ss_dir);
    assert_same_content(&content, &src, &lt_dir);
    let resumed = ss_done["resumed_pieces"].as_u64();
    assert_eq!(resumed, Some(half), "songswarm kept its half: {ss_done}");

    lt.close_stdin();
    let (_, lt_stats) = lt.expect_event("stats", DEADLINE);
    ss.terminate();
    ss.wait_exit(DEADLINE);
    let lt_up = lt_stats["total_payload_upload"].as_u64().unwrap_or(0);
    let lt_down = lt_stats["total_payload_download"].as_u64().unwrap_or(0);
    let ss_half = half * PIECE;
    assert!(
        lt_up >= total - ss_half,
        "libtorrent sent {lt_up}: {lt_stats}"
    );
    assert!(
        lt_down >= ss_half,
        "songswarm sent libtorrent {lt_down}: {lt_stats}"
    );
}

/// songswarm leeches an album from two libtorrent peers that each hold half
/// of it (by piece, across file boundaries), so it must take blocks from both.
#[test]
fn songswarm_leeches_from_two_partial_libtorrent_peers() {
    require_libtorrent();
    let (dir, src, content, manifest) = with_manifest(album, Maker::Songswarm);
    let piece = content.piece_length.expect("album piece length");
    let total = content.total_len(&src);
    let half = total.div_ceil(piece) / 2;

    // Lay the album out as one stream, split it by piece into two copies.
    let mut stream = Vec::new();
    for rel in &content.files {
        stream.extend(std::fs::read(src.join(rel)).expect("album file"));
    }
    let mut seeds = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..2u64 {
        let data = dir.path().join(format!("half{i}"));
        let mut at = 0usize;
        for rel in &content.files {
            let len = std::fs::metadata(src.join(rel)).expect("len").len() as usize;
            let mut bytes = stream[at..at + len].to_vec();
            for (k, b) in bytes.iter_mut().enumerate() {
                let index = (at + k) as u64 / piece;
                if (index < half) != (i == 0) {
                    *b = 0;
                }
            }
            std::fs::create_dir_all(data.join(rel).parent().expect("parent")).expect("mkdir");
            std::fs::write(data.join(rel), bytes).expect("write half");
            at += len;
        }
        let mut cmd = lt_peer("seed");
        cmd.arg(&manifest).arg("--data").arg(&data);
        cmd.arg("--partial");
        let mut s = Proc::spawn(&format!("lt half {i}"), cmd);
        let (_, ready) = s.expect_event("listening", DEADLINE);
        assert!(
            ready["pieces"].as_u64().unwrap_or(0) > 0,
            "half {i} is empty: {ready}"
        );
        addrs.push(ready["addr"].as_str().expect("addr").to_string());
        seeds.push(s);
    }
    let dst = dir.path().join("dst");
    let mut cmd = songswarm();
    cmd.arg("leech").arg(&manifest).arg("--out").arg(&dst);
    cmd.args(["--listen", "127.0.0.1:0", "--json"]);
    for a in &addrs {
        cmd.args(["--peer", a]);
    }
    let mut leech = Proc::spawn("songswarm leech", cmd);
    let (_, done) = leech.expect_event("done", DEADLINE);
    leech.expect_success(DEADLINE);
    assert_same_content(&content, &src, &dst);
    assert_eq!(done["peers"].as_u64(), Some(2), "both halves seen: {done}");

    for (i, s) in seeds.iter_mut().enumerate() {
        s.close_stdin();
        let (_, stats) = s.expect_event("stats", DEADLINE);
        let up = stats["total_payload_upload"].as_u64().unwrap_or(0);
        assert!(up > 0, "half {i} sent nothing: {stats}");
    }
}

/// A libtorrent leecher killed mid-download (its connection dies without a
/// goodbye) leaves songswarm's seeder serving: a new libtorrent process on
/// the same directory finishes the download from it.
#[test]
fn songswarm_seed_survives_a_killed_libtorrent_leecher() {
    require_libtorrent();
    let dir = tempdir();
    let src = dir.path().join("src");
    let (content, manifest) = song_with_manifest(dir.path());

    // Capped so the kill lands mid-transfer (~3 s for the whole song).
    let mut cmd = songswarm();
    cmd.arg("seed").arg(&manifest).arg("--data").arg(&src);
    cmd.args(["--listen", "127.0.0.1:0", "--json"]);
    cmd.args(["--max-upload-rate", "1000000"]);
    let mut seed = Proc::spawn("songswarm seed", cmd);
    let addr = seed.expect_listening(DEADLINE);

    let dst = dir.path().join("dst");
    let leech = |name: &str| {
        let mut cmd = lt_peer("leech");
        cmd.arg(&manifest).arg("--out").arg(&dst);
        cmd.args(["--peer", &addr, "--progress", "--timeout", "60"]);
        Proc::spawn(name, cmd)
    };
    let mut first = leech("lt leech (killed)");
    loop {
        let (_, p) = first.expect_event("progress", DEADLINE);
        let (have, all) = (p["pieces"].as_u64(), p["num_pieces"].as_u64());
        if let (Some(have), Some(all)) = (have, all) {
            assert!(have < all, "finished before it could be killed: {p}");
            if have >= all / 4 {
                break;
            }
        }
    }
    drop(first); // SIGKILL

    let mut second = leech("lt leech (again)");
    second.expect_event("done", DEADLINE);
    second.expect_success(DEADLINE);
    assert_same_content(&content, &src, &dst);
    seed.terminate();
    seed.wait_exit(DEADLINE);
}

/// `songswarm leech` killed mid-download resumes: a new process on the same
/// directory re-verifies what is on disk and fetches only the rest from
/// libtorrent.
#[test]
fn songswarm_leech_resumes_after_kill() {
    require_libtorrent();
    let dir = tempdir();
    let src = dir.path().join("src");
    let (content, manifest) = song_with_manifest(dir.path());
    let total = content.total_len(&src);

    let mut cmd = lt_peer("seed");
    cmd.arg(&manifest).arg("--data").arg(&src);
    cmd.args(["--upload-rate", "1000000"]);
    cmd.args(["--notify-upload", &(total / 2).to_string()]);
    let mut seed = Proc::spawn("lt seed", cmd);
    let addr = seed.expect_listening(DEADLINE);

    let dst = dir.path().join("dst");
    let leech = |name: &str| {
        let mut cmd = songswarm();
        cmd.arg("leech").arg(&manifest).arg("--out").arg(&dst);
        cmd.args(["--peer", &addr, "--listen", "127.0.0.1:0", "--json"]);
        Proc::spawn(name, cmd)
    };
    let first = leech("songswarm leech (killed)");
    seed.expect_event("uploaded", DEADLINE);
    drop(first); // SIGKILL, half-way

    let mut second = leech("songswarm leech (again)");
    let (_, done) = second.expect_event("done", DEADLINE);
    second.expect_success(DEADLINE);
    assert_same_content(&content, &src, &dst);
    let resumed = done["resumed_pieces"].as_u64().unwrap_or(0);
    let downloaded = done["downloaded_bytes"].as_u64().unwrap_or(u64::MAX);
    assert!(resumed > 0, "nothing kept from the first run: {done}");
    assert!(downloaded < total, "fetched everything again: {done}");
}

/// A rate-capped songswarm seed (which announces pieces peer by peer rather
/// than sending a full bitfield) feeds two libtorrent leechers that know each
/// other: both finish, and they trade pieces between themselves.
#[test]
fn songswarm_seeds_two_libtorrent_leechers_that_trade() {
    require_libtorrent();
    let dir = tempdir();
    let src = dir.path().join("src");
    let (content, manifest) = song_with_manifest(dir.path());

    let mut cmd = songswarm();
    cmd.arg("seed").arg(&manifest).arg("--data").arg(&src);
    cmd.args(["--listen", "127.0.0.1:0", "--json"]);
    // ~6 s for one copy: the leechers meet long before either could finish.
    cmd.args(["--max-upload-rate", "500000"]);
    let mut seed = Proc::spawn("songswarm seed", cmd);
    let seed_addr = seed.expect_listening(DEADLINE);

    let ports = free_ports(2);
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut leechers = Vec::new();
    for (i, me) in addrs.iter().enumerate() {
        let other = &addrs[1 - i];
        let mut cmd = lt_peer("leech");
        cmd.arg(&manifest)
            .arg("--out")
            .arg(dir.path().join(format!("lt{i}")));
        cmd.args(["--listen", me, "--peer", &seed_addr, "--peer", other]);
        cmd.args(["--linger", "--progress", "--timeout", "60"]);
        leechers.push(Proc::spawn(&format!("lt leech {i}"), cmd));
    }
    for l in leechers.iter_mut() {
        l.expect_event("done", DEADLINE);
    }
    let mut traded = 0;
    for (i, l) in leechers.iter_mut().enumerate() {
        assert_same_content(&content, &src, &dir.path().join(format!("lt{i}")));
        l.close_stdin();
        let (_, stats) = l.expect_event("stats", DEADLINE);
        traded += stats["total_payload_upload"].as_u64().unwrap_or(0);
        l.expect_success(DEADLINE);
    }
    assert!(traded > 0, "the libtorrent leechers never traded");
    seed.terminate();
    // Not part of the CLI contract, so only reported when present.
    if let Ok((_, stats)) = seed.try_event("stats", DEADLINE) {
        eprintln!("songswarm seed: {stats}, leechers traded {traded} bytes");
    }
    seed.wait_exit(DEADLINE);
}
