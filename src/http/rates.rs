//! Download and upload rates for the JSON API, from the byte counters a
//! torrent publishes: the difference over the last few seconds.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Rates are averaged over this much recent time.
const WINDOW: Duration = Duration::from_secs(5);
/// Samples closer together than this are not kept (a page polling fast
/// must not grow the queue).
const MIN_GAP: Duration = Duration::from_millis(250);

/// Recent `(when, downloaded, uploaded)` samples of one torrent.
#[derive(Debug, Default)]
pub struct RateMeter {
    /// Oldest first, spanning at most [`WINDOW`].
    samples: VecDeque<(Instant, u64, u64)>,
}

impl RateMeter {
    /// Records the counters as of `now`; returns (down, up) in bytes per
    /// second over the window (zero until two samples are apart).
    pub fn sample(&mut self, now: Instant, downloaded: u64, uploaded: u64) -> (u64, u64) {
        while self
            .samples
            .front()
            .is_some_and(|&(t, ..)| now.saturating_duration_since(t) > WINDOW)
            && self.samples.len() > 1
        {
            self.samples.pop_front();
        }
        let rates = match self.samples.front() {
            Some(&(t, down, up)) if now > t => {
                let secs = now.duration_since(t).as_secs_f64();
                let per_sec = |now: u64, then: u64| (now.saturating_sub(then) as f64 / secs) as u64;
                (per_sec(downloaded, down), per_sec(uploaded, up))
            }
            _ => (0, 0),
        };
        let far_enough = self
            .samples
            .back()
            .is_none_or(|&(t, ..)| now.saturating_duration_since(t) >= MIN_GAP);
        if far_enough {
            self.samples.push_back((now, downloaded, uploaded));
        }
        rates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_over_the_recent_window() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut m = RateMeter::default();
        assert_eq!(m.sample(at(0), 0, 0), (0, 0));
        assert_eq!(m.sample(at(1000), 1000, 500), (1000, 500));
        assert_eq!(m.sample(at(2000), 4000, 500), (2000, 250));
        // Polled very often: the queue does not grow.
        for ms in 2001..2100 {
            m.sample(at(ms), 4000, 500);
        }
        assert!(m.samples.len() <= 3, "{}", m.samples.len());
        // Old samples fall out: only the last 5 s count.
        assert_eq!(m.sample(at(7500), 4000, 500), (0, 0));
    }
}
