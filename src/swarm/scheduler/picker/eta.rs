//! When a peer is expected to deliver a block: how fast it served what we
//! asked (from its blocks' arrivals), and where the block stands in its
//! queue.
//!
//! A peer is modelled as serving its queue of our requests in order at its
//! rate: a block is expected when the peer has drained everything asked of
//! it before, plus the block itself. The peer began on the front of its
//! queue when that request was sent or when its last block arrived,
//! whichever is later.

use std::time::{Duration, Instant};

use super::{Picker, Requests};
use crate::geometry::BLOCK_SIZE;

/// A peer behind its expected time for the front of its queue by more
/// than this many times that block's own time (and [`STUCK_GRACE`]) is
/// stuck: nothing more is expected from it.
const STUCK_FACTOR: f64 = 4.0;
/// The least lateness that makes a peer stuck (ticks and batching jitter).
const STUCK_GRACE: Duration = Duration::from_millis(250);
/// What a stuck peer is expected to take: more than any live peer.
const NEVER: Duration = Duration::from_secs(3600);
/// Weight an old block arrival keeps at each new one: about the last ten
/// blocks make the estimate.
const DELIVERY_DECAY: f64 = 0.9;
/// Shortest service time counted for a block (blocks read off one socket
/// read arrive at the same instant).
const MIN_SERVICE: f64 = 1e-4;
/// Shortest wait between two looks at a late peer.
const RECHECK: Duration = Duration::from_millis(20);

/// How fast a peer delivers what we ask: bytes over the time it spent
/// serving them, each block counted from when it was asked for or from the
/// previous block's arrival, whichever is later (so neither an idle peer
/// nor a short queue reads as slow), weighted toward recent blocks.
#[derive(Clone, Debug, Default)]
pub(super) struct Delivery {
    /// Decayed sum of block lengths.
    bytes: f64,
    /// Decayed sum of their service times, in seconds.
    secs: f64,
}

impl Delivery {
    /// A block of `len` bytes took `took` to serve.
    pub(super) fn record(&mut self, len: u32, took: Duration) {
        self.bytes = self.bytes * DELIVERY_DECAY + f64::from(len);
        self.secs = self.secs * DELIVERY_DECAY + took.as_secs_f64();
    }

    /// Bytes per second, once a block has arrived.
    fn rate(&self) -> Option<f64> {
        (self.bytes > 0.0).then(|| self.bytes / self.secs.max(MIN_SERVICE))
    }
}

impl Picker {
    /// Bytes per second the peer is expected to deliver: what its block
    /// arrivals showed, or before any, its slow-start window over the
    /// pipeline time.
    fn capacity(&self, p: &Requests) -> f64 {
        p.delivery.rate().unwrap_or_else(|| {
            p.slow_start as f64 * f64::from(BLOCK_SIZE) / self.cfg.pipeline_seconds.max(0.1)
        })
    }

    /// When the peer began on the front of its queue, and how long that
    /// block should take it.
    fn front(&self, p: &Requests) -> Option<(Instant, Duration)> {
        let (front, sent) = p.inflight.front()?;
        let base = p.last_block.map_or(*sent, |t| t.max(*sent));
        let took = Duration::from_secs_f64(f64::from(front.length) / self.capacity(p));
        Some((base, took))
    }

    /// From when the peer counts as stuck on the front of its queue.
    fn stuck_at(&self, p: &Requests) -> Option<Instant> {
        let (base, took) = self.front(p)?;
        Some(base + took + STUCK_GRACE.max(took.mul_f64(STUCK_FACTOR)))
    }

    /// When the peer is expected to have delivered the first `through`
    /// bytes of its queue (a new block: its queue plus the block). A peer
    /// late with its front block has shown it is slower than thought: the
    /// block is expected to take as long again as it has taken so far, and
    /// the rest of the queue at the rate that shows; a peer stuck on it
    /// delivers nothing.
    pub(super) fn expected(&self, now: Instant, p: &Requests, through: u64) -> Instant {
        let cap = self.capacity(p);
        let at = |cap: f64, bytes: u64| Duration::from_secs_f64(bytes as f64 / cap);
        let Some((base, took)) = self.front(p) else {
            return now + at(cap, through);
        };
        if now <= base + took {
            return base + at(cap, through);
        }
        if self.stuck_at(p).is_some_and(|t| now > t) {
            return now + NEVER;
        }
        let front_bytes = p.inflight.front().map_or(0, |(r, _)| u64::from(r.length));
        let spent = now - base;
        let shown = (front_bytes as f64 / spent.as_secs_f64()).min(cap);
        now + spent + at(shown, through.saturating_sub(front_bytes))
    }

    /// When to look again at a peer holding a critical block: when it
    /// becomes late with its front block, and while it is late, again and
    /// again (its expected time grows) until it is stuck. Always after
    /// `now`.
    pub(super) fn recheck(&self, now: Instant, p: &Requests) -> Option<Instant> {
        let (base, took) = self.front(p)?;
        if now < base + took {
            return Some(base + took);
        }
        let stuck = self.stuck_at(p)?;
        (now < stuck).then(|| stuck.min(now + RECHECK.max((now - base) / 4)))
    }
}
