//! Asking the source: a replica cannot tell a node's own write from a
//! relay (hand-off, anti-entropy, read repair, a healed partition's merge
//! all carry other sources' swarm entries), so a relayed entry for a third
//! party's address is kept, and that address is asked whether it serves
//! the info-hash (the driver does the asking: see `Output::Probe`).
//!
//! A peer found gone is dropped and denied until its entry would have
//! expired, so no relay can bring it back (the store keeps the denials,
//! as every merge passes there); only the peer's own IP address can (its
//! next announce). A peer that serves, or that does not answer
//! (a firewall), keeps its entry: silence never costs an honest peer its
//! announce. Probes are bounded three ways, so a relaying node cannot turn
//! replicas into an amplifier: a few per target IP address per window, at
//! most one per (peer, info-hash) for the life of an entry, and a bound on
//! probes in flight.
//!
//! Pure state like the rest of the core: no clock, no randomness, and
//! nothing here changes which ring messages a node sends.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::config::ChordConfig;
use crate::id::Id;

/// What a probe of a peer for an info-hash found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It answered a BitTorrent handshake for that info-hash.
    Serving,
    /// No answer in time: a firewall, a loaded host, a lost packet. Keeps.
    Silent,
    /// Refused the connection, closed it without a handshake, or answered
    /// for another info-hash: nobody there shares it.
    Gone,
}

/// One probe's subject: the peer, and the info-hash it is listed under.
type Subject = (SocketAddr, Id);

/// The probes of one node: asked, answered, and per target address.
#[derive(Debug)]
pub(crate) struct Probes {
    /// Most probes of one target IP per `window`.
    per_ip: u32,
    /// The window of `per_ip`.
    window: Duration,
    /// Most probes in flight.
    max_outstanding: usize,
    /// Most verdicts (and target windows) remembered.
    max_verdicts: usize,
    /// How long a verdict stands: the longest an entry lives.
    remember: Duration,
    /// How long a probe in flight waits for its verdict before it is
    /// forgotten (as if silent, but not remembered).
    patience: Duration,
    /// Probes asked of the driver → when they are forgotten.
    outstanding: BTreeMap<Subject, Instant>,
    /// Verdicts: subject → until when it stands.
    verdicts: BTreeMap<Subject, Instant>,
    /// The verdicts by expiry, for pruning in order.
    by_expiry: BTreeSet<(Instant, Subject)>,
    /// Target IP → (start of its window, probes in it).
    windows: BTreeMap<IpAddr, (Instant, u32)>,
}

impl Probes {
    /// No probes yet, with the bounds of `config`.
    pub(crate) fn new(config: &ChordConfig) -> Probes {
        Probes {
            per_ip: config.probes_per_ip,
            window: config.probe_window,
            max_outstanding: config.max_outstanding_probes,
            max_verdicts: config.max_probe_verdicts,
            remember: config.announce_ttl,
            patience: config.probe_timeout * 2,
            outstanding: BTreeMap::new(),
            verdicts: BTreeMap::new(),
            by_expiry: BTreeSet::new(),
            windows: BTreeMap::new(),
        }
    }

    /// Whether to probe `peer` for `key` at `now` (its relayed entry is
    /// new here); if so, the probe is counted as asked. No when one is in
    /// flight or a verdict stands, when too many are in flight, or when
    /// the target's IP had its share of this window.
    pub(crate) fn want(&mut self, now: Instant, peer: SocketAddr, key: Id) -> bool {
        self.prune(now);
        let subject = (peer, key);
        if self.outstanding.contains_key(&subject) || self.verdicts.contains_key(&subject) {
            return false;
        }
        if self.outstanding.len() >= self.max_outstanding {
            return false;
        }
        let ip = peer.ip().to_canonical();
        if !self.windows.contains_key(&ip) && self.windows.len() >= self.max_verdicts {
            return false;
        }
        let (start, count) = self.windows.entry(ip).or_insert((now, 0));
        if *start + self.window <= now {
            (*start, *count) = (now, 0);
        }
        if *count >= self.per_ip {
            return false;
        }
        *count += 1;
        self.outstanding.insert(subject, now + self.patience);
        true
    }

    /// The verdict on a probe asked of `peer` for `key`. Returns true if
    /// its entry must go (the store then denies it: see `Store::deny`). A verdict on a probe not in flight (never asked,
    /// or forgotten) is ignored.
    pub(crate) fn verdict(&mut self, now: Instant, peer: SocketAddr, key: Id, v: Verdict) -> bool {
        self.prune(now);
        let subject = (peer, key);
        if self.outstanding.remove(&subject).is_none() {
            return false;
        }
        while self.verdicts.len() >= self.max_verdicts {
            let Some((until, oldest)) = self.by_expiry.pop_first() else {
                break;
            };
            self.verdicts.remove(&oldest);
            debug_assert!(until >= now);
        }
        let until = now + self.remember;
        self.verdicts.insert(subject, until);
        self.by_expiry.insert((until, subject));
        v == Verdict::Gone
    }

    /// Probes in flight (tests and diagnostics).
    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Forget what has run out by `now`.
    fn prune(&mut self, now: Instant) {
        self.outstanding.retain(|_, until| *until > now);
        while let Some(&(until, subject)) = self.by_expiry.first() {
            if until > now {
                break;
            }
            self.by_expiry.pop_first();
            self.verdicts.remove(&subject);
        }
        let window = self.window;
        self.windows.retain(|_, (start, _)| *start + window > now);
    }
}

#[cfg(test)]
mod tests;
