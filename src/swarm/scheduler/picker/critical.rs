//! Critical blocks: what a stream needs within seconds goes to the peer
//! expected to deliver it soonest (`eta`), and a block that will be late
//! (or is) is asked of a quicker peer as well; the first copy in cancels
//! the other. A peer may jump its queue for a critical block: what it was
//! asked for that is due later is cancelled (`preempt`), as when a stream
//! opens or seeks while the peers are busy with the rest of the torrent.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use super::{Picker, Requests};
use crate::geometry::{BlockRef, BLOCK_SIZE};
use crate::swarm::pieces::{BlockState, PeerKey, PieceState};
use crate::swarm::scheduler::deadlines::Deadlines;
use crate::swarm::scheduler::output::Output;
use crate::swarm::scheduler::peers::{Availability, Peer};

/// The peer chosen for a critical block.
struct Choice {
    /// Who.
    peer: PeerKey,
    /// When it is expected to deliver the block, once it has dropped
    /// what is due after the block.
    eta: Instant,
    /// It must drop requests due later for that (see `preempt`).
    preempt: bool,
}

impl Picker {
    /// Second requests sent so far for late critical blocks.
    pub(in crate::swarm::scheduler) fn duplicates_sent(&self) -> u64 {
        self.duplicates_sent
    }

    /// Requests cancelled so far to make way for critical blocks.
    pub(in crate::swarm::scheduler) fn preempted(&self) -> u64 {
        self.preempted
    }

    /// When a critical block in flight reaches its deadline, if one will.
    pub(in crate::swarm::scheduler) fn critical_check(&self) -> Option<Instant> {
        self.critical_check
    }

    /// Whether a request for a block of `piece` may be cancelled for a
    /// critical block due at `deadline`: when the piece is due later, or
    /// not at all.
    fn preemptible(piece: u32, deadline: Instant, deadlines: &Deadlines) -> bool {
        deadlines.due(piece).is_none_or(|d| d.deadline > deadline)
    }

    /// What of the peer's queue a block due at `deadline` waits for: its
    /// front while the peer is busy sending to us (it is likely on its
    /// way) and everything not `preemptible`.
    /// Returns (requests, bytes).
    fn ahead_of(p: &Requests, deadline: Instant, deadlines: &Deadlines) -> (usize, u64) {
        let busy = p
            .inflight
            .front()
            .is_some_and(|(_, sent)| p.last_block.is_some_and(|t| t >= *sent));
        p.inflight
            .iter()
            .enumerate()
            .filter(|(n, (r, _))| {
                (*n == 0 && busy) || !Self::preemptible(r.index, deadline, deadlines)
            })
            .fold((0, 0), |(n, bytes), (_, (r, _))| {
                (n + 1, bytes + u64::from(r.length))
            })
    }

    /// The peer (other than `except`) expected to deliver a new block of
    /// `piece`, due at `deadline`, soonest; None when no peer can be asked
    /// now. A peer whose queue would make the block late may drop what is
    /// due later.
    fn quickest(
        &self,
        now: Instant,
        views: &BTreeMap<PeerKey, Peer>,
        (piece, deadline): (u32, Instant),
        deadlines: &Deadlines,
        except: Option<PeerKey>,
    ) -> Option<Choice> {
        let exclusive = self.pieces.partial(piece).and_then(|p| p.exclusive);
        let hard_limit = |p: &Requests| p.reqq.min(self.cfg.max_pipeline);
        let block = u64::from(BLOCK_SIZE);
        self.peers
            .iter()
            .filter(|(k, p)| {
                Some(**k) != except
                    && exclusive.is_none_or(|e| e == **k)
                    && p.am_interested
                    && !p.snubbed
            })
            .filter_map(|(k, p)| {
                let view = views.get(k)?;
                if !view.have[piece as usize] || view.peer_choking {
                    return None;
                }
                let plain = self.expected(now, p, p.inflight_bytes + block);
                if plain <= deadline && p.inflight.len() < hard_limit(p) {
                    return Some((plain, *k, false));
                }
                let (kept, ahead) = Self::ahead_of(p, deadline, deadlines);
                let eta = self.expected(now, p, ahead + block);
                (eta < plain && kept < hard_limit(p))
                    .then_some((eta, *k, true))
                    .or_else(|| (p.inflight.len() < hard_limit(p)).then_some((plain, *k, false)))
            })
            .min_by_key(|(eta, k, _)| (*eta, *k))
            .map(|(eta, peer, preempt)| Choice { peer, eta, preempt })
    }

    /// Asks for every free block of the critical pieces, earliest deadline
    /// first, each of the peer expected to deliver it soonest. A critical
    /// piece may start while pieces wait for their hash check over budget.
    pub(in crate::swarm::scheduler) fn assign_critical(
        &mut self,
        now: Instant,
        views: &BTreeMap<PeerKey, Peer>,
        avail: &Availability,
        deadlines: &Deadlines,
        out: &mut VecDeque<Output>,
    ) {
        if deadlines.is_empty() || self.pieces.is_complete() {
            return;
        }
        let mut batches: BTreeMap<PeerKey, Vec<BlockRef>> = BTreeMap::new();
        for (i, deadline) in deadlines.critical() {
            loop {
                let free = match self.pieces.state(i) {
                    PieceState::Missing => true,
                    PieceState::Partial(p) => p.free > 0,
                    _ => false,
                };
                if !free {
                    break;
                }
                let Some(choice) = self.quickest(now, views, (i, deadline), deadlines, None) else {
                    break;
                };
                if choice.preempt {
                    self.preempt(choice.peer, deadline, deadlines, avail, out);
                }
                let Some(r) = self.free_block_in(choice.peer, i, avail) else {
                    break;
                };
                self.ask(now, choice.peer, r, &mut batches);
            }
        }
        for (peer, blocks) in batches {
            out.push_back(Output::Request { peer, blocks });
        }
    }

    /// Notes a request for `r` to `peer`, sent with the batch.
    fn ask(
        &mut self,
        now: Instant,
        peer: PeerKey,
        r: BlockRef,
        batches: &mut BTreeMap<PeerKey, Vec<BlockRef>>,
    ) {
        self.pieces.mark_requested(&r);
        if let Some(p) = self.peers.get_mut(&peer) {
            p.push(r, now);
        }
        batches.entry(peer).or_default().push(r);
    }

    /// Cancels what `peer` was asked for that a block due at `deadline`
    /// would wait for and that is `preemptible` (see `ahead_of`); the
    /// cancelled blocks go back to the pool.
    fn preempt(
        &mut self,
        peer: PeerKey,
        deadline: Instant,
        deadlines: &Deadlines,
        avail: &Availability,
        out: &mut VecDeque<Output>,
    ) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let busy = p
            .inflight
            .front()
            .is_some_and(|(_, sent)| p.last_block.is_some_and(|t| t >= *sent));
        let mut dropped = Vec::new();
        let mut front = busy;
        p.inflight.retain(|(r, _)| {
            let later =
                !std::mem::take(&mut front) && Self::preemptible(r.index, deadline, deadlines);
            if later {
                dropped.push(*r);
            }
            !later
        });
        p.inflight_bytes = p.inflight.iter().map(|(r, _)| u64::from(r.length)).sum();
        for r in &dropped {
            out.push_back(Output::Cancel { peer, block: *r });
            self.release(r, avail);
        }
        self.preempted += dropped.len() as u64;
    }

    /// Asks a quicker peer as well for each critical block in flight that
    /// is past its deadline or expected after it, and notes when to look
    /// again (`critical_check`): when a block on time reaches its deadline,
    /// or when a peer holding one becomes late or later.
    pub(in crate::swarm::scheduler) fn rescue_critical(
        &mut self,
        now: Instant,
        views: &BTreeMap<PeerKey, Peer>,
        avail: &Availability,
        deadlines: &Deadlines,
        out: &mut VecDeque<Output>,
    ) {
        self.critical_check = None;
        if !self.cfg.critical_duplicates || deadlines.is_empty() {
            return;
        }
        // (deadline, block, its peer, when that peer is expected to deliver it)
        let mut late: Vec<(Instant, BlockRef, PeerKey, Instant)> = Vec::new();
        let mut check: Option<Instant> = None;
        let mut soonest = |t: Instant| check = Some(check.map_or(t, |c| c.min(t)));
        for (key, p) in &self.peers {
            let mut through = 0;
            let mut holds_critical = false;
            for (r, _) in &p.inflight {
                through += u64::from(r.length);
                let Some(due) = deadlines.due(r.index).filter(|d| d.critical) else {
                    continue;
                };
                let Some(part) = self.pieces.partial(r.index) else {
                    continue;
                };
                let state = &part.blocks[(r.begin / BLOCK_SIZE) as usize];
                if part.exclusive.is_some() || !matches!(state, BlockState::Requested(1)) {
                    continue;
                }
                holds_critical = true;
                let eta = self.expected(now, p, through);
                if now >= due.deadline || eta > due.deadline {
                    late.push((due.deadline, *r, *key, eta));
                } else {
                    soonest(due.deadline);
                }
            }
            if let Some(t) = holds_critical.then(|| self.recheck(now, p)).flatten() {
                soonest(t);
            }
        }
        self.critical_check = check;
        late.sort_unstable_by_key(|(deadline, r, _, _)| (*deadline, *r));
        let mut batches: BTreeMap<PeerKey, Vec<BlockRef>> = BTreeMap::new();
        for (deadline, r, holder, eta) in late {
            let Some(choice) =
                self.quickest(now, views, (r.index, deadline), deadlines, Some(holder))
            else {
                continue;
            };
            if choice.eta >= eta {
                continue;
            }
            if choice.preempt {
                self.preempt(choice.peer, deadline, deadlines, avail, out);
            }
            self.dups.insert(r);
            self.duplicates_sent += 1;
            self.ask(now, choice.peer, r, &mut batches);
        }
        for (peer, blocks) in batches {
            out.push_back(Output::Request { peer, blocks });
        }
    }
}
