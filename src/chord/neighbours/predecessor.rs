//! The predecessor pointer and its liveness checks (Zave's rectify): a
//! notifier is taken if it lies between the predecessor and us, or once
//! the predecessor has missed enough checks.

use std::time::Instant;

use super::SENDS_TO_DEATH;
use crate::chord::message::Message;
use crate::chord::rpc::{Failure, Pending, RingRpc, Rpcs};
use crate::chord::Peer;

/// Our predecessor, as far as we know.
#[derive(Debug)]
pub(super) struct Predecessor {
    /// This node.
    me: Peer,
    /// The predecessor, if known.
    pred: Option<Peer>,
}

impl Predecessor {
    /// None known yet.
    pub(super) fn new(me: Peer) -> Predecessor {
        Predecessor { me, pred: None }
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

    /// The check of `dead` failed, `why`: ask again if it was only silent,
    /// or give its place to `notifier` once it is dead.
    pub(super) fn check_failed(
        &mut self,
        now: Instant,
        dead: Peer,
        notifier: Option<Peer>,
        why: Failure,
        rpcs: &mut Rpcs,
    ) {
        if self.pred != Some(dead) {
            return;
        }
        match why {
            Failure::TimedOut(sends) if sends.tries < SENDS_TO_DEATH => {
                let kind = RingRpc::PredCheck { notifier };
                rpcs.retry(now, dead, sends, |req| Message::Ping { req }, kind);
            }
            _ => self.pred = notifier,
        }
    }
}
