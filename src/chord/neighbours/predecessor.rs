//! The predecessor pointer and its liveness checks (Zave's rectify): a
//! notifier is taken if it lies between the predecessor and us, or once
//! the predecessor has missed enough checks.

use std::time::Instant;

use super::MISSES_TO_DEATH;
use crate::chord::message::Message;
use crate::chord::rpc::{Pending, RingRpc, Rpcs};
use crate::chord::Peer;

/// Our predecessor, as far as we know.
#[derive(Debug)]
pub(super) struct Predecessor {
    /// This node.
    me: Peer,
    /// The predecessor, if known.
    pred: Option<Peer>,
    /// Consecutive unanswered liveness checks of it.
    misses: u32,
}

impl Predecessor {
    /// None known yet.
    pub(super) fn new(me: Peer) -> Predecessor {
        Predecessor {
            me,
            pred: None,
            misses: 0,
        }
    }

    /// The predecessor, if known.
    pub(super) fn get(&self) -> Option<Peer> {
        self.pred
    }

    /// `n` (alive: it just spoke) believes it is our predecessor.
    pub(super) fn notified(&mut self, now: Instant, n: Peer, rpcs: &mut Rpcs) {
        match self.pred {
            None => self.pred = Some(n),
            Some(p) if p == n => {}
            Some(p) if n.id.in_open(p.id, self.me.id) => self.pred = Some(n),
            Some(_) => self.check(now, Some(n), rpcs),
        }
    }

    /// Ping the predecessor to check it is alive, unless a check is already
    /// under way; `notifier` takes its place if it turns out dead.
    pub(super) fn check(&self, now: Instant, notifier: Option<Peer>, rpcs: &mut Rpcs) {
        let Some(p) = self.pred else {
            return;
        };
        let checking = rpcs.any(|_, kind| matches!(kind, Pending::Ring(RingRpc::PredCheck { .. })));
        if !checking {
            let kind = RingRpc::PredCheck { notifier };
            rpcs.request(now, p, |req| Message::Ping { req }, kind);
        }
    }

    /// The predecessor answered its check.
    pub(super) fn on_alive(&mut self) {
        self.misses = 0;
    }

    /// The check of `dead` went unanswered: ask again, or give its place
    /// to `notifier` once it has missed enough.
    pub(super) fn check_failed(
        &mut self,
        now: Instant,
        dead: Peer,
        notifier: Option<Peer>,
        rpcs: &mut Rpcs,
    ) {
        if self.pred != Some(dead) {
            return;
        }
        self.misses += 1;
        if self.misses < MISSES_TO_DEATH {
            let kind = RingRpc::PredCheck { notifier };
            rpcs.request(now, dead, |req| Message::Ping { req }, kind);
        } else {
            self.misses = 0;
            self.pred = notifier;
        }
    }
}
