//! Building manifests: layout of the inputs, piece length, hashing, song
//! tags and flags, and the `songswarm create` command.

#[path = "support/manifest_audio.rs"]
mod audio;
#[path = "support/manifest_verify.rs"]
mod verify;

use std::path::{Path, PathBuf};
use std::process::Command;

use songswarm::manifest::{build, default_piece_length, BuildOptions, Manifest, ManifestError};

fn opts() -> BuildOptions {
    BuildOptions::default()
}

#[test]
fn default_piece_length_follows_the_rule() {
    const K: u64 = 1024;
    assert_eq!(default_piece_length(1), 32 * K);
    assert_eq!(default_piece_length(64 * 32 * K), 32 * K); // exactly 64 pieces
    assert_eq!(default_piece_length(64 * 32 * K + 1), 64 * K);
    assert_eq!(default_piece_length(5_000_000), 128 * K); // 39 pieces
    assert_eq!(default_piece_length(64 * 1024 * K), 1024 * K);
    assert_eq!(default_piece_length(1 << 40), 1024 * K); // capped
    for total in [1u64, 700_000, 3_000_000, 9_999_999, 60_000_000] {
        let len = default_piece_length(total);
        assert!(len.is_power_of_two());
        assert!(total.div_ceil(len) <= 64);
        // The smallest such: half of it would need more than 64 pieces.
        assert!(len == 32 * K || total.div_ceil(len / 2) > 64);
    }
}

#[test]
fn single_file_round_trips_through_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("blob.bin");
    std::fs::write(&path, vec![7u8; 200_000]).unwrap();
    let m = build(
        std::slice::from_ref(&path),
        &BuildOptions {
            piece_length: Some(16384),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(m.name, "blob.bin");
    assert_eq!(m.piece_length, 16384);
    assert_eq!(m.piece_count(), 13);
    assert_eq!(m.piece_len(12), 200_000 - 12 * 16384);
    assert_eq!(m.song, None, "no tags, no flags: no song dictionary");
    let again = Manifest::from_bytes(&m.to_bytes()).unwrap();
    assert_eq!(again.info_hash, m.info_hash);
    assert_eq!(again, m);
    assert_eq!(verify::verify_pieces(&m, tmp.path()), Ok(13));
}

#[test]
fn directory_becomes_a_sorted_album_without_hidden_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("My Album");
    std::fs::create_dir_all(dir.join("b")).unwrap();
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    for (name, len) in [
        ("c.flac", 10),
        ("a.flac", 20_000),
        ("b/z.flac", 5),
        ("B.flac", 1),
    ] {
        std::fs::write(dir.join(name), vec![1u8; len]).unwrap();
    }
    std::fs::write(dir.join(".DS_Store"), b"x").unwrap();
    std::fs::write(dir.join(".git/config"), b"x").unwrap();
    let m = build(&[dir], &opts()).unwrap();
    assert_eq!(m.name, "My Album");
    let paths: Vec<PathBuf> = m.files.iter().map(|f| f.path.clone()).collect();
    let want: Vec<PathBuf> = ["B.flac", "a.flac", "b/z.flac", "c.flac"]
        .iter()
        .map(|p| Path::new("My Album").join(p))
        .collect();
    assert_eq!(paths, want);
    assert_eq!(m.total_length, 20_016);
    verify::verify_pieces(&m, tmp.path()).unwrap();
}

#[test]
fn several_files_of_one_directory_make_an_album() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("Singles");
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["2.wav", "1.wav", "3.wav"] {
        std::fs::write(dir.join(name), name.as_bytes()).unwrap();
    }
    let m = build(
        &[dir.join("3.wav"), dir.join("1.wav"), dir.join("1.wav")],
        &opts(),
    )
    .unwrap();
    assert_eq!(m.name, "Singles");
    let paths: Vec<&Path> = m.files.iter().map(|f| f.path.as_path()).collect();
    assert_eq!(
        paths,
        [Path::new("Singles/1.wav"), Path::new("Singles/3.wav")]
    );
    verify::verify_pieces(&m, tmp.path()).unwrap();
}

#[test]
fn bad_inputs_are_refused_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("sub/b");
    std::fs::create_dir_all(tmp.path().join("sub")).unwrap();
    std::fs::write(&a, b"a").unwrap();
    std::fs::write(&b, b"b").unwrap();
    std::fs::write(tmp.path().join("empty"), b"").unwrap();
    let cases: Vec<(Vec<PathBuf>, BuildOptions, &str)> = vec![
        (vec![], opts(), "no input"),
        (vec![a.clone(), b.clone()], opts(), "same directory"),
        (
            vec![a.clone(), tmp.path().join("sub")],
            opts(),
            "must be a file",
        ),
        (vec![tmp.path().join("empty")], opts(), "empty"),
        (
            vec![a.clone()],
            BuildOptions {
                piece_length: Some(30_000),
                ..opts()
            },
            "power of two",
        ),
        (
            vec![a.clone()],
            BuildOptions {
                piece_length: Some(1024),
                ..opts()
            },
            "power of two",
        ),
        (
            vec![a.clone()],
            BuildOptions {
                nodes: vec!["nohostport".into()],
                ..opts()
            },
            "host:port",
        ),
        (
            vec![a.clone()],
            BuildOptions {
                nodes: vec!["h:0".into()],
                ..opts()
            },
            "bad port",
        ),
    ];
    for (inputs, o, want) in cases {
        let e = build(&inputs, &o).unwrap_err();
        assert!(
            e.to_string().contains(want),
            "{inputs:?}: {e} (wanted {want:?})"
        );
    }
    let e = build(&[tmp.path().join("missing")], &opts()).unwrap_err();
    assert!(matches!(e, ManifestError::Io { .. }), "{e}");
    let empty_dir = tmp.path().join("nothing");
    std::fs::create_dir_all(empty_dir.join(".hidden")).unwrap();
    let e = build(&[empty_dir], &opts()).unwrap_err();
    assert!(e.to_string().contains("no files"), "{e}");
}

#[test]
fn tags_are_read_and_flags_override_them() {
    let tmp = tempfile::tempdir().unwrap();
    let wav = tmp.path().join("tone.wav");
    audio::write_wav(&wav, 1500);
    audio::tag_file(&wav, "Tone", "The Sines", "Pure");
    let m = build(std::slice::from_ref(&wav), &opts()).unwrap();
    let song = m.song.clone().expect("song metadata from the tags");
    assert_eq!(song.title.as_deref(), Some("Tone"));
    assert_eq!(song.artist.as_deref(), Some("The Sines"));
    assert_eq!(song.album.as_deref(), Some("Pure"));
    assert_eq!(song.codec.as_deref(), Some("wav"));
    let ms = song.duration_ms.expect("duration");
    assert!((1400..=1600).contains(&ms), "duration {ms} ms");
    // The metadata is inside info: it changes the info-hash.
    let flagged = build(
        &[wav],
        &BuildOptions {
            title: Some("Other".into()),
            album: Some("Flagged".into()),
            ..opts()
        },
    )
    .unwrap();
    let song2 = flagged.song.clone().unwrap();
    assert_eq!(song2.title.as_deref(), Some("Other"));
    assert_eq!(song2.album.as_deref(), Some("Flagged"));
    assert_eq!(song2.artist.as_deref(), Some("The Sines"), "not overridden");
    assert_eq!(song2.duration_ms, song.duration_ms);
    assert_ne!(flagged.info_hash, m.info_hash);
}

#[test]
fn album_gets_per_file_songs_and_an_album_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("Sines");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, title) in ["One", "Two"].iter().enumerate() {
        let path = dir.join(format!("0{}.wav", i + 1));
        audio::write_wav(&path, 1000);
        audio::tag_file(&path, title, "Same Artist", "Sines");
    }
    std::fs::write(dir.join("notes.txt"), b"liner notes").unwrap();
    let m = build(std::slice::from_ref(&dir), &opts()).unwrap();
    let album = m.song.clone().unwrap();
    assert_eq!(album.title, None);
    assert_eq!(album.artist.as_deref(), Some("Same Artist"));
    assert_eq!(album.album.as_deref(), Some("Sines"));
    assert_eq!(album.codec.as_deref(), Some("wav"));
    let total = album.duration_ms.unwrap();
    assert!((1900..=2100).contains(&total), "{total}");
    let songs = m.file_songs();
    assert_eq!(songs.len(), 3);
    assert_eq!(songs[0].as_ref().unwrap().title.as_deref(), Some("One"));
    assert_eq!(songs[1].as_ref().unwrap().title.as_deref(), Some("Two"));
    assert_eq!(songs[2], None, "a text file has no song");
    let flagged = build(
        &[dir],
        &BuildOptions {
            artist: Some("Flag".into()),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(
        flagged.song.as_ref().unwrap().artist.as_deref(),
        Some("Flag")
    );
    assert!(flagged
        .file_songs()
        .iter()
        .flatten()
        .all(|s| s.artist.as_deref() == Some("Flag")));
}

fn songswarm(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_songswarm"))
        .args(args)
        .output()
        .expect("run songswarm")
}

#[test]
fn create_command_writes_the_manifest_and_prints_it() {
    let tmp = tempfile::tempdir().unwrap();
    let wav = tmp.path().join("t.wav");
    audio::write_wav(&wav, 800);
    audio::tag_file(&wav, "T", "A", "B");
    let out = tmp.path().join("out/t.torrent");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let o = songswarm(&[
        "create".as_ref(),
        wav.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--json".as_ref(),
        "--node".as_ref(),
        "127.0.0.1:7000".as_ref(),
        "--artist".as_ref(),
        "Flag Artist".as_ref(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = Manifest::load(&out).unwrap();
    assert_eq!(json["info_hash"], m.info_hash.to_hex());
    assert_eq!(json["name"], "t.wav");
    assert_eq!(json["piece_length"], m.piece_length);
    assert_eq!(json["pieces"], m.piece_count());
    assert_eq!(json["total_length"], m.total_length);
    assert_eq!(json["files"][0]["path"], "t.wav");
    assert_eq!(m.nodes, vec!["127.0.0.1:7000"]);
    assert_eq!(m.song.unwrap().artist.as_deref(), Some("Flag Artist"));
    let left: Vec<_> = std::fs::read_dir(out.parent().unwrap()).unwrap().collect();
    assert_eq!(left.len(), 1, "no temporary file left behind");

    let o = songswarm(&[
        "create".as_ref(),
        wav.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    let m = Manifest::load(&out).unwrap();
    assert!(
        text.starts_with(&format!("info-hash {}\n", m.info_hash)),
        "{text}"
    );
    assert!(text.contains("name t.wav"), "{text}");

    let o = songswarm(&[
        "create".as_ref(),
        tmp.path().join("nope").as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope"));
}

#[test]
fn create_refuses_to_write_over_an_input_or_anything_but_a_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let wav = tmp.path().join("t.wav");
    audio::write_wav(&wav, 800);
    let song = std::fs::read(&wav).unwrap();
    let notes = tmp.path().join("notes.txt");
    std::fs::write(&notes, b"keep me").unwrap();
    let cases: [(&Path, &str); 3] = [
        (&wav, "one of the files to share"),
        (&notes, "not a manifest"),
        (tmp.path(), "is a directory"),
    ];
    for (out, why) in cases {
        let o = songswarm(&[
            "create".as_ref(),
            wav.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "-o {}: {err}", out.display());
        assert!(err.contains(why), "-o {}: {err}", out.display());
    }
    assert_eq!(std::fs::read(&wav).unwrap(), song, "the song was changed");
    assert_eq!(std::fs::read(&notes).unwrap(), b"keep me");
}
