//! A music library: `create --per-song` makes one manifest per song of a
//! directory tree, next to it; `seed --library` serves them all from one
//! process, skipping (with a warning) what it cannot serve.

#[path = "support/e2e_harness.rs"]
mod harness;

use std::fs;
use std::path::Path;

use harness::{assert_finishes_with, leech, Proc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Random bytes for song `i`.
fn song_bytes(i: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(i);
    (0..50_000 + i as usize * 97).map(|_| rng.gen()).collect()
}

fn run_ok(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_songswarm"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_library_is_made_per_song_and_seeded_whole() {
    let dir = tempfile::tempdir().unwrap();
    let music = dir.path().join("music");
    let mut songs = Vec::new();
    for i in 0..24u64 {
        let rel = match i % 3 {
            0 => format!("s{i}.flac"),
            1 => format!("Artist {}/Album/{i:02} song.mp3", i % 2),
            _ => format!("Artist {}/{i}.ogg", i % 2),
        };
        let path = music.join(&rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, song_bytes(i)).unwrap();
        songs.push(rel);
    }
    fs::write(music.join("Artist 0/cover.jpg"), b"not a song").unwrap();
    std::os::unix::fs::symlink(music.join("s0.flac"), music.join("link.flac")).unwrap();

    let m = music.to_str().unwrap();
    let created = run_ok(&["create", m, "--per-song", "-o", m, "--json"]);
    assert_eq!(created.lines().count(), songs.len(), "{created}");
    for rel in &songs {
        assert!(music.join(format!("{rel}.torrent")).is_file(), "{rel}");
    }
    assert!(
        !music.join("link.flac.torrent").exists(),
        "links are not songs"
    );
    assert!(!music.join("Artist 0/cover.jpg.torrent").exists());

    // One manifest that is not one, one whose song is gone: both skipped.
    fs::write(music.join("junk.torrent"), b"d4:infoi3ee").unwrap();
    fs::remove_file(music.join(&songs[3])).unwrap();
    let args = ["seed", "--library", m, "--listen", "127.0.0.1:0", "--json"];
    let mut seeder = Proc::start_watching_stderr(&args);
    let mut warnings = vec![seeder.err_line(), seeder.err_line()];
    warnings.sort();
    assert!(
        warnings.iter().any(|w| w.contains("junk.torrent")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains(&songs[3])),
        "{warnings:?}"
    );
    let listening = seeder.json();
    assert_eq!(listening["event"], "listening");
    let served = listening["info_hashes"].as_array().unwrap().len();
    assert_eq!(served, songs.len() - 1);
    let addr = listening["addr"].as_str().unwrap().to_string();

    let out = dir.path().join("out");
    for i in [1usize, 2, 23] {
        let rel = Path::new(&songs[i]);
        let manifest = music.join(format!("{}.torrent", songs[i]));
        let (mut leecher, _) = leech(&manifest, &out, &[&addr], &[]);
        let name = rel.file_name().unwrap();
        assert_finishes_with(&mut leecher, &out.join(name), &song_bytes(i as u64));
    }
}

#[test]
fn an_empty_library_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let args = ["seed", "--library", d, "--listen", "127.0.0.1:0", "--json"];
    let mut seeder = Proc::start_watching_stderr(&args);
    assert!(!seeder.wait_success());
    let err = seeder.err_line();
    assert!(
        err.contains("nothing to serve") && err.contains("no *.torrent"),
        "{err}"
    );
}
