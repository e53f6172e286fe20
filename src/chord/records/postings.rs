//! Keyword postings: for one shard of one search word, the songs it is
//! found in, as a state-based CRDT with expiry like swarm lists.
//!
//! A record holds its word and shard (so a replica can check the key is
//! [`posting_key`] of them) and maps each song, (info-hash, file index),
//! to what a search shows of it (title, artist, album, duration) and when
//! that posting expires. Merge keeps, per song, the later expiry; a
//! publisher re-posts while it seeds, so an expiry is also when a posting
//! was last seen. A list holds at most [`MAX_POSTINGS`] songs: a newcomer
//! takes the place of the least recently seen one, if that one is older.
//!
//! What a replica checks by itself ([`RecordKind::validate`]): the key is
//! the word's and shard's, the word is one normalized word, every song
//! belongs to that shard, the word occurs in the song's own title, artist
//! or album, and no field is oversize. What it checks against the ring:
//! that the song's metadata record says so ([`Postings::vouched_by`]); the
//! node does that before it stores a posting from another node.
//!
//! On the wire: word length (1 byte), word, shard (1 byte), song count
//! (2 bytes), then per song its info-hash (20 bytes), file index (4),
//! time left in ms (8), duration in ms (8), and title, artist, album each
//! as a 2-byte length and UTF-8 bytes; big-endian throughout.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::chord::records::{Limits, Quota, RecordKind, Version, VersionOf};
use crate::id::Id;
use crate::manifest::Manifest;
pub use crate::wire::chord::message::Song;
use crate::wire::chord::message::{Kind, WireRecord};
use crate::words::{is_word, posting_key, shard_of, word_set, SHARDS};

/// Most songs one posting list (one shard of one word) holds.
pub const MAX_POSTINGS: usize = 128;

/// Longest title, artist or album a posting carries, in bytes.
pub const MAX_FIELD: usize = 200;

/// The search words of a song's title, artist and album.
pub fn song_words(song: &Song) -> std::collections::BTreeSet<String> {
    word_set([song.title.as_str(), &song.artist, &song.album])
}

fn fields_fit(song: &Song) -> bool {
    [&song.title, &song.artist, &song.album]
        .iter()
        .all(|f| f.len() <= MAX_FIELD)
}

/// `s` cut to at most [`MAX_FIELD`] bytes at a character boundary.
fn cut(s: &str) -> String {
    let mut end = s.len().min(MAX_FIELD);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The songs of a torrent as the catalog lists them: each file (pad files
/// aside) with its own tags, falling back to the torrent's tags for artist
/// and album and to the file name for the title.
pub fn songs_of(manifest: &Manifest) -> Vec<Song> {
    let top = manifest.song.clone().unwrap_or_default();
    let per_file = manifest.file_songs();
    let pads = manifest.pad_files();
    let single = manifest.files.len() == 1;
    let mut out = Vec::new();
    for (i, file) in manifest.files.iter().enumerate() {
        if pads.get(i).copied().unwrap_or(false) {
            continue;
        }
        let own = per_file.get(i).cloned().flatten().unwrap_or_default();
        let stem = file
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let title = own
            .title
            .or(if single { top.title.clone() } else { None })
            .unwrap_or(stem);
        out.push(Song {
            info_hash: manifest.info_hash,
            file: i as u32,
            title: cut(&title),
            artist: cut(&own.artist.or(top.artist.clone()).unwrap_or_default()),
            album: cut(&own.album.or(top.album.clone()).unwrap_or_default()),
            duration_ms: own
                .duration_ms
                .or(if single { top.duration_ms } else { None })
                .unwrap_or(0),
        });
    }
    out
}

/// The songs of a torrent's raw `info` dictionary; None if it is not one.
pub fn songs_of_info(info: &[u8]) -> Option<Vec<Song>> {
    Manifest::from_info_bytes(info).ok().map(|m| songs_of(&m))
}

/// One shard of one word's posting list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Postings {
    /// The word (empty only in the empty record).
    word: String,
    /// Which of the word's [`SHARDS`] lists this is.
    shard: u8,
    /// (info-hash, file) → the song and when its posting expires here.
    songs: BTreeMap<(Id, u32), (Instant, Song)>,
}

impl Postings {
    /// The posting of `songs` (all of one torrent, so of one shard) under
    /// `word`, made at `now`, living `ttl`.
    pub fn new(word: &str, songs: &[Song], now: Instant, ttl: Duration) -> Postings {
        let shard = songs.first().map_or(0, |s| shard_of(&s.info_hash));
        let songs = songs
            .iter()
            .map(|s| ((s.info_hash, s.file), (now + ttl, s.clone())))
            .collect();
        Postings {
            word: word.to_string(),
            shard,
            songs,
        }
    }

    /// The ring key of this list.
    pub fn key(&self) -> Id {
        posting_key(&self.word, self.shard)
    }

    /// The word.
    pub fn word(&self) -> &str {
        &self.word
    }

    /// Number of songs held.
    pub fn count(&self) -> usize {
        self.songs.len()
    }

    /// The songs listed, in (info-hash, file) order.
    pub fn songs(&self) -> impl Iterator<Item = &Song> {
        self.songs.values().map(|(_, s)| s)
    }

    /// The info-hashes whose metadata vouches for these postings.
    pub fn info_hashes(&self) -> Vec<Id> {
        let mut ids: Vec<Id> = self.songs.keys().map(|(ih, _)| *ih).collect();
        ids.dedup();
        ids
    }

    /// True if every song listed is, word and tags, as the metadata that
    /// `songs` gives of its info-hash says (`songs(ih)`: None when the
    /// ring holds no metadata for `ih`).
    pub fn vouched_by(&self, songs: impl Fn(&Id) -> Option<Vec<Song>>) -> bool {
        self.info_hashes().iter().all(|ih| {
            let Some(known) = songs(ih) else {
                return false;
            };
            self.songs
                .range((*ih, 0)..=(*ih, u32::MAX))
                .all(|(_, (_, claimed))| {
                    known.iter().any(|k| k == claimed) && song_words(claimed).contains(&self.word)
                })
        })
    }

    fn merge_song(&mut self, at: (Id, u32), entry: &(Instant, Song)) -> bool {
        match self.songs.get_mut(&at) {
            Some(old) if *entry <= *old => false,
            Some(old) => {
                *old = entry.clone();
                true
            }
            None => {
                self.songs.insert(at, entry.clone());
                true
            }
        }
    }
}

impl RecordKind for Postings {
    const KIND: Kind = 11;

    fn merge(&mut self, other: &Postings) {
        if (self.word.as_str(), self.shard) < (other.word.as_str(), other.shard)
            && !other.word.is_empty()
        {
            if !self.word.is_empty() {
                // Only a record that failed validation could get here;
                // the greater word wins so the merge stays a join.
                self.songs.clear();
            }
            self.word.clone_from(&other.word);
            self.shard = other.shard;
        }
        if (self.word.as_str(), self.shard) == (other.word.as_str(), other.shard) {
            for (at, entry) in &other.songs {
                self.merge_song(*at, entry);
            }
        }
    }

    fn merge_capped(&mut self, incoming: &Postings, _limits: &Limits, _quota: &mut Quota) -> bool {
        if self.word.is_empty() {
            self.word.clone_from(&incoming.word);
            self.shard = incoming.shard;
        }
        if (self.word.as_str(), self.shard) != (incoming.word.as_str(), incoming.shard) {
            return false;
        }
        let mut all_taken = true;
        for (at, entry) in &incoming.songs {
            if !self.songs.contains_key(at) && self.songs.len() >= MAX_POSTINGS {
                // Full: the least recently seen song makes room, if older.
                let oldest = self.songs.iter().min_by_key(|(_, (e, _))| *e);
                match oldest.map(|(k, (e, _))| (*k, *e)) {
                    Some((k, e)) if e < entry.0 => {
                        self.songs.remove(&k);
                    }
                    _ => {
                        all_taken = false;
                        continue;
                    }
                }
            }
            self.merge_song(*at, entry);
        }
        all_taken
    }

    fn validate(&self, key: &Id) -> bool {
        if self.songs.is_empty() {
            return true;
        }
        is_word(&self.word)
            && self.shard < SHARDS
            && self.key() == *key
            && self.songs.len() <= MAX_POSTINGS
            && self.songs.iter().all(|((ih, file), (_, s))| {
                (s.info_hash, s.file) == (*ih, *file)
                    && shard_of(ih) == self.shard
                    && fields_fit(s)
                    && song_words(s).contains(&self.word)
            })
    }

    fn expire(&mut self, now: Instant, _quota: &mut Quota) {
        self.songs.retain(|_, (e, _)| *e > now);
    }

    fn is_empty(&self) -> bool {
        self.songs.is_empty()
    }

    fn version(&self, now: Instant) -> Version {
        let mut v = VersionOf::new(now, 0);
        v.bytes(self.word.as_bytes()).bytes(&[self.shard]);
        for ((ih, file), (expiry, s)) in &self.songs {
            v.bytes(&ih.0).bytes(&file.to_be_bytes());
            v.bytes(s.title.as_bytes()).bytes(s.artist.as_bytes());
            v.bytes(s.album.as_bytes()).bytes(&s.duration_ms.to_be_bytes());
            v.item(Some(*expiry));
        }
        v.done()
    }

    fn is_behind(&self, other: &Postings, slack: Duration) -> bool {
        if (self.word.as_str(), self.shard) != (other.word.as_str(), other.shard) {
            return !other.songs.is_empty();
        }
        other
            .songs
            .iter()
            .any(|(at, (theirs, song))| match self.songs.get(at) {
                None => true,
                Some((mine, my_song)) => *theirs > *mine + slack || (theirs > mine && song != my_song),
            })
    }

    fn to_wire(&self, now: Instant) -> WireRecord {
        let live: Vec<_> = self.songs.values().filter(|(e, _)| *e > now).collect();
        let mut body = vec![self.word.len() as u8];
        body.extend_from_slice(self.word.as_bytes());
        body.push(self.shard);
        body.extend_from_slice(&(live.len() as u16).to_be_bytes());
        for (expiry, s) in live {
            body.extend_from_slice(&s.info_hash.0);
            body.extend_from_slice(&s.file.to_be_bytes());
            let ttl = expiry.duration_since(now).as_millis() as u64;
            body.extend_from_slice(&ttl.to_be_bytes());
            body.extend_from_slice(&s.duration_ms.to_be_bytes());
            for field in [&s.title, &s.artist, &s.album] {
                body.extend_from_slice(&(field.len() as u16).to_be_bytes());
                body.extend_from_slice(field.as_bytes());
            }
        }
        WireRecord::Tagged {
            kind: Self::KIND,
            body,
        }
    }

    fn from_wire(now: Instant, wire: &WireRecord, limits: &Limits) -> Option<Postings> {
        let WireRecord::Tagged { kind, body } = wire else {
            return None;
        };
        if *kind != Self::KIND {
            return None;
        }
        let mut r = Reader(body);
        let word_len = r.take(1)?[0] as usize;
        let word = String::from_utf8(r.take(word_len)?.to_vec()).ok()?;
        let shard = r.take(1)?[0];
        let count = u16::from_be_bytes(r.take(2)?.try_into().ok()?) as usize;
        if count > MAX_POSTINGS {
            return None;
        }
        let mut out = Postings {
            word,
            shard,
            songs: BTreeMap::new(),
        };
        for _ in 0..count {
            let info_hash = Id(r.take(20)?.try_into().ok()?);
            let file = u32::from_be_bytes(r.take(4)?.try_into().ok()?);
            let ttl = u64::from_be_bytes(r.take(8)?.try_into().ok()?);
            let duration_ms = u64::from_be_bytes(r.take(8)?.try_into().ok()?);
            let mut fields = Vec::with_capacity(3);
            for _ in 0..3 {
                let len = u16::from_be_bytes(r.take(2)?.try_into().ok()?) as usize;
                fields.push(String::from_utf8(r.take(len)?.to_vec()).ok()?);
            }
            let album = fields.pop()?;
            let artist = fields.pop()?;
            let title = fields.pop()?;
            let song = Song {
                info_hash,
                file,
                title,
                artist,
                album,
                duration_ms,
            };
            if ttl > 0 {
                let expiry = now + Duration::from_millis(ttl).min(limits.max_ttl);
                out.merge_song((info_hash, file), &(expiry, song));
            }
        }
        r.0.is_empty().then_some(out)
    }
}

/// Reads a body front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
}

#[cfg(test)]
mod tests;
