//! Swarm-list operations on top of the ring: quorum announces and reads with
//! read repair, the periodic push of held keys to their replica sets, the
//! copy → acknowledge → delete hand-off of keys a node no longer owns, the
//! key range a joiner pulls from its successor, and a clean leave.
//!
//! A second `impl Node` block: the ring itself lives in [`crate::chord::node`].

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::chord::message::{Message, ReqId};
use crate::chord::node::{
    Node, OpId, OpOutcome, Pending, Phase, Purpose, HANDOFF_TRIES, HELD_CHECK_EVERY,
};
use crate::chord::quorum::{Progress, Quorum};
use crate::chord::records::{Entry, SwarmList, TOMBSTONE_MARGIN};
use crate::chord::{ChordError, Peer};
use crate::id::Id;
use crate::wire::chord::message::{Role, WireEntry};

/// Keys per hand-off page: keeps each frame well under the size limit.
const HANDOFF_PAGE: usize = 64;
/// Expiry differences below this are transfer delay, not a replica behind.
const REPAIR_SLACK: Duration = Duration::from_secs(1);

/// A quorum write in flight.
#[derive(Debug)]
pub(crate) struct WriteOp {
    /// The key written.
    key: Id,
    /// What is written (one announce or one removal).
    value: SwarmList,
    /// Who was asked and who acknowledged.
    quorum: Quorum,
}

/// A quorum read in flight.
#[derive(Debug)]
pub(crate) struct ReadOp {
    /// The key read.
    key: Id,
    /// Union of the answers so far.
    merged: SwarmList,
    /// Each answering replica's own list, to find the ones behind.
    answers: Vec<(SocketAddr, SwarmList)>,
    /// Who was asked and who answered.
    quorum: Quorum,
    /// Set once R replicas answered.
    reached: bool,
    /// Set once the result went to the client.
    reported: bool,
}

/// Keys pushed to their rightful replicas, deleted here once all acknowledge.
#[derive(Debug)]
pub(crate) struct HandoffOp {
    /// The key handed off.
    key: Id,
    /// The list as pushed; deleted only if nothing newer arrived meanwhile.
    pushed: SwarmList,
    /// Replicas that have not acknowledged yet.
    waiting: BTreeSet<SocketAddr>,
    /// False once any replica refused or failed: keep the key for next pass.
    all_ok: bool,
}

impl Node {
    /// Announce `peer` for `key`; done once W replicas stored it.
    pub fn announce(&mut self, now: Instant, key: Id, peer: SocketAddr, role: Role) -> OpId {
        let entry = Entry {
            expiry: now + self.config.announce_ttl,
            role,
            removed: false,
        };
        self.write(now, key, SwarmList::single(peer, entry))
    }

    /// Remove `peer` from `key` (a tombstone that outlives the announce).
    pub fn remove(&mut self, now: Instant, key: Id, peer: SocketAddr) -> OpId {
        let entry = Entry {
            expiry: now + self.config.announce_ttl + TOMBSTONE_MARGIN,
            role: Role::Leecher,
            removed: true,
        };
        self.write(now, key, SwarmList::single(peer, entry))
    }

    /// The live peers of `key`, merged from R replicas.
    pub fn peers(&mut self, now: Instant, key: Id) -> OpId {
        let op = self.new_op_id();
        self.client_lookup(now, key, Purpose::Read { op });
        op
    }

    /// Owner, replica set and hop count of `key`.
    pub fn lookup(&mut self, now: Instant, key: Id) -> OpId {
        let op = self.new_op_id();
        self.client_lookup(now, key, Purpose::Locate { op });
        op
    }

    /// Hand every key to the successors, then stop taking part. The driver
    /// waits until [`Node::leave_settled`] (or a time-out) before exiting.
    pub fn leave(&mut self, now: Instant) {
        if self.phase != Phase::Member {
            self.phase = Phase::Leaving;
            return;
        }
        self.phase = Phase::Leaving;
        let targets: Vec<Peer> = self
            .succs
            .iter()
            .take(self.config.replicas)
            .copied()
            .collect();
        for key in self.store.keys() {
            for t in &targets {
                self.push(now, *t, key, None);
            }
        }
    }

    /// True once a leaving node's hand-over pushes were all answered.
    pub fn leave_settled(&self) -> bool {
        !self
            .pending
            .values()
            .any(|r| matches!(r.kind, Pending::Push { .. }))
    }

    fn write(&mut self, now: Instant, key: Id, value: SwarmList) -> OpId {
        let op = self.new_op_id();
        self.client_lookup(now, key, Purpose::Write { op, value });
        op
    }

    fn client_lookup(&mut self, now: Instant, key: Id, purpose: Purpose) {
        if self.phase != Phase::Member {
            let op = match purpose {
                Purpose::Write { op, .. } | Purpose::Read { op } | Purpose::Locate { op } => op,
                _ => return,
            };
            self.emit_done(op, Err(ChordError::NotJoined));
            return;
        }
        self.start_lookup(now, key, purpose, None);
    }

    // ----- quorum writes -----

    pub(crate) fn start_write(
        &mut self,
        now: Instant,
        op: OpId,
        key: Id,
        value: SwarmList,
        list: Vec<Peer>,
    ) {
        let candidates = list.iter().map(|p| p.addr).collect();
        let (quorum, first) =
            Quorum::start(candidates, self.config.replicas, self.config.write_quorum);
        self.writes.insert(op, WriteOp { key, value, quorum });
        for target in first {
            self.write_to(now, op, target);
        }
    }

    fn write_to(&mut self, now: Instant, op: OpId, target: SocketAddr) {
        let Some(w) = self.writes.get(&op) else {
            return;
        };
        if target == self.me.addr {
            let (key, value) = (w.key, w.value.clone());
            let ok = self.store.merge(key, &value);
            self.on_write_answer(now, op, target, ok);
        } else {
            let (key, entries) = (w.key, w.value.to_wire(now));
            self.request(
                now,
                Peer::new(target),
                |req| Message::Store { req, key, entries },
                Pending::Write { op },
            );
        }
    }

    pub(crate) fn on_write_answer(
        &mut self,
        now: Instant,
        op: OpId,
        replica: SocketAddr,
        ok: bool,
    ) {
        let Some(w) = self.writes.get_mut(&op) else {
            return;
        };
        let (spare, progress) = if ok {
            (None, w.quorum.succeed(replica))
        } else {
            w.quorum.fail(replica)
        };
        let got = w.quorum.succeeded().len();
        let finished = w.quorum.is_finished();
        match progress {
            Progress::Reached => self.emit_done(op, Ok(OpOutcome::Stored)),
            Progress::Failed => {
                let needed = self.config.write_quorum;
                self.emit_done(op, Err(ChordError::QuorumFailed { got, needed }));
            }
            Progress::Waiting => {}
        }
        if let Some(s) = spare {
            self.write_to(now, op, s);
        } else if finished {
            self.writes.remove(&op);
        }
    }

    // ----- quorum reads with repair -----

    pub(crate) fn start_read(&mut self, now: Instant, op: OpId, key: Id, list: Vec<Peer>) {
        let candidates = list.iter().map(|p| p.addr).collect();
        // Only the replica set's answers make a read: see `quorum`.
        let (quorum, first) =
            Quorum::start_strict(candidates, self.config.replicas, self.config.read_quorum);
        let read = ReadOp {
            key,
            merged: SwarmList::default(),
            answers: Vec::new(),
            quorum,
            reached: false,
            reported: false,
        };
        self.reads.insert(op, read);
        for target in first {
            self.read_from(now, op, target);
        }
    }

    fn read_from(&mut self, now: Instant, op: OpId, target: SocketAddr) {
        let Some(r) = self.reads.get(&op) else {
            return;
        };
        let key = r.key;
        if target == self.me.addr {
            let local = self
                .ready
                .then(|| self.store.get(&key).cloned().unwrap_or_default());
            self.on_read_answer(now, op, target, local);
        } else {
            self.request(
                now,
                Peer::new(target),
                |req| Message::Fetch { req, key },
                Pending::Read { op },
            );
        }
    }

    pub(crate) fn on_read_answer(
        &mut self,
        now: Instant,
        op: OpId,
        replica: SocketAddr,
        list: Option<SwarmList>,
    ) {
        let Some(r) = self.reads.get_mut(&op) else {
            return;
        };
        let (spare, progress) = match list {
            Some(list) => {
                r.merged.merge(&list);
                r.answers.push((replica, list));
                (None, r.quorum.succeed(replica))
            }
            None => r.quorum.fail(replica),
        };
        match progress {
            Progress::Reached => r.reached = true,
            Progress::Failed => {
                let got = r.quorum.succeeded().len();
                let needed = self.config.read_quorum;
                self.emit_done(op, Err(ChordError::QuorumFailed { got, needed }));
            }
            Progress::Waiting => {}
        }
        // R answers make a result, but the answers of every replica asked
        // are merged first: a writer whose view of the ring was a little
        // stale may have reached only one of ours.
        if let Some(r) = self.reads.get_mut(&op) {
            if r.reached && !r.reported && r.quorum.is_finished() {
                r.reported = true;
                let peers = r.merged.live(now);
                self.emit_done(op, Ok(OpOutcome::Peers(peers)));
            }
        }
        let Some(r) = self.reads.get_mut(&op) else {
            return;
        };
        // Read repair: everyone who answered with less than the union gets it.
        let mut behind = Vec::new();
        if r.reported {
            let (key, merged) = (r.key, r.merged.clone());
            for (addr, list) in r.answers.drain(..) {
                if list.is_behind(&merged, REPAIR_SLACK) {
                    behind.push(addr);
                }
            }
            for addr in behind {
                if addr == self.me.addr {
                    self.store.merge(key, &merged);
                } else {
                    let entries = merged.to_wire(now);
                    self.request(
                        now,
                        Peer::new(addr),
                        |req| Message::Store { req, key, entries },
                        Pending::Push { handoff: None },
                    );
                }
            }
        }
        if let Some(s) = spare {
            self.read_from(now, op, s);
        } else if self.reads.get(&op).is_some_and(|r| r.quorum.is_finished()) {
            self.reads.remove(&op);
        }
    }

    // ----- serving other nodes -----

    pub(crate) fn handle_store(
        &mut self,
        now: Instant,
        from: Peer,
        req: ReqId,
        key: Id,
        entries: &[WireEntry],
    ) {
        let value = SwarmList::from_wire(now, entries, self.config.announce_ttl);
        let ok = self.store.merge(key, &value);
        self.send(from.addr, Message::Stored { req, ok });
    }

    pub(crate) fn handle_fetch(&mut self, now: Instant, from: Peer, req: ReqId, key: Id) {
        let ready = self.is_ready();
        let entries = match (ready, self.store.get(&key)) {
            (true, Some(list)) => list.to_wire(now),
            _ => Vec::new(),
        };
        self.send(
            from.addr,
            Message::Fetched {
                req,
                ready,
                entries,
            },
        );
    }

    pub(crate) fn handle_handoff(
        &mut self,
        now: Instant,
        from: Peer,
        req: ReqId,
        upto: Id,
        after: Option<Id>,
    ) {
        let me = self.me.id;
        // Everything except what stays ours once `upto` sits before us.
        let keys = self
            .store
            .keys_after(after, HANDOFF_PAGE, |k| !k.in_open_closed(upto, me));
        let next = (keys.len() == HANDOFF_PAGE).then(|| keys[keys.len() - 1]);
        let keys = keys
            .into_iter()
            .filter_map(|k| self.store.get(&k).map(|l| (k, l.to_wire(now))))
            .collect();
        self.send(from.addr, Message::HandoffData { req, keys, next });
    }

    pub(crate) fn on_handoff_data(
        &mut self,
        now: Instant,
        from: Peer,
        keys: &[(Id, Vec<WireEntry>)],
        next: Option<Id>,
    ) {
        for (key, entries) in keys {
            let list = SwarmList::from_wire(now, entries, self.config.announce_ttl);
            self.store.merge(*key, &list);
        }
        match next {
            Some(after) => self.request_handoff(now, from, Some(after), 0),
            None => self.ready = true,
        }
    }

    /// Ask `from` for the page of our key range after `after`.
    pub(crate) fn request_handoff(
        &mut self,
        now: Instant,
        from: Peer,
        after: Option<Id>,
        tries: u32,
    ) {
        let upto = self.me.id;
        self.request(
            now,
            from,
            |req| Message::Handoff { req, upto, after },
            Pending::Handoff { after, tries },
        );
    }

    /// A hand-off page went unanswered: ask our successor now (it may have
    /// changed) again, a few times, before serving without those keys.
    pub(crate) fn handoff_failed(&mut self, now: Instant, after: Option<Id>, tries: u32) {
        let succ = self.succs.first().copied().filter(|p| *p != self.me);
        match succ {
            Some(succ) if tries + 1 < HANDOFF_TRIES && self.phase == Phase::Member => {
                self.request_handoff(now, succ, after, tries + 1)
            }
            _ => {
                tracing::debug!(me = ?self.me.id, "hand-off unanswered; serving, anti-entropy brings the keys");
                self.ready = true;
            }
        }
    }

    // ----- anti-entropy and hand-off -----

    /// Push each held key to its replica set. Keys we own go straight to our
    /// successors; for the others a lookup finds the set first.
    pub(crate) fn replicate_pass(&mut self, now: Instant) {
        self.store.expire(now);
        if !self.ready {
            return;
        }
        let mine: Vec<Peer> = self
            .succs
            .iter()
            .take(self.config.replicas - 1)
            .copied()
            .collect();
        // Owners push to their successors. A key held but not owned is
        // looked up to find its replica set (or to hand it off if a join
        // moved it away); in between, the set found last time is reused:
        // one lookup per key and holder every pass would cost more than the
        // ring's own upkeep in a big ring.
        self.replicate_round += 1;
        let check_held = self.replicate_round.is_multiple_of(HELD_CHECK_EVERY);
        let store = &self.store;
        self.replica_sets.retain(|key, _| store.get(key).is_some());
        for key in self.store.keys() {
            let owned = self.succs.is_empty()
                || self
                    .pred
                    .is_some_and(|p| key.in_open_closed(p.id, self.me.id));
            if owned {
                for t in &mine {
                    self.push(now, *t, key, None);
                }
            } else if let Some(set) = self.replica_sets.get(&key).filter(|_| !check_held) {
                for addr in set.clone() {
                    self.push(now, Peer::new(addr), key, None);
                }
            } else {
                let busy = self
                    .lookups
                    .values()
                    .any(|l| matches!(l.purpose, Purpose::Replicate) && l.lookup.key == key);
                if !busy {
                    self.start_lookup(now, key, Purpose::Replicate, None);
                }
            }
        }
    }

    pub(crate) fn on_replicate_located(&mut self, now: Instant, key: Id, list: Vec<Peer>) {
        let set = self.replica_set(&list);
        let Some(pushed) = self.store.get(&key).cloned() else {
            return;
        };
        if set.contains(&self.me.addr) {
            let me = self.me.addr;
            let others: Vec<SocketAddr> = set.into_iter().filter(|a| *a != me).collect();
            for addr in &others {
                self.push(now, Peer::new(*addr), key, None);
            }
            self.replica_sets.insert(key, others);
            return;
        }
        self.replica_sets.remove(&key);
        // Not ours any more: copy to every replica, delete once all acknowledge.
        let id = self.new_op_id();
        self.handoffs.insert(
            id,
            HandoffOp {
                key,
                pushed,
                waiting: set.iter().copied().collect(),
                all_ok: true,
            },
        );
        for addr in set {
            self.push(now, Peer::new(addr), key, Some(id));
        }
    }

    fn push(&mut self, now: Instant, to: Peer, key: Id, handoff: Option<u64>) {
        let Some(list) = self.store.get(&key) else {
            return;
        };
        let entries = list.to_wire(now);
        self.request(
            now,
            to,
            |req| Message::Store { req, key, entries },
            Pending::Push { handoff },
        );
    }

    pub(crate) fn on_push_answer(&mut self, handoff: Option<u64>, replica: SocketAddr, ok: bool) {
        let Some(id) = handoff else {
            return;
        };
        let Some(h) = self.handoffs.get_mut(&id) else {
            return;
        };
        h.waiting.remove(&replica);
        h.all_ok &= ok;
        if !h.waiting.is_empty() {
            return;
        }
        if let Some(h) = self.handoffs.remove(&id) {
            if h.all_ok && self.store.get(&h.key) == Some(&h.pushed) {
                self.store.remove(&h.key);
            }
        }
    }
}
