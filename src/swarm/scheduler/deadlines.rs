//! Play-position priority: the streams reading a torrent, and the deadline
//! each of them gives the pieces ahead of it.
//!
//! A stream reports where its body reads (`offset`), toward `end`, and the
//! song's `byte_rate`. Its body runs ahead of the player by whatever the
//! player buffers, so each stream keeps a *play clock*: an instant and the
//! byte the player is taken to be at then, moving at `byte_rate`. The clock
//! starts at the stream's first report (the player waits for its first
//! byte) and starts again at the body's position whenever the player would
//! have caught up with the body (it waited: a stall). The piece holding
//! byte `s` is due when the clock reaches `s`; a piece the body has not
//! reached yet is never due before its position. Pieces behind the body
//! get nothing from that stream: a seek (a new stream, a report behind the
//! last, or one past a piece we lack) drops them. With several streams a
//! piece takes the earliest of their deadlines.
//!
//! Pieces due within [`CRITICAL`], and the last piece of each range (tags
//! and seek tables live at the ends of a file; the first is where the
//! stream opens), are *critical*: the picker sends their blocks to the
//! peers expected to deliver soonest, and asks a second peer when the first
//! is late. Later pieces due within [`READ_AHEAD`] are fetched in deadline
//! order, one request per block; beyond that a piece stays rarest-first, so
//! a swarm of players stays a swarm. Deadlines are recomputed at each
//! report and each `refresh` (the scheduler's tick), as time brings pieces
//! into the windows.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::geometry::Geometry;
use crate::swarm::StreamId;

/// Audio ahead of a stream's play position whose pieces are critical.
pub const CRITICAL: Duration = Duration::from_secs(5);
/// Audio ahead of a stream's play position fetched in play order.
pub const READ_AHEAD: Duration = Duration::from_secs(30);
/// How long the picker keeps its streaming ways after the last stream
/// closed: a player that seeks closes one request and opens another.
const LINGER: Duration = Duration::from_secs(10);
/// Rate assumed for a stream that does not know its own (no duration tag):
/// 1 Mbit/s, above most lossy songs.
const UNKNOWN_BYTE_RATE: u64 = 128 * 1024;

/// Where one stream reads, and where its player is taken to be.
#[derive(Clone, Copy, Debug)]
struct Stream {
    /// Where its body reads, in the torrent's byte stream.
    offset: u64,
    /// End of what it reads (exclusive), inside the torrent.
    end: u64,
    /// Bytes per second it plays at (never zero).
    byte_rate: u64,
    /// The play clock: at this instant the player is at this byte.
    clock: (Instant, u64),
}

impl Stream {
    /// Where the player is at `now` by its clock.
    fn playing_at(&self, now: Instant) -> u64 {
        let (t, byte) = self.clock;
        let played = now.saturating_duration_since(t).as_secs_f64() * self.byte_rate as f64;
        byte.saturating_add(played as u64)
    }

    /// When the player reaches byte `byte` (never before the body does).
    fn reaches(&self, byte: u64) -> Instant {
        let (t, at) = self.clock;
        let bytes = byte.max(self.offset).saturating_sub(at);
        t + Duration::from_secs_f64(bytes as f64 / self.byte_rate as f64)
    }
}

/// When a piece is needed, and whether that is urgent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    /// When the earliest stream reaches the piece.
    pub deadline: Instant,
    /// Within some stream's critical window (or the last piece of its range).
    pub critical: bool,
}

/// The streams of one torrent and the deadlines they give its pieces.
#[derive(Debug)]
pub(super) struct Deadlines {
    /// Piece layout (byte offsets to pieces).
    geometry: Geometry,
    /// Every open stream.
    streams: BTreeMap<StreamId, Stream>,
    /// Per wanted piece with a deadline within the read-ahead: when it is due.
    due: BTreeMap<u32, Due>,
    /// The same pieces, earliest deadline first (ties by piece index).
    order: Vec<(Instant, u32)>,
    /// When the last open stream closed.
    closed_at: Option<Instant>,
}

impl Deadlines {
    /// No streams yet.
    pub(super) fn new(geometry: Geometry) -> Deadlines {
        Deadlines {
            geometry,
            streams: BTreeMap::new(),
            due: BTreeMap::new(),
            order: Vec::new(),
            closed_at: None,
        }
    }

    /// True when no piece has a deadline.
    pub(super) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// True while any stream is open, and for [`LINGER`] after the last
    /// one closed (a seek closes a stream and opens another).
    pub(super) fn streaming(&self, now: Instant) -> bool {
        !self.streams.is_empty() || self.closed_at.is_some_and(|t| now < t + LINGER)
    }

    /// Number of open streams.
    pub(super) fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// When piece `piece` is due, if it is.
    pub(super) fn due(&self, piece: u32) -> Option<Due> {
        self.due.get(&piece).copied()
    }

    /// Critical pieces, earliest deadline first.
    pub(super) fn critical(&self) -> impl Iterator<Item = (u32, Instant)> + '_ {
        self.order
            .iter()
            .filter(|(_, i)| self.due[i].critical)
            .map(|(t, i)| (*i, *t))
    }

    /// Pieces due within the read-ahead but not critical, earliest first.
    pub(super) fn preferred(&self) -> impl Iterator<Item = u32> + '_ {
        self.order
            .iter()
            .filter(|(_, i)| !self.due[i].critical)
            .map(|(_, i)| *i)
    }

    /// Stream `id`'s body reads from `offset` toward `end` of a song played
    /// at `byte_rate` (zero: unknown), as of `now`. `wanted` says which
    /// pieces we still lack.
    pub(super) fn set(
        &mut self,
        now: Instant,
        id: StreamId,
        range: (u64, u64),
        byte_rate: u64,
        wanted: impl Fn(u32) -> bool,
    ) {
        let (offset, end) = range;
        let byte_rate = if byte_rate == 0 {
            UNKNOWN_BYTE_RATE
        } else {
            byte_rate
        };
        let piece_length = self.geometry.piece_length.max(1);
        // The body reads on from where it was through pieces we have (a
        // jump over a piece we lack is a seek).
        let reads_on = |s: &Stream| {
            offset >= s.offset
                && (s.offset / piece_length..offset / piece_length).all(|i| !wanted(i as u32))
        };
        let clock = match self.streams.get(&id) {
            // Reading on, ahead of its player: the clock runs on.
            Some(s) if reads_on(s) && s.playing_at(now) < offset => s.clock,
            // New, sought, or its player caught up (it waited).
            _ => (now, offset),
        };
        let stream = Stream {
            offset,
            end: end.min(self.geometry.total_length),
            byte_rate,
            clock,
        };
        self.streams.insert(id, stream);
        self.refresh(now, wanted);
    }

    /// Stream `id` ended at `now`.
    pub(super) fn remove(&mut self, now: Instant, id: StreamId, wanted: impl Fn(u32) -> bool) {
        if self.streams.remove(&id).is_some() {
            if self.streams.is_empty() {
                self.closed_at = Some(now);
            }
            self.refresh(now, wanted);
        }
    }

    /// Piece `piece` is ours: nothing waits for it any more.
    pub(super) fn done(&mut self, piece: u32) {
        if let Some(d) = self.due.remove(&piece) {
            self.order.retain(|&(t, i)| (t, i) != (d.deadline, piece));
        }
    }

    /// Rebuilds every deadline from the streams' clocks as of `now`.
    pub(super) fn refresh(&mut self, now: Instant, wanted: impl Fn(u32) -> bool) {
        self.due.clear();
        for s in self.streams.values_mut() {
            // A player cannot be past its body: one that caught up waits
            // there (a stall, a pause, a stream that never reads on).
            if s.playing_at(now) > s.offset {
                s.clock = (now, s.offset);
            }
        }
        let piece_length = self.geometry.piece_length.max(1);
        for s in self.streams.values() {
            if s.offset >= s.end {
                continue;
            }
            let first = (s.offset / piece_length) as u32;
            let last = ((s.end - 1) / piece_length) as u32;
            let mut mark = |piece: u32, due: Due| {
                if !wanted(piece) {
                    return;
                }
                let e = self.due.entry(piece).or_insert(due);
                e.deadline = e.deadline.min(due.deadline);
                e.critical |= due.critical;
            };
            for piece in first..=last {
                let deadline = s.reaches(self.geometry.piece_offset(piece));
                if deadline >= now + READ_AHEAD {
                    break;
                }
                let critical = deadline < now + CRITICAL;
                mark(piece, Due { deadline, critical });
            }
            // The last piece of the range is wanted soon whatever the
            // position, but after the critical window's own pieces.
            let start = self.geometry.piece_offset(last);
            let deadline = s.reaches(start).min(now + CRITICAL);
            mark(
                last,
                Due {
                    deadline,
                    critical: true,
                },
            );
        }
        self.order = self.due.iter().map(|(i, d)| (d.deadline, *i)).collect();
        self.order.sort_unstable();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIECE: u64 = 32 * 1024;

    fn deadlines(pieces: u32) -> Deadlines {
        Deadlines::new(Geometry::new(PIECE, u64::from(pieces) * PIECE))
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn the_next_seconds_are_critical_and_the_rest_follows_in_play_order() {
        let t0 = Instant::now();
        let mut d = deadlines(100);
        // 32 KiB/s: one piece a second; 5 critical pieces, 30 within reach.
        d.set(t0, 1, (0, 100 * PIECE), PIECE, |_| true);
        let critical: Vec<u32> = d.critical().map(|(i, _)| i).collect();
        assert_eq!(critical, vec![0, 1, 2, 3, 4, 99]);
        let preferred: Vec<u32> = d.preferred().collect();
        assert_eq!(preferred, (5..30).collect::<Vec<u32>>());
        assert_eq!(d.due(0).unwrap().deadline, t0);
        assert_eq!(d.due(3).unwrap().deadline, t0 + secs(3));
        assert_eq!(d.due(99).unwrap().deadline, t0 + CRITICAL);
        assert!(d.due(30).is_none(), "beyond the read-ahead: rarest first");
        // Two seconds on the body still waits at piece 0, and so does the
        // player: the windows start there, from now.
        let t2 = t0 + secs(2);
        d.refresh(t2, |_| true);
        assert_eq!(d.due(0).unwrap().deadline, t2);
        assert!(d.due(4).unwrap().critical && !d.due(5).unwrap().critical);
    }

    #[test]
    fn a_body_ahead_of_its_player_keeps_the_play_clock() {
        let t0 = Instant::now();
        let mut d = deadlines(100);
        d.set(t0, 1, (0, 100 * PIECE), PIECE, |_| true);
        // One second on, the body has read ten pieces (the player buffers
        // them): piece 10 is due when the player gets there, in 9 s.
        let t1 = t0 + secs(1);
        d.set(t1, 1, (10 * PIECE, 100 * PIECE), PIECE, |i| i >= 10);
        assert_eq!(d.due(10).unwrap().deadline, t0 + secs(10));
        assert!(!d.due(10).unwrap().critical);
        // The body waits at piece 10 past that: the player waits too, at
        // the body, and the pieces after it are due from then on.
        let t2 = t0 + secs(11);
        d.refresh(t2, |i| i >= 10);
        assert_eq!(d.due(10).unwrap().deadline, t2);
        assert_eq!(d.due(11).unwrap().deadline, t2 + secs(1));
        // When the body moves on, the clock starts again from there.
        let t3 = t0 + secs(12);
        d.set(t3, 1, (11 * PIECE, 100 * PIECE), PIECE, |i| i >= 11);
        assert_eq!(d.due(11).unwrap().deadline, t3);
        assert_eq!(d.due(12).unwrap().deadline, t3 + secs(1));
    }

    #[test]
    fn a_seek_drops_the_deadlines_behind_it_and_pieces_we_have_get_none() {
        let t0 = Instant::now();
        let mut d = deadlines(100);
        d.set(t0, 1, (0, 100 * PIECE), PIECE, |_| true);
        let t1 = t0 + secs(1);
        // Seek into the middle of piece 50; piece 52 is already ours.
        d.set(t1, 1, (50 * PIECE + 100, 100 * PIECE), PIECE, |i| i != 52);
        assert!(d.due(0).is_none() && d.due(49).is_none());
        assert_eq!(d.critical().next(), Some((50, t1)));
        assert!(d.due(52).is_none());
        d.done(50);
        assert_eq!(d.critical().next().map(|(i, _)| i), Some(51));
        d.remove(t1, 1, |_| true);
        assert!(d.is_empty() && d.streaming(t1));
        assert!(!d.streaming(t1 + LINGER));
    }

    #[test]
    fn several_streams_take_the_earliest_deadline() {
        let t0 = Instant::now();
        let mut d = deadlines(100);
        d.set(t0, 1, (0, 100 * PIECE), PIECE, |_| true);
        // A faster stream from piece 2 reaches piece 10 sooner.
        d.set(t0, 2, (2 * PIECE, 100 * PIECE), 4 * PIECE, |_| true);
        assert_eq!(d.due(10).unwrap().deadline, t0 + secs(2));
        assert!(d.due(10).unwrap().critical);
        assert_eq!(d.due(1).unwrap().deadline, t0 + secs(1));
        let order: Vec<Instant> = d.order.iter().map(|(t, _)| *t).collect();
        assert!(order.windows(2).all(|w| w[0] <= w[1]));
    }
}
