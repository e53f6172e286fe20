//! Peers whose incoming connections are refused: those that sent data
//! that failed its hash check (for good) and those that broke the protocol
//! (for a while that doubles with each offence, as their dials wait).
//!
//! A peer is known by its IP address and the peer id of its handshake,
//! both read before we answer: an incoming connection comes from a new
//! port each time, so its socket address says nothing, and a whole IP
//! would take in every peer behind one NAT (or on one loopback).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

/// First refusal of a protocol breaker; it doubles with each further
/// offence up to [`MAX_REFUSAL`] (the same as its dial back-off).
pub(super) const FIRST_REFUSAL: Duration = Duration::from_secs(60);
/// Longest refusal of a protocol breaker.
const MAX_REFUSAL: Duration = Duration::from_secs(3600);
/// Peers remembered at most; past this, lapsed refusals are forgotten
/// first, then the one that ends soonest.
const MAX_REMEMBERED: usize = 4096;

/// One refused peer.
#[derive(Clone, Copy, Debug)]
struct Refusal {
    /// Refused until then (None: for good).
    until: Option<Instant>,
    /// Protocol violations so far.
    strikes: u32,
}

/// The refused peers of one torrent.
#[derive(Debug, Default)]
pub(super) struct Refusals {
    by_peer: HashMap<(IpAddr, [u8; 20]), Refusal>,
}

impl Refusals {
    /// True when a connection from `ip` with `peer_id` is refused at `now`.
    pub(super) fn refuses(&self, ip: IpAddr, peer_id: [u8; 20], now: Instant) -> bool {
        self.by_peer
            .get(&(ip, peer_id))
            .is_some_and(|r| r.until.is_none_or(|t| now < t))
    }

    /// The peer broke the protocol at `now`; returns how long it is refused.
    pub(super) fn broke_protocol(
        &mut self,
        ip: IpAddr,
        peer_id: [u8; 20],
        now: Instant,
    ) -> Duration {
        self.make_room(now);
        let r = self.by_peer.entry((ip, peer_id)).or_insert(Refusal {
            until: Some(now),
            strikes: 0,
        });
        r.strikes += 1;
        let wait = (FIRST_REFUSAL * (1 << (r.strikes - 1).min(6))).min(MAX_REFUSAL);
        if let Some(t) = &mut r.until {
            *t = now + wait;
        }
        wait
    }

    /// The peer sent data that failed its hash check: refused for good.
    pub(super) fn ban(&mut self, ip: IpAddr, peer_id: [u8; 20], now: Instant) {
        self.make_room(now);
        let r = self.by_peer.entry((ip, peer_id)).or_insert(Refusal {
            until: None,
            strikes: 0,
        });
        r.until = None;
    }

    /// Keeps the map under its cap.
    fn make_room(&mut self, now: Instant) {
        if self.by_peer.len() < MAX_REMEMBERED {
            return;
        }
        self.by_peer.retain(|_, r| r.until.is_none_or(|t| now < t));
        if self.by_peer.len() >= MAX_REMEMBERED {
            let soonest = (self.by_peer.iter())
                .filter_map(|(k, r)| r.until.map(|t| (t, *k)))
                .min();
            if let Some((_, k)) = soonest {
                self.by_peer.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breakers_are_refused_for_a_doubling_while_and_liars_for_good() {
        let now = Instant::now();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut r = Refusals::default();
        assert!(!r.refuses(ip, [1; 20], now));
        assert_eq!(r.broke_protocol(ip, [1; 20], now), FIRST_REFUSAL);
        assert!(r.refuses(ip, [1; 20], now + Duration::from_secs(59)));
        assert!(!r.refuses(ip, [2; 20], now), "another peer id on that IP");
        assert!(!r.refuses(ip, [1; 20], now + FIRST_REFUSAL));
        let later = now + FIRST_REFUSAL;
        assert_eq!(r.broke_protocol(ip, [1; 20], later), 2 * FIRST_REFUSAL);
        r.ban(ip, [3; 20], now);
        assert!(r.refuses(ip, [3; 20], now + Duration::from_secs(1_000_000)));
    }
}
