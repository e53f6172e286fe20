//! How long a request may go unanswered before it counts as failed.
//!
//! The configured time-out is a floor. While answers come slowly (an
//! overloaded host or network) the time-out grows with them, after
//! Jacobson's estimator in TCP, so that slowness is not taken for death.

use std::time::Duration;

/// The time-out grows with slow answers up to this many times the floor.
const MAX_RTO_FACTOR: u32 = 8;

/// Smoothed round trip of answered requests.
#[derive(Debug)]
pub(crate) struct Rtt {
    /// The configured time-out: never less.
    floor: Duration,
    /// Smoothed round trip (none yet: `None`).
    srtt: Option<Duration>,
    /// Smoothed deviation of the round trip.
    rttvar: Duration,
}

impl Rtt {
    /// No samples yet: the time-out is `floor`.
    pub(crate) fn new(floor: Duration) -> Rtt {
        Rtt {
            floor,
            srtt: None,
            rttvar: Duration::ZERO,
        }
    }

    /// The current request time-out.
    pub(crate) fn rto(&self) -> Duration {
        match self.srtt {
            // Twice the smoothed round trip, not TCP's one: a node sees few
            // samples a second, so the estimate lags a slowing host.
            Some(srtt) => {
                (2 * srtt + 4 * self.rttvar).clamp(self.floor, self.floor * MAX_RTO_FACTOR)
            }
            None => self.floor,
        }
    }

    /// Fold one answer's round trip into the estimate.
    pub(crate) fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let err = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + err) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn fast_answers_keep_the_configured_timeout() {
        let mut rtt = Rtt::new(800 * MS);
        assert_eq!(rtt.rto(), 800 * MS);
        for _ in 0..20 {
            rtt.sample(20 * MS);
        }
        assert_eq!(rtt.rto(), 800 * MS);
    }

    #[test]
    fn slow_answers_stretch_the_timeout_up_to_a_cap() {
        let mut rtt = Rtt::new(800 * MS);
        rtt.sample(600 * MS);
        // 2 × 600 + 4 × 300
        assert_eq!(rtt.rto(), 2400 * MS);
        for _ in 0..50 {
            rtt.sample(1500 * MS);
        }
        let rto = rtt.rto();
        assert!(rto > 2900 * MS && rto < 3200 * MS, "{rto:?}");
        for _ in 0..50 {
            rtt.sample(60_000 * MS);
        }
        assert_eq!(rtt.rto(), 800 * MS * MAX_RTO_FACTOR);
    }
}
