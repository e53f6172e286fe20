//! Joining (Zave): the lookup of our own id found some node's view of our
//! successors; its first entry, once it answers a `GetState`, becomes our
//! successor, and we copy it and its successor list (r entries).
//!
//! The list found is not copied as it is: it was cut from the answering
//! node's successor list, possibly to as few as N entries, and none of
//! them need be alive (seed 3000282 of the churn simulation: a joiner
//! adopted three dead nodes and had no live successor). A head that does
//! not answer is asked once more, then the join starts over with a new
//! lookup: the later entries are no safe successor, since on a small ring
//! the list wraps round to nodes before us (seed 2000028 of the kill
//! simulation: a joiner that took the second entry made a ring of two).
//!
//! Nor is the head taken on the lookup's word: its own predecessor must
//! precede us (seed 2005782 of the kill simulation: the lookup had given up
//! on a silent node and answered with the entry after it, a node behind the
//! joiner, which joined it and made a ring of two). A head that names a
//! predecessor between us and it is not our successor, and the join starts
//! over with a new lookup.

use std::net::SocketAddr;
use std::time::Instant;

use super::{Neighbours, Report};
use crate::chord::message::Message;
use crate::chord::rpc::{Pending, RingRpc, Rpcs};
use crate::chord::{Peer, Phase};

impl Neighbours {
    /// The lookup of our own id found `list` (the owner of our id first):
    /// ask its first entry for its state (twice if need be), to join
    /// through it.
    pub(crate) fn begin_join(&mut self, now: Instant, list: Vec<Peer>, rpcs: &mut Rpcs) {
        if self.phase != Phase::Joining || self.checking_join(rpcs) {
            return;
        }
        // A ring that still lists a former incarnation of us lists us first.
        if let Some(head) = list.into_iter().find(|p| *p != self.me) {
            self.check_join_head(now, vec![head, head], rpcs);
        }
    }

    /// True while a would-be successor is being asked for its state.
    pub(crate) fn checking_join(&self, rpcs: &Rpcs) -> bool {
        rpcs.any(|_, kind| matches!(kind, Pending::Ring(RingRpc::JoinCheck { .. })))
    }

    /// Ask the first of `candidates` for its state; the rest are asked if
    /// it does not answer. With none left, the join starts over on the
    /// next tick.
    pub(super) fn check_join_head(&mut self, now: Instant, candidates: Vec<Peer>, rpcs: &mut Rpcs) {
        if self.phase != Phase::Joining {
            return;
        }
        let mut candidates = candidates.into_iter();
        let Some(head) = candidates.next() else {
            return;
        };
        let rest = candidates.collect();
        rpcs.request(
            now,
            head,
            |req| Message::GetState { req },
            RingRpc::JoinCheck { rest },
        );
    }

    /// `head` answered our join check with its predecessor `pred` and
    /// successor list `succs`: adopt `head` and its list if it is our
    /// successor in its own view.
    pub(super) fn on_join_state(
        &mut self,
        head: Peer,
        (pred, succs): (Option<SocketAddr>, &[SocketAddr]),
        rest: Vec<Peer>,
        now: Instant,
        rpcs: &mut Rpcs,
    ) -> Option<Report> {
        let me = self.me;
        let between = pred
            .map(Peer::new)
            .filter(|p| *p != head && *p != me)
            .is_some_and(|p| !me.id.in_open_closed(p.id, head.id));
        if between {
            // Someone lies between us and the head: not our successor.
            // Start over on the next tick.
            return None;
        }
        let mut list = vec![head];
        list.extend(succs.iter().map(|a| Peer::new(*a)));
        match self.join(list) {
            Some(first) => Some(Report::Joined(first)),
            None => {
                // Not joining any more, or an unusable answer (the head is
                // us): try the rest of the list.
                self.check_join_head(now, rest, rpcs);
                None
            }
        }
    }
}
