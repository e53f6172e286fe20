//! Choosing blocks: which ones to request from a peer, and how many.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use super::{rarity, Picker, Requests};
use crate::geometry::{BlockRef, BLOCK_SIZE};
use crate::swarm::pieces::{BlockState, PeerKey, PieceState};
use crate::swarm::scheduler::output::Output;
use crate::swarm::scheduler::peers::{Availability, Peer};

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
        out: &mut VecDeque<Output>,
    ) {
        for (key, view) in views {
            self.fill(now, *key, view, avail, out);
        }
    }

    /// Requests as many blocks from `peer` as its pipeline allows.
    pub(in crate::swarm::scheduler) fn fill(
        &mut self,
        now: Instant,
        peer: PeerKey,
        view: &Peer,
        avail: &Availability,
        out: &mut VecDeque<Output>,
    ) {
        if self.pieces.is_complete() {
            return;
        }
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        if view.peer_choking || !p.am_interested {
            return;
        }
        let target = self.pipeline_target(p, view);
        let mut batch = Vec::new();
        while self.peers[&peer].inflight.len() < target {
            let Some(r) = self.pick_block(peer, view, avail) else {
                break;
            };
            self.pieces.mark_requested(&r);
            if let Some(p) = self.peers.get_mut(&peer) {
                p.inflight.push_back((r, now));
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

    fn pipeline_target(&self, p: &Requests, view: &Peer) -> usize {
        if p.snubbed {
            return 1;
        }
        let by_rate = if view.down.measured {
            (view.down.rate * self.cfg.pipeline_seconds / f64::from(BLOCK_SIZE)).ceil() as usize
        } else {
            p.slow_start
        };
        by_rate
            .clamp(self.cfg.min_pipeline, self.cfg.max_pipeline)
            .min(p.reqq)
    }

    /// The next block to ask `peer` for, or None.
    fn pick_block(&mut self, peer: PeerKey, view: &Peer, avail: &Availability) -> Option<BlockRef> {
        // 1. The streaming window, in play order.
        if let Some((start, len)) = self.window {
            let end = start.saturating_add(len).min(self.pieces.count());
            for i in start..end {
                if view.have[i as usize] && self.pieces.wants(i) {
                    if let Some(r) = self.free_block_in(peer, i, avail) {
                        return Some(r);
                    }
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
            best = self
                .rarest
                .range((1, 0, 0)..)
                .map(|k| k.2)
                .find(|&i| view.have[i as usize]);
        }
        if let Some(i) = best {
            self.partials.push(i);
            return self.free_block_in(peer, i, avail);
        }
        // 4. Endgame: a block someone else was asked for, if it has one asker.
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
    fn free_block_in(&mut self, peer: PeerKey, i: u32, avail: &Availability) -> Option<BlockRef> {
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
