//! Choking: tit-for-tat with regular slots by rate plus one rotating
//! optimistic slot, re-evaluated every `rechoke_interval`; free slots are
//! given at once.

use std::time::Instant;

use rand::seq::SliceRandom;

use super::{Output, PeerKey, Scheduler};

impl Scheduler {
    /// Regular unchoke slots: `unchoke_slots`, or every peer while our upload
    /// is capped and runs below 80% of the cap (bandwidth to spare: more
    /// peers served spreads pieces faster and costs nobody anything).
    pub(super) fn regular_slots(&self) -> usize {
        // A capped upload sends one piece at a time (see `swarm::rate`), so a
        // super-seed serving every peer slows none of them, and no peer sits
        // on a piece it was offered while choked.
        if self.super_seeding() && self.cfg.max_upload_rate.is_some() {
            return self.peers.len().max(self.cfg.unchoke_slots);
        }
        // Other seeds keep few peers unchoked: their pieces then finish one
        // after another, and each can be passed on as soon as it is complete.
        let spare = !self.completed
            && self.cfg.max_upload_rate.is_some_and(|cap| {
                let rate: f64 = self.peers.values().map(|p| p.up.rate).sum();
                rate < 0.8 * cap as f64
            });
        if spare {
            self.peers.len().max(self.cfg.unchoke_slots)
        } else {
            self.cfg.unchoke_slots
        }
    }

    /// Uses free unchoke slots at once rather than at the next re-evaluation
    /// (a peer that lost interest, or left, frees its slot for a waiting
    /// one), longest-waiting peer first.
    pub(super) fn fill_free_slots(&mut self, now: Instant) {
        loop {
            let unchoked = self
                .peers
                .values()
                .filter(|q| !q.am_choking && q.peer_interested)
                .count();
            if unchoked > self.regular_slots() {
                return;
            }
            let next = self
                .peers
                .iter()
                .filter(|(_, q)| q.am_choking && q.peer_interested)
                .min_by_key(|(k, q)| (q.last_unchoked, **k))
                .map(|(k, _)| *k);
            match next {
                Some(k) => self.set_choke(now, k, false),
                None => return,
            }
        }
    }

    pub(super) fn rechoke(&mut self, now: Instant) {
        self.last_rechoke = now;
        let seeding = self.completed;
        // A capped super-seed keeps even peers with nothing to fetch right
        // now unchoked: offers to a choked peer count for nothing, so its
        // next offer could be a piece also offered to everyone else.
        let serve_all = self.super_seeding() && self.cfg.max_upload_rate.is_some();
        let mut ranked: Vec<(PeerKey, f64, Option<Instant>)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.peer_interested || serve_all)
            .map(|(k, p)| {
                // A super-seed keeps the peers it serves: choking one mid-piece
                // would strand a piece only we have, and the piece would be
                // offered (and uploaded) again to someone else.
                let rate = if seeding && self.super_seeding() && !p.am_choking {
                    f64::INFINITY
                } else if seeding {
                    p.up.rate
                } else {
                    p.down.rate
                };
                (*k, rate, p.last_unchoked)
            })
            .collect();
        // Highest rate first; among equals, the one unchoked longest ago (round robin).
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)).then(a.0.cmp(&b.0)));
        let regular: Vec<PeerKey> = ranked
            .iter()
            .take(self.regular_slots())
            .map(|r| r.0)
            .collect();
        let rotate = match self.last_optimistic {
            None => true,
            Some(t) => now.saturating_duration_since(t) >= self.cfg.optimistic_interval,
        };
        let optimistic_valid = self.optimistic.is_some_and(|k| {
            !regular.contains(&k) && self.peers.get(&k).is_some_and(|p| p.peer_interested)
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
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            let unchoke = regular.contains(&key) || self.optimistic == Some(key);
            self.set_choke(now, key, !unchoke);
        }
    }

    pub(super) fn set_choke(&mut self, now: Instant, peer: PeerKey, choke: bool) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if p.am_choking != choke {
            self.count_offers(peer, false);
            let p = self.peers.get_mut(&peer).expect("checked above");
            p.am_choking = choke;
            self.count_offers(peer, true);
            let p = self.peers.get_mut(&peer).expect("checked above");
            if !choke {
                p.last_unchoked = Some(now);
                p.up_since_unchoke = 0;
            }
            self.outputs.push_back(Output::Choke { peer, choke });
            self.offer(now, peer);
        }
    }
}
