//! Fast resume: a restart trusts files unchanged since their record and
//! reads only the pieces of files that changed; `--recheck` reads all; and
//! a download killed (SIGKILL) at random moments, again and again, never
//! comes back claiming a piece it does not hold.

#[path = "support/blocking_http.rs"]
mod blocking_http;
#[path = "support/e2e_harness.rs"]
mod harness;

use std::fs;
use std::path::Path;

use harness::{allocated_bytes, assert_finishes_with, leech, make_torrent, seed, Proc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use songswarm::manifest::{build, BuildOptions, Manifest};
use songswarm::storage::{ResumeDir, Storage};

/// An album of three files in 16 KiB pieces under `dir/album`.
fn album(dir: &Path) -> Manifest {
    let album = dir.join("album");
    fs::create_dir_all(&album).unwrap();
    for (i, len) in [50_000usize, 70_000, 30_000].into_iter().enumerate() {
        let data: Vec<u8> = (0..len).map(|b| (b * 13 + i) as u8).collect();
        fs::write(album.join(format!("{i}.bin")), data).unwrap();
    }
    let opts = BuildOptions {
        piece_length: Some(16 * 1024),
        ..Default::default()
    };
    build(&[album], &opts).unwrap()
}

#[test]
fn a_restart_reads_only_the_pieces_of_changed_files() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = album(dir.path());
    let n = manifest.piece_count();
    let storage = Storage::open_existing(dir.path(), &manifest).unwrap();
    let first = storage.resume(None, 2);
    assert_eq!(
        (first.checked, first.verified.clone()),
        (n, vec![true; n as usize])
    );
    let record = storage
        .record(manifest.info_hash.0, first.verified)
        .unwrap();

    let again = storage.resume(Some(&record), 2);
    assert_eq!(again.checked, 0, "nothing changed, nothing read");
    assert!(again.verified.iter().all(|v| *v));

    // One byte of the middle file changes: only its pieces are read, and
    // the one it lies in fails.
    let middle = dir.path().join("album/1.bin");
    let mut data = fs::read(&middle).unwrap();
    data[40_000] ^= 0xff;
    fs::write(&middle, data).unwrap();
    let after = storage.resume(Some(&record), 2);
    let (lo, hi) = (50_000 / 16_384, (50_000 + 70_000 - 1) / 16_384);
    assert_eq!(after.checked, hi - lo + 1, "pieces touching 1.bin only");
    let bad = (50_000 + 40_000) / 16_384;
    for p in 0..n {
        assert_eq!(after.verified[p as usize], p != bad, "piece {p}");
    }
    // A record of another shape is not used.
    let mut other = record.clone();
    other.verified.pop();
    assert_eq!(storage.resume(Some(&other), 2).checked, n);
}

#[test]
fn seed_trusts_its_record_and_recheck_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = album(dir.path());
    let torrent = dir.path().join("album.torrent");
    fs::write(&torrent, manifest.to_bytes()).unwrap();
    let (mut first, _) = seed(&[&torrent], dir.path(), &[]);
    first.kill();
    let place = ResumeDir::for_root(dir.path(), "album").unwrap();
    assert!(
        place.load(&manifest.info_hash.0).is_some(),
        "the first start wrote a record"
    );

    // Changed in place, with its time put back: only a full check sees it.
    let file = dir.path().join("album/2.bin");
    let mtime = fs::metadata(&file).unwrap().modified().unwrap();
    let mut data = fs::read(&file).unwrap();
    data[20_000] ^= 1;
    fs::write(&file, data).unwrap();
    let f = fs::File::options().write(true).open(&file).unwrap();
    f.set_times(fs::FileTimes::new().set_modified(mtime))
        .unwrap();
    drop(f);
    let (mut trusted, _) = seed(&[&torrent], dir.path(), &[]);
    trusted.kill();

    let args = [
        "seed",
        torrent.to_str().unwrap(),
        "--data",
        dir.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--json",
        "--recheck",
    ];
    let mut rechecked = Proc::start_watching_stderr(&args);
    assert!(
        !rechecked.wait_success(),
        "--recheck found the changed byte"
    );
    let err = rechecked.err_line();
    assert!(
        err.contains("2.bin") && err.contains("do not match"),
        "{err}"
    );
}

/// Pieces the process at `http` reports verified.
fn reported(http: &str, info_hash: &str) -> Vec<bool> {
    let path = format!("/api/torrents/{info_hash}");
    let (head, body) = blocking_http::get(http, &path, harness::DEADLINE);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["verified"]
        .as_str()
        .unwrap()
        .chars()
        .map(|c| c == '1')
        .collect()
}

#[test]
fn a_download_killed_at_random_moments_never_reports_a_bad_piece() {
    const RUNS: u64 = 12;
    const LEN: usize = 8 << 20;
    const PIECE: usize = 16 * 1024;
    let mut rng = StdRng::seed_from_u64(0x5eed_0016);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let (data, manifest) = make_torrent(&src, "song.flac", LEN, PIECE, 16);
    let info_hash = Manifest::load(&manifest).unwrap().info_hash.to_hex();
    // Slow enough that a kill lands mid-download.
    let (_seeder, addr) = seed(&[&manifest], &src, &["--max-upload-rate", "2000000"]);
    let out = dir.path().join("out");
    let file = out.join("song.flac");
    let mut verified_seen = 0;
    for run in 0..RUNS {
        // Kill once the file holds a random amount more of the song.
        let target = allocated_bytes(&file) + rng.gen_range(1..LEN as u64 / 5);
        let (mut leecher, _) = leech(&manifest, &out, &[&addr], &[]);
        harness::wait_until("some bytes on disk", || {
            leecher.child.try_wait().unwrap().is_some() || allocated_bytes(&file) >= target
        });
        leecher.kill();
        // Sometimes a byte is damaged while no process runs (a torn
        // write, a disk error): the file changed, so it is read again.
        let damaged = rng.gen_bool(0.3).then(|| rng.gen_range(0..LEN as u64));
        if let Some(at) = damaged {
            let mut bytes = fs::read(&file).unwrap_or_default();
            if (at as usize) < bytes.len() {
                bytes[at as usize] ^= 0x5a;
                fs::write(&file, bytes).unwrap();
            }
        }
        // Restarted with no peer: what it reports comes from disk alone.
        let (m, o) = (manifest.to_str().unwrap(), out.to_str().unwrap());
        let args = ["leech", m, "--out", o, "--listen", "127.0.0.1:0", "--json"];
        let extra = ["--http", "127.0.0.1:0", "--seed-after"];
        let mut check = Proc::start(&[&args[..], &extra].concat());
        let listening = check.json();
        let http = listening["http"]
            .as_str()
            .expect("http address")
            .to_string();
        let have = reported(&http, &info_hash);
        check.kill();
        let on_disk = fs::read(&file).unwrap_or_default();
        for (p, _) in have.iter().enumerate().filter(|(_, ok)| **ok) {
            let range = p * PIECE..((p + 1) * PIECE).min(LEN);
            assert!(
                on_disk.get(range.clone()) == Some(&data[range]),
                "run {run} (damaged: {damaged:?}): piece {p} reported verified but is wrong"
            );
        }
        let count = have.iter().filter(|v| **v).count();
        eprintln!(
            "run {run}: killed at {target} bytes, damaged {damaged:?}, {count} pieces verified"
        );
        verified_seen = verified_seen.max(count);
        if count == have.len() {
            // Complete: start again from nothing.
            fs::remove_dir_all(&out).unwrap();
        }
    }
    assert!(verified_seen > 0, "no run got far enough to verify a piece");
    let (mut last, _) = leech(&manifest, &out, &[&addr], &[]);
    assert_finishes_with(&mut last, &file, &data);
}
