//! In-flight quorum reads and writes: which replicas were asked, which
//! answered, which spare to try next, and when the quorum is reached.
//!
//! Pure bookkeeping over addresses; `node` sends the messages. The replica
//! set of a key is its owner and the next N − 1 *live* successors, so a
//! replica that fails is replaced by the next node of the owner's successor
//! list (a spare).

use std::collections::BTreeSet;
use std::net::SocketAddr;

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
}

impl Quorum {
    /// Start over `candidates` (owner first, duplicates removed), asking the
    /// first `width` (N). Returns the quorum and the replicas to ask now.
    pub fn start(
        candidates: Vec<SocketAddr>,
        width: usize,
        needed: usize,
    ) -> (Quorum, Vec<SocketAddr>) {
        let mut seen = BTreeSet::new();
        let candidates: Vec<SocketAddr> =
            candidates.into_iter().filter(|a| seen.insert(*a)).collect();
        let first: Vec<SocketAddr> = candidates.iter().take(width).copied().collect();
        let q = Quorum {
            next_spare: first.len(),
            in_flight: first.iter().copied().collect(),
            succeeded: BTreeSet::new(),
            needed: needed.min(candidates.len()).max(1),
            candidates,
            decided: false,
        };
        (q, first)
    }

    /// The replicas that answered so far.
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
        if !self.decided && self.succeeded.len() + self.in_flight.len() < self.needed {
            self.decided = true;
            return (spare, Progress::Failed);
        }
        (spare, Progress::Waiting)
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
    fn small_rings_need_no_more_than_exist() {
        let (mut q, first) = Quorum::start(vec![a(1), a(1)], 3, 2);
        assert_eq!(first, vec![a(1)]);
        assert_eq!(q.succeed(a(1)), Progress::Reached);
    }
}
