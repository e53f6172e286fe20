//! The ring neighbours of one node: its successor list and predecessor,
//! kept by Zave's corrected Chord.
//!
//! - join takes the first live node of the list the lookup of its own id
//!   found, checked by asking its state, and copies it and its whole
//!   successor list (see `join`);
//! - stabilize asks the first successor for its state; a dead one is dropped
//!   and the next one asked; a live one's list is adopted; its predecessor is
//!   adopted only after a liveness check; then the successor is notified;
//! - a notified node rectifies: it takes the notifier if it lies between its
//!   predecessor and itself, or once its predecessor is checked dead;
//! - no pointer enters the successor list unchecked;
//! - a self-lookup through past contacts may find a closer successor (which
//!   merges rings that a partition had split) or replace a silent one.

use std::net::SocketAddr;
use std::time::Instant;

use crate::chord::message::{Message, ReqId};
use crate::chord::rpc::{Pending, RingRpc, Rpcs};
use crate::chord::{Peer, Phase};

use predecessor::Predecessor;

mod join;
mod predecessor;
mod rescue;

/// Unanswered requests in a row after which a successor or predecessor is dead.
const MISSES_TO_DEATH: u32 = 2;

/// What ring upkeep reports for the other parts to act on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Report {
    /// Dropped here (a successor, or a candidate that never answered): no
    /// finger should point at it either.
    Forget(Peer),
    /// Our only successor, silent: it stays until a rescue (a self-lookup
    /// through everyone we know) finds a live one, which the node starts.
    Rescue(Peer),
    /// We joined the ring with this first successor: the node fetches our
    /// key range from it and notifies it.
    Joined(Peer),
}

/// Successor list, predecessor and life-cycle phase.
#[derive(Debug)]
pub(crate) struct Neighbours {
    /// This node (never in its own list).
    me: Peer,
    /// Longest successor list kept (r).
    list_len: usize,
    /// Life cycle.
    phase: Phase,
    /// Successor list, closest first, never containing `me`; empty when alone.
    succs: Vec<Peer>,
    /// Predecessor, if known, and its liveness checks.
    pred: Predecessor,
    /// True while a stabilize round is in flight.
    stabilizing: bool,
    /// Our only successor missed an answer: it may be dead, or the message
    /// was lost. It stays (dropping it would split a small ring in two)
    /// until a self-lookup finds a live successor or fails everywhere.
    succ_suspect: bool,
    /// Consecutive unanswered stabilize requests to the first successor;
    /// one lost message is not a death.
    succ_misses: u32,
    /// Rescues in a row that found only nodes behind our predecessor (see
    /// `rescue`).
    barren_rescues: u32,
}

impl Neighbours {
    /// Node `me`, not started, keeping up to `list_len` successors.
    pub(crate) fn new(me: Peer, list_len: usize) -> Neighbours {
        Neighbours {
            me,
            list_len,
            phase: Phase::Idle,
            succs: Vec::new(),
            pred: Predecessor::new(me),
            stabilizing: false,
            succ_suspect: false,
            succ_misses: 0,
            barren_rescues: 0,
        }
    }

    /// Life-cycle phase.
    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    /// The successor list, closest first (empty when alone).
    pub(crate) fn successors(&self) -> &[Peer] {
        &self.succs
    }

    /// The predecessor, if known.
    pub(crate) fn predecessor(&self) -> Option<Peer> {
        self.pred.get()
    }

    /// Start joining through others, or (`join` false) found a ring of one
    /// and be a member at once.
    pub(crate) fn start(&mut self, join: bool) {
        self.phase = if join { Phase::Joining } else { Phase::Member };
    }

    /// Adopt `list`, whose head just answered us (see `join`), and become
    /// a member. Returns the new first successor (None if the list was no
    /// use or we are not joining).
    pub(crate) fn join(&mut self, list: Vec<Peer>) -> Option<Peer> {
        if self.phase != Phase::Joining {
            return None;
        }
        let succs = self.ordered_list(list);
        let first = *succs.first()?;
        tracing::debug!(me = ?self.me.id, succ = ?first.id, "joined");
        self.succs = succs;
        self.phase = Phase::Member;
        Some(first)
    }

    /// Stop taking part. Returns true if the node was a member.
    pub(crate) fn leave(&mut self) -> bool {
        let was_member = self.phase == Phase::Member;
        self.phase = Phase::Leaving;
        was_member
    }

    /// The answer to a `GetState` request.
    pub(crate) fn state(&self, req: ReqId) -> Message {
        Message::State {
            req,
            pred: self.pred.get().map(|p| p.addr),
            succs: self.succs.iter().map(|p| p.addr).collect(),
        }
    }

    /// `to` answered the ring request `kind` with `msg`.
    pub(crate) fn on_answer(
        &mut self,
        now: Instant,
        to: Peer,
        kind: RingRpc,
        msg: Message,
        rpcs: &mut Rpcs,
    ) -> Option<Report> {
        match (kind, msg) {
            (RingRpc::Stabilize, Message::State { pred, succs, .. }) => {
                self.on_state(now, to, pred, &succs, rpcs)
            }
            (RingRpc::StabilizeCheck, Message::Pong { .. }) => {
                self.on_candidate_alive(now, to, rpcs)
            }
            (RingRpc::PredCheck { .. }, Message::Pong { .. }) => self.pred.on_alive(),
            (RingRpc::MergeCheck { list }, Message::Pong { .. }) => self.adopt_found(to, list),
            (RingRpc::JoinCheck { rest }, Message::State { pred, succs, .. }) => {
                return self.on_join_state(to, (pred, &succs), rest, now, rpcs);
            }
            // A well-formed answer of the wrong kind: count it as a failure.
            (kind, _) => return self.on_failure(now, to, kind, rpcs),
        }
        None
    }

    /// The ring request `kind` to `dead` went unanswered.
    pub(crate) fn on_failure(
        &mut self,
        now: Instant,
        dead: Peer,
        kind: RingRpc,
        rpcs: &mut Rpcs,
    ) -> Option<Report> {
        match kind {
            RingRpc::Stabilize => return self.stabilize_failed(now, dead, rpcs),
            RingRpc::StabilizeCheck => self.finish_stabilize(rpcs),
            RingRpc::PredCheck { notifier } => self.pred.check_failed(now, dead, notifier, rpcs),
            RingRpc::MergeCheck { .. } => return Some(Report::Forget(dead)),
            RingRpc::JoinCheck { rest } => {
                self.check_join_head(now, rest, rpcs);
                return Some(Report::Forget(dead));
            }
        }
        None
    }

    /// The stabilize timer fired: check the predecessor, and stabilize
    /// unless a round is still in flight.
    pub(crate) fn tick(&mut self, now: Instant, rpcs: &mut Rpcs) {
        self.pred.check(now, None, rpcs);
        if !self.stabilizing {
            self.stabilize(now, rpcs);
        }
    }

    /// Ask the first successor for its state.
    fn stabilize(&mut self, now: Instant, rpcs: &mut Rpcs) {
        if self.phase != Phase::Member {
            return;
        }
        match self.succs.first().copied() {
            Some(s) => {
                self.stabilizing = true;
                rpcs.request(now, s, |req| Message::GetState { req }, RingRpc::Stabilize);
            }
            None => {
                // Alone: a predecessor that notified us is our successor too,
                // once checked alive.
                if let Some(p) = self.pred.get() {
                    self.stabilizing = true;
                    rpcs.request(now, p, |req| Message::Ping { req }, RingRpc::StabilizeCheck);
                }
            }
        }
    }

    /// Successor `s` answered with its predecessor and successor list.
    fn on_state(
        &mut self,
        now: Instant,
        s: Peer,
        pred: Option<SocketAddr>,
        list: &[SocketAddr],
        rpcs: &mut Rpcs,
    ) {
        self.succ_suspect = false;
        self.succ_misses = 0;
        self.barren_rescues = 0;
        if self.succs.first() != Some(&s) {
            // The successor changed meanwhile; this answer is stale.
            self.finish_stabilize(rpcs);
            return;
        }
        let mut candidate = vec![s];
        candidate.extend(list.iter().map(|a| Peer::new(*a)));
        self.succs = self.ordered_list(candidate);
        match pred.map(Peer::new) {
            Some(p) if p != self.me && p.id.in_open(self.me.id, s.id) => {
                rpcs.request(now, p, |req| Message::Ping { req }, RingRpc::StabilizeCheck);
            }
            _ => self.finish_stabilize(rpcs),
        }
    }

    /// A would-be successor `p` (our successor's predecessor, or our own
    /// predecessor when alone) answered its liveness check.
    fn on_candidate_alive(&mut self, now: Instant, p: Peer, rpcs: &mut Rpcs) {
        if self
            .succs
            .first()
            .is_none_or(|s| p.id.in_open(self.me.id, s.id))
        {
            self.succs.insert(0, p);
            self.succs.truncate(self.list_len);
            // Ask the new successor at once: a chain of nodes that joined
            // concurrently is walked in round trips, not ticks. Each step
            // moves strictly closer, so this ends.
            self.stabilizing = false;
            self.stabilize(now, rpcs);
        } else {
            self.finish_stabilize(rpcs);
        }
    }

    /// End a stabilize round: notify the first successor.
    fn finish_stabilize(&mut self, rpcs: &mut Rpcs) {
        self.stabilizing = false;
        if let Some(s) = self.succs.first() {
            rpcs.send(s.addr, Message::Notify);
        }
    }

    /// The stabilize request to `dead` went unanswered.
    fn stabilize_failed(&mut self, now: Instant, dead: Peer, rpcs: &mut Rpcs) -> Option<Report> {
        self.stabilizing = false;
        self.succ_misses += 1;
        if self.succ_misses < MISSES_TO_DEATH {
            // One lost message is not a death: ask again.
            self.stabilize(now, rpcs);
            return None;
        }
        self.succ_misses = 0;
        if self.succs.len() > 1 {
            tracing::debug!(me = ?self.me.id, dead = ?dead.id, "successor did not answer; dropping it");
            self.succs.retain(|p| p.addr != dead.addr);
            // Ask the next successor at once rather than a tick later.
            self.stabilize(now, rpcs);
            Some(Report::Forget(dead))
        } else {
            // Keep the only successor, but look for a live one; again on
            // every failure until one answers.
            self.succ_suspect = true;
            Some(Report::Rescue(dead))
        }
    }

    /// `list` cut to a clockwise-ordered, duplicate-free successor list:
    /// entries that do not lie strictly further round the ring than the one
    /// before (including `me`, which ends a wrapped list) are dropped.
    fn ordered_list(&self, list: Vec<Peer>) -> Vec<Peer> {
        let mut out: Vec<Peer> = Vec::with_capacity(self.list_len);
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
            if out.len() == self.list_len {
                break;
            }
        }
        out
    }

    /// Zave's rectify: `n` (alive, it just spoke) believes it is our predecessor.
    pub(crate) fn rectify(&mut self, now: Instant, n: Peer, rpcs: &mut Rpcs) {
        if self.phase != Phase::Member || n == self.me {
            return;
        }
        // A notifier between us and our successor is a closer successor
        // (typical after concurrent joins into a small ring): check it and
        // take it, instead of walking back one predecessor per stabilize.
        let closer = self
            .succs
            .first()
            .is_none_or(|s| n.id.in_open(self.me.id, s.id));
        let checking = rpcs
            .any(|to, kind| to == n && matches!(kind, Pending::Ring(RingRpc::MergeCheck { .. })));
        if closer && !checking {
            let kind = RingRpc::MergeCheck { list: Vec::new() };
            rpcs.request(now, n, |req| Message::Ping { req }, kind);
        }
        self.pred.notified(now, n, rpcs);
    }
}

#[cfg(test)]
mod tests;
