//! Loopback end to end: real `songswarm` processes seeding and leeching.

#[path = "support/e2e_harness.rs"]
mod harness;
#[path = "support/liar.rs"]
mod liar;

use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::Ordering;

use harness::{
    allocated_bytes, assert_finishes_with, leech, make_torrent, seed, seeded, wait_until, Proc,
};
use liar::corrupting_peer;
use songswarm::manifest::Manifest;

#[test]
fn one_seeder_four_leechers_finish_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (data, manifest) = make_torrent(
        &dir.path().join("src"),
        "song.flac",
        3_000_000 + 123,
        64 * 1024,
        1,
    );
    let (_seeder, seed_addr) = seed(&[&manifest], &dir.path().join("src"), &[]);
    let mut leechers: Vec<Proc> = Vec::new();
    let mut addrs: Vec<String> = Vec::new();
    for i in 0..4 {
        let out = dir.path().join(format!("out{i}"));
        let mut peers = vec![seed_addr.as_str()];
        peers.extend(addrs.iter().map(String::as_str));
        let (p, addr) = leech(&manifest, &out, &peers, &[]);
        leechers.push(p);
        addrs.push(addr);
    }
    for (i, l) in leechers.iter_mut().enumerate() {
        let done = l.json();
        assert_eq!(done["event"], "done", "leecher {i}: {done}");
        assert_eq!(done["bytes"], data.len() as u64);
        assert!(l.wait_success(), "leecher {i} exit status");
        let got = std::fs::read(dir.path().join(format!("out{i}/song.flac"))).unwrap();
        assert!(got == data, "leecher {i}: content differs");
    }
}

#[test]
fn download_survives_losing_one_of_two_seeders() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let (data, manifest) = make_torrent(&src, "album.bin", 4_000_000, 64 * 1024, 2);
    // Throttled so the transfer has a middle to kill a seeder in.
    let cap = ["--max-upload-rate", "1000000"];
    let (mut seed_a, addr_a) = seed(&[&manifest], &src, &cap);
    let (_seed_b, addr_b) = seed(&[&manifest], &src, &cap);
    let out = dir.path().join("out");
    let (mut l, _) = leech(&manifest, &out, &[&addr_a, &addr_b], &[]);
    let file = out.join("album.bin");
    wait_until("the first megabyte to arrive", || {
        allocated_bytes(&file) >= 1_000_000
    });
    assert!(
        allocated_bytes(&file) < data.len() as u64,
        "still mid-transfer when the seeder dies"
    );
    seed_a.kill();
    let done = l.json();
    assert_eq!(done["event"], "done", "{done}");
    assert!(l.wait_success());
    assert!(std::fs::read(&file).unwrap() == data, "content differs");
}

#[test]
fn killed_leecher_resumes_without_refetching_verified_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let (data, manifest) = make_torrent(&src, "song.wav", 4_000_000, 64 * 1024, 3);
    let (_seeder, addr) = seed(&[&manifest], &src, &["--max-upload-rate", "1000000"]);
    let out = dir.path().join("out");
    let file = out.join("song.wav");
    let (mut first, _) = leech(&manifest, &out, &[&addr], &[]);
    wait_until("a megabyte on disk", || allocated_bytes(&file) >= 1_000_000);
    first.kill(); // SIGKILL: no chance to clean up
    let (mut second, _) = leech(&manifest, &out, &[&addr], &[]);
    let done = second.json();
    assert_eq!(done["event"], "done", "{done}");
    assert!(second.wait_success());
    let resumed = done["resumed_pieces"].as_u64().unwrap();
    let downloaded = done["downloaded_bytes"].as_u64().unwrap();
    assert!(resumed >= 10, "pieces found verified on disk: {resumed}");
    // One of the resumed pieces may be the short last one.
    assert!(
        downloaded <= data.len() as u64 - (resumed - 1) * 64 * 1024,
        "downloaded {downloaded} bytes though {resumed} pieces were already there"
    );
    assert!(std::fs::read(&file).unwrap() == data, "content differs");
}

/// Runs `seed MANIFEST --data DATA`, which must fail: asserts exit code 1
/// and returns its stderr.
fn seed_fails(manifest: &Path, data: &Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_songswarm"))
        .env("SONGSWARM_NO_RING", "1")
        .arg("seed")
        .arg(manifest)
        .arg("--data")
        .arg(data)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    err
}

#[test]
fn seed_refuses_missing_or_wrong_data_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let (_, manifest) = make_torrent(&src, "x.bin", 300_000, 32 * 1024, 4);
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = seed_fails(&manifest, &empty);
    assert!(
        err.contains("x.bin") && err.contains("--data"),
        "names the file and the flag: {err}"
    );
    // Same size, different bytes.
    let mut bytes = std::fs::read(src.join("x.bin")).unwrap();
    bytes[100_000] ^= 1;
    std::fs::write(src.join("x.bin"), bytes).unwrap();
    let err = seed_fails(&manifest, &src);
    assert!(
        err.contains("do not match"),
        "says the data does not match: {err}"
    );
}

#[test]
fn seed_takes_the_file_itself_as_data_for_a_single_file_torrent() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let (data, manifest) = make_torrent(&src, "x.bin", 300_000, 32 * 1024, 11);
    // The song under another name, and --data naming that file.
    let renamed = dir.path().join("my copy.bin");
    std::fs::rename(src.join("x.bin"), &renamed).unwrap();
    let (_seeder, addr) = seed(&[&manifest], &renamed, &[]);
    let out = dir.path().join("out");
    let (mut l, _) = leech(&manifest, &out, &[&addr], &[]);
    assert_finishes_with(&mut l, &out.join("x.bin"), &data);

    // An album is a directory: a file as its --data is refused, with what
    // to give instead.
    let album = dir.path().join("album");
    std::fs::create_dir_all(&album).unwrap();
    std::fs::write(album.join("a.bin"), &data[..1000]).unwrap();
    std::fs::write(album.join("b.bin"), &data[1000..3000]).unwrap();
    let album_manifest = dir.path().join("album.torrent");
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_songswarm"))
        .arg("create")
        .arg(&album)
        .arg("-o")
        .arg(&album_manifest)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let err = seed_fails(&album_manifest, &album.join("a.bin"));
    assert!(
        err.contains("is a file") && err.contains("directory album of 2 files"),
        "says what --data must be: {err}"
    );
}

#[test]
fn a_leecher_with_no_reachable_peer_says_so_and_finishes_once_one_appears() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let (data, manifest) = make_torrent(&src, "w.bin", 200_000, 32 * 1024, 12);
    // A loopback port with nothing listening on it (yet).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let peer = format!("127.0.0.1:{port}");
    let (m, out) = (manifest.display().to_string(), dir.path().join("out"));
    let o = out.display().to_string();
    let mut l = Proc::start_watching_stderr(&[
        "leech",
        &m,
        "--out",
        &o,
        "--peer",
        &peer,
        "--listen",
        "127.0.0.1:0",
        "--json",
    ]);
    l.listening();
    let said = l.err_line();
    assert!(
        said.contains("no peer connected") && said.contains(&peer) && said.contains("refused"),
        "names the peer and why: {said}"
    );
    // The seeder comes up at that address; the leecher's next try finds it.
    let s = src.display().to_string();
    let mut seeder = Proc::start(&["seed", &m, "--data", &s, "--listen", &peer, "--json"]);
    seeder.listening();
    assert_finishes_with(&mut l, &out.join("w.bin"), &data);
}

/// Runs a leech that is expected to fail, to its exit (at most a minute):
/// its exit code and stderr.
fn leech_to_exit(manifest: &Path, out: &Path, extra: &[&str]) -> (Option<i32>, String) {
    leech_to_exit_in(std::process::Command::new("timeout"), manifest, out, extra)
}

/// [`leech_to_exit`] with `--out` on a file system of its own that holds
/// only `size` bytes (a tmpfs in a private mount namespace), so writes fail
/// as on a full disk.
fn leech_to_exit_on_small_fs(
    size: &str,
    manifest: &Path,
    out: &Path,
    extra: &[&str],
) -> (Option<i32>, String) {
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs -o size={size} tmpfs \"$1\" && shift && exec \"$@\""
        ))
        .arg("sh")
        .arg(out)
        .arg("timeout");
    let (code, err) = leech_to_exit_in(cmd, manifest, out, extra);
    assert!(
        !err.contains("unshare:") && !err.contains("mount:"),
        "this test needs user namespaces (`unshare -rm`) for a small file system: {err}"
    );
    (code, err)
}

/// Runs `songswarm leech` as the last arguments of `cmd` (which ends in
/// `timeout`).
fn leech_to_exit_in(
    mut cmd: std::process::Command,
    manifest: &Path,
    out: &Path,
    extra: &[&str],
) -> (Option<i32>, String) {
    let run = cmd
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_songswarm"))
        .env("SONGSWARM_NO_RING", "1")
        .arg("leech")
        .arg(manifest)
        .arg("--out")
        .arg(out)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .output()
        .unwrap();
    (
        run.status.code(),
        String::from_utf8_lossy(&run.stderr).into_owned(),
    )
}

#[test]
fn leech_refuses_a_file_as_out_and_names_a_missing_manifest_once() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let (_, manifest) = make_torrent(&src, "x.bin", 100_000, 32 * 1024, 8);
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"keep me").unwrap();
    let (code, err) = leech_to_exit(&manifest, &file, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--out") && err.contains("is a file"), "{err}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"keep me",
        "the file was touched"
    );

    let missing = dir.path().join("missing.torrent");
    let (code, err) = leech_to_exit(&missing, &dir.path().join("out"), &[]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        err.matches("missing.torrent").count(),
        1,
        "names it once: {err}"
    );
}

#[test]
fn a_longer_file_in_the_way_ends_exactly_the_torrent() {
    let s = seeded("z.flac", 300_000, 10);
    // Something longer already has the song's name in --out.
    let out = s.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("z.flac"), vec![0xAB; 450_000]).unwrap();
    let (mut l, _) = leech(&s.manifest, &out, &[&s.addr], &[]);
    // No stale tail after the song.
    assert_finishes_with(&mut l, &out.join("z.flac"), &s.data);
}

#[test]
fn a_peer_given_by_host_name_is_dialled() {
    let s = seeded("y.bin", 200_000, 9);
    let port = s.addr.rsplit(':').next().unwrap();
    // localhost may resolve to ::1 first; the seeder listens on 127.0.0.1
    // only, so this also checks that every address of the name is tried.
    let by_name = format!("localhost:{port}");
    let out = s.dir.path().join("out");
    let (mut l, _) = leech(&s.manifest, &out, &[&by_name], &[]);
    assert_finishes_with(&mut l, &out.join("y.bin"), &s.data);
}

#[test]
fn a_full_disk_fails_the_download_with_what_to_do() {
    let mut s = seeded("song.flac", 500_000, 5);
    // A 64 KiB file system fills up long before the song is written.
    // (Files are never opened through a link, so a link to /dev/full no
    // longer stands in for a full disk: see storage_links.rs.)
    let out = s.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let (code, err) = leech_to_exit_on_small_fs("64k", &s.manifest, &out, &["--peer", &s.addr]);
    assert_eq!(code, Some(1), "exit status; stderr: {err}");
    assert!(
        err.contains("song.flac")
            && err.contains("No space left")
            && err.contains("500000 bytes")
            && err.contains("run the same command again"),
        "names the file, the cause, the size and what to do: {err}"
    );
    // Only that command failed: the seeder still serves.
    assert!(
        s.seeder.child.try_wait().unwrap().is_none(),
        "seeder exited"
    );
    let out2 = s.dir.path().join("out2");
    let (mut ok, _) = leech(&s.manifest, &out2, &[&s.addr], &[]);
    assert_finishes_with(&mut ok, &out2.join("song.flac"), &s.data);
}

#[test]
fn a_seeder_whose_data_shrinks_stops_that_torrent_and_serves_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let (_, shrinking) = make_torrent(&src, "a.flac", 400_000, 32 * 1024, 6);
    let (data_b, intact) = make_torrent(&src, "b.flac", 300_000, 32 * 1024, 7);
    let (mut seeder, addr) = seed(&[&shrinking, &intact], &src, &[]);
    // Checked at start-up, then cut short behind the seeder's back.
    std::fs::File::create(src.join("a.flac")).unwrap();
    let (mut stuck, _) = leech(&shrinking, &dir.path().join("out_a"), &[&addr], &[]);
    let stopped = seeder.json();
    assert_eq!(stopped["event"], "stopped", "{stopped}");
    assert_eq!(stopped["name"], "a.flac");
    let error = stopped["error"].as_str().unwrap();
    assert!(
        error.contains("a.flac") && error.contains("shorter than the manifest says"),
        "names the file and what is wrong: {error}"
    );
    stuck.kill();
    // The process and its other torrent go on.
    assert!(seeder.child.try_wait().unwrap().is_none(), "seeder exited");
    let out_b = dir.path().join("out_b");
    let (mut fine, _) = leech(&intact, &out_b, &[&addr], &[]);
    assert_finishes_with(&mut fine, &out_b.join("b.flac"), &data_b);
}

#[test]
fn corrupting_peer_is_banned_and_the_download_completes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let (data, manifest_path) = make_torrent(&src, "track.ogg", 2_000_000, 64 * 1024, 5);
    let manifest = Manifest::load(&manifest_path).unwrap();
    let (liar_addr, liar) = corrupting_peer(&manifest, data.clone());
    // The honest seeder is slow, so the liar gets asked for plenty.
    let (_honest, honest_addr) = seed(&[&manifest_path], &src, &["--max-upload-rate", "500000"]);
    let out = dir.path().join("out");
    let (mut l, _) = leech(&manifest_path, &out, &[&liar_addr, &honest_addr], &[]);
    wait_until("the leecher to drop the liar", || {
        liar.closed.load(Ordering::SeqCst) == 1
    });
    // The honest seeder alone needs 4 s: the liar was dropped mid-download,
    // not merely when the leecher exited.
    assert!(
        l.child.try_wait().unwrap().is_none(),
        "leecher still downloading when it dropped the liar"
    );
    let done = l.json();
    assert_eq!(done["event"], "done", "{done}");
    assert!(l.wait_success());
    assert!(
        std::fs::read(out.join("track.ogg")).unwrap() == data,
        "content differs"
    );
    assert!(
        liar.served.load(Ordering::SeqCst) > 0,
        "the liar was asked for data"
    );
    assert_eq!(
        liar.closed.load(Ordering::SeqCst),
        1,
        "the leecher dropped the liar"
    );
    assert_eq!(
        liar.connections.load(Ordering::SeqCst),
        1,
        "and never dialled it again"
    );
}
