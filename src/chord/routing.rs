//! Lookups: answering `FindSuccessor` from our own tables, and driving our
//! own iterative lookups to their purpose.
//!
//! A third `impl Node` block; the state lives in [`crate::chord::node`].

use std::net::SocketAddr;
use std::time::Instant;

use crate::chord::lookup::Lookup;
use crate::chord::message::{Message, ReqId};
use crate::chord::node::{LookupState, Node, OpOutcome, Pending, Phase, Purpose, CLOSER_COUNT};
use crate::chord::{ChordError, LookupInfo, Peer};
use crate::id::Id;

impl Node {
    /// The owner's successor list for `key` if this node knows it.
    pub(crate) fn local_answer(&self, key: Id) -> Option<Vec<Peer>> {
        if self.phase != Phase::Member {
            return None;
        }
        if self.succs.is_empty() {
            return Some(vec![self.me]);
        }
        let mut with_me = vec![self.me];
        with_me.extend(self.succs.iter().copied());
        if let Some(p) = self.pred {
            if key.in_open_closed(p.id, self.me.id) {
                return Some(with_me);
            }
        }
        // A short list means the ring is small and we see all of it.
        let whole_ring = self.succs.len() < self.config.successor_list_len;
        let mut prev = self.me.id;
        for (i, s) in self.succs.iter().enumerate() {
            if key.in_open_closed(prev, s.id) {
                if whole_ring {
                    let mut list = with_me[i + 1..].to_vec();
                    list.extend_from_slice(&with_me[..=i]);
                    return Some(list);
                }
                // Answer only with enough followers for a replica set.
                if i == 0 || self.succs.len() - i >= self.config.replicas {
                    return Some(self.succs[i..].to_vec());
                }
                return None;
            }
            prev = s.id;
        }
        None
    }

    /// Known nodes in (me, key), closest to the key first.
    pub(crate) fn closest_preceding(&self, key: Id, count: usize) -> Vec<Peer> {
        let mut all: Vec<Peer> = self
            .fingers
            .iter()
            .flatten()
            .chain(self.succs.iter())
            .filter(|p| p.id.in_open(self.me.id, key))
            .copied()
            .collect();
        all.sort_by_key(|p| (p.id.distance_to(key), p.addr));
        all.dedup_by_key(|p| p.addr);
        all.truncate(count);
        all
    }

    pub(crate) fn answer_find(&mut self, from: Peer, req: ReqId, key: Id) {
        let msg = match self.local_answer(key) {
            Some(list) => Message::Found {
                req,
                succs: list.iter().map(|p| p.addr).collect(),
            },
            None => Message::Closer {
                req,
                nodes: self
                    .closest_preceding(key, CLOSER_COUNT)
                    .iter()
                    .map(|p| p.addr)
                    .collect(),
            },
        };
        self.send(from.addr, msg);
    }

    /// Look `key` up, asking `start` first, or answering locally / from
    /// our own table when `start` is None.
    pub(crate) fn start_lookup(
        &mut self,
        now: Instant,
        key: Id,
        purpose: Purpose,
        start: Option<Vec<Peer>>,
    ) {
        let start = match start {
            Some(s) => s,
            None => {
                if let Some(list) = self.local_answer(key) {
                    self.lookup_done(now, key, purpose, list, 0);
                    return;
                }
                self.closest_preceding(key, CLOSER_COUNT)
            }
        };
        let id = self.new_op_id();
        let start = start.into_iter().filter(|p| *p != self.me).collect();
        self.lookups.insert(
            id,
            LookupState {
                lookup: Lookup::new(key, start),
                purpose,
            },
        );
        self.advance_lookup(now, id);
    }

    pub(crate) fn advance_lookup(&mut self, now: Instant, id: u64) {
        let max_hops = self.config.max_hops as u32;
        let Some(state) = self.lookups.get_mut(&id) else {
            return;
        };
        let next = if state.lookup.hops >= max_hops {
            None
        } else {
            state.lookup.next_hop()
        };
        match next {
            Some(p) => {
                let key = state.lookup.key;
                self.request(
                    now,
                    p,
                    |req| Message::FindSuccessor { req, key },
                    Pending::Hop { lookup: id },
                );
            }
            None => {
                if let Some(state) = self.lookups.remove(&id) {
                    self.lookup_failed(state);
                }
            }
        }
    }

    pub(crate) fn on_hop_answer(&mut self, now: Instant, id: u64, from: Peer, msg: Message) {
        match msg {
            Message::Found { succs, .. } if !succs.is_empty() => {
                if let Some(state) = self.lookups.remove(&id) {
                    let list = succs.iter().map(|a| Peer::new(*a)).collect();
                    let (key, hops) = (state.lookup.key, state.lookup.hops);
                    self.lookup_done(now, key, state.purpose, list, hops);
                }
            }
            Message::Closer { nodes, .. } => {
                let me = self.me;
                let nodes: Vec<Peer> = nodes
                    .iter()
                    .map(|a| Peer::new(*a))
                    .filter(|p| *p != me)
                    .collect();
                if let Some(state) = self.lookups.get_mut(&id) {
                    state.lookup.add_closer(from.id, &nodes);
                }
                self.advance_lookup(now, id);
            }
            _ => self.advance_lookup(now, id),
        }
    }

    pub(crate) fn lookup_done(
        &mut self,
        now: Instant,
        key: Id,
        purpose: Purpose,
        list: Vec<Peer>,
        hops: u32,
    ) {
        match purpose {
            Purpose::Join => {
                if self.phase != Phase::Joining {
                    return;
                }
                let succs = self.ordered_list(list);
                let Some(first) = succs.first().map(|p| p.addr) else {
                    return;
                };
                tracing::debug!(me = ?self.me.id, succ = ?succs[0].id, "joined");
                self.succs = succs;
                self.phase = Phase::Member;
                self.ready = false;
                self.schedule_all(now);
                self.request_handoff(now, Peer::new(first), None, 0);
                self.send(first, Message::Notify);
            }
            Purpose::Finger(k) => {
                let owner = list[0];
                if owner == self.me {
                    self.set_finger(k, None);
                } else if self.fingers[k] != Some(owner) {
                    self.request(
                        now,
                        owner,
                        |req| Message::Ping { req },
                        Pending::FingerCheck { k },
                    );
                }
            }
            Purpose::Rejoin | Purpose::Rescue => {
                // The successor list of whoever precedes our id; it may
                // start with us when that ring already knows us. A rescue
                // skips the silent successor it is replacing.
                let silent = match purpose {
                    Purpose::Rescue if self.succ_suspect => self.succs.first().copied(),
                    _ => None,
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
                    self.request(
                        now,
                        s,
                        |req| Message::Ping { req },
                        Pending::MergeCheck { list },
                    );
                }
            }
            Purpose::Replicate => self.on_replicate_located(now, key, list),
            Purpose::Write { op, value } => self.start_write(now, op, key, value, list),
            Purpose::Read { op } => self.start_read(now, op, key, list),
            Purpose::Locate { op } => {
                let replicas = self.replica_set(&list);
                let info = LookupInfo {
                    key,
                    owner: list[0].addr,
                    replicas,
                    hops,
                };
                self.emit_done(op, Ok(OpOutcome::Located(info)));
            }
        }
    }

    pub(crate) fn lookup_failed(&mut self, state: LookupState) {
        let (key, hops) = (state.lookup.key, state.lookup.hops);
        let err = ChordError::LookupFailed { key, hops };
        match state.purpose {
            Purpose::Write { op, .. } | Purpose::Read { op } | Purpose::Locate { op } => {
                self.emit_done(op, Err(err))
            }
            Purpose::Rescue => {
                if self.succ_suspect {
                    self.become_alone();
                }
            }
            // Join retries on the next tick; the rest are periodic anyway.
            Purpose::Join | Purpose::Finger(_) | Purpose::Rejoin | Purpose::Replicate => {}
        }
    }

    /// The first N distinct addresses of an owner's successor list.
    pub(crate) fn replica_set(&self, list: &[Peer]) -> Vec<SocketAddr> {
        let mut out: Vec<SocketAddr> = Vec::new();
        for p in list {
            if !out.contains(&p.addr) {
                out.push(p.addr);
            }
            if out.len() == self.config.replicas {
                break;
            }
        }
        out
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
