//! Choking: tit-for-tat with regular slots by rate plus one rotating
//! optimistic slot, re-evaluated every `rechoke_interval`; free slots are
//! given at once.
//!
//! The choker decides and remembers whom we choke; it returns each change
//! as `(peer, choke)` so the scheduler can tell the peer, and the
//! super-seed policy, in order.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::peers::Peer;
use crate::config::SwarmConfig;
use crate::swarm::pieces::PeerKey;

/// What the rest of the scheduler tells the choker about the torrent.
#[derive(Clone, Copy, Debug)]
pub(super) struct Mode {
    /// Every piece is verified: rank peers by what we upload to them.
    pub(super) seeding: bool,
    /// Pieces are offered peer by peer (see `superseed`).
    pub(super) super_seed: bool,
}

/// What the choker keeps about one peer.
#[derive(Debug)]
struct Slot {
    /// We choke it.
    choked: bool,
    /// When we last unchoked it (round-robin order among equals).
    last_unchoked: Option<Instant>,
}

/// The choker of one torrent.
#[derive(Debug)]
pub(super) struct Choker {
    /// Regular unchoke slots.
    unchoke_slots: usize,
    /// The upload cap, if any (a capped upload may serve more peers).
    max_upload_rate: Option<u64>,
    /// How often the slots are re-evaluated.
    rechoke_interval: Duration,
    /// How often the optimistic slot rotates.
    optimistic_interval: Duration,
    /// Seeded randomness (the optimistic choice).
    rng: StdRng,
    /// The optimistically unchoked peer.
    optimistic: Option<PeerKey>,
    /// Last optimistic rotation (None: the choker never ran).
    last_optimistic: Option<Instant>,
    /// Last re-evaluation.
    last_rechoke: Instant,
    /// Per connected peer: whether we choke it.
    peers: BTreeMap<PeerKey, Slot>,
}

/// Choke changes, in the order they were decided: (peer, choke).
pub(super) type Changes = Vec<(PeerKey, bool)>;

impl Choker {
    /// A choker that first runs at `now`.
    pub(super) fn new(cfg: &SwarmConfig, rng: StdRng, now: Instant) -> Choker {
        Choker {
            unchoke_slots: cfg.unchoke_slots,
            max_upload_rate: cfg.max_upload_rate,
            rechoke_interval: cfg.rechoke_interval,
            optimistic_interval: cfg.optimistic_interval,
            rng,
            optimistic: None,
            last_optimistic: None,
            last_rechoke: now,
            peers: BTreeMap::new(),
        }
    }

    /// A peer connected: it starts choked.
    pub(super) fn add_peer(&mut self, peer: PeerKey) {
        self.peers.insert(
            peer,
            Slot {
                choked: true,
                last_unchoked: None,
            },
        );
    }

    /// A peer left (its slot, optimistic or not, is free).
    pub(super) fn remove_peer(&mut self, peer: PeerKey) {
        self.peers.remove(&peer);
        if self.optimistic == Some(peer) {
            self.optimistic = None;
        }
    }

    /// True when the slots are due for a re-evaluation.
    pub(super) fn rechoke_due(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_rechoke) >= self.rechoke_interval
            || self.last_optimistic.is_none()
    }

    /// Regular unchoke slots: `unchoke_slots`, or every peer while our upload
    /// is capped and runs below 80% of the cap (bandwidth to spare: more
    /// peers served spreads pieces faster and costs nobody anything).
    fn regular_slots(&self, views: &BTreeMap<PeerKey, Peer>, mode: Mode) -> usize {
        // A capped upload sends one piece at a time (see `swarm::rate`), so a
        // super-seed serving every peer slows none of them, and no peer sits
        // on a piece it was offered while choked.
        if mode.super_seed && self.max_upload_rate.is_some() {
            return views.len().max(self.unchoke_slots);
        }
        // Other seeds keep few peers unchoked: their pieces then finish one
        // after another, and each can be passed on as soon as it is complete.
        let spare = !mode.seeding
            && self.max_upload_rate.is_some_and(|cap| {
                let rate: f64 = views.values().map(|p| p.up.rate).sum();
                rate < 0.8 * cap as f64
            });
        if spare {
            views.len().max(self.unchoke_slots)
        } else {
            self.unchoke_slots
        }
    }

    /// Uses free unchoke slots at once rather than at the next re-evaluation
    /// (a peer that lost interest, or left, frees its slot for a waiting
    /// one), longest-waiting peer first.
    pub(super) fn fill_free_slots(
        &mut self,
        now: Instant,
        views: &BTreeMap<PeerKey, Peer>,
        mode: Mode,
    ) -> Changes {
        let interested = |k: &PeerKey| views.get(k).is_some_and(|v| v.peer_interested);
        let mut changes = Vec::new();
        loop {
            let unchoked = self
                .peers
                .iter()
                .filter(|(k, s)| !s.choked && interested(k))
                .count();
            if unchoked > self.regular_slots(views, mode) {
                return changes;
            }
            let next = self
                .peers
                .iter()
                .filter(|(k, s)| s.choked && interested(k))
                .min_by_key(|(k, s)| (s.last_unchoked, **k))
                .map(|(k, _)| *k);
            match next {
                Some(k) => self.set(now, k, false, &mut changes),
                None => return changes,
            }
        }
    }

    /// Re-evaluates every slot.
    pub(super) fn rechoke(
        &mut self,
        now: Instant,
        views: &BTreeMap<PeerKey, Peer>,
        mode: Mode,
    ) -> Changes {
        self.last_rechoke = now;
        // A capped super-seed keeps even peers with nothing to fetch right
        // now unchoked: offers to a choked peer count for nothing, so its
        // next offer could be a piece also offered to everyone else.
        let serve_all = mode.super_seed && self.max_upload_rate.is_some();
        let mut ranked: Vec<(PeerKey, f64, Option<Instant>)> = self
            .peers
            .iter()
            .filter_map(|(k, s)| views.get(k).map(|v| (k, s, v)))
            .filter(|(_, _, v)| v.peer_interested || serve_all)
            .map(|(k, s, v)| {
                // A super-seed keeps the peers it serves: choking one mid-piece
                // would strand a piece only we have, and the piece would be
                // offered (and uploaded) again to someone else. One that
                // takes nothing keeps nothing: it would hold the slot forever.
                let serving = !s.choked && v.up.rate > 0.0;
                let rate = if mode.seeding && mode.super_seed && serving {
                    f64::INFINITY
                } else if mode.seeding {
                    v.up.rate
                } else {
                    v.down.rate
                };
                (*k, rate, s.last_unchoked)
            })
            .collect();
        // Highest rate first; among equals, the one unchoked longest ago (round robin).
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)).then(a.0.cmp(&b.0)));
        let regular: Vec<PeerKey> = ranked
            .iter()
            .take(self.regular_slots(views, mode))
            .map(|r| r.0)
            .collect();
        let rotate = match self.last_optimistic {
            None => true,
            Some(t) => now.saturating_duration_since(t) >= self.optimistic_interval,
        };
        let optimistic_valid = self.optimistic.is_some_and(|k| {
            !regular.contains(&k) && views.get(&k).is_some_and(|p| p.peer_interested)
        });
        if rotate || !optimistic_valid {
            let candidates: Vec<PeerKey> = ranked
                .iter()
                .map(|r| r.0)
                .filter(|k| !regular.contains(k))
                .collect();
            self.optimistic = candidates.choose(&mut self.rng).copied();
            self.last_optimistic = Some(now);
        }
        let mut changes = Vec::new();
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            let unchoke = regular.contains(&key) || self.optimistic == Some(key);
            self.set(now, key, !unchoke, &mut changes);
        }
        changes
    }

    /// Chokes or unchokes the peer, noting a change in `changes`.
    fn set(&mut self, now: Instant, peer: PeerKey, choke: bool, changes: &mut Changes) {
        let Some(s) = self.peers.get_mut(&peer) else {
            return;
        };
        if s.choked != choke {
            s.choked = choke;
            if !choke {
                s.last_unchoked = Some(now);
            }
            changes.push((peer, choke));
        }
    }
}
