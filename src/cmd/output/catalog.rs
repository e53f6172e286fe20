//! How the catalog's answers print: search hits, library pages, `dht put`
//! and `dht get`.

use serde_json::{json, Value};

use crate::chord::records::Song;
use crate::id::Id;
use crate::wire::chord::Hit;

/// `m:ss` of a duration in milliseconds; `-` when unknown.
pub(super) fn duration(ms: u64) -> String {
    if ms == 0 {
        return "-".to_string();
    }
    let s = ms / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}

/// `info-hash` for a single song, `info-hash/file` for a file of an album.
fn song_id(song: &Song) -> String {
    format!("{}/{}", song.info_hash, song.file)
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// One line per song: title, artist, album, duration[, seeders], id.
fn song_line(song: &Song, seeders: Option<u32>) -> String {
    let seeders = seeders.map_or(String::new(), |n| format!("  {n} seeder{}", plural(n)));
    format!(
        "{}  |  {}  |  {}  |  {}{seeders}  |  {}",
        song.title,
        or_dash(&song.artist),
        or_dash(&song.album),
        duration(song.duration_ms),
        song_id(song)
    )
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

pub(super) fn hits_text(query: &str, hits: &[Hit]) -> String {
    if hits.is_empty() {
        return format!("no song matches {query:?}");
    }
    let lines: Vec<String> = hits
        .iter()
        .map(|h| song_line(&h.song, Some(h.seeders)))
        .collect();
    lines.join("\n")
}

pub(super) fn hits_json(query: &str, hits: &[Hit]) -> Value {
    json!({"query": query, "results": hits})
}

pub(super) fn songs_text(songs: &[Song]) -> String {
    let lines: Vec<String> = songs.iter().map(|s| song_line(s, None)).collect();
    lines.join("\n")
}

/// One object per line, one line per song.
pub(super) fn songs_json(songs: &[Song]) -> String {
    let lines: Vec<String> = songs
        .iter()
        .filter_map(|s| serde_json::to_string(s).ok())
        .collect();
    lines.join("\n")
}

pub(super) fn stored_json(key: Id, bytes: usize) -> Value {
    json!({"key": key, "bytes": bytes, "stored": true})
}

pub(super) fn value_text(value: &Option<Vec<u8>>) -> String {
    match value {
        Some(v) => String::from_utf8_lossy(v).into_owned(),
        None => String::new(),
    }
}

pub(super) fn value_json(key: Id, value: &Option<Vec<u8>>) -> Value {
    match value {
        Some(v) => match std::str::from_utf8(v) {
            Ok(text) => json!({"key": key, "found": true, "value": text}),
            Err(_) => json!({"key": key, "found": true, "value_hex": hex(v)}),
        },
        None => json!({"key": key, "found": false}),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_lines_read_well() {
        assert_eq!(duration(0), "-");
        assert_eq!(duration(61_500), "1:01");
        let song = Song {
            info_hash: Id::hash(b"x"),
            file: 2,
            title: "Sunrise".into(),
            artist: "".into(),
            album: "Blue".into(),
            duration_ms: 125_000,
        };
        let line = song_line(&song, Some(1));
        assert!(
            line.starts_with("Sunrise  |  -  |  Blue  |  2:05  1 seeder  |  "),
            "{line}"
        );
        assert!(line.ends_with(&format!("{}/2", song.info_hash)));
        let hit = Hit {
            song,
            seeders: 3,
            peers: 4,
        };
        let v = hits_json("sun", &[hit]);
        assert_eq!(v["results"][0]["title"], "Sunrise");
        assert_eq!(v["results"][0]["seeders"], 3);
        assert_eq!(v["results"][0]["file"], 2);
    }
}
