//! The leech picker: which blocks to request from whom, how many at once,
//! and whom to blame when a piece fails its hash check.
//!
//! While streams read the torrent, the critical pieces of their
//! deadlines go first, each block to the peer expected to deliver it
//! soonest, and to a second one when the first is late (`critical`); then
//! the pieces due within the read-ahead, in deadline order. Otherwise
//! pieces in progress are finished first (bounded memory, early HAVEs),
//! then rarest-first with random ties; in endgame (nothing left
//! unrequested) a block may be asked of a second peer. Whichever copy of a
//! block asked twice arrives first wins and the other is cancelled. Each
//! peer gets about `pipeline_seconds` of its measured rate in flight. The
//! picker owns the piece bookkeeping ([`Pieces`]) and, per peer, what we
//! asked of it. Choosing blocks is in `pick`, what a hash check's result
//! does (interest, strikes, bans) in `verdict`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Instant;

use bytes::Bytes;

use super::output::Output;
use super::peers::{Availability, Peer};
use crate::config::SwarmConfig;
use crate::geometry::{BlockRef, Geometry, BLOCK_SIZE};
use crate::swarm::pieces::{BlockOutcome, BlockState, PeerKey, PieceState, Pieces};

mod critical;
mod eta;
mod pick;
mod requests;
mod verdict;

use eta::Delivery;
use requests::Requests;

/// The leech picker of one torrent.
#[derive(Debug)]
pub(super) struct Picker {
    /// Tunables (pipeline sizes, request time-out, verification budget).
    cfg: SwarmConfig,
    /// Per-piece state (the single source of truth for what we have).
    pieces: Pieces,
    /// Exactly the missing pieces (none of their blocks asked for), rarest
    /// first: (holders, random rank, piece). A new piece is the first one
    /// here the peer has, not the result of a scan of every piece.
    rarest: BTreeSet<(u32, u32, u32)>,
    /// Pieces currently `Partial`, oldest first.
    partials: Vec<u32>,
    /// Contributors of pieces being verified (blamed on failure).
    verifying: HashMap<u32, Vec<PeerKey>>,
    /// Blocks asked of two peers (endgame, or a late critical block): the
    /// first copy in cancels the other request.
    dups: HashSet<BlockRef>,
    /// When the next critical block in flight reaches its deadline without
    /// a second request (a late block is then asked of a faster peer).
    critical_check: Option<Instant>,
    /// Second requests sent for late critical blocks (a statistic).
    duplicates_sent: u64,
    /// Requests cancelled to make way for critical blocks (a statistic).
    preempted: u64,
    /// Peers banned for corrupt data (their blocks are never trusted).
    banned: HashSet<PeerKey>,
    /// Per connected peer: what we asked of it.
    peers: BTreeMap<PeerKey, Requests>,
}

/// Piece `i`'s place in `rarest`.
fn rarity(avail: &Availability, i: u32) -> (u32, u32, u32) {
    (avail.holders(i), avail.rank(i), i)
}

impl Picker {
    /// A picker for `geometry` with every piece missing.
    pub(super) fn new(geometry: Geometry, cfg: &SwarmConfig, avail: &Availability) -> Picker {
        Picker {
            cfg: cfg.clone(),
            pieces: Pieces::new(geometry),
            rarest: (0..avail.len()).map(|i| rarity(avail, i)).collect(),
            partials: Vec::new(),
            verifying: HashMap::new(),
            dups: HashSet::new(),
            critical_check: None,
            duplicates_sent: 0,
            preempted: 0,
            banned: HashSet::new(),
            peers: BTreeMap::new(),
        }
    }

    /// Piece bookkeeping (read-only).
    pub(super) fn pieces(&self) -> &Pieces {
        &self.pieces
    }

    /// Marks a piece as already verified on disk (resume, or seeding).
    pub(super) fn set_have(&mut self, piece: u32, avail: &Availability) {
        self.rarest.remove(&rarity(avail, piece));
        self.pieces.set_have(piece);
    }

    /// A peer connected; `reqq` is its advertised queue depth, if known.
    pub(super) fn add_peer(&mut self, peer: PeerKey, reqq: Option<u32>) {
        let reqq = reqq
            .map(|q| q.max(1) as usize)
            .unwrap_or(self.cfg.max_pipeline);
        self.peers.insert(
            peer,
            Requests {
                interesting: 0,
                am_interested: false,
                inflight: VecDeque::new(),
                inflight_bytes: 0,
                last_block: None,
                delivery: Delivery::default(),
                snubbed: false,
                slow_start: self.cfg.initial_pipeline,
                reqq,
                strikes: 0,
            },
        );
    }

    /// The peer told us its queue depth after connecting.
    pub(super) fn set_reqq(&mut self, peer: PeerKey, reqq: u32) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.reqq = reqq.max(1) as usize;
        }
    }

    /// The peer is gone: its requests go back to the pool, and a suspect
    /// piece it alone was allowed to fetch is free for others.
    pub(super) fn remove_peer(&mut self, peer: PeerKey, avail: &Availability) {
        let Some(p) = self.peers.remove(&peer) else {
            return;
        };
        for (r, _) in &p.inflight {
            self.release(r, avail);
        }
        for &i in &self.partials {
            if let Some(part) = self.pieces.partial_mut(i) {
                if part.exclusive == Some(peer) {
                    part.exclusive = None;
                }
            }
        }
    }

    /// Piece `i` had `before` holders and now has what `avail` says.
    pub(super) fn holders_changed(&mut self, i: u32, before: u32, avail: &Availability) {
        if self.rarest.remove(&(before, avail.rank(i), i)) {
            self.rarest.insert(rarity(avail, i));
        }
    }

    /// The peer's have-set was replaced by `have`: recounts what it has that
    /// we want. Pieces being hash-checked still count: only a good hash
    /// removes a piece from every peer's count (see `piece_verified`).
    pub(super) fn count_interest(&mut self, peer: PeerKey, have: &[bool]) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let pieces = &self.pieces;
        p.interesting = have
            .iter()
            .enumerate()
            .filter(|(i, h)| **h && !pieces.has(*i as u32))
            .count() as u32;
    }

    /// The peer now has `piece` as well.
    pub(super) fn peer_has(&mut self, peer: PeerKey, piece: u32) {
        if let Some(p) = self.peers.get_mut(&peer) {
            if !self.pieces.has(piece) {
                p.interesting += 1;
            }
        }
    }

    /// Tells the peer whether we are interested, if that changed.
    pub(super) fn update_interest(&mut self, peer: PeerKey, out: &mut VecDeque<Output>) {
        let complete = self.pieces.is_complete();
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let want = p.interesting > 0 && !complete;
        if want != p.am_interested {
            p.am_interested = want;
            out.push_back(Output::Interest {
                peer,
                interested: want,
            });
        }
    }

    /// The peer choked us: BEP 3 says every pending request is discarded.
    pub(super) fn choked_by(&mut self, peer: PeerKey, allowed_fast: &[u32], avail: &Availability) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        // Requests of allowed-fast pieces stand (BEP 6: a choke rejects
        // the others, not these).
        let (kept, dropped): (Vec<_>, Vec<_>) = std::mem::take(&mut p.inflight)
            .into_iter()
            .partition(|(r, _)| allowed_fast.contains(&r.index));
        p.inflight_bytes = kept.iter().map(|(r, _)| u64::from(r.length)).sum();
        p.inflight = kept.into();
        for (r, _) in dropped {
            self.release(&r, avail);
        }
    }

    /// The peer will not serve request `r` (BEP 6 reject): its block is
    /// free again at once rather than at the time-out, and the peer gets
    /// one request at a time until it delivers. False when `r` was not in
    /// flight to it.
    pub(super) fn rejected(&mut self, peer: PeerKey, r: &BlockRef, avail: &Availability) -> bool {
        let Some(p) = self.peers.get_mut(&peer) else {
            return false;
        };
        let Some(pos) = p.inflight.iter().position(|(b, _)| b == r) else {
            return false;
        };
        p.inflight.remove(pos);
        p.snubbed = true;
        self.release(r, avail);
        true
    }

    /// A block arrived from the peer (`view` is what we know of it).
    pub(super) fn handle_block(
        &mut self,
        now: Instant,
        peer: PeerKey,
        view: &Peer,
        r: BlockRef,
        data: Bytes,
        out: &mut VecDeque<Output>,
    ) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if !view.down.measured {
            // Slow start: one more request per block delivered, so the window
            // doubles every round trip until the rate is measured.
            p.slow_start += 1;
        }
        if let Some(sent) = p.remove(&r) {
            // It served this block since it was asked for it, or since its
            // previous block if it was busy with that one then.
            let from = p.last_block.map_or(sent, |t| t.max(sent));
            p.delivery
                .record(r.length, now.saturating_duration_since(from));
            p.snubbed = false;
        }
        p.last_block = Some(now);
        match self.pieces.receive(peer, &r, data) {
            BlockOutcome::Unexpected | BlockOutcome::Duplicate => {}
            BlockOutcome::Stored => self.cancel_others(peer, &r, out),
            BlockOutcome::Complete {
                blocks,
                contributors,
            } => {
                self.cancel_others(peer, &r, out);
                self.dups.retain(|b| b.index != r.index);
                self.verifying.insert(r.index, contributors);
                self.partials.retain(|i| *i != r.index);
                out.push_back(Output::Verify {
                    piece: r.index,
                    blocks,
                });
            }
        }
    }

    /// A block asked of two peers arrived: the other request is cancelled.
    fn cancel_others(&mut self, from: PeerKey, r: &BlockRef, out: &mut VecDeque<Output>) {
        if !self.dups.remove(r) {
            return;
        }
        for (key, p) in self.peers.iter_mut() {
            if *key == from {
                continue;
            }
            if p.remove(r).is_some() {
                out.push_back(Output::Cancel {
                    peer: *key,
                    block: *r,
                });
            }
        }
    }

    /// When the oldest request in flight times out, if any is in flight.
    pub(super) fn next_timeout(&self) -> Option<Instant> {
        self.peers
            .values()
            .filter_map(|p| p.inflight.front().map(|(_, sent)| *sent))
            .min()
            .map(|sent| sent + self.cfg.request_timeout)
    }

    /// Gives up the requests older than the time-out (their peers are
    /// snubbed); true when any was.
    pub(super) fn expire(&mut self, now: Instant, avail: &Availability) -> bool {
        let timeout = self.cfg.request_timeout;
        let mut expired = Vec::new();
        for p in self.peers.values_mut() {
            let before = p.inflight.len();
            p.inflight.retain(|(r, sent)| {
                let keep = now.saturating_duration_since(*sent) < timeout;
                if !keep {
                    expired.push(*r);
                }
                keep
            });
            if p.inflight.len() != before {
                p.snubbed = true;
                p.inflight_bytes = p.inflight.iter().map(|(r, _)| u64::from(r.length)).sum();
            }
        }
        for r in &expired {
            self.release(r, avail);
        }
        !expired.is_empty()
    }

    /// Lists piece `i` among the rarest if it is missing (again).
    fn relist(&mut self, i: u32, avail: &Availability) {
        if matches!(self.pieces.state(i), PieceState::Missing) {
            self.rarest.insert(rarity(avail, i));
        }
    }

    /// A request is off: its block is free again (and its piece missing
    /// again if nothing else of it is asked for or in).
    fn release(&mut self, r: &BlockRef, avail: &Availability) {
        self.pieces.release(r);
        self.relist(r.index, avail);
    }

    /// Checks internal consistency (used by tests): the piece counters, the
    /// rarest list, and that every in-flight request points at a requested
    /// block.
    pub(super) fn check_invariants(&self, avail: &Availability) -> bool {
        if !self.pieces.check_invariant() {
            return false;
        }
        let missing: BTreeSet<(u32, u32, u32)> = (0..self.pieces.count())
            .filter(|&i| matches!(self.pieces.state(i), PieceState::Missing))
            .map(|i| rarity(avail, i))
            .collect();
        if self.rarest != missing {
            return false;
        }
        self.peers.values().all(|p| {
            p.inflight
                .iter()
                .all(|(r, _)| match self.pieces.partial(r.index) {
                    Some(part) => matches!(
                        part.blocks[(r.begin / BLOCK_SIZE) as usize],
                        BlockState::Requested(_) | BlockState::Received(_)
                    ),
                    None => true,
                })
        })
    }
}
