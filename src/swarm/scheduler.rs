//! The pure scheduler of one torrent: which blocks to request, whom to
//! choke, and (for a super-seed) which pieces to offer to whom.
//!
//! The contract, as in str0m: after every input (`handle_*(now, …)`), drain
//! [`Scheduler::poll_output`] until it is empty; then call
//! [`Scheduler::handle_timeout`] when the clock reaches
//! [`Scheduler::poll_timeout`]. No I/O, no clock (time is passed in), no
//! global randomness (a seeded RNG is passed in), so the whole swarm logic
//! runs under a virtual clock in tests.
//!
//! `Scheduler` is a dispatcher over parts that own their state:
//!
//! - `peers`: what every part may read about each peer (its pieces, its
//!   rates, its interest) and how many peers hold each piece; only the
//!   dispatcher writes it.
//! - `deadlines`: play-position priority: where each stream reads, and so
//!   when each piece ahead of it is due and which ones are critical.
//! - `picker`: the leech picker, owner of the piece bookkeeping and of our
//!   requests (critical blocks to the quickest peers, deadline order,
//!   rarest first, endgame, pipelining, time-outs, blame).
//! - `choker`: tit-for-tat: `unchoke_slots` regular slots by rate (more
//!   while a capped upload has bandwidth to spare) plus one rotating
//!   optimistic slot.
//! - `superseed`: the super-seed policy of a peer that starts with every
//!   piece, owner of every offer.
//! - `fast`: the fast extension's suggest and allowed-fast hints.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;

mod choker;
mod deadlines;
mod fast;
mod output;
mod peers;
mod picker;
mod streams;
mod superseed;

pub use output::Output;

use crate::config::{SuperSeedMode, SwarmConfig};
use crate::geometry::{BlockRef, Geometry};
use crate::swarm::pieces::{PeerKey, Pieces};
use choker::{Changes, Choker, Mode};
use deadlines::Deadlines;
pub use deadlines::{CRITICAL, READ_AHEAD};
use peers::{Availability, Idle, Peer};
use picker::Picker;
use superseed::SuperSeed;

/// Why a seed drops a peer that has every piece too (the coordinator then
/// stops dialling it).
pub const BOTH_SEEDS: &str = "both sides are seeds";

/// How often rates are measured; each measurement also re-evaluates the
/// choker when that is due and tops up requests and offers.
const TICK: Duration = Duration::from_millis(500);

/// The scheduler of one torrent.
pub struct Scheduler {
    /// Tunables.
    cfg: SwarmConfig,
    /// What every part may read about each connected peer.
    peers: BTreeMap<PeerKey, Peer>,
    /// Per piece: how many connected peers hold it.
    avail: Availability,
    /// The leech picker (and the piece bookkeeping).
    picker: Picker,
    /// The open streams and the deadlines they give pieces.
    deadlines: Deadlines,
    /// Whom we choke.
    choker: Choker,
    /// The super-seed policy, when we started with every piece and
    /// super-seeding is on.
    super_seed: Option<SuperSeed>,
    /// Pending outputs.
    outputs: VecDeque<Output>,
    /// Last tick (rate meters measure over it).
    last_tick: Instant,
    /// When the next tick is due.
    next_tick: Instant,
    /// Every piece is verified (`Complete` was emitted, or we started so).
    completed: bool,
    /// Critical pieces that verified after their deadline (a stream
    /// waited for them): a statistic.
    late_pieces: u64,
    /// When the scheduler was made (a new seed waits a moment before it
    /// calls a leecher lone, see `superseed`).
    created: Instant,
}

impl Scheduler {
    /// A scheduler for `geometry`, all pieces missing; its first tick is
    /// due at `now`.
    pub fn new(geometry: Geometry, cfg: SwarmConfig, mut rng: StdRng, now: Instant) -> Scheduler {
        let avail = Availability::new(geometry.piece_count, &mut rng);
        Scheduler {
            picker: Picker::new(geometry, &cfg, &avail),
            deadlines: Deadlines::new(geometry),
            choker: Choker::new(&cfg, rng, now),
            cfg,
            peers: BTreeMap::new(),
            avail,
            super_seed: None,
            outputs: VecDeque::new(),
            last_tick: now,
            created: now,
            next_tick: now,
            completed: false,
            late_pieces: 0,
        }
    }

    /// Piece bookkeeping (read-only).
    pub fn pieces(&self) -> &Pieces {
        self.picker.pieces()
    }

    /// True when every piece is verified.
    pub fn is_complete(&self) -> bool {
        self.pieces().is_complete()
    }

    /// Number of connected peers.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Number of connected peers that unchoke us.
    pub fn unchoked_by(&self) -> usize {
        self.peers.values().filter(|p| !p.peer_choking).count()
    }

    /// Marks a piece as already verified on disk (resume, or seeding),
    /// before any peer connects. A scheduler that has every piece this way
    /// super-seeds if the configuration says so.
    pub fn set_have(&mut self, piece: u32) {
        self.picker.set_have(piece, &self.avail);
        if self.pieces().is_complete() {
            self.completed = true;
            let mode = self.cfg.super_seed;
            if mode != SuperSeedMode::Off && self.super_seed.is_none() {
                let geometry = self.pieces().geometry();
                let auto = mode == SuperSeedMode::Auto;
                let (cap, created) = (self.cfg.max_upload_rate, self.created);
                let seed = SuperSeed::new(geometry, auto, created, cap, &self.avail);
                self.super_seed = Some(seed);
            }
        }
    }

    /// The next action, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Scheduler::handle_timeout`] is next due: the next tick, the
    /// time-out of the oldest request in flight, or the deadline of a
    /// stream's critical block in flight, whichever comes first. None
    /// while no peer is connected: a tick then has nothing to measure,
    /// time out, choke or offer (a library of thousands of idle songs
    /// must not wake thousands of times a second), and the first peer to
    /// connect starts the ticks again at once.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.peers.is_empty() {
            return None;
        }
        let soonest = [self.picker.next_timeout(), self.picker.critical_check()]
            .into_iter()
            .flatten()
            .fold(self.next_tick, Instant::min);
        Some(soonest)
    }

    /// Time passed: does whatever is due. A tick measures rates, times out
    /// requests, re-evaluates choking when due, and tops up requests and
    /// offers; between ticks requests time out and late critical blocks
    /// are asked of a second peer.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_tick {
            self.tick(now);
            return;
        }
        let expired = self.picker.expire(now, &self.avail);
        let critical = self.picker.critical_check().is_some_and(|t| t <= now);
        if critical {
            self.rescue_critical(now);
        }
        if expired || critical {
            self.fill_all(now);
        }
    }

    fn tick(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last_tick);
        self.last_tick = now;
        self.next_tick = now + TICK;
        for p in self.peers.values_mut() {
            p.down.tick(dt);
            p.up.tick(dt);
        }
        self.picker.expire(now, &self.avail);
        self.few_leechers(now);
        if self.choker.rechoke_due(now) {
            let changes = self.choker.rechoke(now, &self.peers, self.mode());
            self.apply_chokes(now, changes);
        }
        self.refresh_deadlines(now);
        self.rescue_critical(now);
        self.fill_all(now);
        self.offer_all(now);
    }

    /// A peer finished its handshake. `reqq` is its advertised queue depth.
    pub fn handle_peer_connected(&mut self, now: Instant, peer: PeerKey, reqq: Option<u32>) {
        let n = self.pieces().count() as usize;
        let leechers = self.leechers(now);
        if self.peers.is_empty() && self.next_tick < now {
            // Ticks stopped while no peer was connected: the next one
            // measures from here, and is due now, as in a new scheduler.
            self.last_tick = now;
            self.next_tick = now;
        }
        self.peers.insert(peer, Peer::new(n, now));
        self.picker.add_peer(peer, reqq);
        self.choker.add_peer(peer);
        if let Some(seed) = &mut self.super_seed {
            seed.add_peer(peer, n, leechers, now);
        }
        self.offer(now, peer);
    }

    /// Connected peers that lack pieces and want ours, took some, or
    /// connected too recently to have said (leechers that connect together
    /// count each other).
    fn leechers(&self, now: Instant) -> usize {
        let n = self.pieces().count();
        let recent =
            |p: &Peer| now.saturating_duration_since(p.last_useful) < self.cfg.idle_evict_after;
        self.peers
            .values()
            .filter(|p| p.have_count < n && (p.peer_interested || p.up.measured || recent(p)))
            .count()
    }

    /// A super-seed in `auto` mode with at most one leecher left announces
    /// every piece to every peer.
    fn few_leechers(&mut self, now: Instant) {
        let leechers = self.leechers(now);
        if let Some(seed) = &mut self.super_seed {
            seed.few_leechers(now, leechers, &self.peers, &self.avail, &mut self.outputs);
        }
    }

    /// The peer that should give its slot to a new connection when every
    /// slot is taken, if one may at `now`: one with which no piece data
    /// moved for a while (`idle_evict_after` when neither side wants
    /// anything of the other, `stalled_evict_after` otherwise), peers
    /// with no interest either way first, then the one idle longest.
    pub fn evict_candidate(&self, now: Instant) -> Option<PeerKey> {
        let limits = Idle {
            idle: self.cfg.idle_evict_after,
            stalled: self.cfg.stalled_evict_after,
        };
        let pieces = self.pieces();
        let interesting = |p: &Peer| {
            !pieces.is_complete()
                && p.have
                    .iter()
                    .enumerate()
                    .any(|(i, h)| *h && !pieces.has(i as u32))
        };
        peers::idlest(&self.peers, now, limits, interesting)
    }

    /// Our bitfield for a peer that just connected (None: send none; a
    /// super-seed announces pieces one by one instead).
    pub fn bitfield_for(&self, peer: PeerKey) -> Option<Vec<u8>> {
        let offering = self
            .super_seed
            .as_ref()
            .is_some_and(|s| s.is_offering(peer));
        (!offering && self.pieces().have_count() > 0).then(|| self.pieces().bitfield())
    }

    /// The peer told us its BEP 10 `reqq` after connecting.
    pub fn handle_peer_reqq(&mut self, _now: Instant, peer: PeerKey, reqq: u32) {
        self.picker.set_reqq(peer, reqq);
    }

    /// The connection ended; its requests go back to the pool.
    pub fn handle_peer_gone(&mut self, now: Instant, peer: PeerKey) {
        let Some(view) = self.peers.remove(&peer) else {
            return;
        };
        if let Some(seed) = &mut self.super_seed {
            seed.remove_peer(peer, &view.have, &self.avail);
        }
        for (i, has) in view.have.iter().enumerate() {
            if *has {
                self.lose_holder(i as u32);
            }
        }
        self.picker.remove_peer(peer, &self.avail);
        self.choker.remove_peer(peer);
        self.fill_free_slots(now);
        self.fill_all(now);
    }

    /// The peer's bitfield (replaces what we knew).
    pub fn handle_bitfield(&mut self, now: Instant, peer: PeerKey, bits: &[u8]) {
        let Some(view) = self.peers.get_mut(&peer) else {
            return;
        };
        if let Some(seed) = &mut self.super_seed {
            seed.count_offers(peer, &view.have, false, &self.avail);
        }
        let changed = view.set_bitfield(bits);
        self.picker.count_interest(peer, &view.have);
        for (i, has) in changed {
            if has {
                self.gain_holder(i);
            } else {
                self.lose_holder(i);
            }
        }
        if let (Some(seed), Some(view)) = (&mut self.super_seed, self.peers.get(&peer)) {
            seed.count_offers(peer, &view.have, true, &self.avail);
        }
        self.after_have_change(now, peer);
    }

    /// The peer now has `piece`.
    pub fn handle_have(&mut self, now: Instant, peer: PeerKey, piece: u32) {
        if piece >= self.pieces().count() {
            self.drop_peer(now, peer, false, "have for a piece that does not exist");
            return;
        }
        if !self.peers.get_mut(&peer).is_some_and(|v| v.add_have(piece)) {
            return;
        }
        self.picker.peer_has(peer, piece);
        self.gain_holder(piece);
        if let (Some(seed), Some(view)) = (&mut self.super_seed, self.peers.get(&peer)) {
            seed.handle_have(now, peer, piece, view, &self.avail);
        }
        self.after_have_change(now, peer);
        if self.avail.holders(piece) == 1 && self.avail.unspread() == 0 {
            // The last piece out reached its first peer: now every peer
            // may get a second copy (see `superseed`).
            self.offer_all(now);
        }
    }

    fn after_have_change(&mut self, now: Instant, peer: PeerKey) {
        let Some(view) = self.peers.get(&peer) else {
            return;
        };
        if self.completed && view.have_count == self.pieces().count() {
            self.drop_peer(now, peer, false, BOTH_SEEDS);
            return;
        }
        self.picker.update_interest(peer, &mut self.outputs);
        self.fill(now, peer);
        self.offer(now, peer);
    }

    /// The peer choked (`true`) or unchoked us.
    pub fn handle_peer_choke(&mut self, now: Instant, peer: PeerKey, choking: bool) {
        let Some(view) = self.peers.get_mut(&peer) else {
            return;
        };
        view.peer_choking = choking;
        if choking {
            self.picker.choked_by(peer, &view.allowed_fast, &self.avail);
            self.fill_all(now);
        } else {
            self.fill(now, peer);
        }
    }

    /// The peer became interested (`true`) or not in our data.
    pub fn handle_peer_interest(&mut self, now: Instant, peer: PeerKey, interested: bool) {
        let Some(view) = self.peers.get_mut(&peer) else {
            return;
        };
        view.peer_interested = interested;
        self.fill_free_slots(now);
    }

    /// We sent `bytes` of piece data to the peer.
    pub fn handle_uploaded(&mut self, now: Instant, peer: PeerKey, bytes: u64) {
        if let Some(view) = self.peers.get_mut(&peer) {
            view.up.add(bytes);
            view.last_useful = now;
            if let Some(seed) = &mut self.super_seed {
                seed.uploaded(now, peer, bytes);
            }
        }
    }

    /// The peer asked us for a block of `piece`, for the first time on
    /// this connection (a super-seed keeps a lone leecher's offers ahead
    /// of its requests, see `superseed`).
    pub fn handle_peer_requested(&mut self, now: Instant, peer: PeerKey, piece: u32) {
        let lone = self.leechers(now) <= 1;
        if let (Some(seed), Some(view)) = (&mut self.super_seed, self.peers.get(&peer)) {
            seed.requested(peer, piece, lone, view, &self.avail, &mut self.outputs);
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
        let Some(view) = self.peers.get_mut(&peer) else {
            return;
        };
        view.down.add(u64::from(r.length));
        view.last_useful = now;
        self.picker
            .handle_block(now, peer, &self.peers[&peer], r, data, &mut self.outputs);
        self.fill(now, peer);
    }

    /// The peer will not serve our request `r` (BEP 6 reject): the block
    /// goes back to the pool now, not at the request time-out.
    pub fn handle_reject(&mut self, now: Instant, peer: PeerKey, r: BlockRef) {
        if self.picker.rejected(peer, &r, &self.avail) {
            self.fill_all(now);
        }
    }

    /// The hash check of `piece` finished (`ok`: it matched and is on disk).
    pub fn handle_verified(&mut self, now: Instant, piece: u32, ok: bool) {
        let contributors = self.picker.verified(piece, ok, &self.avail);
        if !ok {
            for key in self.picker.blame(&contributors) {
                self.drop_peer(now, key, true, "sent data that failed the hash check");
            }
            self.fill_all(now);
            return;
        }
        self.outputs.push_back(Output::Have(piece));
        self.piece_done(now, piece);
        self.picker
            .piece_verified(piece, &self.peers, &mut self.outputs);
        if self.pieces().is_complete() && !self.completed {
            self.completed = true;
            self.outputs.push_back(Output::Complete);
            let count = self.pieces().count();
            let seeds: Vec<PeerKey> = self
                .peers
                .iter()
                .filter(|(_, p)| p.have_count == count)
                .map(|(k, _)| *k)
                .collect();
            for key in seeds {
                self.drop_peer(now, key, false, BOTH_SEEDS);
            }
        }
        self.fill_all(now);
    }

    /// One more peer holds piece `i`: both rankings move it.
    fn gain_holder(&mut self, i: u32) {
        let before = self.avail.holders(i);
        self.avail.gain(i);
        self.holders_changed(i, before);
    }

    /// One peer fewer holds piece `i`.
    fn lose_holder(&mut self, i: u32) {
        let before = self.avail.holders(i);
        self.avail.lose(i);
        self.holders_changed(i, before);
    }

    fn holders_changed(&mut self, i: u32, before: u32) {
        self.picker.holders_changed(i, before, &self.avail);
        if let Some(seed) = &mut self.super_seed {
            seed.holders_changed(i, before, &self.avail);
        }
    }

    fn drop_peer(&mut self, now: Instant, peer: PeerKey, ban: bool, reason: &'static str) {
        if ban {
            self.picker.ban(peer, &self.avail);
        }
        if self.peers.contains_key(&peer) {
            self.outputs
                .push_back(Output::Disconnect { peer, ban, reason });
            self.handle_peer_gone(now, peer);
        }
    }

    fn mode(&self) -> Mode {
        Mode {
            seeding: self.completed,
            super_seed: self.super_seed.is_some(),
        }
    }

    /// Tops up the peer's requests; streams' critical blocks, whoever
    /// gets them, go first.
    fn fill(&mut self, now: Instant, peer: PeerKey) {
        self.assign_critical(now);
        if let Some(view) = self.peers.get(&peer) {
            let (avail, deadlines) = (&self.avail, &self.deadlines);
            self.picker
                .fill(now, peer, view, avail, deadlines, &mut self.outputs);
        }
    }

    fn fill_all(&mut self, now: Instant) {
        self.assign_critical(now);
        let (avail, deadlines) = (&self.avail, &self.deadlines);
        self.picker
            .fill_all(now, &self.peers, avail, deadlines, &mut self.outputs);
    }

    fn offer(&mut self, now: Instant, peer: PeerKey) {
        if let (Some(seed), Some(view)) = (&mut self.super_seed, self.peers.get(&peer)) {
            seed.offer(now, peer, view, &self.avail, &mut self.outputs);
        }
    }

    fn offer_all(&mut self, now: Instant) {
        if let Some(seed) = &mut self.super_seed {
            seed.offer_all(now, &self.peers, &self.avail, &mut self.outputs);
        }
    }

    fn fill_free_slots(&mut self, now: Instant) {
        let changes = self.choker.fill_free_slots(now, &self.peers, self.mode());
        self.apply_chokes(now, changes);
    }

    /// Tells each peer the choker's decision about it, in order, and the
    /// super-seed, whose offers to a choked peer count for less.
    fn apply_chokes(&mut self, now: Instant, changes: Changes) {
        for (peer, choke) in changes {
            if let (Some(seed), Some(view)) = (&mut self.super_seed, self.peers.get(&peer)) {
                seed.set_unchoked(now, peer, !choke, &view.have, &self.avail);
                // Before the unchoke: a peer asks at once for what it knows.
                seed.offer(now, peer, view, &self.avail, &mut self.outputs);
            }
            self.outputs.push_back(Output::Choke { peer, choke });
        }
    }

    /// Checks internal consistency (used by tests): the piece counters, the
    /// rarest list, every in-flight request, and a super-seed's offers.
    pub fn check_invariants(&self) -> bool {
        self.picker.check_invariants(&self.avail)
            && self
                .super_seed
                .as_ref()
                .is_none_or(|s| s.check_invariants(&self.peers, &self.avail))
    }
}
