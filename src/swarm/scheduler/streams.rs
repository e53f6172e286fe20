//! The scheduler's streaming inputs: where streams read, which becomes
//! the deadlines of `deadlines` and the critical requests of the picker.

use std::time::Instant;

use super::Scheduler;
use crate::swarm::pieces::PeerKey;
use crate::swarm::StreamId;

impl Scheduler {
    /// Stream `id` reads the torrent's bytes `offset..end` at `byte_rate`
    /// bytes per second (zero: unknown), as of `now`: the pieces ahead of it
    /// get deadlines, the next seconds' are critical. A new offset (a seek)
    /// drops the deadlines behind it.
    pub fn handle_stream_at(
        &mut self,
        now: Instant,
        id: StreamId,
        offset: u64,
        end: u64,
        byte_rate: u64,
    ) {
        let pieces = self.picker.pieces();
        self.deadlines
            .set(now, id, (offset, end), byte_rate, |i| !pieces.has(i));
        self.rescue_critical(now);
        self.fill_all(now);
    }

    /// Stream `id` ended: its deadlines go. Nothing new is asked for (the
    /// next tick tops requests up): a seek opens another stream at once.
    pub fn handle_stream_closed(&mut self, now: Instant, id: StreamId) {
        let pieces = self.picker.pieces();
        self.deadlines.remove(now, id, |i| !pieces.has(i));
        self.rescue_critical(now);
    }

    /// The peer plays the torrent while it downloads (its extension
    /// handshake says so): a super-seed shows it every piece, since the
    /// piece it waits for is the one at its play position, whatever the
    /// swarm's spread (offering pieces one at a time held a capped player's
    /// first byte for seconds).
    pub fn handle_peer_streams(&mut self, _now: Instant, peer: PeerKey) {
        if let (Some(seed), Some(view)) = (&mut self.super_seed, self.peers.get(&peer)) {
            seed.streams(peer, view, &self.avail, &mut self.outputs);
        }
    }

    /// Number of open streams.
    pub fn stream_count(&self) -> usize {
        self.deadlines.stream_count()
    }

    /// Second requests sent for streams' late critical blocks so far.
    pub fn rescued_blocks(&self) -> u64 {
        self.picker.duplicates_sent()
    }

    /// Requests cancelled so far to make way for streams' critical blocks.
    pub fn preempted_requests(&self) -> u64 {
        self.picker.preempted()
    }

    /// Critical pieces that verified after their deadline so far: pieces a
    /// stream waited for (its first piece after an open or a seek, and
    /// every stall).
    pub fn late_pieces(&self) -> u64 {
        self.late_pieces
    }

    /// Time brings pieces into the streams' windows.
    pub(super) fn refresh_deadlines(&mut self, now: Instant) {
        if self.deadlines.stream_count() > 0 {
            let pieces = self.picker.pieces();
            self.deadlines.refresh(now, |i| !pieces.has(i));
        }
    }

    /// Piece `piece` verified: nothing waits for it any more.
    pub(super) fn piece_done(&mut self, now: Instant, piece: u32) {
        if self
            .deadlines
            .due(piece)
            .is_some_and(|d| d.critical && now > d.deadline)
        {
            self.late_pieces += 1;
        }
        self.deadlines.done(piece);
    }

    /// Critical blocks not yet asked for go to the peers expected to
    /// deliver them soonest.
    pub(super) fn assign_critical(&mut self, now: Instant) {
        let (peers, avail) = (&self.peers, &self.avail);
        self.picker
            .assign_critical(now, peers, avail, &self.deadlines, &mut self.outputs);
    }

    /// Late critical blocks are asked of a quicker peer as well.
    pub(super) fn rescue_critical(&mut self, now: Instant) {
        let (peers, avail) = (&self.peers, &self.avail);
        self.picker
            .rescue_critical(now, peers, avail, &self.deadlines, &mut self.outputs);
    }
}
