//! What a node counts for the process's `/metrics`: lookups and their
//! hops, seen by the driver as questions and answers pass, and quorum
//! reads and writes by result, seen by the handle as operations end, and
//! probes of relayed swarm entries by verdict, seen by the driver.
//!
//! The counters share their values across clones (they are atomics behind
//! an `Arc`), so the handle and the driver count into the same ones and the
//! HTTP room reads them at each scrape.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::chord::probes::Verdict;
use crate::chord::ChordError;

/// One node's counters.
#[derive(Clone, Debug, Default)]
pub struct RingMetrics {
    /// Lookups that found their key's owner over the network (a `Found`
    /// answer), whatever asked: a client operation, a finger, a join.
    pub lookups: Counter,
    /// Questions asked by lookups (`FindSuccessor` sent): one per hop, so
    /// hops per lookup is this over `lookups`.
    pub lookup_hops: Counter,
    /// Client quorum operations that ended, by kind and result.
    pub quorum: Family<QuorumLabels, Counter>,
    /// Probes of peers named by relayed swarm entries, by verdict, counted
    /// once the node has applied the verdict.
    pub probes: Family<ProbeLabels, Counter>,
}

/// The label of a probe's counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    /// `serving`, `silent` or `gone`.
    pub verdict: &'static str,
}

/// The labels of a quorum operation's counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QuorumLabels {
    /// `read` (a swarm-list lookup) or `write` (an announce or a removal).
    pub op: &'static str,
    /// `ok`, or what went wrong.
    pub result: &'static str,
}

impl RingMetrics {
    /// Counts a probe's verdict.
    pub fn probed(&self, verdict: Verdict) {
        let verdict = match verdict {
            Verdict::Serving => "serving",
            Verdict::Silent => "silent",
            Verdict::Gone => "gone",
        };
        self.probes.get_or_create(&ProbeLabels { verdict }).inc();
    }

    /// Probes that ended with `verdict` so far.
    pub fn probes(&self, verdict: &'static str) -> u64 {
        self.probes.get_or_create(&ProbeLabels { verdict }).get()
    }

    /// Counts a quorum read (`write` false) or write that ended with `result`.
    pub fn quorum<T>(&self, write: bool, result: &Result<T, ChordError>) {
        let result = match result {
            Ok(_) => "ok",
            Err(ChordError::QuorumFailed { .. }) => "quorum_failed",
            Err(ChordError::LookupFailed { .. }) => "lookup_failed",
            Err(ChordError::NotJoined) => "not_joined",
            Err(ChordError::Shutdown) => "shutdown",
            Err(_) => "error",
        };
        let op = if write { "write" } else { "read" };
        self.quorum
            .get_or_create(&QuorumLabels { op, result })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_results_are_counted_by_kind() {
        let m = RingMetrics::default();
        let clone = m.clone();
        clone.quorum::<()>(true, &Ok(()));
        clone.quorum::<()>(true, &Err(ChordError::QuorumFailed { got: 1, needed: 2 }));
        m.quorum::<()>(false, &Ok(()));
        let count = |op, result| m.quorum.get_or_create(&QuorumLabels { op, result }).get();
        assert_eq!(count("write", "ok"), 1);
        assert_eq!(count("write", "quorum_failed"), 1);
        assert_eq!(count("read", "ok"), 1);
        assert_eq!(count("read", "quorum_failed"), 0);
    }
}
