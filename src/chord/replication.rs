//! Keeping every key on its replica set as the ring changes: the periodic
//! push of held keys to their replicas (anti-entropy: a digest of versions
//! first, then only the records the replica lacks, see [`digest`]), the copy →
//! acknowledge → delete hand-off of keys a node no longer owns, the key
//! range a joiner pulls from its successor, and a leaver's last push.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Instant;

use crate::chord::message::Message;
use crate::chord::neighbours::Neighbours;
use crate::chord::rpc::{ReplicaRpc, Rpcs};
use crate::chord::store::Store;
use crate::chord::Peer;
use crate::chord::Phase;
use crate::config::ChordConfig;
use crate::id::Id;
use crate::wire::chord::message::{Kind, WireRecord};

/// Unanswered requests for one page of a joiner's key range before it
/// serves without them (anti-entropy brings them later).
const HANDOFF_TRIES: u32 = 3;
/// Replication passes per lookup of the replica set of a key a node holds
/// but does not own.
const HELD_CHECK_EVERY: u64 = 4;
/// Keys per hand-off page: keeps each frame well under the size limit.
const HANDOFF_PAGE: usize = 64;

/// Bytes of records after which a hand-off page ends (a key is never
/// split): well under the frame limit whatever the kinds.
const HANDOFF_BYTES: usize = 256 * 1024;

/// About the bytes `wire` takes in a frame.
fn wire_size(wire: &WireRecord) -> usize {
    match wire {
        WireRecord::Swarm(entries) => 40 * entries.len() + 8,
        WireRecord::Tagged { body, .. } => body.len() + 8,
    }
}

/// Replication state of one node.
#[derive(Debug)]
pub(crate) struct Replication {
    /// This node.
    me: Peer,
    /// Replica set size N.
    replicas: usize,
    /// Replication passes run so far.
    round: u64,
    /// The other members of the replica set of each held key we do not
    /// own, as its last lookup found them.
    replica_sets: BTreeMap<Id, Vec<SocketAddr>>,
    /// Our predecessor and successors at the last pass: the sets above
    /// are reused only while these stay the same.
    last_view: Vec<Peer>,
    /// Id of the next hand-off.
    next_handoff: u64,
    /// Hand-offs of keys this node should no longer hold.
    handoffs: BTreeMap<u64, HandoffOp>,
    /// Keys whose replica set, found by a lookup, leaves us out: the set,
    /// while its head is asked whether it owns the key.
    confirming: BTreeMap<Id, Vec<SocketAddr>>,
    /// Keys to offer each replica in this pass's digests.
    batch: BTreeMap<SocketAddr, BTreeSet<Id>>,
    /// Id of the next digest.
    next_digest: u64,
    /// Digests sent and not answered: what each offered.
    digests: BTreeMap<u64, Vec<(Id, Kind)>>,
    /// Nodes whose last frame said they take digests (see
    /// [`Replication::note_features`]); the others get records pushed.
    digest_peers: BTreeSet<SocketAddr>,
}

impl Replication {
    /// Nothing pushed yet.
    pub(crate) fn new(me: Peer, config: &ChordConfig) -> Replication {
        Replication {
            me,
            replicas: config.replicas,
            round: 0,
            replica_sets: BTreeMap::new(),
            last_view: Vec::new(),
            next_handoff: 1,
            handoffs: BTreeMap::new(),
            confirming: BTreeMap::new(),
            batch: BTreeMap::new(),
            next_digest: 1,
            digests: BTreeMap::new(),
            digest_peers: BTreeSet::new(),
        }
    }

    /// `from` answered the replication request `kind` with `msg`. An
    /// answer of the wrong kind is handed back: it counts as a failure.
    pub(crate) fn on_answer(
        &mut self,
        now: Instant,
        from: Peer,
        kind: ReplicaRpc,
        msg: Message,
        store: &mut Store,
        rpcs: &mut Rpcs,
    ) -> Result<(), ReplicaRpc> {
        match (kind, msg) {
            (ReplicaRpc::Push { handoff }, Message::Stored { ok, .. }) => {
                self.on_push_answer(handoff, from.addr, ok, store)
            }
            (ReplicaRpc::Digest { page }, Message::Wanted { records, .. }) => {
                self.on_wanted(now, from, page, &records, store, rpcs)
            }
            (ReplicaRpc::Confirm { key }, Message::State { pred, .. }) => {
                self.on_confirm(now, from, key, pred, store, rpcs)
            }
            (ReplicaRpc::Range { .. }, Message::HandoffData { keys, next, .. }) => {
                for (key, value) in &keys {
                    store.merge_wire(now, *key, value, None);
                }
                match next {
                    Some(after) => self.request_range(now, from, Some(after), 0, rpcs),
                    None => store.set_ready(true),
                }
            }
            (kind, _) => return Err(kind),
        }
        Ok(())
    }

    /// The replication request `kind` to `dead` failed.
    pub(crate) fn on_failure(
        &mut self,
        now: Instant,
        dead: Peer,
        kind: ReplicaRpc,
        ring: &Neighbours,
        store: &mut Store,
        rpcs: &mut Rpcs,
    ) {
        match kind {
            ReplicaRpc::Push { handoff } => self.on_push_answer(handoff, dead.addr, false, store),
            ReplicaRpc::Digest { page } => self.digest_failed(now, dead, page, store, rpcs),
            ReplicaRpc::Range { after, tries } => {
                self.range_failed(now, after, tries, ring, store, rpcs)
            }
            // Not confirmed: the key stays, and the next pass looks again.
            ReplicaRpc::Confirm { key } => {
                self.confirming.remove(&key);
            }
        }
    }

    /// Start a replication pass over `store`. Returns true if this pass
    /// looks the replica sets of held keys up again: every
    /// `HELD_CHECK_EVERY` passes, and whenever our predecessor or
    /// successors changed since the last pass. (History seed 5003285: after
    /// a partition healed, a node kept offering a key to the replica set of
    /// its side's ring for four passes, and a read of the merged ring's set
    /// two passes after the heal missed an announce.)
    pub(crate) fn begin_pass(&mut self, store: &Store, ring: &Neighbours) -> bool {
        self.round += 1;
        self.replica_sets.retain(|key, _| store.holds(*key));
        let view: Vec<Peer> = ring
            .predecessor()
            .into_iter()
            .chain(ring.successors().iter().copied())
            .collect();
        let moved = view != self.last_view;
        self.last_view = view;
        moved || self.round.is_multiple_of(HELD_CHECK_EVERY)
    }

    /// Offer held `key` to its replica set in this pass's digests (see
    /// [`Replication::send_digests`]). Keys we own go to our successors;
    /// for the others the set found last time is reused, unless
    /// `check_held`. Returns true if a lookup must find the set first.
    pub(crate) fn replicate_key(&mut self, key: Id, check_held: bool, ring: &Neighbours) -> bool {
        // A key held but not owned is looked up to find its replica set (or
        // to hand it off if a join moved it away); in between, the set found
        // last time is reused: one lookup per key and holder every pass
        // would cost more than the ring's own upkeep in a big ring.
        let succs = ring.successors();
        let owned = succs.is_empty()
            || ring
                .predecessor()
                .is_some_and(|p| key.in_open_closed(p.id, self.me.id));
        if owned {
            for t in succs.iter().take(self.replicas - 1) {
                self.offer(t.addr, key);
            }
        } else if let Some(set) = self.replica_sets.get(&key).filter(|_| !check_held) {
            for addr in set.clone() {
                self.offer(addr, key);
            }
        } else {
            return true;
        }
        false
    }

    /// Leaving: push every record to the first N successors.
    pub(crate) fn leave(&self, now: Instant, ring: &Neighbours, store: &Store, rpcs: &mut Rpcs) {
        let targets: Vec<Peer> = ring
            .successors()
            .iter()
            .take(self.replicas)
            .copied()
            .collect();
        for key in store.keys() {
            for t in &targets {
                push_all(now, *t, key, store, rpcs);
            }
        }
    }

    // ----- a joiner's key range -----

    /// The page of keys after `after` that a joiner at `upto` takes over
    /// from us, and the cursor of the next page if there is one.
    pub(crate) fn serve_range(
        &self,
        now: Instant,
        upto: Id,
        after: Option<Id>,
        store: &Store,
    ) -> (Vec<(Id, WireRecord)>, Option<Id>) {
        let me = self.me.id;
        // Everything except what stays ours once `upto` sits before us.
        let keys = store.keys_after(after, HANDOFF_PAGE, |k| !k.in_open_closed(upto, me));
        let mut next = (keys.len() == HANDOFF_PAGE).then(|| keys[keys.len() - 1]);
        // Whole keys until the page's bytes reach HANDOFF_BYTES (records of
        // some kinds are kilobytes: song metadata, posting lists).
        let (mut page, mut bytes) = (Vec::new(), 0);
        for k in keys {
            if bytes >= HANDOFF_BYTES {
                next = page.last().map(|&(k, _)| k);
                break;
            }
            for r in store.at(k) {
                let wire = r.to_wire(now);
                bytes += wire_size(&wire);
                page.push((k, wire));
            }
        }
        (page, next)
    }

    /// Ask `from` for the page of our key range after `after`.
    pub(crate) fn request_range(
        &self,
        now: Instant,
        from: Peer,
        after: Option<Id>,
        tries: u32,
        rpcs: &mut Rpcs,
    ) {
        let upto = self.me.id;
        rpcs.request(
            now,
            from,
            |req| Message::Handoff { req, upto, after },
            ReplicaRpc::Range { after, tries },
        );
    }

    /// A page went unanswered: ask our successor now (it may have changed)
    /// again, a few times, before serving without those keys.
    fn range_failed(
        &self,
        now: Instant,
        after: Option<Id>,
        tries: u32,
        ring: &Neighbours,
        store: &mut Store,
        rpcs: &mut Rpcs,
    ) {
        let succ = ring.successors().first().copied().filter(|p| *p != self.me);
        match succ {
            Some(succ) if tries + 1 < HANDOFF_TRIES && ring.phase() == Phase::Member => {
                self.request_range(now, succ, after, tries + 1, rpcs)
            }
            _ => {
                tracing::debug!(me = ?self.me.id, "hand-off unanswered; serving, anti-entropy brings the keys");
                store.set_ready(true);
            }
        }
    }
}

/// Push every record we hold at `key` to `to`.
fn push_all(now: Instant, to: Peer, key: Id, store: &Store, rpcs: &mut Rpcs) {
    for record in store.at(key) {
        push(now, to, key, record.to_wire(now), None, rpcs);
    }
}

/// Push `value`, a record at `key`, to `to` (part of hand-off `handoff`,
/// if any).
fn push(now: Instant, to: Peer, key: Id, value: WireRecord, handoff: Option<u64>, rpcs: &mut Rpcs) {
    rpcs.request(
        now,
        to,
        |req| Message::Store { req, key, value },
        ReplicaRpc::Push { handoff },
    );
}

mod digest;
pub(crate) use digest::wanted;
mod handoff;
use handoff::HandoffOp;
#[cfg(test)]
mod tests;
