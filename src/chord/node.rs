//! The pure ring state machine (Zave's corrected Chord).
//!
//! Inputs are `handle_*(now, …)` and the client calls in [`crate::chord::ops`];
//! outputs are drained with [`Node::poll_output`] until only
//! [`Node::poll_timeout`] is left, then `handle_timeout` is called at that
//! instant. No sockets, no clock, and randomness only from the seeded RNG
//! given at construction, so a simulation with the same seed replays exactly.
//!
//! Ring maintenance, as Zave's corrected Chord has it:
//! - join copies the whole successor list the lookup of its own id found;
//! - stabilize asks the first successor for its state; a dead one is dropped
//!   and the next one asked; a live one's list is adopted; its predecessor is
//!   adopted only after a liveness check; then the successor is notified;
//! - a notified node rectifies: it takes the notifier if it lies between its
//!   predecessor and itself, or once its predecessor is checked dead;
//! - no pointer enters the successor list or the finger table unchecked;
//! - fingers are an optimisation, refreshed one per tick;
//! - past contacts are asked, now and then, for our own successor, which
//!   merges rings that a partition had split.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::chord::lookup::Lookup;
use crate::chord::message::{Message, ReqId};
use crate::chord::ops::{HandoffOp, ReadOp, WriteOp};
use crate::chord::records::{Limits, RecordStore, Role, SwarmList};
use crate::chord::{ChordError, LookupInfo, Peer, RingInfo};
use crate::config::ChordConfig;
use crate::id::{Id, ID_BITS};

/// Handle of a client operation, echoed in its [`Output::Done`].
pub type OpId = u64;

/// Past contacts remembered for partition healing.
const MAX_CONTACTS: usize = 32;
/// Candidates returned in a `Closer` answer.
const CLOSER_COUNT: usize = 4;

/// What the node wants done.
#[derive(Debug, PartialEq)]
pub enum Output {
    /// Deliver `msg` to the node advertised at `to`.
    Send { to: SocketAddr, msg: Message },
    /// A client operation finished.
    Done {
        op: OpId,
        result: Result<OpOutcome, ChordError>,
    },
}

/// The successful result of a client operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpOutcome {
    /// Announce or removal stored on W replicas.
    Stored,
    /// The merged swarm list of R replicas.
    Peers(Vec<(SocketAddr, Role)>),
    /// Owner and replica set of a key.
    Located(LookupInfo),
}

/// Where the node is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Created, not started.
    Idle,
    /// Looking up its own id through bootstrap nodes.
    Joining,
    /// Has a successor: part of the ring (or an appendage about to be).
    Member,
    /// Handing its keys over before it stops.
    Leaving,
}

/// What an outstanding request is for, i.e. what to do with its answer.
#[derive(Debug)]
pub(crate) enum Pending {
    /// `GetState` to the first successor.
    Stabilize,
    /// Liveness check of the successor's predecessor before adopting it.
    StabilizeCheck,
    /// Liveness check of our predecessor; on death, take `notifier` instead.
    PredCheck { notifier: Option<Peer> },
    /// Liveness check of a successor found through a past contact.
    MergeCheck,
    /// Liveness check of a new finger `k`.
    FingerCheck { k: usize },
    /// One hop of lookup `lookup`.
    Hop { lookup: u64 },
    /// Quorum write `op`.
    Write { op: OpId },
    /// Quorum read `op`.
    Read { op: OpId },
    /// Anti-entropy or repair push, part of hand-off `handoff` if any.
    Push { handoff: Option<u64> },
    /// Page request of the key range a joiner takes over.
    Handoff,
}

/// One outstanding request.
#[derive(Debug)]
pub(crate) struct Rpc {
    /// Who must answer it (answers from anyone else are ignored).
    pub to: Peer,
    /// When it counts as failed.
    pub deadline: Instant,
    /// What the answer is for.
    pub kind: Pending,
}

/// Why a lookup runs, i.e. what to do with its result.
#[derive(Debug)]
pub(crate) enum Purpose {
    Join,
    Finger(usize),
    Rejoin,
    Replicate,
    Write { op: OpId, value: SwarmList },
    Read { op: OpId },
    Locate { op: OpId },
}

/// A lookup with its purpose.
#[derive(Debug)]
pub(crate) struct LookupState {
    pub lookup: Lookup,
    pub purpose: Purpose,
}

/// When each periodic task runs next.
#[derive(Debug)]
struct Timers {
    /// Stabilize (and predecessor check; join retry while joining).
    stabilize: Instant,
    /// Refresh of one finger.
    finger: Instant,
    /// Push of held keys to their replica sets.
    replicate: Instant,
    /// Self-lookup through a past contact.
    rejoin: Instant,
}

/// One Chord node.
#[derive(Debug)]
pub struct Node {
    /// This node.
    pub(crate) me: Peer,
    /// Tunables (N, W, R, r, timers).
    pub(crate) config: ChordConfig,
    /// The only source of randomness (jitter, contact choice).
    rng: StdRng,
    /// Life cycle.
    pub(crate) phase: Phase,
    /// Successor list, closest first, never containing `me`; empty when alone.
    pub(crate) succs: Vec<Peer>,
    /// Predecessor, if known.
    pub(crate) pred: Option<Peer>,
    /// finger[k] ≈ successor(me + 2^k); checked alive when set.
    fingers: Vec<Option<Peer>>,
    /// Finger to refresh next.
    next_finger: usize,
    /// Past contacts for partition healing (random sample of nodes seen).
    contacts: Vec<SocketAddr>,
    /// Where to join through.
    bootstrap: Vec<SocketAddr>,
    /// Swarm lists held here.
    pub(crate) store: RecordStore,
    /// False while a joiner is still receiving its key range.
    pub(crate) ready: bool,
    /// Next request id.
    next_req: ReqId,
    /// Outstanding requests.
    pub(crate) pending: BTreeMap<ReqId, Rpc>,
    /// Deadlines of outstanding requests, earliest first.
    deadlines: BTreeSet<(Instant, ReqId)>,
    /// Next lookup / operation id.
    next_op: u64,
    /// Lookups in flight.
    pub(crate) lookups: BTreeMap<u64, LookupState>,
    /// Quorum writes in flight.
    pub(crate) writes: BTreeMap<OpId, WriteOp>,
    /// Quorum reads in flight.
    pub(crate) reads: BTreeMap<OpId, ReadOp>,
    /// Hand-offs of keys this node should no longer hold.
    pub(crate) handoffs: BTreeMap<u64, HandoffOp>,
    /// True while a stabilize round is in flight.
    stabilizing: bool,
    /// Periodic tasks.
    timers: Timers,
    /// Outputs not yet polled.
    outputs: VecDeque<Output>,
}

impl Node {
    /// A node advertised at `addr`, not started.
    pub fn new(addr: SocketAddr, config: ChordConfig, seed: u64, now: Instant) -> Node {
        let limits = Limits {
            max_peers_per_key: config.max_peers_per_key,
            max_entries_per_source: config.max_keys_per_source,
        };
        Node {
            me: Peer::new(addr),
            rng: StdRng::seed_from_u64(seed),
            phase: Phase::Idle,
            succs: Vec::new(),
            pred: None,
            fingers: vec![None; ID_BITS],
            next_finger: 0,
            contacts: Vec::new(),
            bootstrap: Vec::new(),
            store: RecordStore::new(limits),
            ready: false,
            next_req: 1,
            pending: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            next_op: 1,
            lookups: BTreeMap::new(),
            writes: BTreeMap::new(),
            reads: BTreeMap::new(),
            handoffs: BTreeMap::new(),
            stabilizing: false,
            timers: Timers {
                stabilize: now,
                finger: now,
                replicate: now,
                rejoin: now,
            },
            outputs: VecDeque::new(),
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
        &self.succs
    }

    /// The predecessor, if known.
    pub fn predecessor(&self) -> Option<Peer> {
        self.pred
    }

    /// Life-cycle phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// True once joined and holding its key range.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Member && self.ready
    }

    /// The swarm list of `key` held here (tests and diagnostics).
    pub fn stored(&self, key: &Id) -> Option<&SwarmList> {
        self.store.get(key)
    }

    /// Start: found a new ring if `bootstrap` is empty, else join through it.
    pub fn start(&mut self, now: Instant, bootstrap: Vec<SocketAddr>) {
        self.bootstrap = bootstrap
            .into_iter()
            .filter(|a| *a != self.me.addr)
            .collect();
        for a in self.bootstrap.clone() {
            self.note_contact(a);
        }
        if self.bootstrap.is_empty() {
            self.phase = Phase::Member;
            self.ready = true;
            self.schedule_all(now);
        } else {
            self.phase = Phase::Joining;
            self.start_join(now);
            self.timers.stabilize = now + self.jitter(self.config.stabilize_interval);
        }
    }

    /// The next output, if any. Drain after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let rpc = self.deadlines.first().map(|(d, _)| *d);
        let timers = match self.phase {
            Phase::Idle | Phase::Leaving => None,
            Phase::Joining => Some(self.timers.stabilize),
            Phase::Member => Some(
                self.timers
                    .stabilize
                    .min(self.timers.finger)
                    .min(self.timers.replicate)
                    .min(self.timers.rejoin),
            ),
        };
        match (rpc, timers) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// This node's view of the ring.
    pub fn ring_info(&self) -> RingInfo {
        let fingers: BTreeSet<SocketAddr> = self.fingers.iter().flatten().map(|p| p.addr).collect();
        RingInfo {
            id: self.me.id,
            addr: self.me.addr,
            predecessor: self.pred.map(|p| p.addr),
            successors: self.succs.iter().map(|p| p.addr).collect(),
            fingers: fingers.len(),
            keys: self.store.len(),
            joined: self.phase == Phase::Member,
        }
    }

    /// A message from the node advertised at `from`.
    pub fn handle_message(&mut self, now: Instant, from: SocketAddr, msg: Message) {
        if from == self.me.addr || self.phase == Phase::Idle {
            return;
        }
        self.note_contact(from);
        let from = Peer::new(from);
        if let Some(req) = msg.answer_to() {
            // Answers are matched by id *and* sender: nobody answers for another.
            if self
                .pending
                .get(&req)
                .is_some_and(|rpc| rpc.to.addr == from.addr)
            {
                if let Some(rpc) = self.take_pending(req) {
                    self.handle_answer(now, rpc, msg);
                }
            }
            return;
        }
        match msg {
            Message::Ping { req } => self.send(from.addr, Message::Pong { req }),
            Message::GetState { req } => {
                let msg = Message::State {
                    req,
                    pred: self.pred.map(|p| p.addr),
                    succs: self.succs.iter().map(|p| p.addr).collect(),
                };
                self.send(from.addr, msg)
            }
            Message::Notify => self.rectify(now, from),
            Message::FindSuccessor { req, key } => self.answer_find(from, req, key),
            Message::Store { req, key, entries } => {
                self.handle_store(now, from, req, key, &entries)
            }
            Message::Fetch { req, key } => self.handle_fetch(now, from, req, key),
            Message::Handoff { req, upto, after } => {
                self.handle_handoff(now, from, req, upto, after)
            }
            _ => {}
        }
    }

    /// The driver could not reach `addr`: fail its requests now rather than
    /// at their time-outs.
    pub fn handle_unreachable(&mut self, now: Instant, addr: SocketAddr) {
        let reqs: Vec<ReqId> = self
            .pending
            .iter()
            .filter(|(_, rpc)| rpc.to.addr == addr)
            .map(|(r, _)| *r)
            .collect();
        for req in reqs {
            if let Some(rpc) = self.take_pending(req) {
                self.rpc_failed(now, rpc);
            }
        }
    }

    /// Time has reached `now`: expire requests and run due periodic tasks.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(deadline, req)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            if let Some(rpc) = self.take_pending(req) {
                self.rpc_failed(now, rpc);
            }
        }
        match self.phase {
            Phase::Joining if self.timers.stabilize <= now => {
                self.timers.stabilize = now + self.jitter(self.config.stabilize_interval);
                let joining = self
                    .lookups
                    .values()
                    .any(|l| matches!(l.purpose, Purpose::Join));
                if !joining {
                    self.start_join(now);
                }
            }
            Phase::Member => self.run_timers(now),
            _ => {}
        }
    }

    /// Run every due periodic task of a member.
    fn run_timers(&mut self, now: Instant) {
        if self.timers.stabilize <= now {
            self.timers.stabilize = now + self.jitter(self.config.stabilize_interval);
            self.check_predecessor(now);
            if !self.stabilizing {
                self.stabilize(now);
            }
        }
        if self.timers.finger <= now {
            self.timers.finger = now + self.jitter(self.config.fix_finger_interval);
            self.fix_next_finger(now);
        }
        if self.timers.replicate <= now {
            self.timers.replicate = now + self.jitter(self.config.replicate_interval);
            self.replicate_pass(now);
        }
        if self.timers.rejoin <= now {
            self.timers.rejoin = now + self.jitter(self.config.rejoin_interval);
            self.rejoin_through_contact(now);
        }
    }

    fn schedule_all(&mut self, now: Instant) {
        self.timers = Timers {
            stabilize: now,
            finger: now + self.jitter(self.config.fix_finger_interval),
            replicate: now + self.jitter(self.config.replicate_interval),
            rejoin: now + self.jitter(self.config.rejoin_interval),
        };
    }

    /// `d` scaled by a random factor in [0.5, 1.5): keeps nodes out of lockstep.
    fn jitter(&mut self, d: Duration) -> Duration {
        d.mul_f64(self.rng.gen_range(0.5..1.5))
    }

    // ----- requests -----

    /// Queue a one-way message.
    pub(crate) fn send(&mut self, to: SocketAddr, msg: Message) {
        self.outputs.push_back(Output::Send { to, msg });
    }

    /// Queue a request to `to` and remember what its answer is for.
    pub(crate) fn request(
        &mut self,
        now: Instant,
        to: Peer,
        make: impl FnOnce(ReqId) -> Message,
        kind: Pending,
    ) {
        let req = self.next_req;
        self.next_req += 1;
        let deadline = now + self.config.rpc_timeout;
        self.pending.insert(req, Rpc { to, deadline, kind });
        self.deadlines.insert((deadline, req));
        self.send(to.addr, make(req));
    }

    fn take_pending(&mut self, req: ReqId) -> Option<Rpc> {
        let rpc = self.pending.remove(&req)?;
        self.deadlines.remove(&(rpc.deadline, req));
        Some(rpc)
    }

    pub(crate) fn emit_done(&mut self, op: OpId, result: Result<OpOutcome, ChordError>) {
        self.outputs.push_back(Output::Done { op, result });
    }

    pub(crate) fn new_op_id(&mut self) -> u64 {
        let id = self.next_op;
        self.next_op += 1;
        id
    }

    fn handle_answer(&mut self, now: Instant, rpc: Rpc, msg: Message) {
        let to = rpc.to;
        match (rpc.kind, msg) {
            (Pending::Stabilize, Message::State { pred, succs, .. }) => {
                self.on_state(now, to, pred, &succs)
            }
            (Pending::StabilizeCheck, Message::Pong { .. }) => {
                if self
                    .succs
                    .first()
                    .is_none_or(|s| to.id.in_open(self.me.id, s.id))
                {
                    self.succs.insert(0, to);
                    self.succs.truncate(self.config.successor_list_len);
                }
                self.finish_stabilize();
            }
            (Pending::PredCheck { .. }, Message::Pong { .. }) => {}
            (Pending::MergeCheck, Message::Pong { .. }) => {
                if self
                    .succs
                    .first()
                    .is_none_or(|s| to.id.in_open(self.me.id, s.id))
                {
                    tracing::debug!(me = ?self.me.id, new = ?to.id, "found a closer successor through a past contact");
                    self.succs.insert(0, to);
                    self.succs.truncate(self.config.successor_list_len);
                }
            }
            (Pending::FingerCheck { k }, Message::Pong { .. }) => self.fingers[k] = Some(to),
            (Pending::Hop { lookup }, msg @ (Message::Found { .. } | Message::Closer { .. })) => {
                self.on_hop_answer(now, lookup, to, msg)
            }
            (Pending::Write { op }, Message::Stored { ok, .. }) => {
                self.on_write_answer(now, op, to.addr, ok)
            }
            (Pending::Read { op }, Message::Fetched { ready, entries, .. }) => {
                let list =
                    ready.then(|| SwarmList::from_wire(now, &entries, self.config.announce_ttl));
                self.on_read_answer(now, op, to.addr, list)
            }
            (Pending::Push { handoff }, Message::Stored { ok, .. }) => {
                self.on_push_answer(handoff, to.addr, ok)
            }
            (Pending::Handoff, Message::HandoffData { keys, next, .. }) => {
                self.on_handoff_data(now, to, &keys, next)
            }
            (kind, _) => {
                // A well-formed answer of the wrong kind: count it as a failure.
                let deadline = now;
                self.rpc_failed(now, Rpc { to, deadline, kind });
            }
        }
    }

    fn rpc_failed(&mut self, now: Instant, rpc: Rpc) {
        let dead = rpc.to;
        match rpc.kind {
            Pending::Stabilize => {
                tracing::debug!(me = ?self.me.id, dead = ?dead.id, "successor did not answer; dropping it");
                self.succs.retain(|p| p.addr != dead.addr);
                self.forget_finger(dead.addr);
                self.stabilizing = false;
                // Ask the next successor at once rather than a tick later.
                self.stabilize(now);
            }
            Pending::StabilizeCheck => self.finish_stabilize(),
            Pending::PredCheck { notifier } => {
                if self.pred == Some(dead) {
                    self.pred = notifier;
                }
            }
            Pending::MergeCheck | Pending::FingerCheck { .. } => self.forget_finger(dead.addr),
            Pending::Hop { lookup } => {
                self.forget_finger(dead.addr);
                self.advance_lookup(now, lookup);
            }
            Pending::Write { op } => self.on_write_answer(now, op, dead.addr, false),
            Pending::Read { op } => self.on_read_answer(now, op, dead.addr, None),
            Pending::Push { handoff } => self.on_push_answer(handoff, dead.addr, false),
            // The joiner gives up waiting; anti-entropy brings the keys later.
            Pending::Handoff => self.ready = true,
        }
    }

    // ----- ring maintenance -----

    fn stabilize(&mut self, now: Instant) {
        if self.phase != Phase::Member {
            return;
        }
        match self.succs.first().copied() {
            Some(s) => {
                self.stabilizing = true;
                self.request(now, s, |req| Message::GetState { req }, Pending::Stabilize);
            }
            None => {
                // Alone: a predecessor that notified us is our successor too,
                // once checked alive.
                if let Some(p) = self.pred {
                    self.stabilizing = true;
                    self.request(now, p, |req| Message::Ping { req }, Pending::StabilizeCheck);
                }
            }
        }
    }

    fn on_state(&mut self, now: Instant, s: Peer, pred: Option<SocketAddr>, list: &[SocketAddr]) {
        if self.succs.first() != Some(&s) {
            // The successor changed meanwhile; this answer is stale.
            self.finish_stabilize();
            return;
        }
        let mut candidate = vec![s];
        candidate.extend(list.iter().map(|a| Peer::new(*a)));
        self.succs = self.ordered_list(candidate);
        match pred.map(Peer::new) {
            Some(p) if p != self.me && p.id.in_open(self.me.id, s.id) => {
                self.request(now, p, |req| Message::Ping { req }, Pending::StabilizeCheck);
            }
            _ => self.finish_stabilize(),
        }
    }

    fn finish_stabilize(&mut self) {
        self.stabilizing = false;
        if let Some(s) = self.succs.first() {
            let to = s.addr;
            self.send(to, Message::Notify);
        }
    }

    /// `list` cut to a clockwise-ordered, duplicate-free successor list:
    /// entries that do not lie strictly further round the ring than the one
    /// before (including `me`, which ends a wrapped list) are dropped.
    pub(crate) fn ordered_list(&self, list: Vec<Peer>) -> Vec<Peer> {
        let mut out: Vec<Peer> = Vec::with_capacity(self.config.successor_list_len);
        for p in list {
            if p == self.me {
                break;
            }
            let further = out
                .last()
                .is_none_or(|last| self.me.id.distance_to(p.id) > self.me.id.distance_to(last.id));
            if further {
                out.push(p);
            }
            if out.len() == self.config.successor_list_len {
                break;
            }
        }
        out
    }

    /// Zave's rectify: `n` (alive, it just spoke) believes it is our predecessor.
    fn rectify(&mut self, now: Instant, n: Peer) {
        if self.phase != Phase::Member || n == self.me {
            return;
        }
        match self.pred {
            None => self.pred = Some(n),
            Some(p) if p == n => {}
            Some(p) if n.id.in_open(p.id, self.me.id) => self.pred = Some(n),
            Some(p) => {
                let checking = self
                    .pending
                    .values()
                    .any(|r| matches!(r.kind, Pending::PredCheck { .. }));
                if !checking {
                    self.request(
                        now,
                        p,
                        |req| Message::Ping { req },
                        Pending::PredCheck { notifier: Some(n) },
                    );
                }
            }
        }
    }

    fn check_predecessor(&mut self, now: Instant) {
        if let Some(p) = self.pred {
            let checking = self
                .pending
                .values()
                .any(|r| matches!(r.kind, Pending::PredCheck { .. }));
            if !checking {
                self.request(
                    now,
                    p,
                    |req| Message::Ping { req },
                    Pending::PredCheck { notifier: None },
                );
            }
        }
    }

    fn fix_next_finger(&mut self, now: Instant) {
        let Some(last) = self.succs.last().copied() else {
            return;
        };
        // Fingers whose start the successor list already covers need no
        // lookup; skip to the next one that does (one lookup per tick).
        for _ in 0..ID_BITS {
            let k = self.next_finger;
            self.next_finger = (self.next_finger + 1) % ID_BITS;
            let start = self.me.id.add_pow2(k);
            if start.in_open_closed(self.me.id, last.id) {
                let owner = self
                    .succs
                    .iter()
                    .find(|s| start.in_open_closed(self.me.id, s.id))
                    .copied();
                self.fingers[k] = owner;
                continue;
            }
            self.start_lookup(now, start, Purpose::Finger(k), None);
            return;
        }
    }

    pub(crate) fn forget_finger(&mut self, addr: SocketAddr) {
        for f in self.fingers.iter_mut() {
            if f.is_some_and(|p| p.addr == addr) {
                *f = None;
            }
        }
    }

    fn note_contact(&mut self, addr: SocketAddr) {
        if addr == self.me.addr || self.contacts.contains(&addr) {
            return;
        }
        if self.contacts.len() < MAX_CONTACTS {
            self.contacts.push(addr);
        } else if self.rng.gen_ratio(1, 4) {
            // Random replacement keeps a sample of every era, so contacts
            // from before a partition survive it.
            let i = self.rng.gen_range(0..MAX_CONTACTS);
            self.contacts[i] = addr;
        }
    }

    fn rejoin_through_contact(&mut self, now: Instant) {
        if self.contacts.is_empty() {
            return;
        }
        let c = self.contacts[self.rng.gen_range(0..self.contacts.len())];
        self.start_lookup(now, self.me.id, Purpose::Rejoin, Some(vec![Peer::new(c)]));
    }

    fn start_join(&mut self, now: Instant) {
        let mut start: Vec<Peer> = self.bootstrap.iter().map(|a| Peer::new(*a)).collect();
        start.extend(self.contacts.iter().map(|a| Peer::new(*a)));
        self.start_lookup(now, self.me.id, Purpose::Join, Some(start));
    }

    // ----- lookups -----

    /// The owner's successor list for `key` if this node knows it.
    pub(crate) fn local_answer(&self, key: Id) -> Option<Vec<Peer>> {
        if self.phase != Phase::Member {
            return None;
        }
        if self.succs.is_empty() {
            return Some(vec![self.me]);
        }
        let mut with_me = vec![self.me];
        with_me.extend(self.succs.iter().copied());
        if let Some(p) = self.pred {
            if key.in_open_closed(p.id, self.me.id) {
                return Some(with_me);
            }
        }
        // A short list means the ring is small and we see all of it.
        let whole_ring = self.succs.len() < self.config.successor_list_len;
        let mut prev = self.me.id;
        for (i, s) in self.succs.iter().enumerate() {
            if key.in_open_closed(prev, s.id) {
                if whole_ring {
                    let mut list = with_me[i + 1..].to_vec();
                    list.extend_from_slice(&with_me[..=i]);
                    return Some(list);
                }
                // Answer only with enough followers for a replica set.
                if i == 0 || self.succs.len() - i >= self.config.replicas {
                    return Some(self.succs[i..].to_vec());
                }
                return None;
            }
            prev = s.id;
        }
        None
    }

    /// Known nodes in (me, key), closest to the key first.
    fn closest_preceding(&self, key: Id, count: usize) -> Vec<Peer> {
        let mut all: Vec<Peer> = self
            .fingers
            .iter()
            .flatten()
            .chain(self.succs.iter())
            .filter(|p| p.id.in_open(self.me.id, key))
            .copied()
            .collect();
        all.sort_by_key(|p| (p.id.distance_to(key), p.addr));
        all.dedup_by_key(|p| p.addr);
        all.truncate(count);
        all
    }

    fn answer_find(&mut self, from: Peer, req: ReqId, key: Id) {
        let msg = match self.local_answer(key) {
            Some(list) => Message::Found {
                req,
                succs: list.iter().map(|p| p.addr).collect(),
            },
            None => Message::Closer {
                req,
                nodes: self
                    .closest_preceding(key, CLOSER_COUNT)
                    .iter()
                    .map(|p| p.addr)
                    .collect(),
            },
        };
        self.send(from.addr, msg);
    }

    /// Look `key` up, asking `start` first, or answering locally / from
    /// our own table when `start` is None.
    pub(crate) fn start_lookup(
        &mut self,
        now: Instant,
        key: Id,
        purpose: Purpose,
        start: Option<Vec<Peer>>,
    ) {
        let start = match start {
            Some(s) => s,
            None => {
                if let Some(list) = self.local_answer(key) {
                    self.lookup_done(now, key, purpose, list, 0);
                    return;
                }
                self.closest_preceding(key, CLOSER_COUNT)
            }
        };
        let id = self.new_op_id();
        let start = start.into_iter().filter(|p| *p != self.me).collect();
        self.lookups.insert(
            id,
            LookupState {
                lookup: Lookup::new(key, start),
                purpose,
            },
        );
        self.advance_lookup(now, id);
    }

    fn advance_lookup(&mut self, now: Instant, id: u64) {
        let max_hops = self.config.max_hops as u32;
        let Some(state) = self.lookups.get_mut(&id) else {
            return;
        };
        let next = if state.lookup.hops >= max_hops {
            None
        } else {
            state.lookup.next_hop()
        };
        match next {
            Some(p) => {
                let key = state.lookup.key;
                self.request(
                    now,
                    p,
                    |req| Message::FindSuccessor { req, key },
                    Pending::Hop { lookup: id },
                );
            }
            None => {
                if let Some(state) = self.lookups.remove(&id) {
                    self.lookup_failed(state);
                }
            }
        }
    }

    fn on_hop_answer(&mut self, now: Instant, id: u64, from: Peer, msg: Message) {
        match msg {
            Message::Found { succs, .. } if !succs.is_empty() => {
                if let Some(state) = self.lookups.remove(&id) {
                    let list = succs.iter().map(|a| Peer::new(*a)).collect();
                    let (key, hops) = (state.lookup.key, state.lookup.hops);
                    self.lookup_done(now, key, state.purpose, list, hops);
                }
            }
            Message::Closer { nodes, .. } => {
                let me = self.me;
                let nodes: Vec<Peer> = nodes
                    .iter()
                    .map(|a| Peer::new(*a))
                    .filter(|p| *p != me)
                    .collect();
                if let Some(state) = self.lookups.get_mut(&id) {
                    state.lookup.add_closer(from.id, &nodes);
                }
                self.advance_lookup(now, id);
            }
            _ => self.advance_lookup(now, id),
        }
    }

    fn lookup_done(&mut self, now: Instant, key: Id, purpose: Purpose, list: Vec<Peer>, hops: u32) {
        match purpose {
            Purpose::Join => {
                if self.phase != Phase::Joining {
                    return;
                }
                let succs = self.ordered_list(list);
                let Some(first) = succs.first().map(|p| p.addr) else {
                    return;
                };
                tracing::debug!(me = ?self.me.id, succ = ?succs[0].id, "joined");
                self.succs = succs;
                self.phase = Phase::Member;
                self.ready = false;
                self.schedule_all(now);
                let upto = self.me.id;
                self.request(
                    now,
                    Peer::new(first),
                    |req| Message::Handoff {
                        req,
                        upto,
                        after: None,
                    },
                    Pending::Handoff,
                );
                self.send(first, Message::Notify);
            }
            Purpose::Finger(k) => {
                let owner = list[0];
                if owner == self.me {
                    self.fingers[k] = None;
                } else if self.fingers[k] != Some(owner) {
                    self.request(
                        now,
                        owner,
                        |req| Message::Ping { req },
                        Pending::FingerCheck { k },
                    );
                }
            }
            Purpose::Rejoin => {
                let s = list[0];
                let closer = s != self.me
                    && self
                        .succs
                        .first()
                        .is_none_or(|f| s.id.in_open(self.me.id, f.id));
                if closer && self.phase == Phase::Member {
                    self.request(now, s, |req| Message::Ping { req }, Pending::MergeCheck);
                }
            }
            Purpose::Replicate => self.on_replicate_located(now, key, list),
            Purpose::Write { op, value } => self.start_write(now, op, key, value, list),
            Purpose::Read { op } => self.start_read(now, op, key, list),
            Purpose::Locate { op } => {
                let replicas = self.replica_set(&list);
                let info = LookupInfo {
                    key,
                    owner: list[0].addr,
                    replicas,
                    hops,
                };
                self.emit_done(op, Ok(OpOutcome::Located(info)));
            }
        }
    }

    fn lookup_failed(&mut self, state: LookupState) {
        let (key, hops) = (state.lookup.key, state.lookup.hops);
        let err = ChordError::LookupFailed { key, hops };
        match state.purpose {
            Purpose::Write { op, .. } | Purpose::Read { op } | Purpose::Locate { op } => {
                self.emit_done(op, Err(err))
            }
            // Join retries on the next tick; the rest are periodic anyway.
            Purpose::Join | Purpose::Finger(_) | Purpose::Rejoin | Purpose::Replicate => {}
        }
    }

    /// The first N distinct addresses of an owner's successor list.
    pub(crate) fn replica_set(&self, list: &[Peer]) -> Vec<SocketAddr> {
        let mut out: Vec<SocketAddr> = Vec::new();
        for p in list {
            if !out.contains(&p.addr) {
                out.push(p.addr);
            }
            if out.len() == self.config.replicas {
                break;
            }
        }
        out
    }
}
