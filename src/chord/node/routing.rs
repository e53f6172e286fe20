//! How the node routes between its parts: periodic tasks, the end of a
//! lookup by its purpose, and each answer or failure to the part whose
//! request it was, with what that part reports passed on to the next;
//! and what each peer's frames say it understands, to the part that asks.

use std::net::SocketAddr;
use std::time::Instant;

use super::Node;
use crate::chord::lookups::{LookupEnd, Purpose, CLOSER_COUNT};
use crate::chord::message::Message;
use crate::chord::neighbours::Report;
use crate::chord::rpc::{Failure, Pending};
use crate::chord::timers::{jitter, Timer};
use crate::chord::Phase;
use crate::chord::{ChordError, Peer};
use crate::id::Id;

impl Node {
    /// A frame from the node at `addr` carried the feature bits
    /// `features` (see `wire::chord::FEATURES`): what we may send it.
    pub fn handle_features(&mut self, addr: SocketAddr, features: u64) {
        self.replication.note_features(addr, features);
    }

    /// Run every due periodic task of a member.
    pub(super) fn run_timers(&mut self, now: Instant) {
        if self.timers.is_due(Timer::Stabilize, now) {
            let next = now + jitter(&mut self.rng, self.config.stabilize_interval);
            self.timers.set(Timer::Stabilize, next);
            self.ring.tick(now, &mut self.rpcs);
        }
        if self.timers.is_due(Timer::Finger, now) {
            self.lookups
                .fix_next_finger(now, &self.ring, &mut self.rpcs);
            let interval = self.config.fix_finger_interval * self.lookups.fingers().backoff();
            let next = now + jitter(&mut self.rng, interval);
            self.timers.set(Timer::Finger, next);
        }
        if self.timers.is_due(Timer::Replicate, now) {
            let next = now + jitter(&mut self.rng, self.config.replicate_interval);
            self.timers.set(Timer::Replicate, next);
            self.replicate_pass(now);
        }
        if self.timers.is_due(Timer::Rejoin, now) {
            let next = now + jitter(&mut self.rng, self.config.rejoin_interval);
            self.timers.set(Timer::Rejoin, next);
            if let Some(contact) = self.contacts.pick(&mut self.rng) {
                self.start_lookup(now, self.me.id, Purpose::Rejoin, Some(vec![contact]));
            }
        }
    }

    /// Push each held key to its replica set, looking the set up where needed.
    fn replicate_pass(&mut self, now: Instant) {
        self.store.expire(now);
        if !self.store.is_ready() {
            return;
        }
        let check_held = self.replication.begin_pass(&self.store, &self.ring);
        for key in self.store.keys() {
            let find = self.replication.replicate_key(key, check_held, &self.ring);
            let busy = |k: Id, p: &Purpose| matches!(p, Purpose::Replicate) && k == key;
            if find && !self.lookups.any(busy) {
                self.start_lookup(now, key, Purpose::Replicate, None);
            }
        }
        self.replication
            .send_digests(now, &self.store, &mut self.rpcs);
    }

    pub(super) fn client_lookup(&mut self, now: Instant, key: Id, purpose: Purpose) {
        if self.ring.phase() != Phase::Member {
            if let Purpose::Write { op } | Purpose::Read { op, .. } | Purpose::Locate { op } =
                purpose
            {
                self.rpcs.done(op, Err(ChordError::NotJoined));
            }
            return;
        }
        self.start_lookup(now, key, purpose, None);
    }

    pub(super) fn start_join(&mut self, now: Instant) {
        let start = self.contacts.join_through();
        self.start_lookup(now, self.me.id, Purpose::Join, Some(start));
    }

    /// Look our own id up through everyone we know, our silent successor
    /// included: whoever answers gives us a live successor list.
    fn rescue(&mut self, now: Instant) {
        let mut start: Vec<Peer> = self.ring.successors().to_vec();
        start.extend(self.ring.predecessor());
        start.extend(
            self.lookups
                .closest_preceding(&self.ring, self.me.id, CLOSER_COUNT),
        );
        start.extend(self.contacts.past());
        self.start_lookup(now, self.me.id, Purpose::Rescue, Some(start));
    }

    fn start_lookup(&mut self, now: Instant, key: Id, purpose: Purpose, start: Option<Vec<Peer>>) {
        let end = self
            .lookups
            .start(now, &self.ring, key, purpose, start, &mut self.rpcs);
        self.lookup_ended(now, end);
    }

    /// Route the end of a lookup (if it ended) by its purpose.
    fn lookup_ended(&mut self, now: Instant, end: Option<LookupEnd>) {
        let (rpcs, store) = (&mut self.rpcs, &mut self.store);
        match end {
            None => {}
            Some(LookupEnd::Found {
                key,
                purpose,
                list,
                hops,
            }) => match purpose {
                Purpose::Join => self.ring.begin_join(now, list, rpcs),
                Purpose::Rejoin => self.ring.found_self(now, false, list, rpcs),
                Purpose::Rescue => self.ring.found_self(now, true, list, rpcs),
                Purpose::Replicate => {
                    let ring = &self.ring;
                    self.replication
                        .on_located(now, key, &list, ring, store, rpcs)
                }
                Purpose::Write { op } => {
                    let ring = &self.ring;
                    self.ops.start_write(now, op, key, &list, ring, store, rpcs)
                }
                Purpose::Read { op, kind } => {
                    let ring = &self.ring;
                    self.ops
                        .start_read(now, op, (key, kind), &list, ring, store, rpcs)
                }
                Purpose::Locate { op } => self.ops.located(op, key, &list, hops, rpcs),
                // Lookups handle their own fingers.
                Purpose::Finger(_) => {}
            },
            Some(LookupEnd::Failed { key, purpose, hops }) => match purpose {
                Purpose::Write { op } | Purpose::Read { op, .. } | Purpose::Locate { op } => self
                    .ops
                    .fail(op, ChordError::LookupFailed { key, hops }, rpcs),
                Purpose::Rescue => self.ring.rescue_failed(),
                // Join retries on the next tick; the rest are periodic anyway.
                Purpose::Join | Purpose::Finger(_) | Purpose::Rejoin | Purpose::Replicate => {}
            },
        }
    }

    /// `to` answered a request made for `kind` with `msg`: the part that
    /// made the request handles it.
    pub(super) fn handle_answer(&mut self, now: Instant, to: Peer, kind: Pending, msg: Message) {
        let (rpcs, store) = (&mut self.rpcs, &mut self.store);
        match kind {
            Pending::Ring(kind) => {
                let report = self.ring.on_answer(now, to, kind, msg, rpcs);
                self.on_ring_report(now, report);
            }
            Pending::Route(kind) => {
                let end = self.lookups.on_answer(now, to, kind, msg, &self.ring, rpcs);
                self.lookup_ended(now, end);
            }
            Pending::Op(kind) => {
                let ring = &self.ring;
                self.ops.on_answer(now, to, kind, msg, ring, store, rpcs)
            }
            Pending::Replica(kind) => {
                // A joiner's key range is relayed too (see `node::source`).
                let fresh = self.screen_page(to.addr, &msg);
                let (rpcs, store) = (&mut self.rpcs, &mut self.store);
                if let Err(kind) = self.replication.on_answer(now, to, kind, msg, store, rpcs) {
                    self.rpc_failed(now, to, Pending::Replica(kind), Failure::Refused);
                }
                for (key, fresh) in fresh {
                    self.probe_fresh(now, key, fresh);
                }
            }
        }
    }

    /// The request to `dead` made for `kind` failed (`why`: a time-out, or
    /// definite evidence: unreachable, or a wrong answer): the part that
    /// made it handles that. Only routing tells a slow node from a dead
    /// one; the other parts have their own rules for silence.
    pub(super) fn rpc_failed(&mut self, now: Instant, dead: Peer, kind: Pending, why: Failure) {
        let (rpcs, store) = (&mut self.rpcs, &mut self.store);
        match kind {
            Pending::Ring(kind) => {
                let report = self.ring.on_failure(now, dead, kind, rpcs);
                self.on_ring_report(now, report);
            }
            Pending::Route(kind) => {
                let end = self
                    .lookups
                    .on_failure(now, dead, kind, why, &self.ring, rpcs);
                self.lookup_ended(now, end);
            }
            Pending::Op(kind) => {
                let ring = &self.ring;
                self.ops.on_failure(now, dead, kind, ring, store, rpcs)
            }
            Pending::Replica(kind) => {
                let ring = &self.ring;
                self.replication
                    .on_failure(now, dead, kind, ring, store, rpcs)
            }
        }
    }

    /// The ring part found a node dead (no finger may point at it, and if
    /// it was our only successor, a rescue looks for a live one), or joined.
    fn on_ring_report(&mut self, now: Instant, report: Option<Report>) {
        match report {
            None => {}
            Some(Report::Forget(p)) => self.lookups.forget(p.addr),
            Some(Report::Rescue(p)) => {
                self.lookups.forget(p.addr);
                if !self.lookups.any(|_, p| matches!(p, Purpose::Rescue)) {
                    self.rescue(now);
                }
            }
            Some(Report::Joined(first)) => {
                // Our key range comes from the successor; until it has,
                // we answer no reads.
                self.store.set_ready(false);
                self.timers.schedule_all(now, &self.config, &mut self.rng);
                let rpcs = &mut self.rpcs;
                self.replication.request_range(now, first, None, 0, rpcs);
                rpcs.send(first.addr, Message::Notify);
            }
        }
    }
}
