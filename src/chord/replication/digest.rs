//! Anti-entropy without re-sending what the replica holds: each pass
//! offers every replica the [`Version`]s of the records it should hold
//! (a few dozen bytes each), and pushes only those it answers it wants
//! (it holds none, an older one, other items or a renewal it missed). A
//! steady ring so sends no record bytes for records both sides hold.
//!
//! A node from before digests cannot decode one: it would close the
//! connection, dropping whatever else was in flight on it, and count us as
//! breaking the protocol. So a replica is sent digests only once its own
//! frames said it takes them (`wire::chord::FEATURE_DIGEST`); until then,
//! and for a build that never says so, its records are pushed as before
//! digests. A replica that does not answer a digest gets the records
//! pushed too, and no more digests until it speaks again.

use std::net::SocketAddr;
use std::time::Instant;

use super::{push, push_all, Replication};
use crate::chord::message::Message;
use crate::chord::records::Version;
use crate::chord::rpc::{ReplicaRpc, Rpcs};
use crate::chord::store::Store;
use crate::chord::Peer;
use crate::id::Id;
use crate::wire::chord::message::Kind;
use crate::wire::chord::FEATURE_DIGEST;

/// Records offered per digest: keeps each frame small (about 60 bytes each).
const DIGEST_PAGE: usize = 512;

/// Nodes remembered as taking digests: past this, all are forgotten (their
/// next frames say it again; meanwhile they get pushes, which is correct).
const MAX_DIGEST_PEERS: usize = 4096;

impl Replication {
    /// Offer `key` to the replica at `to` in this pass's digests.
    pub(super) fn offer(&mut self, to: SocketAddr, key: Id) {
        self.batch.entry(to).or_default().insert(key);
    }

    /// A frame from `addr` carried the feature bits `features`.
    pub(crate) fn note_features(&mut self, addr: SocketAddr, features: u64) {
        if features & FEATURE_DIGEST == 0 {
            self.digest_peers.remove(&addr);
        } else if !self.digest_peers.contains(&addr) {
            if self.digest_peers.len() >= MAX_DIGEST_PEERS {
                self.digest_peers.clear();
            }
            self.digest_peers.insert(addr);
        }
    }

    /// Send the digests of everything offered since the last call; a
    /// replica not known to take digests gets the records themselves.
    pub(crate) fn send_digests(&mut self, now: Instant, store: &Store, rpcs: &mut Rpcs) {
        for (to, keys) in std::mem::take(&mut self.batch) {
            if !self.digest_peers.contains(&to) {
                for key in keys {
                    push_all(now, Peer::new(to), key, store, rpcs);
                }
                continue;
            }
            let mut records: Vec<(Id, Kind, Version)> = Vec::new();
            for key in keys {
                records.extend(store.at(key).map(|r| (key, r.kind(), r.version(now))));
            }
            for page in records.chunks(DIGEST_PAGE) {
                let id = self.next_digest;
                self.next_digest += 1;
                let offered = page.iter().map(|&(k, kind, _)| (k, kind)).collect();
                self.digests.insert(id, offered);
                let records = page.to_vec();
                rpcs.request(
                    now,
                    Peer::new(to),
                    |req| Message::Digest { req, records },
                    ReplicaRpc::Digest { page: id },
                );
            }
        }
    }

    /// `from` answered digest `page`: push the records it wants (only
    /// those offered, and still held).
    pub(super) fn on_wanted(
        &mut self,
        now: Instant,
        from: Peer,
        page: u64,
        wanted: &[(Id, Kind)],
        store: &Store,
        rpcs: &mut Rpcs,
    ) {
        let Some(offered) = self.digests.remove(&page) else {
            return;
        };
        for at in wanted.iter().filter(|at| offered.contains(at)) {
            if let Some(record) = store.get(at.0, at.1) {
                push(now, from, at.0, record.to_wire(now), None, rpcs);
            }
        }
    }

    /// Digest `page` to `to` went unanswered: push what it offered.
    pub(super) fn digest_failed(
        &mut self,
        now: Instant,
        to: Peer,
        page: u64,
        store: &Store,
        rpcs: &mut Rpcs,
    ) {
        let Some(offered) = self.digests.remove(&page) else {
            return;
        };
        // Pushes until it speaks again (an older build there now, maybe).
        self.digest_peers.remove(&to.addr);
        let mut last = None;
        for (key, _) in offered {
            if last != Some(key) {
                push_all(now, to, key, store, rpcs);
                last = Some(key);
            }
        }
    }
}

/// The records of `offered` that a replica holding `store` wants pushed.
pub(crate) fn wanted(
    now: Instant,
    store: &Store,
    offered: &[(Id, Kind, Version)],
) -> Vec<(Id, Kind)> {
    offered
        .iter()
        .filter(|(key, kind, theirs)| {
            let mine = store.get(*key, *kind).map(|r| r.version(now));
            Version::wanted(mine.as_ref(), theirs)
        })
        .map(|&(key, kind, _)| (key, kind))
        .collect()
}
