//! Choosing blocks: which ones to request from a peer, and how many.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use super::{rarity, Picker, Requests};
use crate::geometry::{BlockRef, BLOCK_SIZE};
use crate::swarm::pieces::{BlockState, PeerKey, PieceState};
use crate::swarm::scheduler::deadlines::Deadlines;
use crate::swarm::scheduler::output::Output;
use crate::swarm::scheduler::peers::{Availability, Peer};

/// Seconds of a peer's rate kept in flight while a stream reads the
/// torrent, when that is less than `pipeline_seconds`: a block asked for
/// now waits behind what is already asked of the peer, so a short queue is
/// a quick answer for the next critical block (a round trip on loopback or
/// a LAN is far shorter).
const STREAM_PIPELINE_SECONDS: f64 = 1.0;

impl Picker {
    /// Most pieces that may wait for their hash check at once: the byte
    /// budget in whole pieces, at least one.
    fn verify_limit(&self) -> usize {
        let piece = self.pieces.geometry().piece_length.max(1);
        (self.cfg.max_verifying_bytes / piece).max(1) as usize
    }

    /// Requests as many blocks from every peer as its pipeline allows.
    pub(in crate::swarm::scheduler) fn fill_all(
        &mut self,
        now: Instant,
        views: &BTreeMap<PeerKey, Peer>,
        avail: &Availability,
        deadlines: &Deadlines,
        out: &mut VecDeque<Output>,
    ) {
        for (key, view) in views {
            self.fill(now, *key, view, avail, deadlines, out);
        }
    }

    /// Requests as many blocks from `peer` as its pipeline allows.
    pub(in crate::swarm::scheduler) fn fill(
        &mut self,
        now: Instant,
        peer: PeerKey,
        view: &Peer,
        avail: &Availability,
        deadlines: &Deadlines,
        out: &mut VecDeque<Output>,
    ) {
        if self.pieces.is_complete() {
            return;
        }
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        if !p.am_interested || (view.peer_choking && view.allowed_fast.is_empty()) {
            return;
        }
        let target = self.pipeline_target(p, view, deadlines.streaming(now));
        let mut batch = Vec::new();
        while self.peers[&peer].inflight.len() < target {
            // A peer that chokes us serves its allowed-fast pieces only.
            let r = if view.peer_choking {
                self.allowed_fast_block(peer, view, avail)
            } else {
                self.pick_block(peer, view, avail, deadlines)
            };
            let Some(r) = r else {
                break;
            };
            self.pieces.mark_requested(&r);
            if let Some(p) = self.peers.get_mut(&peer) {
                p.push(r, now);
            }
            batch.push(r);
        }
        if !batch.is_empty() {
            out.push_back(Output::Request {
                peer,
                blocks: batch,
            });
        }
    }

    fn pipeline_target(&self, p: &Requests, view: &Peer, streaming: bool) -> usize {
        if p.snubbed {
            return 1;
        }
        let seconds = if streaming {
            self.cfg.pipeline_seconds.min(STREAM_PIPELINE_SECONDS)
        } else {
            self.cfg.pipeline_seconds
        };
        let by_rate = if view.down.measured {
            (view.down.rate * seconds / f64::from(BLOCK_SIZE)).ceil() as usize
        } else {
            p.slow_start
        };
        by_rate
            .clamp(self.cfg.min_pipeline, self.cfg.max_pipeline)
            .min(p.reqq)
    }

    /// A block of a piece `peer` lets us fetch while it chokes us (BEP 6
    /// allowed fast), or None.
    fn allowed_fast_block(
        &mut self,
        peer: PeerKey,
        view: &Peer,
        avail: &Availability,
    ) -> Option<BlockRef> {
        for &i in &view.allowed_fast {
            if view.have[i as usize] && self.pieces.wants(i) {
                if let Some(r) = self.free_block_in(peer, i, avail) {
                    return Some(r);
                }
            }
        }
        None
    }

    /// The next block to ask `peer` for, or None.
    fn pick_block(
        &mut self,
        peer: PeerKey,
        view: &Peer,
        avail: &Availability,
        deadlines: &Deadlines,
    ) -> Option<BlockRef> {
        // 1. What streams read soon, in deadline order (the critical pieces
        // were handed out to the quickest peers before).
        for i in deadlines.preferred() {
            if view.have[i as usize] && self.pieces.wants(i) {
                if let Some(r) = self.free_block_in(peer, i, avail) {
                    return Some(r);
                }
            }
        }
        // 2. Pieces already in progress, oldest first.
        for idx in 0..self.partials.len() {
            let i = self.partials[idx];
            if view.have[i as usize] {
                if let Some(r) = self.free_block_in(peer, i, avail) {
                    return Some(r);
                }
            }
        }
        // 3. A new piece: rarest first, random ties.
        let mut best = None;
        // Pieces waiting for their hash check hold memory: start no new one
        // while too many wait.
        if self.verifying.len() < self.verify_limit() {
            // The peer's own pieces have at least one holder: the pieces
            // nobody has (all of them but the few on offer, from a
            // super-seed) are not looked at.
            let rarest = self
                .rarest
                .range((1, 0, 0)..)
                .find(|k| view.have[k.2 as usize]);
            // A piece the peer suggested (BEP 6: it has it at hand) goes
            // first among pieces as rare as the rarest.
            let suggested = rarest.and_then(|&(holders, ..)| {
                (view.suggested.iter()).copied().find(|&i| {
                    let key = rarity(avail, i);
                    key.0 == holders && view.have[i as usize] && self.rarest.contains(&key)
                })
            });
            best = suggested.or(rarest.map(|k| k.2));
        }
        if let Some(i) = best {
            self.partials.push(i);
            return self.free_block_in(peer, i, avail);
        }
        // 4. Endgame: a block someone else was asked for, if it has one
        // asker; the first copy in cancels the other.
        let endgame = self.endgame_block(peer, view);
        if let Some(r) = endgame {
            self.dups.insert(r);
        }
        endgame
    }

    /// In endgame, a block of a piece `peer` has that one other peer was
    /// asked for.
    fn endgame_block(&self, peer: PeerKey, view: &Peer) -> Option<BlockRef> {
        if self.pieces.missing_count() == 0 {
            let p = &self.peers[&peer];
            for &i in &self.partials {
                if !view.have[i as usize] {
                    continue;
                }
                let Some(part) = self.pieces.partial(i) else {
                    continue;
                };
                if part.exclusive.is_some_and(|k| k != peer) {
                    continue;
                }
                for (b, st) in part.blocks.iter().enumerate() {
                    if matches!(st, BlockState::Requested(1)) {
                        let r = self.pieces.geometry.block(i, b as u32);
                        if !p.inflight.iter().any(|(x, _)| *x == r) {
                            return Some(r);
                        }
                    }
                }
            }
        }
        None
    }

    /// A free block of piece `i` that `peer` may fetch (starting the piece if
    /// it is missing), honouring a suspect piece's single owner.
    pub(super) fn free_block_in(
        &mut self,
        peer: PeerKey,
        i: u32,
        avail: &Availability,
    ) -> Option<BlockRef> {
        if matches!(self.pieces.state(i), PieceState::Missing) {
            if !self.partials.contains(&i) {
                self.partials.push(i);
            }
            self.rarest.remove(&rarity(avail, i));
            self.pieces.start(i);
        }
        let part = self.pieces.partial_mut(i)?;
        if part.free == 0 || part.exclusive.is_some_and(|k| k != peer) {
            return None;
        }
        if part.suspect {
            part.exclusive = Some(peer);
        }
        let b = part
            .blocks
            .iter()
            .position(|s| matches!(s, BlockState::Free))?;
        Some(self.pieces.geometry.block(i, b as u32))
    }
}
