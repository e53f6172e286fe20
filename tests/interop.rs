//! Interoperability with libtorrent (Debian's python3-libtorrent), both ways:
//! libtorrent seeds and `songswarm leech` downloads, and `songswarm seed`
//! serves a libtorrent leecher. Each side verifies every piece; the test then
//! compares the files byte for byte. A single-file song and a multi-file album
//! whose pieces straddle file boundaries.
//!
//! libtorrent missing is a failure that says to run scripts/install-test-deps.

#[path = "support/procs.rs"]
mod procs;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use procs::{assert_same_file, lt_peer, require_libtorrent, run_ok, write_random, Proc};
use serde_json::Value;

/// Generous for a few MB on loopback; only there to turn a hang into a failure.
const DEADLINE: Duration = Duration::from_secs(60);

fn songswarm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_songswarm"))
}

/// Some data to share, laid out under `root` the way a seeder expects it.
struct Content {
    /// The file or album directory given to `create` (under `root`).
    input: PathBuf,
    /// Paths of the files relative to `root` (they include the torrent name).
    files: Vec<PathBuf>,
    /// `--piece-length` for `create`; `None` lets the tool choose.
    piece_length: Option<u64>,
}

/// A 3 MiB song plus an odd tail, so the last piece is short.
fn song(root: &Path) -> Content {
    let rel = PathBuf::from("song.flac");
    write_random(&root.join(&rel), 3 * 1024 * 1024 + 12_345, 1);
    Content {
        input: root.join(&rel),
        files: vec![rel],
        piece_length: None,
    }
}

/// An album of odd-sized tracks with 64 KiB pieces: pieces span file ends, one
/// file is a single byte inside a piece, one is exactly a block plus one.
fn album(root: &Path) -> Content {
    let sizes: [(&str, u64); 5] = [
        ("01 opening.flac", 1_000_003),
        ("02 interlude.flac", 16_385),
        ("03 silence.flac", 1),
        ("04 theme.flac", 262_143),
        ("05 coda.flac", 777_777),
    ];
    let mut files = Vec::new();
    for (i, (name, len)) in sizes.iter().enumerate() {
        let rel = Path::new("album").join(name);
        write_random(&root.join(&rel), *len, 100 + i as u64);
        files.push(rel);
    }
    Content {
        input: root.join("album"),
        files,
        piece_length: Some(65_536),
    }
}

/// Who writes the manifest.
#[derive(Clone, Copy)]
enum Maker {
    Songswarm,
    Libtorrent,
}

fn make_manifest(maker: Maker, content: &Content, out: &Path) {
    match maker {
        Maker::Songswarm => {
            let mut cmd = songswarm();
            cmd.arg("create").arg(&content.input).arg("--out").arg(out);
            if let Some(len) = content.piece_length {
                cmd.arg("--piece-length").arg(len.to_string());
            }
            run_ok("songswarm create", cmd);
        }
        Maker::Libtorrent => {
            let mut cmd = lt_peer("create");
            cmd.arg(&content.input).arg("--out").arg(out);
            cmd.arg("--piece-length")
                .arg(content.piece_length.unwrap_or(262_144).to_string());
            run_ok("lt_peer.py create", cmd);
        }
    }
    assert!(out.is_file(), "no manifest written at {}", out.display());
}

fn assert_same_content(content: &Content, src: &Path, dst: &Path) {
    for rel in &content.files {
        assert_same_file(&src.join(rel), &dst.join(rel));
    }
}

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

    let total: u64 = content
        .files
        .iter()
        .map(|f| std::fs::metadata(src.join(f)).expect("source file").len())
        .sum();
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

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("songswarm-interop-")
        .tempdir()
        .expect("tempdir")
}

#[test]
fn libtorrent_seeds_song_songswarm_leeches() {
    require_libtorrent();
    let dir = tempdir();
    let src = dir.path().join("src");
    let content = song(&src);
    let manifest = dir.path().join("song.torrent");
    make_manifest(Maker::Songswarm, &content, &manifest);
    libtorrent_to_songswarm(&manifest, &content, &src, &dir.path().join("dst"));
}

#[test]
fn libtorrent_seeds_album_songswarm_leeches() {
    require_libtorrent();
    let dir = tempdir();
    let src = dir.path().join("src");
    let content = album(&src);
    let manifest = dir.path().join("album.torrent");
    make_manifest(Maker::Songswarm, &content, &manifest);
    libtorrent_to_songswarm(&manifest, &content, &src, &dir.path().join("dst"));
}

#[test]
fn songswarm_seeds_song_libtorrent_leeches() {
    require_libtorrent();
    let dir = tempdir();
    let src = dir.path().join("src");
    let content = song(&src);
    let manifest = dir.path().join("song.torrent");
    make_manifest(Maker::Songswarm, &content, &manifest);
    songswarm_to_libtorrent(&manifest, &content, &src, &dir.path().join("dst"));
}

#[test]
fn songswarm_seeds_album_libtorrent_leeches() {
    require_libtorrent();
    let dir = tempdir();
    let src = dir.path().join("src");
    let content = album(&src);
    let manifest = dir.path().join("album.torrent");
    make_manifest(Maker::Songswarm, &content, &manifest);
    songswarm_to_libtorrent(&manifest, &content, &src, &dir.path().join("dst"));
}

/// A manifest written by libtorrent (no `song` metadata, its own piece
/// length) goes both ways: libtorrent → songswarm, then songswarm seeds the
/// copy it downloaded to a fresh libtorrent leecher.
#[test]
fn libtorrent_made_album_goes_both_ways() {
    require_libtorrent();
    let dir = tempdir();
    let src = dir.path().join("src");
    let content = album(&src);
    let manifest = dir.path().join("album.torrent");
    make_manifest(Maker::Libtorrent, &content, &manifest);
    let middle = dir.path().join("middle");
    libtorrent_to_songswarm(&manifest, &content, &src, &middle);
    songswarm_to_libtorrent(&manifest, &content, &middle, &dir.path().join("dst"));
}

/// The helper itself: libtorrent seeds to libtorrent through `lt_peer.py`, so
/// a failure in the tests above points at songswarm, not at the harness.
#[test]
fn helper_libtorrent_to_libtorrent() {
    require_libtorrent();
    let dir = tempdir();
    let src = dir.path().join("src");
    let content = album(&src);
    let manifest = dir.path().join("album.torrent");
    make_manifest(Maker::Libtorrent, &content, &manifest);

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

/// A mixed swarm: a rate-capped libtorrent seeder, and a songswarm leecher and
/// a libtorrent leecher that know each other. Pieces must flow both ways
/// between the leechers: songswarm serves partial data (bitfield, HAVE,
/// unchoke while downloading) to libtorrent, and takes pieces from a
/// libtorrent leecher.
#[test]
fn songswarm_and_libtorrent_leechers_trade_pieces() {
    require_libtorrent();
    let dir = tempdir();
    let src = dir.path().join("src");
    let content = song(&src);
    let total = std::fs::metadata(src.join(&content.files[0]))
        .expect("song")
        .len();
    let manifest = dir.path().join("song.torrent");
    let content = Content {
        piece_length: Some(65_536),
        ..content
    };
    make_manifest(Maker::Songswarm, &content, &manifest);

    // 1 MB/s from the seeder: ~3 s for one copy, plenty of time to trade.
    let mut cmd = lt_peer("seed");
    cmd.arg(&manifest).arg("--data").arg(&src);
    cmd.args(["--upload-rate", "1000000"]);
    let mut seed = Proc::spawn("lt seed", cmd);
    let seed_addr = seed.expect_listening(DEADLINE);

    let ports = free_ports(2);
    let ss_addr = format!("127.0.0.1:{}", ports[0]);
    let lt_addr = format!("127.0.0.1:{}", ports[1]);
    let mut cmd = songswarm();
    cmd.arg("leech")
        .arg(&manifest)
        .arg("--out")
        .arg(dir.path().join("ss"));
    cmd.args([
        "--listen", &ss_addr, "--peer", &seed_addr, "--peer", &lt_addr,
    ]);
    cmd.args(["--seed-after", "--json"]);
    let mut ss = Proc::spawn("songswarm leech", cmd);
    let mut cmd = lt_peer("leech");
    cmd.arg(&manifest).arg("--out").arg(dir.path().join("lt"));
    cmd.args([
        "--listen", &lt_addr, "--peer", &seed_addr, "--peer", &ss_addr,
    ]);
    cmd.args(["--linger", "--timeout", "60"]);
    let mut lt = Proc::spawn("lt leech", cmd);

    let (_, ss_done) = ss.expect_event("done", DEADLINE);
    lt.expect_event("done", DEADLINE);
    assert_same_content(&content, &src, &dir.path().join("ss"));
    assert_same_content(&content, &src, &dir.path().join("lt"));

    lt.close_stdin();
    let (_, lt_stats) = lt.expect_event("stats", DEADLINE);
    seed.close_stdin();
    let (_, seed_stats) = seed.expect_event("stats", DEADLINE);
    ss.terminate();
    ss.wait_exit(DEADLINE);

    let seeded = seed_stats["total_payload_upload"].as_u64().unwrap_or(0);
    let lt_up = lt_stats["total_payload_upload"].as_u64().unwrap_or(0);
    let ss_up = ss_done["uploaded_bytes"].as_u64().unwrap_or(0);
    eprintln!("seeder sent {seeded}, libtorrent leecher sent {lt_up}, songswarm leecher sent {ss_up} (file {total})");
    assert!(lt_up > 0, "libtorrent sent songswarm nothing: {lt_stats}");
    assert!(
        ss_up > 0,
        "songswarm sent libtorrent nothing before it finished: {ss_done}"
    );
}

/// `n` free loopback ports, found by binding and releasing them.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
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

/// songswarm leeches an album from two libtorrent seeders at once and must
/// take blocks from both (each is capped so neither alone is enough).
#[test]
fn songswarm_leeches_from_two_libtorrent_seeders() {
    require_libtorrent();
    let dir = tempdir();
    let src = dir.path().join("src");
    let content = album(&src);
    let manifest = dir.path().join("album.torrent");
    make_manifest(Maker::Songswarm, &content, &manifest);

    let mut seeds = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..2 {
        let mut cmd = lt_peer("seed");
        cmd.arg(&manifest).arg("--data").arg(&src);
        cmd.args(["--upload-rate", "1000000"]);
        let mut s = Proc::spawn(&format!("lt seed {i}"), cmd);
        addrs.push(s.expect_listening(DEADLINE));
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
    assert_eq!(done["peers"].as_u64(), Some(2), "both seeders seen: {done}");

    for (i, s) in seeds.iter_mut().enumerate() {
        s.close_stdin();
        let (_, stats) = s.expect_event("stats", DEADLINE);
        let up = stats["total_payload_upload"].as_u64().unwrap_or(0);
        assert!(up > 0, "seeder {i} sent nothing: {stats}");
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
    let content = Content {
        piece_length: Some(65_536),
        ..song(&src)
    };
    let manifest = dir.path().join("song.torrent");
    make_manifest(Maker::Songswarm, &content, &manifest);

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
    let content = Content {
        piece_length: Some(65_536),
        ..song(&src)
    };
    let total = std::fs::metadata(src.join(&content.files[0]))
        .expect("song")
        .len();
    let manifest = dir.path().join("song.torrent");
    make_manifest(Maker::Songswarm, &content, &manifest);

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
    let content = Content {
        piece_length: Some(65_536),
        ..song(&src)
    };
    let manifest = dir.path().join("song.torrent");
    make_manifest(Maker::Songswarm, &content, &manifest);

    let mut cmd = songswarm();
    cmd.arg("seed").arg(&manifest).arg("--data").arg(&src);
    cmd.args(["--listen", "127.0.0.1:0", "--json"]);
    cmd.args(["--max-upload-rate", "1000000"]);
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
        cmd.args(["--linger", "--timeout", "60"]);
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
