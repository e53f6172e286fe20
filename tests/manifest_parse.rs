//! Parsing manifests: geometry, info-hash over the raw bytes, round trips,
//! and hostile input (which must be refused with the right error, never panic).

#[path = "support/manifest_bencode.rs"]
mod bencode;

use std::path::PathBuf;

use bencode::{file_entry, multi_info, single_info, torrent, B};
use songswarm::id::Id;
use songswarm::manifest::{Manifest, ManifestError, MAX_FILES};

fn parse(info: B) -> Result<Manifest, ManifestError> {
    Manifest::from_bytes(&torrent(info))
}

fn err(info: B) -> ManifestError {
    match parse(info) {
        Ok(m) => panic!("accepted a bad manifest: {m:?}"),
        Err(e) => e,
    }
}

#[test]
fn single_file_geometry_and_hash() {
    let info = single_info("song.flac", 32768, 100_000);
    let info_bytes = info.encode();
    let m = parse(info).unwrap();
    assert_eq!(m.name, "song.flac");
    assert_eq!(m.info_hash, Id::hash(&info_bytes));
    assert_eq!(m.info_bytes, info_bytes);
    assert_eq!(m.piece_count(), 4);
    assert_eq!(m.piece_len(0), 32768);
    assert_eq!(m.piece_len(2), 32768);
    assert_eq!(m.piece_len(3), 100_000 - 3 * 32768);
    assert_eq!(m.piece_len(4), 0);
    assert_eq!(m.total_length, 100_000);
    assert_eq!(m.files.len(), 1);
    assert_eq!(m.files[0].path, PathBuf::from("song.flac"));
    assert_eq!(m.files[0].offset, 0);
    assert_eq!(m.song, None);
    assert!(m.nodes.is_empty());
}

#[test]
fn exact_multiple_has_full_last_piece() {
    let m = parse(single_info("a", 16384, 65536)).unwrap();
    assert_eq!(m.piece_count(), 4);
    assert_eq!(m.piece_len(3), 16384);
}

#[test]
fn multi_file_paths_and_offsets() {
    let m = parse(multi_info(
        "Album",
        32768,
        &[
            (&["01 one.flac"], 40_000),
            (&["disc 2", "02.flac"], 0),
            (&["03.flac"], 30_000),
        ],
    ))
    .unwrap();
    let got: Vec<(PathBuf, u64, u64)> = m
        .files
        .iter()
        .map(|f| (f.path.clone(), f.length, f.offset))
        .collect();
    assert_eq!(
        got,
        vec![
            (PathBuf::from("Album/01 one.flac"), 40_000, 0),
            (PathBuf::from("Album/disc 2/02.flac"), 0, 40_000),
            (PathBuf::from("Album/03.flac"), 30_000, 40_000),
        ]
    );
    assert_eq!(m.total_length, 70_000);
    assert_eq!(m.piece_count(), 3);
}

#[test]
fn song_metadata_and_nodes_are_read() {
    let mut info = single_info("s.flac", 16384, 1000);
    info.set(
        "song",
        B::dict([
            ("title", B::s("Tïtle")),
            ("artist", B::s("Artist")),
            ("album", B::s("Album")),
            ("duration_ms", B::Int(4321)),
            ("codec", B::s("flac")),
            ("future key", B::List(vec![B::Int(1)])),
        ]),
    );
    let bytes = B::dict([
        ("info", info),
        ("announce", B::s("http://tracker.invalid/")),
        (
            "nodes",
            B::List(vec![
                B::s("127.0.0.1:7000"),
                B::List(vec![B::s("::1"), B::Int(7001)]),
            ]),
        ),
    ])
    .encode();
    let m = Manifest::from_bytes(&bytes).unwrap();
    let song = m.song.clone().unwrap();
    assert_eq!(song.title.as_deref(), Some("Tïtle"));
    assert_eq!(song.artist.as_deref(), Some("Artist"));
    assert_eq!(song.album.as_deref(), Some("Album"));
    assert_eq!(song.duration_ms, Some(4321));
    assert_eq!(song.codec.as_deref(), Some("flac"));
    assert_eq!(m.nodes, vec!["127.0.0.1:7000", "[::1]:7001"]);
}

#[test]
fn per_file_songs_are_read() {
    let mut entry = file_entry(&["b.flac"], 10);
    entry.set("song", B::dict([("title", B::s("Bee"))]));
    let mut info = multi_info("Al", 16384, &[(&["a.flac"], 10)]);
    info.set("files", B::List(vec![file_entry(&["a.flac"], 10), entry]));
    info.set("pieces", bencode::fake_pieces(1));
    let m = parse(info).unwrap();
    let songs = m.file_songs();
    assert_eq!(songs.len(), 2);
    assert_eq!(songs[0], None);
    assert_eq!(songs[1].as_ref().unwrap().title.as_deref(), Some("Bee"));
}

#[test]
fn to_bytes_round_trips_and_keeps_info_verbatim() {
    let mut info = single_info("s.flac", 16384, 50_000);
    info.set("private", B::Int(0)); // a key we do not model must survive
    let m = parse(info).unwrap();
    let mut with_nodes = m.clone();
    with_nodes.nodes = vec!["127.0.0.1:6881".into()];
    for original in [m, with_nodes] {
        let again = Manifest::from_bytes(&original.to_bytes()).unwrap();
        assert_eq!(again, original);
    }
}

#[test]
fn from_info_bytes_matches_from_bytes() {
    let info = multi_info("A", 16384, &[(&["x"], 5), (&["y"], 70_000)]);
    let whole = parse(info.clone()).unwrap();
    let bare = Manifest::from_info_bytes(&info.encode()).unwrap();
    assert_eq!(whole, bare);
}

#[test]
fn from_info_bytes_refuses_trailing_bytes() {
    let mut bytes = single_info("a", 16384, 10).encode();
    bytes.extend_from_slice(b"i1e");
    assert!(matches!(
        Manifest::from_info_bytes(&bytes),
        Err(ManifestError::TrailingData(3))
    ));
}

// ---- hostile paths ----

fn path_err(path: &[&str]) -> ManifestError {
    err(multi_info("Album", 16384, &[(&["ok.flac"], 1), (path, 1)]))
}

#[test]
fn dot_dot_components_are_refused() {
    for path in [
        &["..", "etc", "passwd"][..],
        &["a", "..", "..", "x"],
        &[".."],
    ] {
        let e = path_err(path);
        assert!(
            matches!(e, ManifestError::UnsafePath { .. }),
            "{path:?}: {e}"
        );
        assert!(e.to_string().contains(".."), "{e}");
    }
}

#[test]
fn absolute_and_separator_components_are_refused() {
    for path in [&["/etc/passwd"][..], &["a/../../b"], &["a\\..\\b"], &["/"]] {
        let e = path_err(path);
        assert!(
            matches!(e, ManifestError::UnsafePath { .. }),
            "{path:?}: {e}"
        );
    }
}

#[test]
fn empty_and_dot_components_are_refused() {
    for path in [&[""][..], &["a", "", "b"], &["."], &[]] {
        let e = path_err(path);
        assert!(
            matches!(e, ManifestError::UnsafePath { .. }),
            "{path:?}: {e}"
        );
    }
}

#[test]
fn bad_names_are_refused() {
    for name in ["", ".", "..", "a/b", "/abs", "x\0y"] {
        let e = err(single_info(name, 16384, 10));
        assert!(
            matches!(e, ManifestError::UnsafePath { .. }),
            "{name:?}: {e}"
        );
    }
}

#[test]
fn duplicate_and_file_dir_clashes_are_refused() {
    for files in [
        &[(&["a"][..], 1i64), (&["a"][..], 1)][..],
        &[(&["a"][..], 1), (&["a", "b"][..], 1)],
        &[(&["a", "b"][..], 1), (&["a"][..], 1)],
    ] {
        let e = err(multi_info("Album", 16384, files));
        assert!(matches!(e, ManifestError::UnsafePath { .. }), "{e}");
    }
}

// ---- hostile geometry ----

#[test]
fn piece_count_must_match_length() {
    let mut info = single_info("a", 16384, 100_000);
    info.set("length", B::Int(200_000));
    let e = err(info);
    assert!(
        matches!(
            e,
            ManifestError::PieceCountMismatch {
                actual: 7,
                expected: 13,
                ..
            }
        ),
        "{e}"
    );
    let mut info = single_info("a", 16384, 100_000);
    info.set("pieces", bencode::fake_pieces(8));
    assert!(matches!(
        err(info),
        ManifestError::PieceCountMismatch { .. }
    ));
}

#[test]
fn zero_negative_and_absurd_piece_lengths_are_refused() {
    for bad in [0, -16384, 1, 1 << 40] {
        let mut info = single_info("a", 16384, 10);
        info.set("piece length", B::Int(bad));
        let e = err(info);
        assert!(
            matches!(e, ManifestError::BadPieceLength(v) if v == bad),
            "{e}"
        );
    }
}

#[test]
fn pieces_must_be_whole_hashes() {
    let mut info = single_info("a", 16384, 10);
    info.set("pieces", B::Bytes(vec![0; 21]));
    assert!(matches!(
        err(info),
        ManifestError::PiecesNotMultipleOf20(21)
    ));
}

#[test]
fn negative_lengths_are_refused() {
    let mut info = single_info("a", 16384, 10);
    info.set("length", B::Int(-10));
    assert!(matches!(err(info), ManifestError::NegativeLength(f) if f == "info.length"));
    let e = err(multi_info("A", 16384, &[(&["a"], 20), (&["b"], -10)]));
    assert!(matches!(e, ManifestError::NegativeLength(_)), "{e}");
}

#[test]
fn huge_lengths_do_not_overflow() {
    let mut info = multi_info("A", 16384, &[(&["a"], 1), (&["b"], 1)]);
    info.set(
        "files",
        B::List(vec![
            file_entry(&["a"], i64::MAX),
            file_entry(&["b"], i64::MAX),
            file_entry(&["c"], i64::MAX),
        ]),
    );
    let e = err(info);
    assert!(matches!(e, ManifestError::Invalid { .. }), "{e}");
    let mut info = single_info("a", 16384, 10);
    info.set("length", B::Int(i64::MAX));
    assert!(matches!(
        err(info),
        ManifestError::PieceCountMismatch { .. }
    ));
}

#[test]
fn missing_and_mistyped_fields_are_named() {
    for key in ["name", "piece length", "pieces", "length"] {
        let mut info = single_info("a", 16384, 10);
        info.remove(key);
        let e = err(info);
        assert!(matches!(e, ManifestError::Missing(_)), "{key}: {e}");
        assert!(e.to_string().contains(key), "{key}: {e}");
    }
    let mut info = single_info("a", 16384, 10);
    info.set("name", B::Int(3));
    assert!(matches!(err(info), ManifestError::WrongType { field, .. } if field == "info.name"));
    let mut info = single_info("a", 16384, 10);
    info.set("files", B::List(vec![]));
    assert!(matches!(err(info), ManifestError::Invalid { .. }));
    assert!(matches!(
        Manifest::from_bytes(b"d4:infoi1ee"),
        Err(ManifestError::WrongType { .. })
    ));
    assert!(matches!(
        Manifest::from_bytes(b"de"),
        Err(ManifestError::Missing("info"))
    ));
    assert!(matches!(
        Manifest::from_bytes(b"le"),
        Err(ManifestError::WrongType { .. })
    ));
}

// ---- hostile sizes ----

#[test]
fn too_many_files_are_refused() {
    let files: Vec<B> = (0..=MAX_FILES)
        .map(|i| file_entry(&[&i.to_string()], 1))
        .collect();
    let mut info = multi_info("A", 16384, &[(&["a"], 1)]);
    info.set("files", B::List(files));
    let e = err(info);
    assert!(
        matches!(e, ManifestError::TooMany { ref what, .. } if what == "info.files"),
        "{e}"
    );
}

#[test]
fn huge_dictionaries_are_refused() {
    let mut info = single_info("a", 16384, 10);
    for i in 0..5000 {
        info.set(&format!("x-{i:05}"), B::Int(i));
    }
    let e = err(info);
    assert!(
        matches!(e, ManifestError::TooMany { ref what, .. } if what == "info"),
        "{e}"
    );
    let mut song = B::dict([]);
    for i in 0..5000 {
        song.set(&format!("k{i:05}"), B::Int(i));
    }
    let mut info = single_info("a", 16384, 10);
    info.set("song", song);
    assert!(matches!(err(info), ManifestError::TooMany { .. }));
}

#[test]
fn huge_lists_are_refused() {
    let mut bytes = b"d4:info".to_vec();
    bytes.extend_from_slice(&single_info("a", 16384, 10).encode());
    bytes.extend_from_slice(b"5:nodesl");
    for i in 0..1000 {
        bytes.extend_from_slice(format!("14:127.0.0.1:{:04}", 1000 + i).as_bytes());
    }
    bytes.extend_from_slice(b"ee");
    let e = Manifest::from_bytes(&bytes).unwrap_err();
    assert!(
        matches!(e, ManifestError::TooMany { ref what, .. } if what == "nodes"),
        "{e}"
    );
    let deep_path: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    let deep_path: Vec<&str> = deep_path.iter().map(String::as_str).collect();
    let e = err(multi_info("A", 16384, &[(&deep_path, 1)]));
    assert!(matches!(e, ManifestError::TooMany { .. }), "{e}");
}

#[test]
fn deep_nesting_is_refused() {
    let mut bytes = b"d4:info".to_vec();
    let info = single_info("a", 16384, 10).encode();
    // Put a deeply nested list under an unknown key of info ("zz" sorts last).
    bytes.extend_from_slice(&info[..info.len() - 1]);
    bytes.extend_from_slice(b"2:zz");
    bytes.extend(std::iter::repeat_n(b'l', 100_000));
    bytes.extend(std::iter::repeat_n(b'e', 100_000));
    bytes.extend_from_slice(b"ee");
    let e = Manifest::from_bytes(&bytes).unwrap_err();
    assert!(
        matches!(e, ManifestError::Bencode(ref m) if m.contains("nesting")),
        "{e}"
    );
}

#[test]
fn oversize_metainfo_is_refused_before_parsing() {
    let bytes = vec![b'd'; 17 << 20];
    assert!(matches!(
        Manifest::from_bytes(&bytes),
        Err(ManifestError::TooLarge { .. })
    ));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.torrent");
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        Manifest::load(&path),
        Err(ManifestError::TooLarge { .. })
    ));
}

#[test]
fn unsorted_and_duplicate_keys_are_refused() {
    // "name" before "length": not canonical bencode.
    let bytes =
        b"d4:infod4:name1:a6:lengthi10e12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
    assert!(matches!(
        Manifest::from_bytes(bytes),
        Err(ManifestError::Bencode(_))
    ));
    let bytes = b"d4:infod6:lengthi10e6:lengthi10e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
    assert!(matches!(
        Manifest::from_bytes(bytes),
        Err(ManifestError::Bencode(_))
    ));
}

// ---- garbled input never panics ----

fn sample() -> Vec<u8> {
    let mut entry = file_entry(&["d", "b.flac"], 30_000);
    entry.set(
        "song",
        B::dict([("title", B::s("B")), ("duration_ms", B::Int(5))]),
    );
    let mut info = multi_info("Album", 16384, &[(&["a.flac"], 10_000)]);
    info.set(
        "files",
        B::List(vec![file_entry(&["a.flac"], 10_000), entry]),
    );
    info.set("pieces", bencode::fake_pieces(3));
    info.set(
        "song",
        B::dict([("album", B::s("Al")), ("codec", B::s("flac"))]),
    );
    B::dict([
        ("info", info),
        ("nodes", B::List(vec![B::s("127.0.0.1:1")])),
    ])
    .encode()
}

#[test]
fn every_prefix_is_refused_without_panic() {
    let bytes = sample();
    assert!(Manifest::from_bytes(&bytes).is_ok());
    for end in 0..bytes.len() {
        assert!(
            Manifest::from_bytes(&bytes[..end]).is_err(),
            "prefix {end} accepted"
        );
        let _ = Manifest::from_info_bytes(&bytes[..end]);
    }
}

#[test]
fn byte_flips_never_panic() {
    let bytes = sample();
    // A fixed xorshift stream: the same garbling on every run.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let interesting = [
        b'd', b'e', b'i', b'l', b':', b'0', b'9', b'-', b'/', b'.', 0, 0xff,
    ];
    let mut accepted = 0;
    for round in 0..20_000 {
        let mut garbled = bytes.clone();
        for _ in 0..1 + round % 3 {
            let at = (next() % garbled.len() as u64) as usize;
            garbled[at] = if next() % 2 == 0 {
                interesting[(next() % interesting.len() as u64) as usize]
            } else {
                next() as u8
            };
        }
        if let Ok(m) = Manifest::from_bytes(&garbled) {
            accepted += 1;
            // Whatever got through must still be self-consistent.
            assert_eq!(m.info_hash, Id::hash(&m.info_bytes));
            assert_eq!(
                u64::from(m.piece_count()),
                m.total_length.div_ceil(m.piece_length)
            );
            for f in &m.files {
                assert!(f.path.starts_with(&m.name));
                assert!(f
                    .path
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_))));
            }
        }
    }
    // Flips inside hash bytes or tag text keep the manifest valid: some must pass.
    assert!(accepted > 0);
}
