//! Self-lookups: a rescue (through everyone we know, for a silent only
//! successor) or a periodic look through a past contact (which merges
//! rings that a partition had split) finds a successor list; its head is
//! checked alive before it is adopted.

use std::time::Instant;

use super::Neighbours;
use crate::chord::message::Message;
use crate::chord::rpc::{RingRpc, Rpcs};
use crate::chord::{Peer, Phase};

/// Rescues in a row that found only nodes behind our predecessor while the
/// ring still named our silent successor, before one of them is taken.
/// Each rescue follows two unanswered stabilize requests, so a live
/// successor is given up only after eight lost answers in a row; a dead
/// one costs a lone pair of survivors three more rescues.
pub(super) const BARREN_RESCUES: u32 = 3;

impl Neighbours {
    /// A self-lookup (`rescue`: through everyone, for a silent successor;
    /// else through a past contact) found the successor list `list` of
    /// whoever precedes our id. Its head is checked alive before adoption.
    pub(crate) fn found_self(
        &mut self,
        now: Instant,
        rescue: bool,
        list: Vec<Peer>,
        rpcs: &mut Rpcs,
    ) {
        // The list may start with us when that ring already knows us. A
        // rescue skips the silent successor it is replacing.
        let silent = if rescue && self.succ_suspect {
            self.succs.first().copied()
        } else {
            None
        };
        let named_silent = silent.is_some_and(|x| list.contains(&x));
        let mut list: Vec<Peer> = list
            .into_iter()
            .filter(|p| *p != self.me && Some(*p) != silent)
            .collect();
        if silent.is_some() {
            // A replacement at or behind our predecessor would skip the
            // whole ring: our predecessor and we would make a ring of our
            // own. While the rest of the ring still names the silent
            // successor (it may only have lost two answers), keep it for a
            // few more rescues; only then take what the ring offers, or
            // stand alone. (History seed 3000464: two lost stabilize
            // requests right after a join, and the joiner took its
            // predecessor for its successor: a second ring of two.)
            let ahead = self.ahead_of_predecessor(&list);
            if ahead > 0 {
                list.truncate(ahead);
            } else if named_silent && self.barren_rescues < BARREN_RESCUES {
                self.barren_rescues += 1;
                tracing::debug!(me = ?self.me.id, "a rescue found only nodes behind us; keeping the silent successor");
                return;
            }
        }
        let Some(&s) = list.first() else {
            if silent.is_some() {
                self.become_alone();
            }
            return;
        };
        let closer = self
            .succs
            .first()
            .is_none_or(|f| s.id.in_open(self.me.id, f.id));
        if (closer || self.succ_suspect) && self.phase == Phase::Member {
            let kind = RingRpc::MergeCheck { list };
            rpcs.request(now, s, |req| Message::Ping { req }, kind);
        }
    }

    /// How many leading entries of `list` lie strictly between us and our
    /// predecessor, going round the ring (all of them if we know none).
    fn ahead_of_predecessor(&self, list: &[Peer]) -> usize {
        let Some(pred) = self.predecessor() else {
            return list.len();
        };
        list.iter()
            .position(|p| *p == pred || p.id.in_open(pred.id, self.me.id))
            .unwrap_or(list.len())
    }

    /// A rescue found nobody: give up the silent successor.
    pub(crate) fn rescue_failed(&mut self) {
        if self.succ_suspect {
            self.become_alone();
        }
    }

    /// A self-lookup found `head` (now checked alive) and its successor list.
    pub(super) fn adopt_found(&mut self, head: Peer, list: Vec<Peer>) {
        if self.succ_suspect {
            tracing::debug!(me = ?self.me.id, new = ?head.id, "replaced a silent successor");
            let mut list = list;
            if list.first() != Some(&head) {
                list.insert(0, head);
            }
            self.succs = self.ordered_list(list);
            self.succ_suspect = false;
            self.barren_rescues = 0;
        } else if self
            .succs
            .first()
            .is_none_or(|s| head.id.in_open(self.me.id, s.id))
        {
            tracing::debug!(me = ?self.me.id, new = ?head.id, "found a closer successor");
            self.succs.insert(0, head);
            self.succs.truncate(self.list_len);
        }
    }

    /// Nobody knows a live successor but the silent one: drop it and stand
    /// alone. Stabilize then takes our predecessor as successor and walks
    /// back round the ring to the true successor, one round trip per node.
    fn become_alone(&mut self) {
        tracing::debug!(me = ?self.me.id, "no live successor known; alone");
        self.succs.clear();
        self.succ_suspect = false;
    }
}
