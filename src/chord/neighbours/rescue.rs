//! Self-lookups: a rescue (through everyone we know, for a silent only
//! successor) or a periodic look through a past contact (which merges
//! rings that a partition had split) finds a successor list; its head is
//! checked alive before it is adopted.

use std::time::Instant;

use super::Neighbours;
use crate::chord::message::Message;
use crate::chord::rpc::{RingRpc, Rpcs};
use crate::chord::{Peer, Phase};

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
        let list: Vec<Peer> = list
            .into_iter()
            .filter(|p| *p != self.me && Some(*p) != silent)
            .collect();
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
