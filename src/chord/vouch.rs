//! Postings from other nodes wait here until the songs' metadata vouches
//! for them.
//!
//! A posting says "word W finds song S". A replica stores one only if S's
//! metadata record (its raw `info` under its info-hash, self-verifying)
//! really gives S the tags the posting shows, W among their words; so
//! nobody can attach an unrelated song to a word. The node reads a
//! song's metadata from the ring once (a quorum read like any client's)
//! and keeps what it lists in a bounded cache; a `Store` whose songs are
//! not cached yet is parked here, unanswered, until the reads end.
//!
//! Writes made by this node itself, and the pages of a joiner's key range
//! (which come from replicas that checked them), are not parked.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use crate::chord::message::ReqId;
use crate::chord::records::{songs_of_info, Immutable, Postings, Record, Song};
use crate::chord::rpc::{OpId, OpOutcome};
use crate::chord::ChordError;
use crate::id::Id;

/// Songs lists of info-hashes kept at most.
const CACHE: usize = 4096;

/// Stores waiting at most; more are refused (a node flooding us with
/// postings of made-up songs costs a bounded amount).
pub(crate) const MAX_PARKED: usize = 1024;

/// A `Store` of postings waiting for metadata.
#[derive(Debug)]
pub(crate) struct Parked {
    /// Who asked (the answer goes there).
    pub(crate) from: SocketAddr,
    /// Its request id.
    pub(crate) req: ReqId,
    /// The key written.
    pub(crate) key: Id,
    /// The postings, parsed and valid by themselves.
    pub(crate) postings: Postings,
}

/// What the metadata of each info-hash lists, and the postings waiting.
#[derive(Debug, Default)]
pub(crate) struct Vouch {
    /// Info-hash → (last use, its songs); bounded by [`CACHE`].
    known: BTreeMap<Id, (u64, Vec<Song>)>,
    /// Use counter for the cache's eviction.
    tick: u64,
    /// Metadata reads in flight: op → info-hash.
    fetching: BTreeMap<OpId, Id>,
    /// Stores waiting on those reads.
    parked: Vec<Parked>,
}

impl Vouch {
    /// The songs the metadata of `ih` lists, if known: cached, or `local`
    /// (this node's own metadata record of `ih`, if it holds one).
    pub(crate) fn songs(&mut self, ih: &Id, local: Option<&Record>) -> Option<Vec<Song>> {
        self.tick += 1;
        if let Some((used, songs)) = self.known.get_mut(ih) {
            *used = self.tick;
            return Some(songs.clone());
        }
        let value = local
            .and_then(|r| <&Immutable>::try_from(r).ok())?
            .value()?;
        let songs = songs_of_info(value)?;
        self.remember(*ih, songs.clone());
        Some(songs)
    }

    fn remember(&mut self, ih: Id, songs: Vec<Song>) {
        if self.known.len() >= CACHE {
            let oldest = self.known.iter().min_by_key(|(_, (used, _))| *used);
            if let Some(k) = oldest.map(|(k, _)| *k) {
                self.known.remove(&k);
            }
        }
        self.known.insert(ih, (self.tick, songs));
    }

    /// True if `op` is one of our metadata reads.
    pub(crate) fn is_fetch(&self, op: OpId) -> bool {
        self.fetching.contains_key(&op)
    }

    /// True if a read of `ih`'s metadata is in flight.
    pub(crate) fn fetching(&self, ih: &Id) -> bool {
        self.fetching.values().any(|f| f == ih)
    }

    /// Remember that read `op` fetches the metadata of `ih`.
    pub(crate) fn fetch(&mut self, op: OpId, ih: Id) {
        self.fetching.insert(op, ih);
    }

    /// Park `parked` until the reads it needs end; false (not parked) if
    /// [`MAX_PARKED`] stores wait already.
    pub(crate) fn park(&mut self, parked: Parked) -> bool {
        if self.parked.len() >= MAX_PARKED {
            return false;
        }
        self.parked.push(parked);
        true
    }

    /// Read `op` ended with `result`: cache what it found, and hand back
    /// the parked stores it was the last read for.
    pub(crate) fn fetched(
        &mut self,
        op: OpId,
        result: &Result<OpOutcome, ChordError>,
    ) -> Vec<Parked> {
        let Some(ih) = self.fetching.remove(&op) else {
            return Vec::new();
        };
        let value = match result {
            Ok(OpOutcome::Record(r)) => <&Immutable>::try_from(r).ok().and_then(|v| v.value()),
            _ => None,
        };
        if let Some(songs) = value.and_then(songs_of_info) {
            self.tick += 1;
            self.remember(ih, songs);
        }
        let pending: BTreeSet<Id> = self.fetching.values().copied().collect();
        let (ready, waiting) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|p| !p.postings.info_hashes().iter().any(|h| pending.contains(h)));
        self.parked = waiting;
        ready
    }

    /// True if the cached metadata vouches for `postings` (an info-hash
    /// with no metadata in the ring vouches for nothing).
    pub(crate) fn vouches(&self, postings: &Postings) -> bool {
        postings.vouched_by(|ih| self.known.get(ih).map(|(_, s)| s.clone()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn parked(n: u8) -> Parked {
        let song = Song {
            info_hash: Id::hash(&[n]),
            file: 0,
            title: "Flood".into(),
            artist: String::new(),
            album: String::new(),
            duration_ms: 0,
        };
        let now = Instant::now();
        Parked {
            from: "127.0.0.1:9".parse().expect("an address"),
            req: u64::from(n),
            key: Id::hash(b"flood"),
            postings: Postings::new("flood", &[song], now, Duration::from_secs(60)),
        }
    }

    #[test]
    fn parked_stores_are_bounded_and_leave_when_their_read_ends() {
        let mut vouch = Vouch::default();
        vouch.fetch(1, Id::hash(&[0]));
        for _ in 0..MAX_PARKED {
            assert!(vouch.park(parked(0)));
        }
        assert!(!vouch.park(parked(0)), "room for one more than the cap");
        let failed = Err(ChordError::QuorumFailed { got: 0, needed: 2 });
        let ready = vouch.fetched(1, &failed);
        assert_eq!(ready.len(), MAX_PARKED);
        // Nothing was learnt: none of them is vouched for.
        assert!(ready.iter().all(|p| !vouch.vouches(&p.postings)));
        assert!(vouch.park(parked(0)), "room again");
    }
}
