//! Streams reading the torrent: their positions become the scheduler's
//! streaming priority.

use std::time::Instant;

use super::Coordinator;
use crate::swarm::StreamId;

/// Seconds of audio ahead of a stream's position fetched first.
const AHEAD_SECS: u64 = 5;

impl Coordinator {
    /// A stream reads from `offset` to `end` at `byte_rate`: the pieces of
    /// its next few seconds go first.
    pub(super) fn stream_at(
        &mut self,
        now: Instant,
        _id: StreamId,
        offset: u64,
        end: u64,
        byte_rate: u64,
    ) {
        let geometry = self.ctx.geometry;
        let end = end.min(geometry.total_length);
        if offset >= end {
            return;
        }
        let stop = end.min(offset.saturating_add(byte_rate.saturating_mul(AHEAD_SECS)));
        let first = (offset / geometry.piece_length.max(1)) as u32;
        let last = (stop.max(offset + 1) - 1) / geometry.piece_length.max(1);
        let len = (last as u32).saturating_sub(first) + 1;
        self.sched.handle_stream_window(now, Some((first, len)));
    }

    /// The stream ended: nothing is urgent any more.
    pub(super) fn stream_closed(&mut self, now: Instant, _id: StreamId) {
        self.sched.handle_stream_window(now, None);
    }
}
