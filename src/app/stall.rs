//! Why a download makes no progress: a leecher that has received nothing
//! for a while says why (no peers, choked by every peer, peers that
//! unchoke it and send nothing), once per reason, and may give up.
//!
//! Pure: it reads the torrent's published progress and the time it is
//! given; `leech` asks it once a second.

use std::fmt;
use std::time::{Duration, Instant};

use crate::swarm::coordinator::TorrentStats;

/// No progress for this long is reported (at half the give-up time when
/// that is sooner, so the reason is said before the end).
pub const REPORT_AFTER: Duration = Duration::from_secs(5);

/// Why no data arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StallReason {
    /// No peer is connected; `last_dial` is the last dial that failed.
    NoPeers {
        /// `address: reason` of the last failed dial, if any.
        last_dial: Option<String>,
    },
    /// Every connected peer chokes us.
    ChokedByAll {
        /// Peers connected.
        peers: usize,
    },
    /// Some peers unchoke us, and nothing arrives from them.
    NothingSent {
        /// Peers connected.
        peers: usize,
        /// Of those, the ones that unchoke us.
        unchoked_by: usize,
    },
}

impl StallReason {
    /// The reason read from a torrent's progress.
    pub fn of(stats: &TorrentStats) -> StallReason {
        if stats.peers == 0 {
            StallReason::NoPeers {
                last_dial: stats.unreachable.clone(),
            }
        } else if stats.unchoked_by == 0 {
            StallReason::ChokedByAll { peers: stats.peers }
        } else {
            StallReason::NothingSent {
                peers: stats.peers,
                unchoked_by: stats.unchoked_by,
            }
        }
    }

    /// A short, fixed name (`--json`'s `reason`).
    pub fn code(&self) -> &'static str {
        match self {
            StallReason::NoPeers { .. } => "no peers",
            StallReason::ChokedByAll { .. } => "choked by all",
            StallReason::NothingSent { .. } => "nothing sent",
        }
    }
}

impl fmt::Display for StallReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StallReason::NoPeers { last_dial: None } => write!(f, "no peers"),
            StallReason::NoPeers {
                last_dial: Some(why),
            } => write!(f, "no peers (last dial: {why})"),
            StallReason::ChokedByAll { peers } => {
                write!(f, "choked by all {peers} connected peer(s)")
            }
            StallReason::NothingSent { peers, unchoked_by } => write!(
                f,
                "nothing sent: {unchoked_by} of {peers} connected peer(s) unchoke us and send no data"
            ),
        }
    }
}

/// What the watch says at a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stall {
    /// Progress, or not long enough without.
    Fine,
    /// No progress for `for_` (a new reason, or the first report).
    Report {
        /// Why.
        reason: StallReason,
        /// Time since the last progress.
        for_: Duration,
    },
    /// No progress for the time the user allows: give up.
    GiveUp {
        /// Why.
        reason: StallReason,
        /// Time since the last progress.
        for_: Duration,
    },
}

/// Watches one download's progress.
#[derive(Debug)]
pub struct StallWatch {
    /// No progress for this long: give up (None: never).
    give_up_after: Option<Duration>,
    /// Last progress: (verified pieces, bytes received).
    last: (u32, u64),
    /// When it last moved.
    moved_at: Instant,
    /// The reason last reported since it last moved.
    reported: Option<StallReason>,
}

impl StallWatch {
    /// A watch started at `now`.
    pub fn new(now: Instant, give_up_after: Option<Duration>) -> StallWatch {
        StallWatch {
            give_up_after,
            last: (0, 0),
            moved_at: now,
            reported: None,
        }
    }

    /// Checks the torrent's progress at `now`.
    pub fn check(&mut self, now: Instant, stats: &TorrentStats) -> Stall {
        let progress = (stats.have_pieces, stats.downloaded_bytes);
        if progress != self.last || stats.complete {
            self.last = progress;
            self.moved_at = now;
            self.reported = None;
            return Stall::Fine;
        }
        let for_ = now.saturating_duration_since(self.moved_at);
        let reason = StallReason::of(stats);
        if self.give_up_after.is_some_and(|limit| for_ >= limit) {
            return Stall::GiveUp { reason, for_ };
        }
        let report_after = (self.give_up_after).map_or(REPORT_AFTER, |g| (g / 2).min(REPORT_AFTER));
        if for_ < report_after || self.reported.as_ref() == Some(&reason) {
            return Stall::Fine;
        }
        self.reported = Some(reason.clone());
        Stall::Report { reason, for_ }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(peers: usize, unchoked_by: usize, bytes: u64) -> TorrentStats {
        TorrentStats {
            peers,
            unchoked_by,
            downloaded_bytes: bytes,
            ..TorrentStats::default()
        }
    }

    #[test]
    fn reports_each_reason_once_and_gives_up_when_told() {
        let t0 = Instant::now();
        let s = |secs| t0 + Duration::from_secs(secs);
        let mut w = StallWatch::new(t0, Some(Duration::from_secs(20)));
        assert_eq!(w.check(s(1), &stats(0, 0, 0)), Stall::Fine);
        let Stall::Report { reason, .. } = w.check(s(6), &stats(0, 0, 0)) else {
            panic!("no report after 6 s");
        };
        assert_eq!(reason.code(), "no peers");
        assert_eq!(w.check(s(7), &stats(0, 0, 0)), Stall::Fine, "reported once");
        let Stall::Report { reason, .. } = w.check(s(8), &stats(2, 0, 0)) else {
            panic!("a new reason is reported");
        };
        assert_eq!(reason.to_string(), "choked by all 2 connected peer(s)");
        // Data arrives: the clock starts again.
        assert_eq!(w.check(s(9), &stats(2, 1, 100)), Stall::Fine);
        assert_eq!(w.check(s(13), &stats(2, 1, 100)), Stall::Fine);
        assert!(matches!(
            w.check(s(15), &stats(2, 1, 100)),
            Stall::Report {
                reason: StallReason::NothingSent { .. },
                ..
            }
        ));
        assert!(matches!(
            w.check(s(29), &stats(2, 0, 100)),
            Stall::GiveUp {
                reason: StallReason::ChokedByAll { peers: 2 },
                ..
            }
        ));
    }

    #[test]
    fn a_short_give_up_reports_first() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(t0, Some(Duration::from_secs(2)));
        assert_eq!(
            w.check(t0 + Duration::from_millis(900), &stats(0, 0, 0)),
            Stall::Fine
        );
        assert!(matches!(
            w.check(t0 + Duration::from_secs(1), &stats(0, 0, 0)),
            Stall::Report { .. }
        ));
        assert!(matches!(
            w.check(t0 + Duration::from_millis(2000), &stats(0, 0, 0)),
            Stall::GiveUp { .. }
        ));
        let mut w = StallWatch::new(t0, None);
        assert!(matches!(
            w.check(t0 + Duration::from_secs(600), &stats(0, 0, 0)),
            Stall::Report { .. }
        ));
    }
}
