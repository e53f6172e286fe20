//! The ring as the library, through a running node: publishing a song's
//! metadata and postings, and searching them.
//!
//! Publishing a torrent stores its raw `info` dictionary under its
//! info-hash (an [`Immutable`] value), then, for each search word of its
//! songs, one posting per word with every song of the torrent it finds, in
//! the word's shard for this info-hash. Metadata goes first: a replica of a
//! posting checks it against the metadata before storing it.
//!
//! A search reads every shard of every word of the query at once, keeps the
//! songs found under every word, reads the swarm list of each torrent
//! found, and ranks by live seeders, then by how much of the query the
//! title holds, then by title.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::future::join_all;

use crate::chord::handle::ChordHandle;
use crate::chord::records::{
    song_words, songs_of, Immutable, Postings, Record, RecordKind, Song, MAX_VALUE,
};
use crate::chord::{ChordError, Role};
use crate::id::Id;
use crate::manifest::Manifest;
use crate::wire::chord::message::Hit;
use crate::words::{posting_key, posting_keys, shard_of, word_set, words};

/// Most torrents whose swarms a search reads to rank its results.
const RANKED: usize = 64;

/// Most words of a query that are searched (the rest are ignored).
pub const MAX_QUERY_WORDS: usize = 8;

/// Store `manifest`'s metadata and postings in the ring, living `ttl`.
/// Fails if the metadata, or every posting, could not be stored.
pub async fn publish(
    chord: &ChordHandle,
    manifest: &Manifest,
    ttl: Duration,
) -> Result<(), ChordError> {
    let info = manifest.info_bytes.clone();
    if info.len() > MAX_VALUE {
        return Err(ChordError::Remote(format!(
            "the torrent's info dictionary ({} bytes) is too large for the ring",
            info.len()
        )));
    }
    let ih = manifest.info_hash;
    chord
        .put(ih, move |now| Immutable::new(info, now, ttl).into())
        .await?;
    let writes = postings_of(manifest).into_iter().map(|(word, songs)| {
        let key = posting_key(&word, shard_of(&ih));
        chord.put(key, move |now| {
            Postings::new(&word, &songs, now, ttl).into()
        })
    });
    // A posting refused by a full list (a very common word) is not worth
    // publishing again at once: only a publish where no posting was stored
    // is a failure; the rest are tried again at the next publish.
    let results = join_all(writes).await;
    let stored = results.iter().filter(|r| r.is_ok()).count();
    match results.into_iter().find_map(Result::err) {
        Some(e) if stored == 0 => Err(e),
        _ => Ok(()),
    }
}

/// Each search word of `manifest`'s songs, with the songs it finds.
pub fn postings_of(manifest: &Manifest) -> BTreeMap<String, Vec<Song>> {
    let mut by_word: BTreeMap<String, Vec<Song>> = BTreeMap::new();
    for song in songs_of(manifest) {
        for word in song_words(&song) {
            by_word.entry(word).or_default().push(song.clone());
        }
    }
    by_word
}

/// The distinct search words of `query`, at most [`MAX_QUERY_WORDS`].
pub fn query_words(query: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    words(query)
        .into_iter()
        .filter(|w| seen.insert(w.clone()))
        .take(MAX_QUERY_WORDS)
        .collect()
}

/// The songs that match every word of `query`, best first, at most `limit`.
pub async fn search(
    chord: &ChordHandle,
    query: &str,
    limit: usize,
) -> Result<Vec<Hit>, ChordError> {
    let words = query_words(query);
    if words.is_empty() {
        return Err(ChordError::Remote(format!(
            "{query:?} has no word to search for (words of two letters or more, not \"the\", \"and\", …)"
        )));
    }
    let reads = words.iter().flat_map(|w| {
        posting_keys(w)
            .into_iter()
            .map(move |key| async move { (w.clone(), chord.get(key, Postings::KIND).await) })
    });
    let mut found: BTreeMap<String, BTreeMap<(Id, u32), Song>> = BTreeMap::new();
    for (word, result) in join_all(reads).await {
        let songs = found.entry(word).or_default();
        if let Record::Postings(p) = result? {
            songs.extend(p.songs().map(|s| ((s.info_hash, s.file), s.clone())));
        }
    }
    let matches = intersect(found.into_values().collect());
    rank(chord, &words, matches, limit).await
}

/// The songs found under every one of the lists.
fn intersect(mut lists: Vec<BTreeMap<(Id, u32), Song>>) -> Vec<Song> {
    lists.sort_by_key(|l| l.len());
    let Some((first, rest)) = lists.split_first() else {
        return Vec::new();
    };
    first
        .iter()
        .filter(|(k, _)| rest.iter().all(|l| l.contains_key(k)))
        .map(|(_, s)| s.clone())
        .collect()
}

/// How well `song`'s title matches the query `words`: the share of the
/// query in the title, and a bonus when the title is exactly the query.
pub fn title_score(song: &Song, words: &[String]) -> u32 {
    let title = word_set([song.title.as_str()]);
    let inside = words.iter().filter(|w| title.contains(*w)).count() as u32;
    let exact = title.len() == words.len() && inside as usize == words.len();
    inside * 10 / words.len().max(1) as u32 + if exact { 5 } else { 0 }
}

/// Rank `matches` by live seeders, then title score, then title.
async fn rank(
    chord: &ChordHandle,
    words: &[String],
    mut matches: Vec<Song>,
    limit: usize,
) -> Result<Vec<Hit>, ChordError> {
    // The swarms of the best titles only, so a common word stays cheap.
    matches.sort_by(|a, b| {
        title_score(b, words)
            .cmp(&title_score(a, words))
            .then_with(|| a.cmp(b))
    });
    let mut torrents: Vec<Id> = Vec::new();
    for s in &matches {
        if !torrents.contains(&s.info_hash) && torrents.len() < RANKED {
            torrents.push(s.info_hash);
        }
    }
    let swarms = join_all(torrents.iter().map(|ih| chord.peers(*ih))).await;
    let mut counts: BTreeMap<Id, (u32, u32)> = BTreeMap::new();
    for (ih, swarm) in torrents.iter().zip(swarms) {
        // A swarm that cannot be read counts as empty: the song still shows.
        let peers = swarm.unwrap_or_default();
        let seeders = peers.iter().filter(|(_, r)| *r == Role::Seeder).count();
        counts.insert(*ih, (seeders as u32, peers.len() as u32));
    }
    let mut hits: Vec<Hit> = matches
        .into_iter()
        .map(|song| {
            let (seeders, peers) = counts.get(&song.info_hash).copied().unwrap_or((0, 0));
            Hit {
                song,
                seeders,
                peers,
            }
        })
        .collect();
    hits.sort_by(|a, b| {
        b.seeders
            .cmp(&a.seeders)
            .then_with(|| title_score(&b.song, words).cmp(&title_score(&a.song, words)))
            .then_with(|| a.song.title.cmp(&b.song.title))
            .then_with(|| a.song.cmp(&b.song))
    });
    hits.truncate(limit);
    Ok(hits)
}

/// The immutable value under `key`, if the ring holds one.
pub async fn get_value(chord: &ChordHandle, key: Id) -> Result<Option<Vec<u8>>, ChordError> {
    match chord.get(key, Immutable::KIND).await? {
        Record::Immutable(v) => Ok(v.value().map(<[u8]>::to_vec)),
        _ => Ok(None),
    }
}

/// Store `value` under its SHA-1, living `ttl`; returns the key.
pub async fn put_value(
    chord: &ChordHandle,
    value: Vec<u8>,
    ttl: Duration,
) -> Result<Id, ChordError> {
    if value.is_empty() || value.len() > MAX_VALUE {
        return Err(ChordError::Remote(format!(
            "a value must have 1 to {} bytes, not {}",
            MAX_VALUE,
            value.len()
        )));
    }
    let key = Immutable::key_of(&value);
    chord
        .put(key, move |now| Immutable::new(value, now, ttl).into())
        .await?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn song(title: &str) -> Song {
        Song {
            info_hash: Id::hash(title.as_bytes()),
            file: 0,
            title: title.into(),
            artist: "Nova".into(),
            album: "Blue".into(),
            duration_ms: 0,
        }
    }

    #[test]
    fn exact_titles_score_above_partial_ones() {
        let q = query_words("blue sky");
        assert_eq!(q, ["blue", "sky"]);
        let exact = title_score(&song("Blue Sky"), &q);
        let longer = title_score(&song("Blue Sky Forever"), &q);
        let half = title_score(&song("Sky"), &q);
        assert!(exact > longer && longer > half, "{exact} {longer} {half}");
        assert_eq!(title_score(&song("Other"), &q), 0);
    }

    #[test]
    fn intersection_keeps_songs_under_every_word() {
        let (a, b, c) = (song("A1"), song("B1"), song("C1"));
        let list = |songs: &[&Song]| {
            songs
                .iter()
                .map(|s| ((s.info_hash, s.file), (*s).clone()))
                .collect::<BTreeMap<_, _>>()
        };
        let got = intersect(vec![list(&[&a, &b, &c]), list(&[&b, &c]), list(&[&c, &b])]);
        let mut want = vec![b.clone(), c.clone()];
        want.sort();
        assert_eq!(got, want);
        assert!(intersect(vec![list(&[&a]), list(&[])]).is_empty());
        assert_eq!(query_words("The the THE sky Sky"), ["sky"]);
    }
}
