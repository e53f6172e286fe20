//! Parsing valid manifests: geometry, info-hash over the raw bytes, song
//! metadata, nodes and round trips. Hostile input: manifest_hostile.rs.

#[path = "support/manifest_bencode.rs"]
mod bencode;

use std::path::PathBuf;

use bencode::{file_entry, multi_info, single_info, torrent, B};
use songswarm::id::Id;
use songswarm::manifest::{Manifest, ManifestError};

fn parse(info: B) -> Result<Manifest, ManifestError> {
    Manifest::from_bytes(&torrent(info))
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
