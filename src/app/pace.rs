//! The pace of a process's ring traffic: however many torrents it serves,
//! its announces and swarm lookups together stay under a fixed rate, and
//! their periods are jittered so that torrents started together (a library
//! of 10,000 songs) drift apart instead of re-announcing in the same second.
//!
//! The budget is a token bucket (a second's worth may go at once), kept as
//! its theoretical arrival time (GCRA). Waiters queue in order behind one
//! fair lock, and only the first of them sleeps on a timer: with 10,000
//! songs waiting for their turn, each turn wakes one task. (A rate limiter
//! that every waiter polls on its own timer woke thousands of tasks per
//! turn: 58 % of a core for 50 turns a second.)

use std::time::Duration;

use rand::Rng;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How far a period is moved at random, either way: a fifth.
const PERIOD_SPREAD: f64 = 0.2;

/// One process's budget of ring operations (announces, lookups, removals).
#[derive(Debug)]
pub struct Pace {
    /// Time between two operations at the steady rate.
    interval: Duration,
    /// How far ahead of the steady rate a burst may run (a second's worth
    /// of operations, less one).
    burst: Duration,
    /// The theoretical arrival time of the next operation; the lock is the
    /// queue of waiters (tokio's mutex is fair: first come, first served).
    next: Mutex<Option<Instant>>,
}

impl Pace {
    /// At most `per_second` operations a second (at least one).
    pub fn new(per_second: u32) -> Pace {
        let per_second = per_second.max(1);
        let interval = Duration::from_secs(1) / per_second;
        Pace {
            interval,
            burst: interval * (per_second - 1),
            next: Mutex::new(None),
        }
    }

    /// Waits for the next operation's turn (cancel-safe: a waiter dropped
    /// leaves the queue and takes no turn).
    pub async fn ready(&self) {
        let mut next = self.next.lock().await;
        let now = Instant::now();
        let tat = next.map_or(now, |t| t.max(now));
        let allowed = tat.checked_sub(self.burst).unwrap_or(now);
        if allowed > now {
            tokio::time::sleep_until(allowed).await;
        }
        *next = Some(tat + self.interval);
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

    #[tokio::test(start_paused = true)]
    async fn the_budget_lets_a_second_go_at_once_then_paces_in_order() {
        let pace = std::sync::Arc::new(Pace::new(5));
        let t0 = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..12u32 {
            let (pace, tx) = (pace.clone(), tx.clone());
            tokio::spawn(async move {
                pace.ready().await;
                let _ = tx.send((i, Instant::now() - t0));
            });
            tokio::task::yield_now().await;
        }
        drop(tx);
        let mut turns = Vec::new();
        while let Some(t) = rx.recv().await {
            turns.push(t);
        }
        let order: Vec<u32> = turns.iter().map(|(i, _)| *i).collect();
        assert_eq!(
            order,
            (0..12).collect::<Vec<_>>(),
            "first come, first served"
        );
        let at = |k: usize| turns[k].1;
        for k in 0..5 {
            assert_eq!(at(k), Duration::ZERO, "a second's worth at once");
        }
        for k in 5..12 {
            assert_eq!(at(k), Duration::from_millis(200) * (k as u32 - 4));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_dropped_takes_no_turn() {
        let pace = Pace::new(1);
        pace.ready().await;
        let t0 = Instant::now();
        // Its turn would come in a second; it gives up after 100 ms.
        let gave_up = tokio::time::timeout(Duration::from_millis(100), pace.ready()).await;
        assert!(gave_up.is_err());
        pace.ready().await;
        assert_eq!(Instant::now() - t0, Duration::from_secs(1));
    }
}
