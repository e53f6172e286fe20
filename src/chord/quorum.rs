//! In-flight quorum reads and writes: which replicas were asked, which
//! answered, which spare to try next, and when the quorum is reached.
//!
//! Pure bookkeeping over addresses; `node` sends the messages. The replica
//! set of a key is its owner and the next N − 1 *live* successors, so a
//! replica that fails is replaced by the next node of the owner's successor
//! list (a spare).
//!
//! Writes count a spare's acknowledgement (it holds the value and hands it
//! on, like a hinted hand-off). Reads do not: a spare is usually no replica
//! of the key at all and answers "nothing" with full confidence, so R
//! answers that include spares need not meet the W replicas that stored an
//! announce. A read's spares are still asked and merged, but only answers
//! from the first N candidates make its quorum.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use crate::chord::Peer;

/// The replica set in an owner's successor list `list` (owner first): its
/// first `n` distinct addresses.
pub fn replica_set(list: &[Peer], n: usize) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for p in list {
        if !out.contains(&p.addr) {
            out.push(p.addr);
        }
        if out.len() == n {
            break;
        }
    }
    out
}

/// True if N, W, R are a usable combination: every read quorum meets every
/// write quorum (W + R > N) and neither exceeds N.
pub fn quorum_is_consistent(n: usize, w: usize, r: usize) -> bool {
    w >= 1 && r >= 1 && w <= n && r <= n && w + r > n
}

/// What an answer or failure did to the quorum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Nothing decided yet (or already decided before).
    Waiting,
    /// The quorum was just reached (reported once).
    Reached,
    /// The quorum just became impossible (reported once).
    Failed,
}

/// One quorum operation over the successor list of a key.
#[derive(Debug)]
pub struct Quorum {
    /// The owner's successor list: the first `width` are asked, the rest are spares.
    candidates: Vec<SocketAddr>,
    /// Index of the next spare in `candidates`.
    next_spare: usize,
    /// Asked and not answered yet.
    in_flight: BTreeSet<SocketAddr>,
    /// Answered successfully.
    succeeded: BTreeSet<SocketAddr>,
    /// Answers needed (W or R).
    needed: usize,
    /// Set once `Reached` or `Failed` was reported.
    decided: bool,
    /// How many leading candidates are the replica set proper (N, or fewer
    /// on a small ring).
    primaries: usize,
    /// True if a spare's answer counts towards `needed` (writes), false if
    /// only the replica set's answers do (reads).
    spares_count: bool,
}

impl Quorum {
    /// Start a write over `candidates` (owner first, duplicates removed),
    /// asking the first `width` (N). Spares that acknowledge count. Returns
    /// the quorum and the replicas to ask now.
    pub fn start(
        candidates: Vec<SocketAddr>,
        width: usize,
        needed: usize,
    ) -> (Quorum, Vec<SocketAddr>) {
        Quorum::build(candidates, width, needed, true)
    }

    /// Start a read: like [`Quorum::start`], but only answers from the first
    /// `width` candidates count towards `needed`; spares are asked in place
    /// of failed replicas only so that their answers are merged too.
    pub fn start_strict(
        candidates: Vec<SocketAddr>,
        width: usize,
        needed: usize,
    ) -> (Quorum, Vec<SocketAddr>) {
        Quorum::build(candidates, width, needed, false)
    }

    fn build(
        candidates: Vec<SocketAddr>,
        width: usize,
        needed: usize,
        spares_count: bool,
    ) -> (Quorum, Vec<SocketAddr>) {
        let mut seen = BTreeSet::new();
        let candidates: Vec<SocketAddr> =
            candidates.into_iter().filter(|a| seen.insert(*a)).collect();
        let first: Vec<SocketAddr> = candidates.iter().take(width).copied().collect();
        let countable = if spares_count {
            candidates.len()
        } else {
            first.len()
        };
        let q = Quorum {
            next_spare: first.len(),
            in_flight: first.iter().copied().collect(),
            succeeded: BTreeSet::new(),
            needed: needed.min(countable).max(1),
            primaries: first.len(),
            spares_count,
            candidates,
            decided: false,
        };
        (q, first)
    }

    /// True if an answer from `replica` can count towards the quorum.
    fn counts(&self, replica: &SocketAddr) -> bool {
        self.spares_count || self.candidates[..self.primaries].contains(replica)
    }

    /// Answers still able to count: those outstanding from countable replicas.
    fn countable_in_flight(&self) -> usize {
        self.in_flight.iter().filter(|a| self.counts(a)).count()
    }

    /// Report `Failed` once, if the quorum can no longer be reached.
    fn check_impossible(&mut self) -> Progress {
        if !self.decided && self.succeeded.len() + self.countable_in_flight() < self.needed {
            self.decided = true;
            return Progress::Failed;
        }
        Progress::Waiting
    }

    /// The countable replicas that answered so far.
    pub fn succeeded(&self) -> &BTreeSet<SocketAddr> {
        &self.succeeded
    }

    /// True once no answer is outstanding.
    pub fn is_finished(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// `replica` answered well.
    pub fn succeed(&mut self, replica: SocketAddr) -> Progress {
        if !self.in_flight.remove(&replica) {
            return Progress::Waiting;
        }
        if !self.counts(&replica) {
            // A spare's answer is merged by the caller but decides nothing.
            return self.check_impossible();
        }
        self.succeeded.insert(replica);
        if !self.decided && self.succeeded.len() >= self.needed {
            self.decided = true;
            return Progress::Reached;
        }
        Progress::Waiting
    }

    /// `replica` failed (time-out, refusal, not ready). Returns the spare to
    /// ask instead, if any is left, and the progress.
    pub fn fail(&mut self, replica: SocketAddr) -> (Option<SocketAddr>, Progress) {
        if !self.in_flight.remove(&replica) {
            return (None, Progress::Waiting);
        }
        let spare = self.candidates.get(self.next_spare).copied();
        if let Some(s) = spare {
            self.next_spare += 1;
            self.in_flight.insert(s);
        }
        (spare, self.check_impossible())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn consistency_rule() {
        assert!(quorum_is_consistent(3, 2, 2));
        assert!(quorum_is_consistent(1, 1, 1));
        assert!(!quorum_is_consistent(3, 1, 2));
        assert!(!quorum_is_consistent(3, 4, 1));
    }

    #[test]
    fn write_reaches_quorum_once() {
        let (mut q, first) = Quorum::start(vec![a(1), a(2), a(3), a(4)], 3, 2);
        assert_eq!(first, vec![a(1), a(2), a(3)]);
        assert_eq!(q.succeed(a(1)), Progress::Waiting);
        assert_eq!(
            q.succeed(a(1)),
            Progress::Waiting,
            "duplicate answer ignored"
        );
        assert_eq!(q.succeed(a(3)), Progress::Reached);
        assert_eq!(q.succeed(a(2)), Progress::Waiting);
        assert!(q.is_finished());
    }

    #[test]
    fn failure_moves_to_spare_then_fails_when_impossible() {
        let (mut q, _) = Quorum::start(vec![a(1), a(2), a(3), a(4)], 3, 2);
        assert_eq!(q.fail(a(2)), (Some(a(4)), Progress::Waiting));
        assert_eq!(q.fail(a(4)), (None, Progress::Waiting));
        assert_eq!(q.fail(a(1)), (None, Progress::Failed));
        assert_eq!(q.succeed(a(3)), Progress::Waiting);
    }

    #[test]
    fn read_counts_only_the_replica_set() {
        let (mut q, first) = Quorum::start_strict(vec![a(1), a(2), a(3), a(4), a(5)], 3, 2);
        assert_eq!(first, vec![a(1), a(2), a(3)]);
        assert_eq!(q.fail(a(1)), (Some(a(4)), Progress::Waiting));
        assert_eq!(
            q.succeed(a(4)),
            Progress::Waiting,
            "a spare decides nothing"
        );
        assert_eq!(q.fail(a(2)), (Some(a(5)), Progress::Failed));
        assert_eq!(q.succeed(a(3)), Progress::Waiting);
        assert!(
            !q.is_finished(),
            "the spare is still merged when it answers"
        );
        assert_eq!(q.succeed(a(5)), Progress::Waiting);
        assert!(q.is_finished());

        let (mut q, _) = Quorum::start_strict(vec![a(1), a(2), a(3), a(4)], 3, 2);
        assert_eq!(q.fail(a(3)), (Some(a(4)), Progress::Waiting));
        assert_eq!(q.succeed(a(4)), Progress::Waiting);
        assert_eq!(q.succeed(a(1)), Progress::Waiting);
        assert_eq!(q.succeed(a(2)), Progress::Reached);
    }

    #[test]
    fn replica_set_is_the_first_n_distinct() {
        let p = |port| Peer::new(a(port));
        assert_eq!(
            replica_set(&[p(1), p(1), p(2), p(3), p(4)], 3),
            vec![a(1), a(2), a(3)]
        );
        assert_eq!(replica_set(&[p(1), p(2), p(1)], 3), vec![a(1), a(2)]);
    }

    #[test]
    fn small_rings_need_no_more_than_exist() {
        let (mut q, first) = Quorum::start(vec![a(1), a(1)], 3, 2);
        assert_eq!(first, vec![a(1)]);
        assert_eq!(q.succeed(a(1)), Progress::Reached);
    }
}
