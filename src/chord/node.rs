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
//! died) to the next; that routing is in `node/routing.rs`.

use std::net::SocketAddr;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::chord::contacts::Contacts;
use crate::chord::lookups::{Lookups, Purpose};
use crate::chord::message::Message;
use crate::chord::neighbours::Neighbours;
use crate::chord::ops::Ops;
use crate::chord::probes::Probes;
use crate::chord::records::{Limits, Record, RecordKind, SwarmList};
use crate::chord::replication::Replication;
use crate::chord::rpc::{Failure, Rpcs};
use crate::chord::store::Store;
use crate::chord::timers::{jitter, Timer, Timers};
use crate::chord::vouch::Vouch;
use crate::chord::{ChordError, Peer, RingInfo};
use crate::config::ChordConfig;
use crate::id::Id;
use crate::wire::chord::message::{Kind, WireRecord};

pub use crate::chord::Phase;

mod catalog;
mod routing;
mod source;
pub use crate::chord::probes::Verdict;
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
    /// Postings from other nodes waiting for their songs' metadata.
    vouch: Vouch,
    /// Relayed third-party swarm entries being checked with their peers.
    probes: Probes,
}

impl Node {
    /// A node advertised at `addr`, not started.
    pub fn new(addr: SocketAddr, config: ChordConfig, seed: u64, now: Instant) -> Node {
        let me = Peer::new(addr);
        let limits = Limits {
            max_items_per_key: config.max_peers_per_key,
            max_items_per_source: config.max_keys_per_source,
            max_items_per_key_per_source: config.max_peers_per_key_per_source,
            max_items: config.max_items_per_node,
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
            vouch: Vouch::default(),
            probes: Probes::new(&config),
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

    /// Items held here in all, and of the peers at `source` (tests and
    /// diagnostics of the caps).
    pub fn items(&self, source: std::net::IpAddr) -> (usize, usize) {
        (self.store.items(), self.store.items_of(source))
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
            self.ring.start(true);
            self.start_join(now);
            let next = now + jitter(&mut self.rng, self.config.stabilize_interval);
            self.timers.set(Timer::Stabilize, next);
        } else {
            self.ring.start(false);
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
        if self.ring.phase() == Phase::Joining {
            // A joiner learns of the nodes named in answers: should every
            // node it heard from die before it has joined, it joins
            // through these.
            if let Message::Closer { nodes: named, .. } | Message::Found { succs: named, .. } = &msg
            {
                for a in named {
                    self.contacts.note(*a, &mut self.rng);
                }
            }
        }
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
            Message::Store { req, key, value } => self.on_store(now, from, req, key, &value),
            Message::Fetch { req, key, kind } => {
                let ready = self.ring.phase() == Phase::Member && self.store.is_ready();
                let (ready, value) = self.store.fetch(now, key, kind, ready);
                rpcs.send(from, Message::Fetched { req, ready, value });
            }
            Message::Digest { req, records } => {
                let records = crate::chord::replication::wanted(now, &self.store, &records);
                rpcs.send(from, Message::Wanted { req, records });
            }
            Message::Handoff { req, upto, after } => {
                let (keys, next) = self.replication.serve_range(now, upto, after, &self.store);
                rpcs.send(from, Message::HandoffData { req, keys, next });
            }
            _ => {}
        }
    }

    /// `addr` is gone, on definite evidence (its connection was refused or
    /// reset, or it broke the protocol): fail its requests now rather than
    /// at their time-outs. The driver reports only such evidence: a
    /// connection that timed out, or that failed for a reason of our own
    /// (out of descriptors), says nothing of the other node, and its
    /// requests time out instead.
    pub fn handle_unreachable(&mut self, now: Instant, addr: SocketAddr) {
        self.replication.note_features(addr, 0); // another build may answer next
        for req in self.rpcs.sent_to(addr) {
            if let Some(rpc) = self.rpcs.take(req) {
                self.rpc_failed(now, rpc.to, rpc.kind, Failure::Refused);
            }
        }
    }

    /// Time has reached `now`: expire requests and run due periodic tasks.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(rpc) = self.rpcs.take_expired(now) {
            let why = rpc.timed_out();
            self.rpc_failed(now, rpc.to, rpc.kind, why);
        }
        match self.ring.phase() {
            Phase::Joining if self.timers.is_due(Timer::Stabilize, now) => {
                let next = now + jitter(&mut self.rng, self.config.stabilize_interval);
                self.timers.set(Timer::Stabilize, next);
                let joining = self.lookups.any(|_, p| matches!(p, Purpose::Join));
                if !joining && !self.ring.checking_join(&self.rpcs) {
                    self.start_join(now);
                }
            }
            Phase::Member => self.run_timers(now),
            _ => {}
        }
    }

    // ----- client calls (inputs too) -----

    /// The live peers of `key`, merged from R replicas.
    pub fn peers(&mut self, now: Instant, key: Id) -> OpId {
        self.get(now, key, SwarmList::KIND)
    }

    /// Merge `value` into the record of its kind at `key`; done once W
    /// replicas stored it.
    pub fn put(&mut self, now: Instant, key: Id, value: Record) -> OpId {
        // A signed item written lives its full time from now.
        let value = match value {
            Record::Mutable(m) if m.expiry.is_none() => {
                Record::Mutable(m.until(now + crate::chord::records::MAX_MUTABLE_TTL))
            }
            other => other,
        };
        let op = self.ops.new_op();
        if self.ring.phase() == Phase::Member {
            self.ops.queue_write(op, value);
        }
        self.client_lookup(now, key, Purpose::Write { op });
        op
    }

    /// [`Node::put`] of a record as a client sent it: fails at once with
    /// [`ChordError::Invalid`] if it does not parse or validate under `key`
    /// (no replica would store it).
    pub fn put_wire(&mut self, now: Instant, key: Id, value: &WireRecord) -> OpId {
        match self.store.decode(now, key, value) {
            Some(record) => self.put(now, key, record),
            None => {
                let op = self.ops.new_op();
                let err = ChordError::Invalid {
                    key,
                    kind: value.kind(),
                };
                self.ops.fail(op, err, &mut self.rpcs);
                op
            }
        }
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
        !self.rpcs.pushing()
    }

    // ----- outputs -----

    /// The next output, if any. Drain after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        loop {
            let output = self.rpcs.poll_output()?;
            match output {
                // Our own reads of song metadata (see `vouch`).
                Output::Done { op, result } if self.vouch.is_fetch(op) => {
                    self.on_metadata(op, &result)
                }
                output => return Some(output),
            }
        }
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let rpc = self.rpcs.next_deadline();
        match (rpc, self.timers.next(self.ring.phase())) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
