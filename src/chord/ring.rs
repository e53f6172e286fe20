//! Ring maintenance (Zave's corrected Chord): stabilize, rectify, fingers,
//! and finding a successor again through past contacts.
//!
//! A second `impl Node` block; the state lives in [`crate::chord::node`].

use std::net::SocketAddr;
use std::time::Instant;

use rand::Rng;

use crate::chord::message::Message;
use crate::chord::node::{
    Node, Pending, Phase, Purpose, CLOSER_COUNT, MAX_CONTACTS, MAX_FINGER_BACKOFF,
};
use crate::chord::Peer;
use crate::id::ID_BITS;

impl Node {
    pub(crate) fn stabilize(&mut self, now: Instant) {
        if self.phase != Phase::Member {
            return;
        }
        match self.succs.first().copied() {
            Some(s) => {
                self.stabilizing = true;
                self.request(now, s, |req| Message::GetState { req }, Pending::Stabilize);
            }
            None => {
                // Alone: a predecessor that notified us is our successor too,
                // once checked alive.
                if let Some(p) = self.pred {
                    self.stabilizing = true;
                    self.request(now, p, |req| Message::Ping { req }, Pending::StabilizeCheck);
                }
            }
        }
    }

    pub(crate) fn on_state(
        &mut self,
        now: Instant,
        s: Peer,
        pred: Option<SocketAddr>,
        list: &[SocketAddr],
    ) {
        self.succ_suspect = false;
        self.succ_misses = 0;
        if self.succs.first() != Some(&s) {
            // The successor changed meanwhile; this answer is stale.
            self.finish_stabilize();
            return;
        }
        let mut candidate = vec![s];
        candidate.extend(list.iter().map(|a| Peer::new(*a)));
        self.succs = self.ordered_list(candidate);
        match pred.map(Peer::new) {
            Some(p) if p != self.me && p.id.in_open(self.me.id, s.id) => {
                self.request(now, p, |req| Message::Ping { req }, Pending::StabilizeCheck);
            }
            _ => self.finish_stabilize(),
        }
    }

    pub(crate) fn finish_stabilize(&mut self) {
        self.stabilizing = false;
        if let Some(s) = self.succs.first() {
            let to = s.addr;
            self.send(to, Message::Notify);
        }
    }

    /// `list` cut to a clockwise-ordered, duplicate-free successor list:
    /// entries that do not lie strictly further round the ring than the one
    /// before (including `me`, which ends a wrapped list) are dropped.
    pub(crate) fn ordered_list(&self, list: Vec<Peer>) -> Vec<Peer> {
        let mut out: Vec<Peer> = Vec::with_capacity(self.config.successor_list_len);
        for p in list {
            if p == self.me {
                break;
            }
            let further = out
                .last()
                .is_none_or(|last| self.me.id.distance_to(p.id) > self.me.id.distance_to(last.id));
            if further {
                out.push(p);
            }
            if out.len() == self.config.successor_list_len {
                break;
            }
        }
        out
    }

    /// Zave's rectify: `n` (alive, it just spoke) believes it is our predecessor.
    pub(crate) fn rectify(&mut self, now: Instant, n: Peer) {
        if self.phase != Phase::Member || n == self.me {
            return;
        }
        // A notifier between us and our successor is a closer successor
        // (typical after concurrent joins into a small ring): check it and
        // take it, instead of walking back one predecessor per stabilize.
        let closer = self
            .succs
            .first()
            .is_none_or(|s| n.id.in_open(self.me.id, s.id));
        let checking = self
            .pending
            .values()
            .any(|r| r.to == n && matches!(r.kind, Pending::MergeCheck { .. }));
        if closer && !checking {
            let kind = Pending::MergeCheck { list: Vec::new() };
            self.request(now, n, |req| Message::Ping { req }, kind);
        }
        match self.pred {
            None => self.pred = Some(n),
            Some(p) if p == n => {}
            Some(p) if n.id.in_open(p.id, self.me.id) => self.pred = Some(n),
            Some(p) => self.ping_predecessor(now, p, Some(n)),
        }
    }

    /// Pings predecessor `p` to check it is alive, unless a check is already
    /// under way; `notifier` is adopted if `p` turns out dead.
    fn ping_predecessor(&mut self, now: Instant, p: Peer, notifier: Option<Peer>) {
        let checking = self
            .pending
            .values()
            .any(|r| matches!(r.kind, Pending::PredCheck { .. }));
        if !checking {
            self.request(
                now,
                p,
                |req| Message::Ping { req },
                Pending::PredCheck { notifier },
            );
        }
    }

    pub(crate) fn check_predecessor(&mut self, now: Instant) {
        if let Some(p) = self.pred {
            self.ping_predecessor(now, p, None);
        }
    }

    pub(crate) fn fix_next_finger(&mut self, now: Instant) {
        let Some(last) = self.succs.last().copied() else {
            return;
        };
        // Fingers whose start the successor list already covers need no
        // lookup; skip to the next one that does (one lookup per tick).
        for _ in 0..ID_BITS {
            let k = self.next_finger;
            self.next_finger = (self.next_finger + 1) % ID_BITS;
            if self.next_finger == 0 {
                self.end_finger_sweep();
            }
            let start = self.me.id.add_pow2(k);
            if start.in_open_closed(self.me.id, last.id) {
                let owner = self
                    .succs
                    .iter()
                    .find(|s| start.in_open_closed(self.me.id, s.id))
                    .copied();
                self.set_finger(k, owner);
                continue;
            }
            self.start_lookup(now, start, Purpose::Finger(k), None);
            return;
        }
    }

    pub(crate) fn forget_finger(&mut self, addr: SocketAddr) {
        for k in 0..ID_BITS {
            if self.fingers[k].is_some_and(|p| p.addr == addr) {
                self.set_finger(k, None);
            }
        }
    }

    /// Set finger `k`, noting a change for the refresh back-off.
    pub(crate) fn set_finger(&mut self, k: usize, finger: Option<Peer>) {
        if self.fingers[k] != finger {
            self.fingers[k] = finger;
            self.fingers_changed = true;
            self.finger_backoff = 1;
        }
    }

    /// A sweep over all fingers ended: slow down if nothing changed in it
    /// (a change already restored full speed).
    fn end_finger_sweep(&mut self) {
        if !self.fingers_changed {
            self.finger_backoff = (self.finger_backoff * 2).min(MAX_FINGER_BACKOFF);
        }
        self.fingers_changed = false;
    }

    pub(crate) fn note_contact(&mut self, addr: SocketAddr) {
        if addr == self.me.addr || self.contacts.contains(&addr) {
            return;
        }
        if self.contacts.len() < MAX_CONTACTS {
            self.contacts.push(addr);
        } else if self.rng.gen_ratio(1, 4) {
            // Random replacement keeps a sample of every era, so contacts
            // from before a partition survive it.
            let i = self.rng.gen_range(0..MAX_CONTACTS);
            self.contacts[i] = addr;
        }
    }

    pub(crate) fn rejoin_through_contact(&mut self, now: Instant) {
        if self.contacts.is_empty() {
            return;
        }
        let c = self.contacts[self.rng.gen_range(0..self.contacts.len())];
        self.start_lookup(now, self.me.id, Purpose::Rejoin, Some(vec![Peer::new(c)]));
    }

    /// Look our own id up through everyone we know, our silent successor
    /// included: whoever answers gives us a live successor list.
    pub(crate) fn rescue(&mut self, now: Instant) {
        let mut start: Vec<Peer> = self.succs.clone();
        start.extend(self.pred);
        start.extend(self.closest_preceding(self.me.id, CLOSER_COUNT));
        start.extend(self.contacts.iter().map(|a| Peer::new(*a)));
        self.start_lookup(now, self.me.id, Purpose::Rescue, Some(start));
    }

    /// A self-lookup found `head` (now checked alive) and its successor list.
    pub(crate) fn adopt_found(&mut self, head: Peer, list: Vec<Peer>) {
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
            self.succs.truncate(self.config.successor_list_len);
        }
    }

    pub(crate) fn start_join(&mut self, now: Instant) {
        let mut start: Vec<Peer> = self.bootstrap.iter().map(|a| Peer::new(*a)).collect();
        start.extend(self.contacts.iter().map(|a| Peer::new(*a)));
        self.start_lookup(now, self.me.id, Purpose::Join, Some(start));
    }
}
