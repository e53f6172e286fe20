//! What the picker keeps about one peer: its requests in flight.

use super::eta::Delivery;
use crate::geometry::BlockRef;
use std::collections::VecDeque;
use std::time::Instant;

/// What the picker keeps about one peer.
#[derive(Debug)]
pub(super) struct Requests {
    /// Pieces the peer has that we have not verified (pieces being
    /// hash-checked included): we are interested while this is above zero.
    pub(super) interesting: u32,
    /// We told it we are interested.
    pub(super) am_interested: bool,
    /// Our requests to it, with when they were sent, oldest first (blocks
    /// mostly arrive in that order: removing the front must not shift the
    /// rest, up to `max_pipeline` entries, once per block).
    pub(super) inflight: VecDeque<(BlockRef, Instant)>,
    /// Bytes of the blocks in `inflight` (how long its queue takes to drain).
    pub(super) inflight_bytes: u64,
    /// When its last block arrived (it has served its queue's front since
    /// then, or since that request was sent).
    pub(super) last_block: Option<Instant>,
    /// How fast it delivers what we ask, from its blocks' arrivals.
    pub(super) delivery: Delivery,
    /// It let a request time out; keep one request in flight until it delivers.
    pub(super) snubbed: bool,
    /// Pipeline while its rate is not measured yet (grows per block received).
    pub(super) slow_start: usize,
    /// Most outstanding requests it accepts (its BEP 10 `reqq`).
    pub(super) reqq: usize,
    /// Hash failures of pieces it contributed to.
    pub(super) strikes: u32,
}

impl Requests {
    /// Records a request sent at `now`.
    pub(super) fn push(&mut self, r: BlockRef, now: Instant) {
        self.inflight.push_back((r, now));
        self.inflight_bytes += u64::from(r.length);
    }

    /// Forgets the request for `r`: when it was sent, None when there was
    /// none.
    pub(super) fn remove(&mut self, r: &BlockRef) -> Option<Instant> {
        let pos = self.inflight.iter().position(|(b, _)| b == r)?;
        let (_, sent) = self.inflight.remove(pos)?;
        self.inflight_bytes -= u64::from(r.length);
        Some(sent)
    }
}
