//! How many pieces a super-seeded peer may hold on offer at once: its
//! rate's worth (a second of it), measured or, until the first tick, the
//! bytes it took since it was unchoked; one while it is choked.

use std::time::{Duration, Instant};

use super::{Offered, SuperSeed, FIRST_WINDOW};
use crate::swarm::scheduler::peers::Peer;

/// Largest offer window of one peer, in bytes (64 pieces of 1 MiB). In
/// pieces it was 64 whatever their size: 1 MiB in flight with 16 KiB
/// pieces, which held a lone leecher to a tenth of its speed.
const MAX_WINDOW_BYTES: u64 = 64 << 20;

/// Unchoked time after which the bytes a peer took say its rate, before the
/// first tick measures it. Until then a fast peer had a window of a piece or
/// two: libtorrent requested every block on offer, took that for its
/// end-game and kept one request in flight, a third of its speed.
const EARLY_RATE_AFTER: Duration = Duration::from_millis(5);

/// Seconds of a peer's rate kept on offer: short, so that the seed's pieces
/// complete one after another rather than all at once.
const OFFER_SECONDS: f64 = 1.0;

impl SuperSeed {
    /// Number of pieces the peer may hold on offer at once.
    pub(super) fn window(&self, now: Instant, p: &Offered, view: &Peer) -> u32 {
        if !p.unchoked {
            // One piece keeps it interested until a slot frees up.
            return 1;
        }
        let rate = if view.up.measured {
            view.up.rate
        } else {
            match p.unchoked_at.map(|t| now.saturating_duration_since(t)) {
                Some(d) if d >= EARLY_RATE_AFTER => p.taken_since_unchoke as f64 / d.as_secs_f64(),
                _ => 0.0,
            }
        };
        let piece = self.geometry.piece_length.max(1);
        let by_rate = (rate * OFFER_SECONDS / piece as f64).ceil() as u32;
        by_rate.max(p.window).clamp(FIRST_WINDOW, self.max_window())
    }

    /// Largest offer window of one peer, in pieces.
    pub(super) fn max_window(&self) -> u32 {
        let piece = self.geometry.piece_length.max(1);
        (MAX_WINDOW_BYTES / piece).clamp(1, u64::from(u32::MAX)) as u32
    }
}
