//! The node's side of the song catalog: stores of postings checked
//! against the songs' metadata (`vouch`), and the pages of metadata keys
//! a node owns, for a walk that lists the whole library.

use std::net::SocketAddr;
use std::time::Instant;

use super::Node;
use crate::chord::lookups::Purpose;
use crate::chord::message::{Message, ReqId};
use crate::chord::records::{songs_of_info, Immutable, Record, RecordKind, Song};
use crate::chord::rpc::{OpId, OpOutcome};
use crate::chord::vouch::Parked;
use crate::chord::ChordError;
use crate::id::Id;
use crate::wire::chord::message::WireRecord;

impl Node {
    /// `from` asks us to merge `value` into our record at `key`. Postings
    /// wait until the metadata of their songs vouches for them; every
    /// other kind is merged (or refused) at once, swarm lists screened
    /// and their third-party entries probed (see `node::source`).
    pub(super) fn on_store(
        &mut self,
        now: Instant,
        from: SocketAddr,
        req: ReqId,
        key: Id,
        value: &WireRecord,
    ) {
        // Swarm entries relayed for third parties are checked with them
        // (see `node::source`); the others are taken as they are.
        let fresh = self.screen(from, key, value);
        let Some(record) = self.store.decode(now, key, value) else {
            self.rpcs.send(from, Message::Stored { req, ok: false });
            return;
        };
        let Record::Postings(postings) = record else {
            let ok = self.store.merge(key, &record);
            self.probe_fresh(now, key, fresh);
            self.rpcs.send(from, Message::Stored { req, ok });
            return;
        };
        let mut missing = Vec::new();
        for ih in postings.info_hashes() {
            let local = self.store.get(ih, Immutable::KIND);
            if self.vouch.songs(&ih, local).is_none() {
                missing.push(ih);
            }
        }
        if missing.is_empty() {
            let ok = self.vouch.vouches(&postings) && self.store.merge(key, &postings.into());
            self.rpcs.send(from, Message::Stored { req, ok });
            return;
        }
        let parked = Parked {
            from,
            req,
            key,
            postings,
        };
        if !self.vouch.park(parked) {
            self.rpcs.send(from, Message::Stored { req, ok: false });
            return;
        }
        for ih in missing {
            if !self.vouch.fetching(&ih) {
                let op = self.ops.new_op();
                self.vouch.fetch(op, ih);
                let kind = Immutable::KIND;
                self.client_lookup(now, ih, Purpose::Read { op, kind });
            }
        }
    }

    /// Our read `op` of a song's metadata ended: answer the stores that
    /// waited for it.
    pub(super) fn on_metadata(&mut self, op: OpId, result: &Result<OpOutcome, ChordError>) {
        for p in self.vouch.fetched(op, result) {
            let ok = self.vouch.vouches(&p.postings) && {
                let record: Record = p.postings.into();
                self.store.merge(p.key, &record)
            };
            self.rpcs.send(p.from, Message::Stored { req: p.req, ok });
        }
    }

    /// The songs of the metadata records this node owns (keys between its
    /// predecessor and itself; every key when it knows no predecessor)
    /// after `after`, at most `limit` torrents, and the cursor of the next
    /// page if there may be one. Values that are not a torrent's `info`
    /// (`dht put`) are skipped.
    pub fn library_page(&self, after: Option<Id>, limit: usize) -> (Vec<Song>, Option<Id>) {
        let (pred, me) = (self.ring.predecessor().map(|p| p.id), self.me.id);
        let owned = |k: Id| pred.is_none_or(|p| k.in_open_closed(p, me));
        let is_info = |k: Id| {
            self.store
                .get(k, Immutable::KIND)
                .and_then(|r| <&Immutable>::try_from(r).ok())
                .and_then(|v| v.value())
                .is_some_and(|v| v.first() == Some(&b'd'))
        };
        let keys = self
            .store
            .keys_after(after, limit, |k| owned(k) && is_info(k));
        let next = (keys.len() == limit)
            .then(|| keys.last().copied())
            .flatten();
        let songs = keys
            .iter()
            .filter_map(|k| self.store.get(*k, Immutable::KIND))
            .filter_map(|r| <&Immutable>::try_from(r).ok()?.value())
            .filter_map(songs_of_info)
            .flatten()
            .collect();
        (songs, next)
    }

    /// Every record held here, with its key (benchmarks and diagnostics).
    pub fn records(&self) -> impl Iterator<Item = (Id, &Record)> {
        self.store.iter()
    }
}
