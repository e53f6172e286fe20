//! The pace of a process's ring traffic: however many torrents it serves,
//! its announces and swarm lookups together stay under a fixed rate, and
//! their periods are jittered so that torrents started together (a library
//! of 10,000 songs) drift apart instead of re-announcing in the same second.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Jitter, Quota, RateLimiter};
use rand::Rng;

/// The most a wait for the rate is stretched at random, so that waiters
/// released together do not go in lock-step.
const JITTER: Duration = Duration::from_millis(250);

/// How far a period is moved at random, either way: a fifth.
const PERIOD_SPREAD: f64 = 0.2;

/// One process's budget of ring operations (announces, lookups).
#[derive(Debug)]
pub struct Pace {
    /// The token bucket (a second's worth may go at once).
    limiter: DefaultDirectRateLimiter,
}

impl Pace {
    /// At most `per_second` operations a second (at least one).
    pub fn new(per_second: u32) -> Pace {
        let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        Pace {
            limiter: RateLimiter::direct(Quota::per_second(rate)),
        }
    }

    /// Waits for the next operation's turn (cancel-safe: nothing is taken
    /// until it returns).
    pub async fn ready(&self) {
        self.limiter
            .until_ready_with_jitter(Jitter::up_to(JITTER))
            .await;
    }
}

/// `period` moved at random by up to a fifth either way.
pub fn jittered(period: Duration, rng: &mut impl Rng) -> Duration {
    period.mul_f64(rng.gen_range(1.0 - PERIOD_SPREAD..=1.0 + PERIOD_SPREAD))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn periods_spread_within_a_fifth_and_do_not_repeat() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let base = Duration::from_secs(900);
        let spread: Vec<Duration> = (0..1000).map(|_| jittered(base, &mut rng)).collect();
        assert!(spread
            .iter()
            .all(|d| *d >= base.mul_f64(0.8) && *d <= base.mul_f64(1.2)));
        let (lo, hi) = (spread.iter().min().unwrap(), spread.iter().max().unwrap());
        assert!(
            *hi - *lo > Duration::from_secs(300),
            "spread over most of the range"
        );
    }

    #[test]
    fn the_budget_lets_a_second_go_at_once_then_waits() {
        let pace = Pace::new(5);
        let passed = (0..20).filter(|_| pace.limiter.check().is_ok()).count();
        assert_eq!(passed, 5);
    }
}
