//! Playlists: a user's ordered lists of songs, kept in the ring as signed
//! mutable items (see [`crate::chord::records::SignedItem`]) that anyone can
//! read and only their owner can change.
//!
//! A playlist named NAME of the owner with public key K lives at
//! SHA-1(K ‖ NAME) (BEP 44's target of salt NAME). Its value is a bencoded
//! dictionary {name, tracks: [20-byte info-hashes], next?}; `next` is the
//! key of the next part of a long playlist. Parts hold
//! [`TRACKS_PER_RECORD`] tracks each; a part's salt is `#` and the hex
//! SHA-1 of its value, so a part is never rewritten (a new version of the
//! list writes new parts, then the head), and a reader following the head
//! of one version finds exactly that version's parts. The head's sequence
//! number is the playlist's version; writes of the head use
//! compare-and-swap on it.
//!
//! - this file: the value, the chain of parts, names and `OWNER/NAME`;
//! - [`ring`]: reading and writing them through a node;
//! - [`own`]: editing the user's own, and the index of their names.

use std::borrow::Cow;
use std::collections::BTreeMap;

use bendy::encoding::ToBencode;
use bendy::value::Value;

use crate::chord::records::{decode_one, target, MAX_SALT};
use crate::id::Id;
use crate::identity::{hex, parse_hex32};

pub mod keep;
pub mod own;
pub mod ring;

/// Tracks in one record (the head or a part): with the longest name and a
/// `next` link the value stays under BEP 44's 1000 bytes.
pub const TRACKS_PER_RECORD: usize = 32;

/// Most parts a reader follows (a playlist of 32,000 songs).
pub const MAX_PARTS: usize = 1000;

/// Why a playlist name, reference or value is not one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// A name that cannot be a playlist's.
    #[error("playlist name {name:?}: {why}")]
    BadName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// `OWNER/NAME` that is not one.
    #[error("{arg:?} is not OWNER/NAME (OWNER: a public key of 64 hex digits, as `songswarm id` shows it)")]
    BadRef {
        /// The argument.
        arg: String,
    },
    /// A value that is not a playlist's.
    #[error("the record is not a playlist: {0}")]
    NotAPlaylist(&'static str),
}

/// Ok if `name` can name a playlist: 1 to 64 bytes (BEP 44's salt limit),
/// no control characters, not starting with `#` (the parts' salts do).
pub fn check_name(name: &str) -> Result<(), FormError> {
    let bad = |why| {
        Err(FormError::BadName {
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_SALT {
        return bad("longer than 64 bytes");
    }
    if name.starts_with('#') {
        return bad("starts with '#'");
    }
    if name.chars().any(char::is_control) {
        return bad("has control characters");
    }
    Ok(())
}

/// A playlist as others name it: its owner's public key and its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaylistRef {
    /// The owner's ed25519 public key.
    pub owner: [u8; 32],
    /// The playlist's name.
    pub name: String,
}

impl PlaylistRef {
    /// Parses `OWNER/NAME` (OWNER: 64 hex digits; NAME: the rest, which
    /// may hold `/`). None if `arg` is not of that form at all, so a
    /// caller can try other readings (e.g. `play`'s words).
    pub fn parse(arg: &str) -> Option<Result<PlaylistRef, FormError>> {
        let (owner, name) = arg.split_once('/')?;
        let owner = parse_hex32(owner)?;
        let name = name.to_string();
        Some(check_name(&name).map(|()| PlaylistRef { owner, name }))
    }

    /// The key of the playlist's head record.
    pub fn key(&self) -> Id {
        target(&self.owner, self.name.as_bytes())
    }
}

impl std::fmt::Display for PlaylistRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", hex(&self.owner), self.name)
    }
}

/// One record of a playlist: the head or a part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The playlist's name.
    pub name: String,
    /// This record's share of the tracks, in order.
    pub tracks: Vec<Id>,
    /// The key of the next part, if any.
    pub next: Option<Id>,
}

impl Part {
    /// The bencoded value: {name, next?, tracks}.
    pub fn encode(&self) -> Vec<u8> {
        let bytes = |b: &[u8]| Value::Bytes(Cow::Owned(b.to_vec()));
        let mut d: BTreeMap<Cow<'static, [u8]>, Value<'static>> = BTreeMap::new();
        d.insert(Cow::Borrowed(b"name"), bytes(self.name.as_bytes()));
        if let Some(next) = self.next {
            d.insert(Cow::Borrowed(b"next"), bytes(&next.0));
        }
        let tracks = self.tracks.iter().map(|t| bytes(&t.0)).collect();
        d.insert(Cow::Borrowed(b"tracks"), Value::List(tracks));
        // Encoding a value built here cannot fail.
        Value::Dict(d).to_bencode().unwrap_or_default()
    }

    /// A value back; strict about every field.
    pub fn decode(v: &[u8]) -> Result<Part, FormError> {
        let no = FormError::NotAPlaylist;
        let Some(Value::Dict(d)) = decode_one(v) else {
            return Err(no("not a dictionary"));
        };
        let id = |value: &Value| match value {
            Value::Bytes(b) if b.len() == 20 => {
                let mut id = [0u8; 20];
                id.copy_from_slice(b);
                Some(Id(id))
            }
            _ => None,
        };
        let name = match d.get(&b"name"[..]) {
            Some(Value::Bytes(b)) => {
                String::from_utf8(b.to_vec()).map_err(|_| no("name is not UTF-8"))?
            }
            _ => return Err(no("no name")),
        };
        let tracks = match d.get(&b"tracks"[..]) {
            Some(Value::List(list)) => list.iter().map(id).collect::<Option<Vec<Id>>>(),
            _ => None,
        };
        let tracks = tracks.ok_or(no("tracks are not a list of info-hashes"))?;
        let next = match d.get(&b"next"[..]) {
            None => None,
            Some(value) => Some(id(value).ok_or(no("next is not a key"))?),
        };
        Ok(Part { name, tracks, next })
    }
}

/// The salt of a part whose value is `v`: `#` and the hex SHA-1 of `v`.
pub fn part_salt(v: &[u8]) -> Vec<u8> {
    format!("#{}", Id::hash(v).to_hex()).into_bytes()
}

/// The records of the playlist `name` of `owner` holding `tracks`, as
/// (salt, value) in write order: the last part first, the head last.
pub fn chain(owner: &[u8; 32], name: &str, tracks: &[Id]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let chunks: Vec<&[Id]> = if tracks.is_empty() {
        vec![&[]]
    } else {
        tracks.chunks(TRACKS_PER_RECORD).collect()
    };
    let mut next = None;
    let mut out = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.iter().enumerate().rev() {
        let part = Part {
            name: name.to_string(),
            tracks: chunk.to_vec(),
            next,
        };
        let v = part.encode();
        let salt = if i == 0 {
            name.as_bytes().to_vec()
        } else {
            part_salt(&v)
        };
        next = Some(target(owner, &salt));
        out.push((salt, v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chord::records::MAX_MUTABLE_VALUE as MAX_VALUE;

    fn track(n: u32) -> Id {
        Id::hash(&n.to_be_bytes())
    }

    #[test]
    fn the_fullest_record_fits_bep44s_limit() {
        let part = Part {
            name: "n".repeat(MAX_SALT),
            tracks: (0..TRACKS_PER_RECORD as u32).map(track).collect(),
            next: Some(track(999)),
        };
        let v = part.encode();
        assert!(v.len() <= MAX_VALUE, "{} bytes", v.len());
        assert_eq!(Part::decode(&v), Ok(part));
    }

    #[test]
    fn a_long_playlist_is_chained_in_order_not_truncated() {
        let owner = [7u8; 32];
        let tracks: Vec<Id> = (0..100).map(track).collect();
        let records = chain(&owner, "long", &tracks);
        assert_eq!(records.len(), 4, "32 + 32 + 32 + 4");
        // Follow the chain from the head (written last).
        let (head_salt, _) = records.last().unwrap();
        assert_eq!(head_salt, b"long");
        let by_key: BTreeMap<Id, &Vec<u8>> = records
            .iter()
            .map(|(s, v)| (target(&owner, s), v))
            .collect();
        let mut at = Some(target(&owner, b"long"));
        let mut read = Vec::new();
        while let Some(key) = at {
            let part = Part::decode(by_key[&key]).unwrap();
            read.extend(part.tracks);
            at = part.next;
        }
        assert_eq!(read, tracks);
        // Parts are content-addressed: another list has other part keys.
        let other = chain(&owner, "long", &tracks[1..]);
        assert_ne!(other[0].0, records[0].0);
        assert_eq!(chain(&owner, "empty", &[]).len(), 1);
    }

    #[test]
    fn names_and_refs() {
        assert!(check_name("road trip").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("#1").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
        assert!(check_name("a\nb").is_err());
        let owner = hex(&[0xab; 32]);
        let r = PlaylistRef::parse(&format!("{owner}/mix/2024"))
            .unwrap()
            .unwrap();
        assert_eq!((r.owner, r.name.as_str()), ([0xab; 32], "mix/2024"));
        assert_eq!(r.to_string(), format!("{owner}/mix/2024"));
        assert!(PlaylistRef::parse("some words").is_none());
        assert!(
            PlaylistRef::parse("abc/def").is_none(),
            "not a key: not a reference"
        );
        assert!(PlaylistRef::parse(&format!("{owner}/")).unwrap().is_err());
        assert!(Part::decode(b"d4:name1:a6:tracksli1eee").is_err());
        assert!(Part::decode(b"le").is_err());
    }
}
