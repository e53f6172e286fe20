//! Super-seeding (after BEP 16), used by a peer that starts with every piece.
//!
//! A seed that shows its whole bitfield lets leechers that pick at the same
//! moment fetch the same piece from it, and its capped upload is the swarm's
//! bottleneck until one full copy is out. Instead it announces pieces one
//! peer at a time (HAVE messages, no bitfield), always the piece least spread
//! so far (held by the fewest peers plus offered to the fewest), keeping each
//! peer a window of offered pieces sized to its rate. Leechers then trade the
//! pieces among themselves. Any BitTorrent client follows HAVE messages, so
//! this needs nothing from the other side.

use std::time::{Duration, Instant};

use super::{Output, PeerKey, Scheduler};

/// A peer with no new piece for this long may be offered pieces others have.
const STALL: Duration = Duration::from_secs(2);

/// Largest offer window of one peer, in pieces.
const MAX_WINDOW: u32 = 64;
/// Offer window of a new peer (grows per completed piece until measured).
const FIRST_WINDOW: u32 = 1;
/// Seconds of a peer's rate kept on offer: short, so that the seed's pieces
/// complete one after another rather than all at once.
const OFFER_SECONDS: f64 = 1.0;

impl Scheduler {
    /// True when this scheduler announces pieces peer by peer.
    pub(super) fn super_seeding(&self) -> bool {
        self.cfg.super_seed && self.seeded_from_start
    }

    /// Adds (`add`) or removes the peer's outstanding offers from the
    /// per-piece offer counts (around a change of its have-set).
    pub(super) fn count_offers(&mut self, peer: PeerKey, add: bool) {
        if !self.super_seeding() {
            return;
        }
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        for (i, (a, h)) in p.announced.iter().zip(&p.have).enumerate() {
            if *a && !*h {
                if add {
                    self.offers[i] += 1;
                } else {
                    self.offers[i] = self.offers[i].saturating_sub(1);
                }
            }
        }
    }

    /// Number of pieces the peer may hold on offer at once.
    fn offer_window(&self, peer: PeerKey) -> u32 {
        let p = &self.peers[&peer];
        if p.am_choking {
            // One piece keeps it interested until a slot frees up.
            return 1;
        }
        if !p.up.measured {
            return p.offer_window;
        }
        let piece = self.pieces.geometry.piece_length.max(1) as f64;
        let by_rate = (p.up.rate * OFFER_SECONDS / piece).ceil() as u32;
        by_rate.max(p.offer_window).clamp(FIRST_WINDOW, MAX_WINDOW)
    }

    /// A piece the peer completed was one we offered it.
    pub(super) fn offer_taken(&mut self, peer: PeerKey) {
        if let Some(p) = self.peers.get_mut(&peer) {
            if !p.up.measured {
                p.offer_window = (p.offer_window + 1).min(MAX_WINDOW);
            }
        }
    }

    /// Tops up every peer's offers.
    pub(super) fn offer_all(&mut self, now: Instant) {
        if !self.super_seeding() {
            return;
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.offer(now, key);
        }
    }

    /// Tops up the peer's offers to its window.
    pub(super) fn offer(&mut self, now: Instant, peer: PeerKey) {
        if !self.super_seeding() || !self.peers.contains_key(&peer) {
            return;
        }
        let window = self.offer_window(peer);
        let p = &self.peers[&peer];
        let mut outstanding = p
            .announced
            .iter()
            .zip(&p.have)
            .filter(|(a, h)| **a && !**h)
            .count() as u32;
        while outstanding < window {
            let p = &self.peers[&peer];
            let best = (0..self.pieces.count())
                .filter(|&i| !p.have[i as usize] && !p.announced[i as usize])
                .min_by_key(|&i| {
                    let i = i as usize;
                    // Offers to choked peers reserve nothing, but are still
                    // spread over different pieces where possible.
                    let pending = self
                        .peers
                        .values()
                        .filter(|q| q.announced[i] && !q.have[i])
                        .count();
                    (
                        self.availability[i] + self.offers[i],
                        pending,
                        self.tiebreak[i],
                    )
                });
            let Some(i) = best else { break };
            // Pieces are offered least spread first, so a piece nobody has and
            // nobody was offered comes before any second copy. A second copy
            // waits until every piece has reached some peer: before that it
            // would delay the last new pieces, which the whole swarm waits
            // for. Then a piece held by one peer only shortens the swarm's
            // tail; beyond that the peers trade among themselves, and only a
            // peer that has stalled (no new piece for a while: maybe nobody
            // else serves it) gets more. Either kind, one at a time.
            let spread = self.availability[i as usize] + self.offers[i as usize];
            let stalled = now.saturating_duration_since(self.peers[&peer].last_have_at) >= STALL;
            let all_out = self.availability.iter().all(|&a| a > 0);
            let second = outstanding == 0 && ((all_out && spread == 1) || stalled);
            if spread > 0 && !second {
                break;
            }
            let p = self.peers.get_mut(&peer).expect("checked above");
            p.announced[i as usize] = true;
            if !p.am_choking {
                self.offers[i as usize] += 1;
            }
            outstanding += 1;
            self.outputs.push_back(Output::Offer { peer, piece: i });
        }
    }
}
