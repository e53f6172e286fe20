//! An idle torrent costs no wake-up: with no peer connected, dialled or
//! admitted, nothing to hash and no address to dial, the coordinator parks
//! its housekeeping and sleeps until an event (its scheduler has no
//! time-out then either).

use std::time::Duration;

use tokio::time::Instant;

use super::{Coordinator, HOUSEKEEPING};

/// How long an idle coordinator (no peer, no dial due, nothing to hash)
/// sleeps before it looks again; an event wakes it at once. A library of
/// 10,000 songs that woke each one every half second spent 20,000 wake-ups
/// a second doing nothing.
const IDLE_HOUSEKEEPING: Duration = Duration::from_secs(3600);

impl Coordinator {
    /// True when there is nothing to do until an event comes: no peer
    /// connected, being dialled or admitted, no piece to hash, and no
    /// address we would dial.
    fn is_idle(&self) -> bool {
        let complete = self.sched.is_complete();
        self.links.is_empty()
            && self.dialled.is_empty()
            && self.accepting.is_empty()
            && self.to_verify.is_empty()
            && self.hashing == 0
            && !self
                .known
                .values()
                .any(|d| d.active.is_none() && (!complete || (d.named && !d.seed)))
    }

    /// After each batch: an idle coordinator publishes its progress and
    /// parks its housekeeping; a busy one that was parked resumes it
    /// now (its half-second rhythm).
    pub(super) fn park_or_wake(&mut self, now: Instant) {
        match self.is_idle() {
            true => {
                self.publish();
                self.housekeeping_at = now + IDLE_HOUSEKEEPING;
            }
            false => {
                if self.housekeeping_at > now + HOUSEKEEPING {
                    self.housekeeping_at = now;
                }
            }
        }
    }
}
