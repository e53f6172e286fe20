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
use crate::chord::records::{Limits, RecordStore, SwarmList};
use crate::chord::Role;
use crate::chord::{ChordError, LookupInfo, Peer, RingInfo};
use crate::config::ChordConfig;
use crate::id::{Id, ID_BITS};

/// Handle of a client operation, echoed in its [`Output::Done`].
pub type OpId = u64;

/// Past contacts remembered for partition healing.
pub(crate) const MAX_CONTACTS: usize = 32;
/// Candidates returned in a `Closer` answer.
pub(crate) const CLOSER_COUNT: usize = 4;
/// Unanswered requests for one page of a joiner's key range before it
/// serves without them (anti-entropy brings them later).
pub(crate) const HANDOFF_TRIES: u32 = 3;
/// Replication passes per lookup of the replica set of a key a node holds
/// but does not own.
pub(crate) const HELD_CHECK_EVERY: u64 = 4;
/// The request time-out grows with slow answers up to this many times the
/// configured one.
const MAX_RTO_FACTOR: u32 = 8;
/// Most a settled node slows its finger refresh by.
pub(crate) const MAX_FINGER_BACKOFF: u32 = 16;
/// Unanswered requests in a row after which a successor or predecessor is dead.
const MISSES_TO_DEATH: u32 = 2;

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
    /// Liveness check of the head of a successor list found by a self-lookup.
    MergeCheck { list: Vec<Peer> },
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
    /// Page request of the key range a joiner takes over, the keys after
    /// `after`; `tries` earlier requests for this page went unanswered.
    Handoff { after: Option<Id>, tries: u32 },
}

/// One outstanding request.
#[derive(Debug)]
pub(crate) struct Rpc {
    /// Who must answer it (answers from anyone else are ignored).
    pub to: Peer,
    /// When it was sent (for the round-trip estimate).
    pub sent: Instant,
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
    Rescue,
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
    pub(crate) rng: StdRng,
    /// Life cycle.
    pub(crate) phase: Phase,
    /// Successor list, closest first, never containing `me`; empty when alone.
    pub(crate) succs: Vec<Peer>,
    /// Predecessor, if known.
    pub(crate) pred: Option<Peer>,
    /// finger[k] ≈ successor(me + 2^k); checked alive when set.
    pub(crate) fingers: Vec<Option<Peer>>,
    /// Finger to refresh next.
    pub(crate) next_finger: usize,
    /// The finger interval is multiplied by this (1 to [`MAX_FINGER_BACKOFF`]):
    /// doubled after a sweep over the fingers that changed none, back to 1
    /// when one changes. A settled ring then costs few lookups.
    pub(crate) finger_backoff: u32,
    /// A finger changed during the current sweep.
    pub(crate) fingers_changed: bool,
    /// Replication passes run so far.
    pub(crate) replicate_round: u64,
    /// Smoothed round trip of answered requests (none yet: `None`).
    srtt: Option<Duration>,
    /// Smoothed deviation of the round trip.
    rttvar: Duration,
    /// The other members of the replica set of each held key we do not
    /// own, as its last lookup found them.
    pub(crate) replica_sets: BTreeMap<Id, Vec<SocketAddr>>,
    /// Past contacts for partition healing (random sample of nodes seen).
    pub(crate) contacts: Vec<SocketAddr>,
    /// Where to join through.
    pub(crate) bootstrap: Vec<SocketAddr>,
    /// Swarm lists held here.
    pub(crate) store: RecordStore,
    /// False while a joiner is still receiving its key range.
    pub(crate) ready: bool,
    /// Next request id.
    pub(crate) next_req: ReqId,
    /// Outstanding requests.
    pub(crate) pending: BTreeMap<ReqId, Rpc>,
    /// Deadlines of outstanding requests, earliest first.
    pub(crate) deadlines: BTreeSet<(Instant, ReqId)>,
    /// Next lookup / operation id.
    pub(crate) next_op: u64,
    /// Lookups in flight.
    pub(crate) lookups: BTreeMap<u64, LookupState>,
    /// Quorum writes in flight.
    pub(crate) writes: BTreeMap<OpId, WriteOp>,
    /// Quorum reads in flight.
    pub(crate) reads: BTreeMap<OpId, ReadOp>,
    /// Hand-offs of keys this node should no longer hold.
    pub(crate) handoffs: BTreeMap<u64, HandoffOp>,
    /// True while a stabilize round is in flight.
    pub(crate) stabilizing: bool,
    /// Our only successor missed an answer: it may be dead, or the message
    /// was lost. It stays (dropping it would split a small ring in two)
    /// until a self-lookup finds a live successor or fails everywhere.
    pub(crate) succ_suspect: bool,
    /// Consecutive unanswered stabilize requests to the first successor;
    /// one lost message is not a death.
    pub(crate) succ_misses: u32,
    /// Consecutive unanswered liveness checks of the predecessor.
    pub(crate) pred_misses: u32,
    /// Periodic tasks.
    timers: Timers,
    /// Outputs not yet polled.
    pub(crate) outputs: VecDeque<Output>,
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
            finger_backoff: 1,
            fingers_changed: false,
            replicate_round: 0,
            srtt: None,
            rttvar: Duration::ZERO,
            replica_sets: BTreeMap::new(),
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
            succ_suspect: false,
            succ_misses: 0,
            pred_misses: 0,
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

    /// True while a request to `addr` waits for its answer: closing the
    /// connection to it now could lose that answer.
    pub fn awaits_answer_from(&self, addr: SocketAddr) -> bool {
        self.pending.values().any(|rpc| rpc.to.addr == addr)
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
                    self.sample_rtt(now.saturating_duration_since(rpc.sent));
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
            self.fix_next_finger(now);
            let interval = self.config.fix_finger_interval * self.finger_backoff;
            self.timers.finger = now + self.jitter(interval);
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

    pub(crate) fn schedule_all(&mut self, now: Instant) {
        self.timers = Timers {
            stabilize: now,
            finger: now + self.jitter(self.config.fix_finger_interval),
            replicate: now + self.jitter(self.config.replicate_interval),
            rejoin: now + self.jitter(self.config.rejoin_interval),
        };
    }

    /// `d` scaled by a random factor in [0.5, 1.5): keeps nodes out of lockstep.
    pub(crate) fn jitter(&mut self, d: Duration) -> Duration {
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
        let deadline = now + self.rto();
        let sent = now;
        let rpc = Rpc {
            to,
            sent,
            deadline,
            kind,
        };
        self.pending.insert(req, rpc);
        self.deadlines.insert((deadline, req));
        self.send(to.addr, make(req));
    }

    /// How long a request may go unanswered: the configured time-out, or
    /// more while answers are slow (an overloaded host or network), so that
    /// slowness is not taken for death (after Jacobson's estimator in TCP).
    pub(crate) fn rto(&self) -> Duration {
        let floor = self.config.rpc_timeout;
        match self.srtt {
            // Twice the smoothed round trip, not TCP's one: a node sees few
            // samples a second, so the estimate lags a slowing host.
            Some(srtt) => (2 * srtt + 4 * self.rttvar).clamp(floor, floor * MAX_RTO_FACTOR),
            None => floor,
        }
    }

    /// Fold one answer's round trip into the estimate.
    fn sample_rtt(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let err = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + err) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
    }

    pub(crate) fn take_pending(&mut self, req: ReqId) -> Option<Rpc> {
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

    pub(crate) fn handle_answer(&mut self, now: Instant, rpc: Rpc, msg: Message) {
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
                    // Ask the new successor at once: a chain of nodes that
                    // joined concurrently is walked in round trips, not ticks.
                    // Each step moves strictly closer, so this ends.
                    self.stabilizing = false;
                    self.stabilize(now);
                } else {
                    self.finish_stabilize();
                }
            }
            (Pending::PredCheck { .. }, Message::Pong { .. }) => self.pred_misses = 0,
            (Pending::MergeCheck { list }, Message::Pong { .. }) => self.adopt_found(to, list),
            (Pending::FingerCheck { k }, Message::Pong { .. }) => self.set_finger(k, Some(to)),
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
            (Pending::Handoff { .. }, Message::HandoffData { keys, next, .. }) => {
                self.on_handoff_data(now, to, &keys, next)
            }
            (kind, _) => {
                // A well-formed answer of the wrong kind: count it as a failure.
                let (sent, deadline) = (now, now);
                let rpc = Rpc {
                    to,
                    sent,
                    deadline,
                    kind,
                };
                self.rpc_failed(now, rpc);
            }
        }
    }

    pub(crate) fn rpc_failed(&mut self, now: Instant, rpc: Rpc) {
        let dead = rpc.to;
        match rpc.kind {
            Pending::Stabilize => {
                self.stabilizing = false;
                self.succ_misses += 1;
                if self.succ_misses < MISSES_TO_DEATH {
                    self.stabilize(now);
                    return;
                }
                self.succ_misses = 0;
                self.forget_finger(dead.addr);
                if self.succs.len() > 1 {
                    tracing::debug!(me = ?self.me.id, dead = ?dead.id, "successor did not answer; dropping it");
                    self.succs.retain(|p| p.addr != dead.addr);
                    // Ask the next successor at once rather than a tick later.
                    self.stabilize(now);
                } else {
                    // Keep the only successor, but look for a live one;
                    // again on every failure until one answers.
                    self.succ_suspect = true;
                    let rescuing = self
                        .lookups
                        .values()
                        .any(|l| matches!(l.purpose, Purpose::Rescue));
                    if !rescuing {
                        self.rescue(now);
                    }
                }
            }
            Pending::StabilizeCheck => self.finish_stabilize(),
            Pending::PredCheck { notifier } => {
                if self.pred != Some(dead) {
                    return;
                }
                self.pred_misses += 1;
                if self.pred_misses < MISSES_TO_DEATH {
                    let kind = Pending::PredCheck { notifier };
                    self.request(now, dead, |req| Message::Ping { req }, kind);
                } else {
                    self.pred_misses = 0;
                    self.pred = notifier;
                }
            }
            Pending::MergeCheck { .. } | Pending::FingerCheck { .. } => {
                self.forget_finger(dead.addr)
            }
            Pending::Hop { lookup } => {
                self.forget_finger(dead.addr);
                self.advance_lookup(now, lookup);
            }
            Pending::Write { op } => self.on_write_answer(now, op, dead.addr, false),
            Pending::Read { op } => self.on_read_answer(now, op, dead.addr, None),
            Pending::Push { handoff } => self.on_push_answer(handoff, dead.addr, false),
            Pending::Handoff { after, tries } => self.handoff_failed(now, after, tries),
        }
    }
}
