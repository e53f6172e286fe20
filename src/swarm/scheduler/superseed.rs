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

use super::{Output, PeerKey, Scheduler, SpreadKey};

/// A peer with no new piece for this long may be offered pieces others have.
const STALL: Duration = Duration::from_secs(2);

/// Largest offer window of one peer, in bytes (64 pieces of 1 MiB). In
/// pieces it was 64 whatever their size: 1 MiB in flight with 16 KiB
/// pieces, which held a lone leecher to a tenth of its speed.
const MAX_WINDOW_BYTES: u64 = 64 << 20;
/// Offer window of a new peer (grows per completed piece until measured).
/// Two, so that an unchoked peer still wants a piece from us while it
/// completes the other: libtorrent that runs out of pieces to want ends its
/// request slow start and keeps two requests in flight for a second.
pub(super) const FIRST_WINDOW: u32 = 2;
/// Unchoked time after which the bytes a peer took say its rate, before the
/// first tick measures it. Until then a fast peer had a window of a piece or
/// two: libtorrent requested every block on offer, took that for its
/// end-game and kept one request in flight, a third of its speed.
const EARLY_RATE_AFTER: Duration = Duration::from_millis(5);
/// Seconds of a peer's rate kept on offer: short, so that the seed's pieces
/// complete one after another rather than all at once.
const OFFER_SECONDS: f64 = 1.0;

impl Scheduler {
    /// True when this scheduler announces pieces peer by peer.
    pub(super) fn super_seeding(&self) -> bool {
        self.cfg.super_seed && self.seeded_from_start
    }

    /// Adds (`add`) or removes the peer's outstanding offers from the
    /// per-piece offer counts (around a change of its have-set or choke);
    /// adding also sets the peer's own count of them.
    pub(super) fn count_offers(&mut self, peer: PeerKey, add: bool) {
        if !self.super_seeding() {
            return;
        }
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let unchoked = !p.am_choking;
        let held: Vec<usize> = (p.announced.iter().zip(&p.have))
            .enumerate()
            .filter(|(_, (a, h))| **a && !**h)
            .map(|(i, _)| i)
            .collect();
        if add {
            p.on_offer = held.len() as u32;
        }
        for i in held {
            self.recount(i, |s| {
                if add {
                    s.pending[i] += 1;
                    s.offers[i] += u32::from(unchoked);
                } else {
                    s.pending[i] -= 1;
                    s.offers[i] -= u32::from(unchoked);
                }
            });
        }
    }

    /// Piece `i`'s offer rank.
    pub(super) fn spread_key(&self, i: usize) -> SpreadKey {
        (
            self.availability[i] + self.offers[i],
            self.pending[i],
            self.tiebreak[i],
            i as u32,
        )
    }

    /// Ranks every piece (super-seeding starts).
    pub(super) fn rank_all(&mut self) {
        if self.super_seeding() {
            self.by_spread = (0..self.availability.len())
                .map(|i| self.spread_key(i))
                .collect();
        }
    }

    /// Number of pieces the peer may hold on offer at once.
    fn offer_window(&self, now: Instant, peer: PeerKey) -> u32 {
        let p = &self.peers[&peer];
        if p.am_choking {
            // One piece keeps it interested until a slot frees up.
            return 1;
        }
        let rate = if p.up.measured {
            p.up.rate
        } else {
            match p.last_unchoked.map(|t| now.saturating_duration_since(t)) {
                Some(d) if d >= EARLY_RATE_AFTER => p.up_since_unchoke as f64 / d.as_secs_f64(),
                _ => 0.0,
            }
        };
        let piece = self.pieces.geometry.piece_length.max(1);
        let by_rate = (rate * OFFER_SECONDS / piece as f64).ceil() as u32;
        by_rate
            .max(p.offer_window)
            .clamp(FIRST_WINDOW, self.max_offer_window())
    }

    /// Largest offer window of one peer, in pieces.
    fn max_offer_window(&self) -> u32 {
        let piece = self.pieces.geometry.piece_length.max(1);
        (MAX_WINDOW_BYTES / piece).clamp(1, u64::from(u32::MAX)) as u32
    }

    /// A piece the peer completed was one we offered it.
    pub(super) fn offer_taken(&mut self, peer: PeerKey) {
        let most = self.max_offer_window();
        if let Some(p) = self.peers.get_mut(&peer) {
            if !p.up.measured {
                p.offer_window = (p.offer_window + 1).min(most);
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
        let window = self.offer_window(now, peer);
        while self.peers[&peer].on_offer < window {
            let outstanding = self.peers[&peer].on_offer;
            // Pieces are offered least spread first, so a piece nobody has and
            // nobody was offered comes before any second copy. A second copy
            // waits until every piece has reached some peer: before that it
            // would delay the last new pieces, which the whole swarm waits
            // for. Then a piece held by one peer only shortens the swarm's
            // tail; beyond that the peers trade among themselves, and only a
            // peer that has stalled (no new piece for a while: maybe nobody
            // else serves it) gets more. Either kind, one at a time. Ties go
            // to the piece offered to the fewest choked peers, then at random.
            let stalled = now.saturating_duration_since(self.peers[&peer].last_have_at) >= STALL;
            let most = match (outstanding, stalled, self.unspread == 0) {
                (0, true, _) => u32::MAX,
                (0, false, true) => 1,
                _ => 0,
            };
            let p = &self.peers[&peer];
            let best = self
                .by_spread
                .range(..=(most, u32::MAX, u32::MAX, u32::MAX))
                .map(|k| k.3)
                .find(|&i| !p.have[i as usize] && !p.announced[i as usize]);
            let Some(piece) = best else { break };
            let unchoked = !self.peers[&peer].am_choking;
            let i = piece as usize;
            self.recount(i, |s| {
                if let Some(p) = s.peers.get_mut(&peer) {
                    p.announced[i] = true;
                    p.on_offer += 1;
                }
                s.pending[i] += 1;
                s.offers[i] += u32::from(unchoked);
            });
            self.outputs.push_back(Output::Offer { peer, piece });
        }
    }
}
