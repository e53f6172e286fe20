//! Hostile manifests: each is refused with the error that names what is
//! wrong, and no input, however garbled, makes the parser panic.

#[path = "support/manifest_bencode.rs"]
mod bencode;

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
fn duplicate_keys_are_refused() {
    // Keys out of order are read, as libtorrent reads them (see
    // manifest_foreign.rs); a key given twice never is.
    let bytes = b"d4:infod6:lengthi10e6:lengthi10e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
    assert!(matches!(
        Manifest::from_bytes(bytes),
        Err(ManifestError::Bencode(_))
    ));
    // Out of order and repeated, far apart.
    let bytes = b"d4:infod4:name1:a6:lengthi10e12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaa6:lengthi10eee";
    assert!(matches!(
        Manifest::from_bytes(bytes),
        Err(ManifestError::Bencode(ref m)) if m.contains("twice")
    ));
    // In the top-level dictionary too.
    let bytes = b"d4:infod6:lengthi10e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae5:nodesle4:infodee";
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

#[test]
fn truncated_input_says_so() {
    let bytes = torrent(single_info("a", 16384, 100_000));
    let e = Manifest::from_bytes(&bytes[..bytes.len() / 2]).unwrap_err();
    assert!(
        matches!(e, ManifestError::Bencode(ref m) if m.contains("EOF")),
        "{e}"
    );
    assert!(matches!(
        Manifest::from_bytes(b""),
        Err(ManifestError::Bencode(_))
    ));
}

#[test]
fn trailing_bytes_after_a_whole_torrent_are_ignored() {
    // Some tools end the file with a newline; other clients accept that.
    let mut bytes = torrent(single_info("a", 16384, 10));
    let clean = Manifest::from_bytes(&bytes).unwrap();
    bytes.push(b'\n');
    assert_eq!(Manifest::from_bytes(&bytes).unwrap(), clean);
}

#[test]
fn v2_only_manifests_are_refused_with_a_reason() {
    let mut info = single_info("a", 16384, 10);
    info.remove("pieces");
    info.set("meta version", B::Int(2));
    let e = err(info);
    assert!(e.to_string().contains("v2"), "{e}");
}

#[test]
fn bare_info_flips_never_panic() {
    let info = {
        let full = sample();
        Manifest::from_bytes(&full).unwrap().info_bytes
    };
    let mut state = 0x1234_5678_9ABC_DEF1u64;
    for _ in 0..10_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut garbled = info.clone();
        let at = (state % garbled.len() as u64) as usize;
        garbled[at] = (state >> 32) as u8;
        if let Ok(m) = Manifest::from_info_bytes(&garbled) {
            assert_eq!(m.info_hash, Id::hash(&garbled));
        }
    }
}

#[test]
fn pad_files_may_repeat_only_among_themselves() {
    let pad = |path: &[&str], len| {
        let mut e = file_entry(path, len);
        e.set("attr", B::s("p"));
        e
    };
    let mut info = multi_info("A", 16384, &[(&["a"], 1)]);
    info.set(
        "files",
        B::List(vec![
            file_entry(&["a"], 100),
            pad(&[".pad", "16284"], 16284),
            file_entry(&["b"], 100),
            pad(&[".pad", "16284"], 16284),
            file_entry(&["c"], 10),
        ]),
    );
    info.set("pieces", bencode::fake_pieces(3));
    let m = parse(info.clone()).unwrap();
    assert_eq!(m.pad_files(), vec![false, true, false, true, false]);
    // A pad file that claims a real file's path is refused.
    info.set(
        "files",
        B::List(vec![
            file_entry(&["a"], 100),
            pad(&["a"], 16284),
            file_entry(&["c"], 10),
        ]),
    );
    info.set("pieces", bencode::fake_pieces(2));
    assert!(matches!(err(info), ManifestError::UnsafePath { .. }));
}
