//! One Chord node as a pure state machine: a small dispatcher over parts
//! that each own their state.
//!
//! Run-loop contract: after every input (`handle_*`, `start`, or a client
//! call such as [`Node::announce`]), drain [`Node::poll_output`] until it
//! returns `None`, then sleep until [`Node::poll_timeout`] and call
//! [`Node::handle_timeout`] then. No sockets, no clock, and randomness only
//! from the seeded RNG given at construction, so a simulation with the same
//! seed replays exactly.
//!
//! The parts, each in its own file with private fields:
//! - `neighbours`: successor list, predecessor and phase (Zave's rules);
//! - `contacts`: bootstrap nodes and past contacts (partition healing);
//! - `lookups`: routing, the lookups in flight and the finger table;
//! - `store` over [`records`](crate::chord::records): the records held
//!   here, of any kind;
//! - `ops`: client writes and reads in flight (quorums, read repair);
//! - `replication`: anti-entropy, hand-off, a joiner's key range;
//! - `rpc` and `timers`: requests in flight, outputs, periodic tasks.
//!
//! A part never calls another: the node passes each what it may read, and
//! routes what one part reports (a lookup that ended, a successor that
//! died) to the next.

use std::net::SocketAddr;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::chord::contacts::Contacts;
use crate::chord::lookups::{LookupEnd, Lookups, Purpose, CLOSER_COUNT};
use crate::chord::message::Message;
use crate::chord::neighbours::{Dead, Neighbours};
use crate::chord::ops::Ops;
use crate::chord::quorum::replica_set;
use crate::chord::records::{Entry, Limits, Record, RecordKind, SwarmList, TOMBSTONE_MARGIN};
use crate::chord::replication::Replication;
use crate::chord::rpc::{OpRpc, Pending, ReplicaRpc, Rpcs};
use crate::chord::store::Store;
use crate::chord::timers::{jitter, Timer, Timers};
use crate::chord::{ChordError, LookupInfo, Peer, RingInfo, Role};
use crate::config::ChordConfig;
use crate::id::Id;
use crate::wire::chord::message::Kind;

pub use crate::chord::neighbours::Phase;
pub use crate::chord::rpc::{OpId, OpOutcome, Output};

/// One Chord node.
#[derive(Debug)]
pub struct Node {
    /// This node.
    me: Peer,
    /// Tunables (N, W, R, r, timers).
    config: ChordConfig,
    /// The only source of randomness (jitter, contact choice).
    rng: StdRng,
    /// Successor list, predecessor and life-cycle phase.
    ring: Neighbours,
    /// Where to join through, and past contacts.
    contacts: Contacts,
    /// Routing, lookups in flight, fingers.
    lookups: Lookups,
    /// The records held here, of every kind.
    store: Store,
    /// Client writes and reads in flight.
    ops: Ops,
    /// Keeping held keys on their replica sets.
    replication: Replication,
    /// Requests in flight and outputs not yet polled.
    rpcs: Rpcs,
    /// Periodic tasks.
    timers: Timers,
}

impl Node {
    /// A node advertised at `addr`, not started.
    pub fn new(addr: SocketAddr, config: ChordConfig, seed: u64, now: Instant) -> Node {
        let me = Peer::new(addr);
        let limits = Limits {
            max_items_per_key: config.max_peers_per_key,
            max_items_per_source: config.max_keys_per_source,
            max_ttl: config.announce_ttl,
        };
        Node {
            me,
            rng: StdRng::seed_from_u64(seed),
            ring: Neighbours::new(me, config.successor_list_len),
            contacts: Contacts::new(addr),
            lookups: Lookups::new(me, &config),
            store: Store::new(limits),
            ops: Ops::new(addr, &config),
            replication: Replication::new(me, &config),
            rpcs: Rpcs::new(config.rpc_timeout),
            timers: Timers::new(now),
            config,
        }
    }

    /// This node's id.
    pub fn id(&self) -> Id {
        self.me.id
    }

    /// This node's advertised address.
    pub fn addr(&self) -> SocketAddr {
        self.me.addr
    }

    /// The successor list, closest first (empty when alone).
    pub fn successors(&self) -> &[Peer] {
        self.ring.successors()
    }

    /// The predecessor, if known.
    pub fn predecessor(&self) -> Option<Peer> {
        self.ring.predecessor()
    }

    /// Life-cycle phase.
    pub fn phase(&self) -> Phase {
        self.ring.phase()
    }

    /// True once joined and holding its key range.
    pub fn is_ready(&self) -> bool {
        self.ring.phase() == Phase::Member && self.store.is_ready()
    }

    /// The swarm list of `key` held here (tests and diagnostics).
    pub fn stored(&self, key: &Id) -> Option<&SwarmList> {
        let record = self.store.get(*key, SwarmList::KIND)?;
        <&SwarmList>::try_from(record).ok()
    }

    /// The record of `kind` at `key` held here (tests and diagnostics).
    pub fn record(&self, key: &Id, kind: Kind) -> Option<&Record> {
        self.store.get(*key, kind)
    }

    /// This node's view of the ring.
    pub fn ring_info(&self) -> RingInfo {
        RingInfo {
            id: self.me.id,
            addr: self.me.addr,
            predecessor: self.ring.predecessor().map(|p| p.addr),
            successors: self.ring.successors().iter().map(|p| p.addr).collect(),
            fingers: self.lookups.fingers().distinct(),
            keys: self.store.len(),
            joined: self.ring.phase() == Phase::Member,
        }
    }

    /// True while a request to `addr` waits for its answer: closing the
    /// connection to it now could lose that answer.
    pub fn awaits_answer_from(&self, addr: SocketAddr) -> bool {
        self.rpcs.any(|to, _| to.addr == addr)
    }

    // ----- inputs -----

    /// Start: found a new ring if `bootstrap` is empty, else join through it.
    pub fn start(&mut self, now: Instant, bootstrap: Vec<SocketAddr>) {
        self.contacts.set_bootstrap(bootstrap, &mut self.rng);
        if self.contacts.has_bootstrap() {
            self.ring.begin_join();
            self.start_join(now);
            let next = now + jitter(&mut self.rng, self.config.stabilize_interval);
            self.timers.set(Timer::Stabilize, next);
        } else {
            self.ring.found_ring();
            self.store.set_ready(true);
            self.timers.schedule_all(now, &self.config, &mut self.rng);
        }
    }

    /// A message from the node advertised at `from`.
    pub fn handle_message(&mut self, now: Instant, from: SocketAddr, msg: Message) {
        if from == self.me.addr || self.ring.phase() == Phase::Idle {
            return;
        }
        self.contacts.note(from, &mut self.rng);
        if let Some(req) = msg.answer_to() {
            if let Some(rpc) = self.rpcs.take_answer(now, req, from) {
                self.handle_answer(now, rpc.to, rpc.kind, msg);
            }
            return;
        }
        let rpcs = &mut self.rpcs;
        match msg {
            Message::Ping { req } => rpcs.send(from, Message::Pong { req }),
            Message::GetState { req } => rpcs.send(from, self.ring.state(req)),
            Message::Notify => self.ring.rectify(now, Peer::new(from), rpcs),
            Message::FindSuccessor { req, key } => {
                self.lookups.answer_find(&self.ring, from, req, key, rpcs)
            }
            Message::Store { req, key, value } => {
                let ok = self.store.merge_wire(now, key, &value);
                rpcs.send(from, Message::Stored { req, ok });
            }
            Message::Fetch { req, key, kind } => {
                let ready = self.ring.phase() == Phase::Member && self.store.is_ready();
                let (ready, value) = self.store.fetch(now, key, kind, ready);
                rpcs.send(from, Message::Fetched { req, ready, value });
            }
            Message::Handoff { req, upto, after } => {
                let (keys, next) = self.replication.serve_range(now, upto, after, &self.store);
                rpcs.send(from, Message::HandoffData { req, keys, next });
            }
            _ => {}
        }
    }

    /// The driver could not reach `addr`: fail its requests now rather than
    /// at their time-outs.
    pub fn handle_unreachable(&mut self, now: Instant, addr: SocketAddr) {
        for req in self.rpcs.sent_to(addr) {
            if let Some(rpc) = self.rpcs.take(req) {
                self.rpc_failed(now, rpc.to, rpc.kind);
            }
        }
    }

    /// Time has reached `now`: expire requests and run due periodic tasks.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(rpc) = self.rpcs.take_expired(now) {
            self.rpc_failed(now, rpc.to, rpc.kind);
        }
        match self.ring.phase() {
            Phase::Joining if self.timers.is_due(Timer::Stabilize, now) => {
                let next = now + jitter(&mut self.rng, self.config.stabilize_interval);
                self.timers.set(Timer::Stabilize, next);
                if !self.lookups.any(|_, p| matches!(p, Purpose::Join)) {
                    self.start_join(now);
                }
            }
            Phase::Member => self.run_timers(now),
            _ => {}
        }
    }

    // ----- client calls (inputs too) -----

    /// Announce `peer` for `key`; done once W replicas stored it.
    pub fn announce(&mut self, now: Instant, key: Id, peer: SocketAddr, role: Role) -> OpId {
        let entry = Entry {
            expiry: now + self.config.announce_ttl,
            role,
            removed: false,
        };
        self.put(now, key, SwarmList::single(peer, entry).into())
    }

    /// Remove `peer` from `key` (a tombstone that outlives the announce).
    pub fn remove(&mut self, now: Instant, key: Id, peer: SocketAddr) -> OpId {
        let entry = Entry {
            expiry: now + self.config.announce_ttl + TOMBSTONE_MARGIN,
            role: Role::Leecher,
            removed: true,
        };
        self.put(now, key, SwarmList::single(peer, entry).into())
    }

    /// The live peers of `key`, merged from R replicas.
    pub fn peers(&mut self, now: Instant, key: Id) -> OpId {
        self.get(now, key, SwarmList::KIND)
    }

    /// Merge `value` into the record of its kind at `key`; done once W
    /// replicas stored it.
    pub fn put(&mut self, now: Instant, key: Id, value: Record) -> OpId {
        let op = self.ops.new_op();
        if self.ring.phase() == Phase::Member {
            self.ops.queue_write(op, value);
        }
        self.client_lookup(now, key, Purpose::Write { op });
        op
    }

    /// The record of `kind` at `key`, merged from R replicas (a swarm list
    /// reads as its live peers).
    pub fn get(&mut self, now: Instant, key: Id, kind: Kind) -> OpId {
        let op = self.ops.new_op();
        self.client_lookup(now, key, Purpose::Read { op, kind });
        op
    }

    /// Owner, replica set and hop count of `key`.
    pub fn lookup(&mut self, now: Instant, key: Id) -> OpId {
        let op = self.ops.new_op();
        self.client_lookup(now, key, Purpose::Locate { op });
        op
    }

    /// Hand every key to the successors, then stop taking part. The driver
    /// waits until [`Node::leave_settled`] (or a time-out) before exiting.
    pub fn leave(&mut self, now: Instant) {
        if self.ring.leave() {
            self.replication
                .leave(now, &self.ring, &self.store, &mut self.rpcs);
        }
    }

    /// True once a leaving node's hand-over pushes were all answered.
    pub fn leave_settled(&self) -> bool {
        // Read repairs are pushes too.
        let push = |_, kind: &Pending| {
            matches!(
                kind,
                Pending::Replica(ReplicaRpc::Push { .. }) | Pending::Op(OpRpc::Repair)
            )
        };
        !self.rpcs.any(push)
    }

    // ----- outputs -----

    /// The next output, if any. Drain after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.rpcs.poll_output()
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let rpc = self.rpcs.next_deadline();
        let timers = match self.ring.phase() {
            Phase::Idle | Phase::Leaving => None,
            Phase::Joining => Some(self.timers.get(Timer::Stabilize)),
            Phase::Member => Some(self.timers.earliest()),
        };
        match (rpc, timers) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ----- routing between the parts -----

    /// Run every due periodic task of a member.
    fn run_timers(&mut self, now: Instant) {
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
        let check_held = self.replication.begin_pass(&self.store);
        for key in self.store.keys() {
            let (ring, store, rpcs) = (&self.ring, &self.store, &mut self.rpcs);
            let find = self
                .replication
                .replicate_key(now, key, check_held, ring, store, rpcs);
            let busy = |k: Id, p: &Purpose| matches!(p, Purpose::Replicate) && k == key;
            if find && !self.lookups.any(busy) {
                self.start_lookup(now, key, Purpose::Replicate, None);
            }
        }
    }

    fn client_lookup(&mut self, now: Instant, key: Id, purpose: Purpose) {
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

    fn start_join(&mut self, now: Instant) {
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
                Purpose::Join => {
                    let Some(first) = self.ring.join(list) else {
                        return;
                    };
                    store.set_ready(false);
                    self.timers.schedule_all(now, &self.config, &mut self.rng);
                    self.replication.request_range(now, first, None, 0, rpcs);
                    rpcs.send(first.addr, Message::Notify);
                }
                Purpose::Rejoin => self.ring.found_self(now, false, list, rpcs),
                Purpose::Rescue => self.ring.found_self(now, true, list, rpcs),
                Purpose::Replicate => self.replication.on_located(now, key, &list, store, rpcs),
                Purpose::Write { op } => self.ops.start_write(now, op, key, &list, store, rpcs),
                Purpose::Read { op, kind } => {
                    self.ops
                        .start_read(now, op, (key, kind), &list, store, rpcs)
                }
                Purpose::Locate { op } => {
                    let info = LookupInfo {
                        key,
                        owner: list[0].addr,
                        replicas: replica_set(&list, self.config.replicas),
                        hops,
                    };
                    rpcs.done(op, Ok(OpOutcome::Located(info)));
                }
                // Lookups handle their own fingers.
                Purpose::Finger(_) => {}
            },
            Some(LookupEnd::Failed { key, purpose, hops }) => match purpose {
                Purpose::Write { op } | Purpose::Read { op, .. } | Purpose::Locate { op } => {
                    self.ops.drop_write(op);
                    rpcs.done(op, Err(ChordError::LookupFailed { key, hops }));
                }
                Purpose::Rescue => self.ring.rescue_failed(),
                // Join retries on the next tick; the rest are periodic anyway.
                Purpose::Join | Purpose::Finger(_) | Purpose::Rejoin | Purpose::Replicate => {}
            },
        }
    }

    /// `to` answered a request made for `kind` with `msg`: the part that
    /// made the request handles it.
    fn handle_answer(&mut self, now: Instant, to: Peer, kind: Pending, msg: Message) {
        let (rpcs, store) = (&mut self.rpcs, &mut self.store);
        match kind {
            Pending::Ring(kind) => {
                let dead = self.ring.on_answer(now, to, kind, msg, rpcs);
                self.on_dead(now, dead);
            }
            Pending::Route(kind) => {
                let end = self.lookups.on_answer(now, to, kind, msg, rpcs);
                self.lookup_ended(now, end);
            }
            Pending::Op(kind) => self.ops.on_answer(now, to, kind, msg, store, rpcs),
            Pending::Replica(kind) => {
                if let Err(kind) = self.replication.on_answer(now, to, kind, msg, store, rpcs) {
                    self.rpc_failed(now, to, Pending::Replica(kind));
                }
            }
        }
    }

    /// The request to `dead` made for `kind` failed (time-out, unreachable,
    /// or a wrong answer): the part that made it handles that.
    fn rpc_failed(&mut self, now: Instant, dead: Peer, kind: Pending) {
        let (rpcs, store) = (&mut self.rpcs, &mut self.store);
        match kind {
            Pending::Ring(kind) => {
                let dead = self.ring.on_failure(now, dead, kind, rpcs);
                self.on_dead(now, dead);
            }
            Pending::Route(kind) => {
                let end = self.lookups.on_failure(now, dead, kind, rpcs);
                self.lookup_ended(now, end);
            }
            Pending::Op(kind) => self.ops.on_failure(now, dead, kind, store, rpcs),
            Pending::Replica(kind) => {
                let ring = &self.ring;
                self.replication
                    .on_failure(now, dead, kind, ring, store, rpcs)
            }
        }
    }

    /// The ring part found a node dead: no finger may point at it, and if
    /// it was our only successor, a rescue looks for a live one.
    fn on_dead(&mut self, now: Instant, dead: Option<Dead>) {
        match dead {
            None => {}
            Some(Dead::Forget(p)) => self.lookups.forget(p.addr),
            Some(Dead::Rescue(p)) => {
                self.lookups.forget(p.addr);
                if !self.lookups.any(|_, p| matches!(p, Purpose::Rescue)) {
                    self.rescue(now);
                }
            }
        }
    }
}
