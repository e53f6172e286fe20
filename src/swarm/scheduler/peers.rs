//! What every policy of the scheduler may read: the facts about each
//! connected peer, and how many of them hold each piece.
//!
//! The scheduler alone writes these (from its `handle_*` inputs); the
//! policies get shared references, so a policy cannot change what another
//! one relies on.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::geometry::bitfield_has;
use crate::swarm::pieces::PeerKey;

/// Bytes per second, measured over the scheduler's ticks.
#[derive(Clone, Debug, Default)]
pub(super) struct RateMeter {
    /// Bytes since the last tick.
    pending: u64,
    /// Smoothed rate in bytes per second.
    pub(super) rate: f64,
    /// Whether at least one tick has measured something.
    pub(super) measured: bool,
}

impl RateMeter {
    /// Counts `bytes` moved since the last tick.
    pub(super) fn add(&mut self, bytes: u64) {
        self.pending += bytes;
    }

    /// Folds the bytes of the last `dt` into the rate.
    pub(super) fn tick(&mut self, dt: Duration) {
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

/// What the scheduler knows about one peer, whatever the policy.
#[derive(Debug)]
pub(super) struct Peer {
    /// Which pieces the peer has.
    pub(super) have: Vec<bool>,
    /// Number of `true` entries in `have` (a peer with all is a seed).
    pub(super) have_count: u32,
    /// It chokes us (no requests allowed).
    pub(super) peer_choking: bool,
    /// It wants data from us (the choker serves only peers that do).
    pub(super) peer_interested: bool,
    /// Data rate from it (pipeline depth, and the choker while leeching).
    pub(super) down: RateMeter,
    /// Data rate to it (the choker while seeding, super-seed offers).
    pub(super) up: RateMeter,
    /// When piece data last moved either way (at first: when it
    /// connected); a peer idle for long may lose its slot to a newcomer.
    pub(super) last_useful: Instant,
    /// Pieces it suggested (BEP 6), latest first, at most
    /// [`MAX_SUGGESTED`]: preferred among pieces as rare.
    pub(super) suggested: VecDeque<u32>,
    /// Pieces it lets us fetch while it chokes us (BEP 6 allowed fast), at
    /// most [`MAX_ALLOWED_FAST`].
    pub(super) allowed_fast: Vec<u32>,
}

/// Suggestions kept per peer (libtorrent keeps a handful too).
pub(super) const MAX_SUGGESTED: usize = 16;
/// Allowed-fast pieces kept per peer (BEP 6 sets are about 10).
pub(super) const MAX_ALLOWED_FAST: usize = 32;

impl Peer {
    /// A peer just connected at `now` to a torrent of `pieces` pieces: it
    /// has nothing we know of, chokes us and wants nothing yet.
    pub(super) fn new(pieces: usize, now: Instant) -> Peer {
        Peer {
            have: vec![false; pieces],
            have_count: 0,
            peer_choking: true,
            peer_interested: false,
            down: RateMeter::default(),
            up: RateMeter::default(),
            last_useful: now,
            suggested: VecDeque::new(),
            allowed_fast: Vec::new(),
        }
    }

    /// Replaces the have-set with the bitfield `bits`; returns the pieces
    /// that changed, with whether the peer has them now.
    pub(super) fn set_bitfield(&mut self, bits: &[u8]) -> Vec<(u32, bool)> {
        let mut changed = Vec::new();
        for i in 0..self.have.len() as u32 {
            let has = bitfield_has(bits, i);
            if has != self.have[i as usize] {
                self.have[i as usize] = has;
                if has {
                    self.have_count += 1;
                } else {
                    self.have_count -= 1;
                }
                changed.push((i, has));
            }
        }
        changed
    }

    /// The peer has `piece` (in range) too; false when we knew that.
    pub(super) fn add_have(&mut self, piece: u32) -> bool {
        let has = &mut self.have[piece as usize];
        if *has {
            return false;
        }
        *has = true;
        self.have_count += 1;
        true
    }
}

/// How long peers may idle before a newcomer may take their slot.
#[derive(Clone, Copy, Debug)]
pub(super) struct Idle {
    /// Neither side wants anything of the other.
    pub(super) idle: Duration,
    /// Interest one way or the other, but no data moving.
    pub(super) stalled: Duration,
}

/// The peer whose slot a new connection should take, if any may lose it at
/// `now`: one with which no piece data moved for long enough (see
/// [`Idle`]); peers with no interest either way first, then the one idle
/// longest. `interesting` says whether a peer has a piece we want.
pub(super) fn idlest(
    peers: &BTreeMap<PeerKey, Peer>,
    now: Instant,
    limits: Idle,
    interesting: impl Fn(&Peer) -> bool,
) -> Option<PeerKey> {
    peers
        .iter()
        .filter_map(|(key, p)| {
            let wanted = p.peer_interested || interesting(p);
            let idle_for = now.saturating_duration_since(p.last_useful);
            let limit = if wanted { limits.stalled } else { limits.idle };
            (idle_for >= limit).then_some((wanted, p.last_useful, *key))
        })
        .min()
        .map(|(_, _, key)| key)
}

/// Per piece: how many connected peers hold it, and a random rank that
/// breaks ties between pieces held equally (the same rank in every ranking).
#[derive(Debug)]
pub(super) struct Availability {
    /// Per piece: connected peers that have it.
    holders: Vec<u32>,
    /// Per piece: a random rank, fixed for the torrent's life.
    rank: Vec<u32>,
    /// Number of pieces no connected peer has.
    unspread: u32,
}

impl Availability {
    /// `pieces` pieces held by nobody, ranked at random by `rng`.
    pub(super) fn new(pieces: u32, rng: &mut StdRng) -> Availability {
        let mut rank: Vec<u32> = (0..pieces).collect();
        rank.shuffle(rng);
        Availability {
            holders: vec![0; pieces as usize],
            rank,
            unspread: pieces,
        }
    }

    /// Number of pieces.
    pub(super) fn len(&self) -> u32 {
        self.holders.len() as u32
    }

    /// Connected peers that have piece `i`.
    pub(super) fn holders(&self, i: u32) -> u32 {
        self.holders[i as usize]
    }

    /// Piece `i`'s random rank.
    pub(super) fn rank(&self, i: u32) -> u32 {
        self.rank[i as usize]
    }

    /// Number of pieces no connected peer has.
    pub(super) fn unspread(&self) -> u32 {
        self.unspread
    }

    /// One more peer holds piece `i`.
    pub(super) fn gain(&mut self, i: u32) {
        let h = &mut self.holders[i as usize];
        if *h == 0 {
            self.unspread -= 1;
        }
        *h += 1;
    }

    /// One peer fewer holds piece `i`.
    pub(super) fn lose(&mut self, i: u32) {
        let h = &mut self.holders[i as usize];
        *h -= 1;
        if *h == 0 {
            self.unspread += 1;
        }
    }
}
