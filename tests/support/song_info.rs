//! Raw `info` dictionaries of made-up single-song torrents, as a seeder
//! publishes them, for the catalog's tests and benchmark.

use songswarm::chord::records::{songs_of_info, Song};
use songswarm::id::Id;

fn text(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(format!("{}:", s.len()).as_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The bencoded `info` of a one-file torrent of `length` bytes whose song
/// has these tags (keys in bencode's order).
pub fn song_info(title: &str, artist: &str, album: &str, duration_ms: u64, length: u64) -> Vec<u8> {
    let pieces = length.div_ceil(16384).max(1);
    let mut out = b"d".to_vec();
    text(&mut out, "length");
    out.extend_from_slice(format!("i{length}e").as_bytes());
    text(&mut out, "name");
    text(&mut out, &format!("{title}.flac"));
    text(&mut out, "piece length");
    out.extend_from_slice(b"i16384e");
    text(&mut out, "pieces");
    out.extend_from_slice(format!("{}:", pieces * 20).as_bytes());
    for p in 0..pieces {
        out.extend_from_slice(&Id::hash(format!("{title}{p}").as_bytes()).0);
    }
    text(&mut out, "song");
    out.push(b'd');
    text(&mut out, "album");
    text(&mut out, album);
    text(&mut out, "artist");
    text(&mut out, artist);
    text(&mut out, "duration_ms");
    out.extend_from_slice(format!("i{duration_ms}e").as_bytes());
    text(&mut out, "title");
    text(&mut out, title);
    out.extend_from_slice(b"ee");
    out
}

/// The song of a one-song `info`, as the catalog lists it.
#[allow(dead_code)] // not every user of this file needs it
pub fn song_of(info: &[u8]) -> Song {
    let songs = songs_of_info(info).expect("a valid info dictionary");
    assert_eq!(songs.len(), 1);
    songs.into_iter().next().expect("one song")
}
