//! Reading and writing signed items and playlists through a ring node:
//! from outside (a [`ChordClient`], the CLI) or inside the process (a
//! [`ChordHandle`], the HTTP API). Nothing a node answers is trusted: every
//! item read is verified again here.

use std::future::Future;

use ed25519_dalek::SigningKey;

use super::{chain, check_name, part_salt, FormError, Part, PlaylistRef, MAX_PARTS};
use crate::chord::client::ChordClient;
use crate::chord::handle::ChordHandle;
use crate::chord::records::{target, Limits, Mutable, MutableError, RecordKind, SignedItem};
use crate::chord::ChordError;
use crate::id::Id;
use crate::wire::chord::message::{Kind, WireRecord};

/// Quorum puts and gets of records, whoever carries them.
pub trait RecordAccess {
    /// Merge `value` at `key`; Ok once W replicas stored it.
    fn put(
        &mut self,
        key: Id,
        value: WireRecord,
    ) -> impl Future<Output = Result<(), ChordError>> + Send;
    /// The record of `kind` at `key`, merged from R replicas.
    fn get(
        &mut self,
        key: Id,
        kind: Kind,
    ) -> impl Future<Output = Result<WireRecord, ChordError>> + Send;
}

impl RecordAccess for ChordClient {
    async fn put(&mut self, key: Id, value: WireRecord) -> Result<(), ChordError> {
        ChordClient::put(self, key, value).await
    }
    async fn get(&mut self, key: Id, kind: Kind) -> Result<WireRecord, ChordError> {
        ChordClient::get(self, key, kind).await
    }
}

impl RecordAccess for ChordHandle {
    async fn put(&mut self, key: Id, value: WireRecord) -> Result<(), ChordError> {
        self.put_wire(key, value).await
    }
    async fn get(&mut self, key: Id, kind: Kind) -> Result<WireRecord, ChordError> {
        self.get_wire(key, kind).await
    }
}

/// Why a signed item or playlist could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PlaylistError {
    /// The ring did not answer, or refused.
    #[error(transparent)]
    Ring(#[from] ChordError),
    /// A name, reference or value that is not a playlist's.
    #[error(transparent)]
    Form(#[from] FormError),
    /// A value that cannot be signed as given (e.g. too long).
    #[error(transparent)]
    Item(#[from] MutableError),
    /// Compare-and-swap failed: someone (another device) wrote first.
    #[error("{what} was changed elsewhere: the ring holds version {found}, this change was made on version {expected}; nothing was overwritten, run the command again to apply it on top")]
    Conflict {
        /// What was written, for the message.
        what: String,
        /// The version the change was based on.
        expected: u64,
        /// The version the ring holds now.
        found: u64,
    },
    /// `create` of a playlist that exists.
    #[error("playlist {name:?} exists already (version {seq}); use `playlist add`")]
    Exists {
        /// Its name.
        name: String,
        /// Its version.
        seq: u64,
    },
    /// Nothing is stored under that owner and name.
    #[error("nothing is stored as {0} in the ring")]
    NotFound(String),
    /// The index of own playlists in the config directory cannot be written.
    #[error("the playlist was written, but not its name in the index of own playlists: {0}")]
    Index(String),
    /// An edit that does not apply to the playlist (e.g. a position past
    /// its end).
    #[error("{0}")]
    BadEdit(String),
    /// A node answered with an item that does not verify or does not fit.
    #[error("the ring answered with a bad record for {key}: {why}")]
    BadAnswer {
        /// The key read.
        key: Id,
        /// What is wrong.
        why: String,
    },
}

/// The signed item at `key`, verified (None: nothing there).
pub async fn read_item<A: RecordAccess>(
    ring: &mut A,
    key: Id,
) -> Result<Option<SignedItem>, PlaylistError> {
    let wire = ring.get(key, Mutable::KIND).await?;
    let bad = |why: String| PlaylistError::BadAnswer { key, why };
    // Signed items take no caps beyond their own checks.
    let limits = Limits {
        max_items_per_key: 1,
        max_items_per_source: 1,
        max_items_per_key_per_source: 1,
        max_items: usize::MAX,
        max_ttl: std::time::Duration::ZERO,
    };
    let record = Mutable::from_wire(std::time::Instant::now(), &wire, &limits)
        .ok_or_else(|| bad("does not parse".into()))?;
    record.check(&key).map_err(|e| bad(e.to_string()))?;
    Ok(record.item)
}

/// Sign `v` under `salt` as the next version after `expected` (0: none yet)
/// and write it with compare-and-swap; on a refusal the item is read again
/// to tell a conflict (someone wrote first) from a ring that failed.
/// Returns the new version.
pub async fn write_item<A: RecordAccess>(
    ring: &mut A,
    key_pair: &SigningKey,
    salt: &[u8],
    v: Vec<u8>,
    expected: u64,
    what: &str,
) -> Result<u64, PlaylistError> {
    let item = SignedItem::sign(key_pair, salt, expected + 1, v)?;
    let key = item.target();
    match ring
        .put(
            key,
            Mutable::swap(item, expected).to_wire(std::time::Instant::now()),
        )
        .await
    {
        Ok(()) => Ok(expected + 1),
        Err(e) => {
            let found = read_item(ring, key).await?.map_or(0, |i| i.seq);
            if found != expected {
                return Err(PlaylistError::Conflict {
                    what: what.to_string(),
                    expected,
                    found,
                });
            }
            Err(e.into())
        }
    }
}

/// A playlist as read from the ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// Its version (the head's sequence number).
    pub seq: u64,
    /// Every track, in order, over all parts.
    pub tracks: Vec<Id>,
    /// Records it spans (the head and its parts).
    pub records: usize,
    /// Those records as read, head first, each with its key.
    pub items: Vec<(Id, SignedItem)>,
}

/// The playlist `r`, following its parts (None: there is none).
pub async fn read<A: RecordAccess>(
    ring: &mut A,
    r: &PlaylistRef,
) -> Result<Option<Loaded>, PlaylistError> {
    let head_key = r.key();
    let Some(head) = read_item(ring, head_key).await? else {
        return Ok(None);
    };
    let mut loaded = Loaded {
        seq: head.seq,
        tracks: Vec::new(),
        records: 0,
        items: Vec::new(),
    };
    let (mut key, mut item) = (head_key, head);
    loop {
        let bad = |why: &str| PlaylistError::BadAnswer {
            key,
            why: why.to_string(),
        };
        if item.k != r.owner {
            return Err(bad("another owner's item"));
        }
        let is_head = key == head_key;
        if !is_head && item.salt != part_salt(&item.v) {
            return Err(bad("a part whose salt is not its value's hash"));
        }
        let part = Part::decode(&item.v)?;
        if part.name != r.name {
            return Err(bad("a part of another playlist"));
        }
        loaded.tracks.extend(part.tracks);
        loaded.records += 1;
        loaded.items.push((key, item));
        let Some(next) = part.next else {
            return Ok(Some(loaded));
        };
        if loaded.records >= MAX_PARTS {
            return Err(bad("more parts than a reader follows"));
        }
        key = next;
        item = read_item(ring, key)
            .await?
            .ok_or_else(|| PlaylistError::BadAnswer {
                key,
                why: "a part is missing".into(),
            })?;
    }
}

/// Write again, as they are, the head and parts of the current version of
/// playlist `r` (signed items expire unless written again; parts of older
/// versions are not written, so they go away). Returns the records written,
/// 0 if there is no such playlist.
pub async fn keep<A: RecordAccess>(ring: &mut A, r: &PlaylistRef) -> Result<usize, PlaylistError> {
    let Some(loaded) = read(ring, r).await? else {
        return Ok(0);
    };
    for (key, item) in &loaded.items {
        let wire = Mutable::put(item.clone()).to_wire(std::time::Instant::now());
        ring.put(*key, wire).await?;
    }
    Ok(loaded.items.len())
}

/// Write `tracks` as the playlist `name` of `key_pair`'s owner, the next
/// version after `expected` (0: a new playlist): the parts first, then the
/// head with compare-and-swap. Returns the new version.
pub async fn write<A: RecordAccess>(
    ring: &mut A,
    key_pair: &SigningKey,
    name: &str,
    tracks: &[Id],
    expected: u64,
) -> Result<u64, PlaylistError> {
    check_name(name)?;
    let owner = key_pair.verifying_key().to_bytes();
    let mut records = chain(&owner, name, tracks);
    let Some((head_salt, head_v)) = records.pop() else {
        return Err(FormError::NotAPlaylist("no records").into());
    };
    // Parts are content-addressed and written once (seq 1): writing one
    // that exists already is a repair of the same item.
    for (salt, v) in records {
        let item = SignedItem::sign(key_pair, &salt, 1, v)?;
        let key = target(&owner, &salt);
        ring.put(key, Mutable::put(item).to_wire(std::time::Instant::now()))
            .await?;
    }
    let what = format!("playlist {name:?}");
    write_item(ring, key_pair, &head_salt, head_v, expected, &what).await
}
