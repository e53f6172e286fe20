//! When each periodic task of a node runs next. Intervals are jittered so
//! that nodes do not fall into lockstep.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::Rng;

use crate::chord::Phase;
use crate::config::ChordConfig;

/// A periodic task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Stabilize and check the predecessor (retry the join while joining).
    Stabilize,
    /// Refresh one finger.
    Finger,
    /// Push held keys to their replica sets.
    Replicate,
    /// Look our own id up through a past contact.
    Rejoin,
}

/// The next run of each periodic task.
#[derive(Debug)]
pub(crate) struct Timers {
    /// Indexed by [`Timer`].
    at: [Instant; 4],
}

impl Timers {
    /// Every task due at `now`.
    pub(crate) fn new(now: Instant) -> Timers {
        Timers { at: [now; 4] }
    }

    /// Stabilize now, the rest after a jittered interval each.
    pub(crate) fn schedule_all(&mut self, now: Instant, config: &ChordConfig, rng: &mut StdRng) {
        self.at = [
            now,
            now + jitter(rng, config.fix_finger_interval),
            now + jitter(rng, config.replicate_interval),
            now + jitter(rng, config.rejoin_interval),
        ];
    }

    /// True if `timer` is due at `now`.
    pub(crate) fn is_due(&self, timer: Timer, now: Instant) -> bool {
        self.at[timer as usize] <= now
    }

    /// Run `timer` next at `at`.
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.at[timer as usize] = at;
    }

    /// When `timer` runs next.
    pub(crate) fn get(&self, timer: Timer) -> Instant {
        self.at[timer as usize]
    }

    /// When the next task is due in `phase`: a joiner only retries its
    /// join (on the stabilize timer); only a member runs them all.
    pub(crate) fn next(&self, phase: Phase) -> Option<Instant> {
        match phase {
            Phase::Idle | Phase::Leaving => None,
            Phase::Joining => Some(self.get(Timer::Stabilize)),
            Phase::Member => self.at.iter().copied().min(),
        }
    }
}

/// `d` scaled by a random factor in [0.5, 1.5): keeps nodes out of lockstep.
pub(crate) fn jitter(rng: &mut StdRng, d: Duration) -> Duration {
    d.mul_f64(rng.gen_range(0.5..1.5))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn schedule_all_stabilizes_at_once_and_spreads_the_rest() {
        let now = Instant::now();
        let config = ChordConfig::default();
        let mut rng = StdRng::seed_from_u64(7);
        let mut t = Timers::new(now);
        t.schedule_all(now, &config, &mut rng);
        assert!(t.is_due(Timer::Stabilize, now));
        assert_eq!(t.next(Phase::Member), Some(now));
        assert_eq!(t.next(Phase::Idle), None);
        for (timer, base) in [
            (Timer::Finger, config.fix_finger_interval),
            (Timer::Replicate, config.replicate_interval),
            (Timer::Rejoin, config.rejoin_interval),
        ] {
            assert!(!t.is_due(timer, now));
            let d = t.get(timer) - now;
            assert!(d >= base / 2 && d < base * 3 / 2, "{timer:?} in {d:?}");
        }
        let later = now + Duration::from_secs(1);
        t.set(Timer::Stabilize, later);
        assert!(!t.is_due(Timer::Stabilize, now));
        assert!(t.next(Phase::Member).is_some_and(|at| at > now));
        assert_eq!(t.next(Phase::Joining), Some(later));
    }
}
