//! The pure piece picker and choker of one torrent.
//!
//! Inputs are `handle_*(now, …)` calls, outputs are drained with
//! [`Scheduler::poll_output`]; after every input, drain the outputs. No I/O,
//! no clock (time is passed in), no global randomness (a seeded RNG is passed
//! in), so the whole swarm logic runs under a virtual clock in tests.
//!
//! Policy: pieces in progress are finished first (bounded memory, early HAVEs),
//! then rarest-first with random ties (a seeded random rank per piece); in
//! endgame (nothing left unrequested) a block may be asked of a second peer and
//! the loser is cancelled. Each peer gets about `pipeline_seconds` of its
//! measured rate in flight. Choking is tit-for-tat: `unchoke_slots` regular
//! (more while a capped upload has bandwidth to spare)
//! slots by rate (download rate from them while leeching, upload rate to them
//! while seeding) plus one optimistic slot that rotates.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

mod choker;
mod output;
mod picker;
mod superseed;

pub use output::Output;

use crate::config::SwarmConfig;
use crate::geometry::{bitfield_has, BlockRef, Geometry, BLOCK_SIZE};
use crate::swarm::pieces::{BlockOutcome, BlockState, PeerKey, PieceState, Pieces};

/// Bytes per second, measured over the scheduler's ticks.
#[derive(Clone, Debug, Default)]
struct RateMeter {
    /// Bytes since the last tick.
    pending: u64,
    /// Smoothed rate in bytes per second.
    rate: f64,
    /// Whether at least one tick has measured something.
    measured: bool,
}

impl RateMeter {
    fn tick(&mut self, dt: Duration) {
        let secs = dt.as_secs_f64();
        if secs <= 0.0 {
            return;
        }
        let sample = self.pending as f64 / secs;
        self.rate = if self.measured {
            0.6 * sample + 0.4 * self.rate
        } else {
            sample
        };
        self.measured = self.measured || self.pending > 0;
        self.pending = 0;
    }
}

/// What the scheduler knows about one peer.
#[derive(Debug)]
struct PeerState {
    /// Which pieces the peer has.
    have: Vec<bool>,
    /// Number of `true` entries in `have`.
    have_count: u32,
    /// Pieces the peer has that we have not verified (pieces being
    /// hash-checked included): we are interested while this is above zero.
    interesting: u32,
    /// We told it we are interested.
    am_interested: bool,
    /// It chokes us (no requests allowed).
    peer_choking: bool,
    /// It wants data from us.
    peer_interested: bool,
    /// We choke it.
    am_choking: bool,
    /// Our requests to it, with when they were sent, oldest first (blocks
    /// mostly arrive in that order: removing the front must not shift the
    /// rest, up to `max_pipeline` entries, once per block).
    inflight: VecDeque<(BlockRef, Instant)>,
    /// Data rate from it.
    down: RateMeter,
    /// Data rate to it.
    up: RateMeter,
    /// It let a request time out; keep one request in flight until it delivers.
    snubbed: bool,
    /// Pipeline while its rate is not measured yet (grows per block received).
    slow_start: usize,
    /// Super-seeding: pieces we announced to it.
    announced: Vec<bool>,
    /// Super-seeding: announced pieces it does not have yet.
    on_offer: u32,
    /// Super-seeding: its offer window before its rate is measured.
    offer_window: u32,
    /// Bytes uploaded to it since we last unchoked it (its rate before the
    /// first tick measures one).
    up_since_unchoke: u64,
    /// When it last announced a new piece (a stalled peer may get a second
    /// copy of a piece from a super-seed).
    last_have_at: Instant,
    /// Hash failures of pieces it contributed to.
    strikes: u32,
    /// Most outstanding requests it accepts (its BEP 10 `reqq`).
    reqq: usize,
    /// When we last unchoked it (round-robin order while seeding).
    last_unchoked: Option<Instant>,
}

/// The piece picker and choker of one torrent.
pub struct Scheduler {
    /// Tunables.
    cfg: SwarmConfig,
    /// Per-piece state (the single source of truth for what we have).
    pieces: Pieces,
    /// Connected peers.
    peers: BTreeMap<PeerKey, PeerState>,
    /// Per piece: how many connected peers have it.
    availability: Vec<u32>,
    /// Pieces no connected peer has.
    unspread: u32,
    /// Exactly the missing pieces (none of their blocks asked for), rarest
    /// first: (availability, random rank, piece). A new piece is the first
    /// one here the peer has, not the result of a scan of every piece.
    rarest: BTreeSet<(u32, u32, u32)>,
    /// Per piece: a random rank that breaks availability ties.
    tiebreak: Vec<u32>,
    /// Pieces currently `Partial`, oldest first.
    partials: Vec<u32>,
    /// Contributors of pieces being verified (blamed on failure).
    verifying: HashMap<u32, Vec<PeerKey>>,
    /// Seeded randomness (optimistic unchoke choice).
    rng: StdRng,
    /// Pending outputs.
    outputs: VecDeque<Output>,
    /// Last tick (rate meters measure over it).
    last_tick: Instant,
    /// Last choker run.
    last_rechoke: Instant,
    /// Last optimistic rotation.
    last_optimistic: Option<Instant>,
    /// The optimistically unchoked peer.
    optimistic: Option<PeerKey>,
    /// Streaming window: (first piece, number of pieces) fetched before others.
    window: Option<(u32, u32)>,
    /// `Complete` was emitted.
    completed: bool,
    /// Peers banned for corrupt data (their blocks are never trusted).
    banned: HashSet<PeerKey>,
    /// Every piece was there from the start (we are a pure seed).
    seeded_from_start: bool,
    /// Super-seeding: per piece, unchoked peers holding an offer of it not
    /// yet taken.
    offers: Vec<u32>,
    /// Super-seeding: per piece, peers holding an offer of it not yet taken,
    /// choked or not.
    pending: Vec<u32>,
    /// Super-seeding: every piece by its offer rank, least spread first (see
    /// `superseed`); kept in step with the three counts above, so an offer
    /// need not look at every piece and every peer.
    by_spread: BTreeSet<SpreadKey>,
}

/// A piece's offer rank: (holders plus unchoked offers, all offers, random
/// rank, piece).
type SpreadKey = (u32, u32, u32, u32);

impl Scheduler {
    /// A scheduler for `geometry`, all pieces missing.
    pub fn new(geometry: Geometry, cfg: SwarmConfig, mut rng: StdRng, now: Instant) -> Scheduler {
        let n = geometry.piece_count as usize;
        let mut tiebreak: Vec<u32> = (0..n as u32).collect();
        tiebreak.shuffle(&mut rng);
        Scheduler {
            cfg,
            pieces: Pieces::new(geometry),
            peers: BTreeMap::new(),
            availability: vec![0; n],
            unspread: n as u32,
            rarest: (0..n as u32)
                .map(|i| (0, tiebreak[i as usize], i))
                .collect(),
            tiebreak,
            partials: Vec::new(),
            verifying: HashMap::new(),
            rng,
            outputs: VecDeque::new(),
            last_tick: now,
            last_rechoke: now,
            last_optimistic: None,
            optimistic: None,
            window: None,
            completed: false,
            banned: HashSet::new(),
            seeded_from_start: false,
            offers: vec![0; n],
            pending: vec![0; n],
            by_spread: BTreeSet::new(),
        }
    }

    /// Piece bookkeeping (read-only).
    pub fn pieces(&self) -> &Pieces {
        &self.pieces
    }

    /// True when every piece is verified.
    pub fn is_complete(&self) -> bool {
        self.pieces.is_complete()
    }

    /// Number of connected peers.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Marks a piece as already verified on disk (resume, or seeding).
    pub fn set_have(&mut self, piece: u32) {
        self.rarest.remove(&self.rarity(piece as usize));
        self.pieces.set_have(piece);
        if self.pieces.is_complete() {
            self.completed = true;
            self.seeded_from_start = true;
            self.rank_all();
        }
    }

    /// The next action, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Sets (or clears) the streaming window: these pieces are fetched first.
    pub fn handle_stream_window(&mut self, _now: Instant, window: Option<(u32, u32)>) {
        self.window = window;
    }

    /// A peer finished its handshake. `reqq` is its advertised queue depth.
    pub fn handle_peer_connected(&mut self, now: Instant, peer: PeerKey, reqq: Option<u32>) {
        let n = self.pieces.count() as usize;
        self.peers.insert(
            peer,
            PeerState {
                have: vec![false; n],
                have_count: 0,
                interesting: 0,
                am_interested: false,
                peer_choking: true,
                peer_interested: false,
                am_choking: true,
                inflight: VecDeque::new(),
                down: RateMeter::default(),
                up: RateMeter::default(),
                snubbed: false,
                slow_start: self.cfg.initial_pipeline,
                announced: vec![false; n],
                on_offer: 0,
                offer_window: superseed::FIRST_WINDOW,
                up_since_unchoke: 0,
                last_have_at: now,
                strikes: 0,
                reqq: reqq
                    .map(|q| q.max(1) as usize)
                    .unwrap_or(self.cfg.max_pipeline),
                last_unchoked: None,
            },
        );
        self.offer(now, peer);
    }

    /// Our bitfield for a new connection (None: send none; a super-seed
    /// announces pieces one by one instead).
    pub fn bitfield_for_new_peer(&self) -> Option<Vec<u8>> {
        (!self.super_seeding() && self.pieces.have_count() > 0).then(|| self.pieces.bitfield())
    }

    /// The peer told us its BEP 10 `reqq` after connecting.
    pub fn handle_peer_reqq(&mut self, _now: Instant, peer: PeerKey, reqq: u32) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.reqq = reqq.max(1) as usize;
        }
    }

    /// The connection ended; its requests go back to the pool.
    pub fn handle_peer_gone(&mut self, now: Instant, peer: PeerKey) {
        self.count_offers(peer, false);
        let Some(p) = self.peers.remove(&peer) else {
            return;
        };
        for (i, has) in p.have.iter().enumerate() {
            if *has {
                self.recount(i, |s| s.availability[i] -= 1);
            }
        }
        for (r, _) in &p.inflight {
            self.release(r);
        }
        if self.optimistic == Some(peer) {
            self.optimistic = None;
        }
        for &i in &self.partials {
            if let Some(part) = self.pieces.partial_mut(i) {
                if part.exclusive == Some(peer) {
                    part.exclusive = None;
                }
            }
        }
        self.fill_free_slots(now);
        self.fill_all(now);
    }

    /// The peer's bitfield (replaces what we knew).
    pub fn handle_bitfield(&mut self, now: Instant, peer: PeerKey, bits: &[u8]) {
        let count = self.pieces.count();
        self.count_offers(peer, false);
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let mut changed = Vec::new();
        for i in 0..count {
            let has = bitfield_has(bits, i);
            if has != p.have[i as usize] {
                p.have[i as usize] = has;
                if has {
                    p.have_count += 1;
                } else {
                    p.have_count -= 1;
                }
                changed.push((i as usize, has));
            }
        }
        // Pieces being hash-checked still count: only a good hash removes
        // a piece from every peer's count (see `handle_verified`).
        let pieces = &self.pieces;
        p.interesting = p
            .have
            .iter()
            .enumerate()
            .filter(|(i, h)| **h && !pieces.has(*i as u32))
            .count() as u32;
        for (i, has) in changed {
            self.recount(i, |s| {
                if has {
                    s.availability[i] += 1;
                } else {
                    s.availability[i] -= 1;
                }
            });
        }
        self.count_offers(peer, true);
        self.after_have_change(now, peer);
    }

    /// The peer now has `piece`.
    pub fn handle_have(&mut self, now: Instant, peer: PeerKey, piece: u32) {
        if piece >= self.pieces.count() {
            self.drop_peer(now, peer, false, "have for a piece that does not exist");
            return;
        }
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if p.have[piece as usize] {
            return;
        }
        p.have[piece as usize] = true;
        p.have_count += 1;
        p.last_have_at = now;
        if !self.pieces.has(piece) {
            p.interesting += 1;
        }
        let i = piece as usize;
        // Only a super-seed announces pieces peer by peer.
        let (offered, unchoked) = (p.announced[i], !p.am_choking);
        if offered {
            p.on_offer -= 1;
        }
        self.recount(i, |s| {
            s.availability[i] += 1;
            if offered {
                s.pending[i] -= 1;
                if unchoked {
                    s.offers[i] -= 1;
                }
            }
        });
        if offered && unchoked {
            self.offer_taken(peer);
        }
        self.after_have_change(now, peer);
        if self.super_seeding() && self.availability[i] == 1 && self.unspread == 0 {
            // The last piece out reached its first peer: now
            // every peer may get a second copy (see `superseed`).
            self.offer_all(now);
        }
    }

    fn after_have_change(&mut self, now: Instant, peer: PeerKey) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if self.completed && p.have_count == self.pieces.count() {
            self.drop_peer(now, peer, false, "both sides are seeds");
            return;
        }
        self.update_interest(peer);
        self.fill(now, peer);
        self.offer(now, peer);
    }

    fn update_interest(&mut self, peer: PeerKey) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let want = p.interesting > 0 && !self.completed;
        if want != p.am_interested {
            p.am_interested = want;
            self.outputs.push_back(Output::Interest {
                peer,
                interested: want,
            });
        }
    }

    /// The peer choked (`true`) or unchoked us.
    pub fn handle_peer_choke(&mut self, now: Instant, peer: PeerKey, choking: bool) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.peer_choking = choking;
        if choking {
            // BEP 3: a choke discards every pending request.
            for (r, _) in std::mem::take(&mut p.inflight) {
                self.release(&r);
            }
            self.fill_all(now);
        } else {
            self.fill(now, peer);
        }
    }

    /// The peer became interested (`true`) or not in our data.
    pub fn handle_peer_interest(&mut self, now: Instant, peer: PeerKey, interested: bool) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.peer_interested = interested;
        self.fill_free_slots(now);
    }

    /// We sent `bytes` of piece data to the peer.
    pub fn handle_uploaded(&mut self, _now: Instant, peer: PeerKey, bytes: u64) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.up.pending += bytes;
            p.up_since_unchoke += bytes;
        }
    }

    /// A block arrived from the peer.
    pub fn handle_block(
        &mut self,
        now: Instant,
        peer: PeerKey,
        index: u32,
        begin: u32,
        data: Bytes,
    ) {
        let r = BlockRef {
            index,
            begin,
            length: data.len() as u32,
        };
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.down.pending += r.length as u64;
        if !p.down.measured {
            // Slow start: one more request per block delivered, so the window
            // doubles every round trip until the rate is measured.
            p.slow_start += 1;
        }
        if let Some(pos) = p.inflight.iter().position(|(b, _)| *b == r) {
            p.inflight.remove(pos);
            p.snubbed = false;
        }
        match self.pieces.receive(peer, &r, data) {
            BlockOutcome::Unexpected | BlockOutcome::Duplicate => {}
            BlockOutcome::Stored => self.cancel_others(peer, &r),
            BlockOutcome::Complete {
                blocks,
                contributors,
            } => {
                self.cancel_others(peer, &r);
                self.verifying.insert(index, contributors);
                self.partials.retain(|i| *i != index);
                self.outputs.push_back(Output::Verify {
                    piece: index,
                    blocks,
                });
            }
        }
        self.fill(now, peer);
    }

    /// Endgame: the block arrived, so every other peer asked for it is cancelled.
    fn cancel_others(&mut self, from: PeerKey, r: &BlockRef) {
        if self.pieces.missing_count() > 0 {
            return;
        }
        for (key, p) in self.peers.iter_mut() {
            if *key == from {
                continue;
            }
            if let Some(pos) = p.inflight.iter().position(|(b, _)| b == r) {
                p.inflight.remove(pos);
                self.outputs.push_back(Output::Cancel {
                    peer: *key,
                    block: *r,
                });
            }
        }
    }

    /// The hash check of `piece` finished (`ok`: it matched and is on disk).
    pub fn handle_verified(&mut self, now: Instant, piece: u32, ok: bool) {
        let contributors = self.verifying.remove(&piece).unwrap_or_default();
        self.pieces.verified(piece, ok);
        self.relist(piece);
        if ok {
            self.outputs.push_back(Output::Have(piece));
            let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
            for key in keys {
                let p = self.peers.get_mut(&key).expect("key listed above");
                if p.have[piece as usize] {
                    p.interesting = p.interesting.saturating_sub(1);
                    self.update_interest(key);
                }
            }
            if self.pieces.is_complete() && !self.completed {
                self.completed = true;
                self.outputs.push_back(Output::Complete);
                let seeds: Vec<PeerKey> = self
                    .peers
                    .iter()
                    .filter(|(_, p)| p.have_count == self.pieces.count())
                    .map(|(k, _)| *k)
                    .collect();
                for key in seeds {
                    self.drop_peer(now, key, false, "both sides are seeds");
                }
            }
            self.fill_all(now);
            return;
        }
        // A lone contributor is the culprit. With several, each gets a strike
        // and the piece is re-fetched from one peer only (see `Partial::exclusive`).
        let lone = contributors.len() == 1;
        // A piece mixed with a peer already banned says nothing about the others.
        let excused = contributors.iter().any(|k| self.banned.contains(k));
        for key in contributors {
            if excused {
                break;
            }
            let Some(p) = self.peers.get_mut(&key) else {
                continue;
            };
            p.strikes += 1;
            if lone || p.strikes >= 2 {
                self.drop_peer(now, key, true, "sent data that failed the hash check");
            }
        }
        // The piece is wanted again, but it never left the peers' counts of
        // interesting pieces, so interest stands as it was.
        self.fill_all(now);
    }

    /// Time passed: measure rates, time out requests, re-evaluate choking.
    pub fn handle_tick(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last_tick);
        self.last_tick = now;
        let timeout = self.cfg.request_timeout;
        let mut expired = Vec::new();
        for p in self.peers.values_mut() {
            p.down.tick(dt);
            p.up.tick(dt);
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
            }
        }
        for r in &expired {
            self.release(r);
        }
        if now.saturating_duration_since(self.last_rechoke) >= self.cfg.rechoke_interval
            || self.last_optimistic.is_none()
        {
            self.rechoke(now);
        }
        self.fill_all(now);
        self.offer_all(now);
    }

    /// Piece `i`'s place in `rarest`.
    fn rarity(&self, i: usize) -> (u32, u32, u32) {
        (self.availability[i], self.tiebreak[i], i as u32)
    }

    /// Lists piece `i` among the rarest if it is missing (again).
    fn relist(&mut self, i: u32) {
        if matches!(self.pieces.state(i), PieceState::Missing) {
            self.rarest.insert(self.rarity(i as usize));
        }
    }

    /// A request is off: its block is free again (and its piece missing
    /// again if nothing else of it is asked for or in).
    fn release(&mut self, r: &BlockRef) {
        self.pieces.release(r);
        self.relist(r.index);
    }

    /// Applies `change` to piece `i`'s counts (holders, super-seed offers),
    /// keeping the count of pieces nobody has and both rankings in step.
    fn recount(&mut self, i: usize, change: impl FnOnce(&mut Scheduler)) {
        let listed = self.rarest.remove(&self.rarity(i));
        let ranked = self.super_seeding();
        if ranked {
            self.by_spread.remove(&self.spread_key(i));
        }
        let held = self.availability[i] > 0;
        change(self);
        match (held, self.availability[i] > 0) {
            (false, true) => self.unspread -= 1,
            (true, false) => self.unspread += 1,
            _ => {}
        }
        if listed {
            self.rarest.insert(self.rarity(i));
        }
        if ranked {
            self.by_spread.insert(self.spread_key(i));
        }
    }

    fn drop_peer(&mut self, now: Instant, peer: PeerKey, ban: bool, reason: &'static str) {
        if ban {
            self.banned.insert(peer);
            // Its blocks in unfinished pieces are suspect too: start them over.
            for idx in 0..self.partials.len() {
                let i = self.partials[idx];
                if self
                    .pieces
                    .partial(i)
                    .is_some_and(|p| p.contributors.contains(&peer))
                {
                    self.pieces.reset(i);
                    self.relist(i);
                }
            }
        }
        if self.peers.contains_key(&peer) {
            self.outputs
                .push_back(Output::Disconnect { peer, ban, reason });
            self.handle_peer_gone(now, peer);
        }
    }

    /// Checks internal consistency (used by tests): the piece counters, and
    /// that every in-flight request points at a requested block.
    pub fn check_invariants(&self) -> bool {
        if !self.pieces.check_invariant() {
            return false;
        }
        let missing: BTreeSet<(u32, u32, u32)> = (0..self.pieces.count())
            .filter(|&i| matches!(self.pieces.state(i), PieceState::Missing))
            .map(|i| self.rarity(i as usize))
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
