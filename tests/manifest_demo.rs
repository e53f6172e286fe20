//! The committed demo album and its manifests: they load, every piece matches
//! the committed FLAC files, and `create` still makes exactly them (so the
//! FLAC tags are read the same way).

#[path = "support/manifest_verify.rs"]
mod verify;

use std::path::{Path, PathBuf};

use songswarm::manifest::{build, BuildOptions, Manifest};

fn torrents() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("torrents")
}

/// The options the committed manifests were made with (torrents/README.md):
/// 32 KiB pieces, the default for songs before it became 16 KiB, kept so
/// that the demo's info-hashes stay what the docs and tests name.
fn demo_opts() -> BuildOptions {
    BuildOptions {
        piece_length: Some(32 * 1024),
        nodes: vec!["127.0.0.1:6881".into()],
        ..BuildOptions::default()
    }
}

#[test]
fn album_manifest_matches_the_committed_files() {
    let m = Manifest::load(&torrents().join("demo-album.torrent")).unwrap();
    assert_eq!(m.name, "demo-album");
    let paths: Vec<&Path> = m.files.iter().map(|f| f.path.as_path()).collect();
    assert_eq!(
        paths,
        [
            "demo-album/01-sunrise.flac",
            "demo-album/02-drift.flac",
            "demo-album/03-pulse.flac",
            "demo-album/04-lullaby.flac"
        ]
        .map(Path::new)
    );
    // `--data torrents/` works: the data root holds the torrent's name.
    let checked = verify::verify_pieces(&m, &torrents()).unwrap();
    assert!(checked >= 16, "{checked} pieces");
    assert_eq!(m.nodes, vec!["127.0.0.1:6881"]);
}

#[test]
fn album_metadata_comes_from_the_flac_tags() {
    let m = Manifest::load(&torrents().join("demo-album.torrent")).unwrap();
    let album = m.song.clone().unwrap();
    assert_eq!(album.artist.as_deref(), Some("The Sine Waves"));
    assert_eq!(album.album.as_deref(), Some("songswarm demo album"));
    assert_eq!(album.codec.as_deref(), Some("flac"));
    let titles: Vec<Option<String>> = m
        .file_songs()
        .into_iter()
        .map(|s| s.and_then(|s| s.title))
        .collect();
    assert_eq!(
        titles,
        ["Sunrise", "Drift", "Pulse", "Lullaby"].map(|t| Some(t.to_string()))
    );
    for song in m.file_songs().into_iter().flatten() {
        let ms = song.duration_ms.unwrap();
        assert!((10_000..=60_000).contains(&ms), "{ms} ms");
    }
}

#[test]
fn single_song_manifest_matches_its_file() {
    let m = Manifest::load(&torrents().join("sunrise.torrent")).unwrap();
    assert_eq!(m.name, "01-sunrise.flac");
    assert_eq!(m.files.len(), 1);
    let song = m.song.clone().unwrap();
    assert_eq!(song.title.as_deref(), Some("Sunrise"));
    assert_eq!(song.artist.as_deref(), Some("The Sine Waves"));
    assert_eq!(song.codec.as_deref(), Some("flac"));
    // Its data root is the album directory.
    verify::verify_pieces(&m, &torrents().join("demo-album")).unwrap();
}

#[test]
fn create_reproduces_the_committed_manifests() {
    let album = build(&[torrents().join("demo-album")], &demo_opts()).unwrap();
    let committed = std::fs::read(torrents().join("demo-album.torrent")).unwrap();
    assert_eq!(album.to_bytes(), committed);
    let single = build(
        &[torrents().join("demo-album/01-sunrise.flac")],
        &demo_opts(),
    )
    .unwrap();
    let committed = std::fs::read(torrents().join("sunrise.torrent")).unwrap();
    assert_eq!(single.to_bytes(), committed);
}

/// `songswarm demo` finds the album from any directory, and its report
/// counts the seeder and the leechers as ring members besides the bare
/// nodes, as the README says.
#[test]
fn demo_runs_from_any_directory() {
    let elsewhere = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_songswarm"))
        .current_dir(elsewhere.path())
        .args([
            "demo",
            "--nodes",
            "3",
            "--leechers",
            "2",
            "--upload-rate",
            "0",
        ])
        .args(["--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["name"], "demo-album");
    assert_eq!(report["bare_nodes"], 3);
    // The bare nodes, the seeder, the leechers and the listener.
    assert_eq!(report["ring_size"], 3 + 1 + 2 + 1, "{report}");
    assert_eq!(report["play"]["verified"], true, "{report}");
}
