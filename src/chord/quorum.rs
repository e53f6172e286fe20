//! In-flight quorum reads and writes: which replicas were asked, which
//! answered, which to ask again or instead, and when the quorum is reached.
//!
//! Pure bookkeeping over addresses; `node` sends the messages. The replica
//! set of a key is its owner and the next N − 1 *live* successors: the
//! first N candidates of the owner's successor list as a lookup found it
//! (the primaries). The rest are spares.
//!
//! Only the primaries' answers make a quorum, for writes as for reads. A
//! spare is usually no replica of the key at all: a write it acknowledges
//! need not be on any replica a later read asks, and a read it answers
//! "nothing" need not meet the W replicas that stored an announce. Spares
//! are still written (a hinted hand-off: they push what they hold on to
//! the replica set) and their read answers merged, but decide nothing.
//!
//! A write anchored at the key's owner (see `ops::anchor`) also needs the
//! owner's own acknowledgement among its W.
//!
//! A primary that does not answer is asked once more (the anchor twice
//! more) before the operation gives up on it (a lost message is not a dead
//! node); one that answers
//! "no" (a refusal, or not ready) is not asked again. Either way a spare is
//! asked in its place.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use crate::chord::Peer;

/// Requests to one primary before an operation gives up on it.
const TRIES_PER_PRIMARY: usize = 2;

/// Requests to the anchor (the owner, which has just answered the
/// anchoring) before an anchored operation gives up on it: one more than a
/// primary gets, since losing it fails the whole write. Two lost messages
/// in a row were enough to fail an announce in a steady ring (history seed
/// 6000691, 0.5 % of messages dropped).
const TRIES_PER_ANCHOR: usize = 3;

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
    /// The owner's successor list: the first `primaries` are asked, the
    /// rest are spares.
    candidates: Vec<SocketAddr>,
    /// How many leading candidates are the replica set proper (N, or fewer
    /// on a small ring): only their answers count.
    primaries: usize,
    /// Index of the next spare in `candidates`.
    next_spare: usize,
    /// Asked and not answered yet.
    in_flight: BTreeSet<SocketAddr>,
    /// Primaries whose request went unanswered, and how often it was
    /// sent again.
    retried: BTreeMap<SocketAddr, usize>,
    /// Primaries that answered successfully.
    succeeded: BTreeSet<SocketAddr>,
    /// Answers needed (W or R).
    needed: usize,
    /// The primary whose answer is one of those needed, if any (the owner).
    anchor: Option<SocketAddr>,
    /// Set once `Reached` or `Failed` was reported.
    decided: bool,
}

impl Quorum {
    /// Start an operation over `candidates` (owner first, duplicates
    /// removed) that needs `needed` of the first `width` (N) to answer well.
    /// Returns the quorum and the replicas to ask now.
    pub fn start(
        candidates: Vec<SocketAddr>,
        width: usize,
        needed: usize,
    ) -> (Quorum, Vec<SocketAddr>) {
        Quorum::build(candidates, width, needed, false)
    }

    /// Like [`Quorum::start`], but the first candidate (the owner) must be
    /// one of those that answer well.
    pub fn start_anchored(
        candidates: Vec<SocketAddr>,
        width: usize,
        needed: usize,
    ) -> (Quorum, Vec<SocketAddr>) {
        Quorum::build(candidates, width, needed, true)
    }

    fn build(
        candidates: Vec<SocketAddr>,
        width: usize,
        needed: usize,
        anchored: bool,
    ) -> (Quorum, Vec<SocketAddr>) {
        let mut seen = BTreeSet::new();
        let candidates: Vec<SocketAddr> =
            candidates.into_iter().filter(|a| seen.insert(*a)).collect();
        let first: Vec<SocketAddr> = candidates.iter().take(width).copied().collect();
        let q = Quorum {
            primaries: first.len(),
            next_spare: first.len(),
            in_flight: first.iter().copied().collect(),
            retried: BTreeMap::new(),
            succeeded: BTreeSet::new(),
            needed: needed.min(first.len()).max(1),
            anchor: first.first().copied().filter(|_| anchored),
            candidates,
            decided: false,
        };
        (q, first)
    }

    /// True if `replica` is one of the replica set proper.
    fn is_primary(&self, replica: &SocketAddr) -> bool {
        self.candidates[..self.primaries].contains(replica)
    }

    /// True once the anchor (if any) answered well.
    fn anchor_done(&self) -> bool {
        self.anchor.is_none_or(|a| self.succeeded.contains(&a))
    }

    /// Report `Failed` once, if the quorum can no longer be reached.
    fn check_impossible(&mut self) -> Progress {
        let countable = self.in_flight.iter().filter(|a| self.is_primary(a)).count();
        let anchor_lost = self
            .anchor
            .is_some_and(|a| !self.succeeded.contains(&a) && !self.in_flight.contains(&a));
        if !self.decided && (self.succeeded.len() + countable < self.needed || anchor_lost) {
            self.decided = true;
            return Progress::Failed;
        }
        Progress::Waiting
    }

    /// The primaries that answered well so far.
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
        if !self.is_primary(&replica) {
            // A spare's answer is merged by the caller but decides nothing.
            return self.check_impossible();
        }
        self.succeeded.insert(replica);
        if !self.decided && self.succeeded.len() >= self.needed && self.anchor_done() {
            self.decided = true;
            return Progress::Reached;
        }
        Progress::Waiting
    }

    /// `replica` answered, but not well (a refusal, or not ready): it is
    /// not asked again. Returns the spare to ask instead, if any is left,
    /// and the progress.
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

    /// `replica` did not answer (time-out, unreachable). A primary is asked
    /// again, once; after that, or for a spare, it is given up as in
    /// [`Quorum::fail`]. Returns whom to ask now (the same replica again,
    /// or a spare), if anyone, and the progress.
    pub fn lose(&mut self, replica: SocketAddr) -> (Option<SocketAddr>, Progress) {
        let tries = 1 + self.retried.get(&replica).copied().unwrap_or(0);
        let limit = if self.anchor == Some(replica) {
            TRIES_PER_ANCHOR
        } else {
            TRIES_PER_PRIMARY
        };
        if self.is_primary(&replica) && tries < limit && self.in_flight.contains(&replica) {
            *self.retried.entry(replica).or_default() += 1;
            return (Some(replica), Progress::Waiting);
        }
        self.fail(replica)
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
        let (mut q, first) = Quorum::start(vec![a(1), a(2), a(3), a(4), a(5)], 3, 2);
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

        let (mut q, _) = Quorum::start(vec![a(1), a(2), a(3), a(4)], 3, 2);
        assert_eq!(q.fail(a(3)), (Some(a(4)), Progress::Waiting));
        assert_eq!(q.succeed(a(4)), Progress::Waiting);
        assert_eq!(q.succeed(a(1)), Progress::Waiting);
        assert_eq!(q.succeed(a(2)), Progress::Reached);
    }

    #[test]
    fn spares_never_make_a_write() {
        // Seed 5000338 of the announce history: one primary stored the
        // announce, the other two went unanswered, and two spares (which
        // the next reader does not ask) acknowledged it.
        let (mut q, _) = Quorum::start(vec![a(1), a(2), a(3), a(4), a(5)], 3, 2);
        assert_eq!(q.succeed(a(3)), Progress::Waiting);
        assert_eq!(q.lose(a(1)), (Some(a(1)), Progress::Waiting), "again");
        assert_eq!(q.lose(a(2)), (Some(a(2)), Progress::Waiting), "again");
        assert_eq!(q.lose(a(1)), (Some(a(4)), Progress::Waiting));
        assert_eq!(q.succeed(a(4)), Progress::Waiting, "a spare");
        assert_eq!(q.lose(a(2)), (Some(a(5)), Progress::Failed));
        assert_eq!(q.succeed(a(5)), Progress::Waiting);
        assert_eq!(q.succeeded().len(), 1);
        assert!(q.is_finished());
    }

    #[test]
    fn a_silent_primary_is_asked_once_more_a_spare_is_not() {
        let (mut q, _) = Quorum::start(vec![a(1), a(2), a(3), a(4), a(5)], 3, 2);
        assert_eq!(q.lose(a(1)), (Some(a(1)), Progress::Waiting));
        assert_eq!(q.succeed(a(1)), Progress::Waiting, "the retry counts");
        assert_eq!(q.lose(a(2)), (Some(a(2)), Progress::Waiting));
        assert_eq!(q.lose(a(2)), (Some(a(4)), Progress::Waiting));
        assert_eq!(q.lose(a(4)), (Some(a(5)), Progress::Waiting), "no retry");
        assert_eq!(q.lose(a(9)), (None, Progress::Waiting), "never asked");
        assert_eq!(q.succeed(a(3)), Progress::Reached);
    }

    #[test]
    fn an_anchored_write_needs_the_owner() {
        let (mut q, _) = Quorum::start_anchored(vec![a(1), a(2), a(3), a(4)], 3, 2);
        assert_eq!(q.succeed(a(2)), Progress::Waiting);
        assert_eq!(q.succeed(a(3)), Progress::Waiting, "two, but not the owner");
        assert_eq!(q.lose(a(1)), (Some(a(1)), Progress::Waiting), "again");
        assert_eq!(q.lose(a(1)), (Some(a(1)), Progress::Waiting), "and again");
        assert_eq!(q.succeed(a(1)), Progress::Reached);

        let (mut q, _) = Quorum::start_anchored(vec![a(1), a(2), a(3), a(4)], 3, 2);
        assert_eq!(q.succeed(a(2)), Progress::Waiting);
        assert_eq!(q.succeed(a(3)), Progress::Waiting);
        for _ in 1..TRIES_PER_ANCHOR {
            assert_eq!(q.lose(a(1)), (Some(a(1)), Progress::Waiting));
        }
        assert_eq!(
            q.lose(a(1)),
            (Some(a(4)), Progress::Failed),
            "the owner stayed silent"
        );

        let (mut q, _) = Quorum::start_anchored(vec![a(1), a(2), a(3), a(4)], 3, 2);
        assert_eq!(q.succeed(a(2)), Progress::Waiting);
        assert_eq!(
            q.fail(a(1)),
            (Some(a(4)), Progress::Failed),
            "owner refused"
        );
        assert_eq!(q.succeed(a(3)), Progress::Waiting, "decided once");
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
