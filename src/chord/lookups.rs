//! Routing: answering `FindSuccessor` from our own tables, and driving our
//! own iterative lookups (hop limit, retry around a dead hop) to an end
//! that the node routes by its [`Purpose`]. Owns the finger table, whose
//! refresh is a lookup like any other.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use crate::chord::fingers::Fingers;
use crate::chord::lookup::Lookup;
use crate::chord::message::{Message, ReqId};
use crate::chord::neighbours::Neighbours;
use crate::chord::rpc::{OpId, RouteRpc, Rpcs};
use crate::chord::Peer;
use crate::chord::Phase;
use crate::config::ChordConfig;
use crate::id::Id;
use crate::wire::chord::message::Kind;

/// Candidates returned in a `Closer` answer.
pub(crate) const CLOSER_COUNT: usize = 4;

/// Why a lookup runs, i.e. what to do with its result.
#[derive(Debug)]
pub(crate) enum Purpose {
    /// Our own id, to join a ring.
    Join,
    /// Refresh of finger k (handled here; never routed to the node).
    Finger(usize),
    /// Our own id through a past contact (partition healing).
    Rejoin,
    /// Our own id through everyone we know: the only successor went silent.
    Rescue,
    /// The replica set of a key held here.
    Replicate,
    /// Client write `op`.
    Write { op: OpId },
    /// Client read `op` of the record of kind `kind`.
    Read { op: OpId, kind: Kind },
    /// Client lookup `op`.
    Locate { op: OpId },
}

/// How a lookup ended.
#[derive(Debug)]
pub(crate) enum LookupEnd {
    /// `list` is the owner of `key` and its successors; `hops` nodes were asked.
    Found {
        key: Id,
        purpose: Purpose,
        list: Vec<Peer>,
        hops: u32,
    },
    /// Out of candidates or over the hop limit after `hops` questions.
    Failed {
        key: Id,
        purpose: Purpose,
        hops: u32,
    },
}

/// A lookup with its purpose.
#[derive(Debug)]
struct Running {
    /// Its candidates and hop count.
    lookup: Lookup,
    /// What its result is for.
    purpose: Purpose,
}

/// The finger table and every lookup in flight.
#[derive(Debug)]
pub(crate) struct Lookups {
    /// This node.
    me: Peer,
    /// Most questions one lookup asks.
    max_hops: u32,
    /// Length r of a full successor list: a shorter one is the whole ring.
    list_len: usize,
    /// Replica set size N: a `Found` answer carries at least that many.
    replicas: usize,
    /// Shortcuts round the ring.
    fingers: Fingers,
    /// Id of the next lookup.
    next_id: u64,
    /// Lookups in flight by id.
    running: BTreeMap<u64, Running>,
}

impl Lookups {
    /// No fingers, nothing in flight.
    pub(crate) fn new(me: Peer, config: &ChordConfig) -> Lookups {
        Lookups {
            me,
            max_hops: config.max_hops as u32,
            list_len: config.successor_list_len,
            replicas: config.replicas,
            fingers: Fingers::new(),
            next_id: 1,
            running: BTreeMap::new(),
        }
    }

    /// The finger table.
    pub(crate) fn fingers(&self) -> &Fingers {
        &self.fingers
    }

    /// `addr` did not answer: drop it from the fingers.
    pub(crate) fn forget(&mut self, addr: SocketAddr) {
        self.fingers.forget(addr);
    }

    /// True if a lookup with a purpose that satisfies `f` is in flight.
    pub(crate) fn any(&self, f: impl Fn(Id, &Purpose) -> bool) -> bool {
        self.running.values().any(|r| f(r.lookup.key, &r.purpose))
    }

    /// The owner's successor list for `key` if this node knows it.
    pub(crate) fn local_answer(&self, ring: &Neighbours, key: Id) -> Option<Vec<Peer>> {
        if ring.phase() != Phase::Member {
            return None;
        }
        let succs = ring.successors();
        if succs.is_empty() {
            return Some(vec![self.me]);
        }
        let mut with_me = vec![self.me];
        with_me.extend(succs.iter().copied());
        if let Some(p) = ring.predecessor() {
            if key.in_open_closed(p.id, self.me.id) {
                return Some(with_me);
            }
        }
        // A short list means the ring is small and we see all of it.
        let whole_ring = succs.len() < self.list_len;
        let mut prev = self.me.id;
        for (i, s) in succs.iter().enumerate() {
            if key.in_open_closed(prev, s.id) {
                if whole_ring {
                    let mut list = with_me[i + 1..].to_vec();
                    list.extend_from_slice(&with_me[..=i]);
                    return Some(list);
                }
                // Answer only with enough followers for a replica set.
                if i == 0 || succs.len() - i >= self.replicas {
                    return Some(succs[i..].to_vec());
                }
                return None;
            }
            prev = s.id;
        }
        None
    }

    /// Known nodes in (me, key), closest to the key first.
    pub(crate) fn closest_preceding(&self, ring: &Neighbours, key: Id, count: usize) -> Vec<Peer> {
        let mut all: Vec<Peer> = self
            .fingers
            .iter()
            .chain(ring.successors().iter())
            .filter(|p| p.id.in_open(self.me.id, key))
            .copied()
            .collect();
        all.sort_by_key(|p| (p.id.distance_to(key), p.addr));
        all.dedup_by_key(|p| p.addr);
        all.truncate(count);
        all
    }

    /// Answer one hop of someone else's lookup.
    pub(crate) fn answer_find(
        &self,
        ring: &Neighbours,
        from: SocketAddr,
        req: ReqId,
        key: Id,
        rpcs: &mut Rpcs,
    ) {
        let msg = match self.local_answer(ring, key) {
            Some(list) => Message::Found {
                req,
                succs: list.iter().map(|p| p.addr).collect(),
            },
            None => Message::Closer {
                req,
                nodes: self
                    .closest_preceding(ring, key, CLOSER_COUNT)
                    .iter()
                    .map(|p| p.addr)
                    .collect(),
            },
        };
        rpcs.send(from, msg);
    }

    /// Look `key` up, asking `start` first, or answering locally / from
    /// our own table when `start` is None. Returns the end if it came at once.
    pub(crate) fn start(
        &mut self,
        now: Instant,
        ring: &Neighbours,
        key: Id,
        purpose: Purpose,
        start: Option<Vec<Peer>>,
        rpcs: &mut Rpcs,
    ) -> Option<LookupEnd> {
        let start = match start {
            Some(s) => s,
            None => {
                if let Some(list) = self.local_answer(ring, key) {
                    return self.finish(now, key, purpose, list, 0, rpcs);
                }
                self.closest_preceding(ring, key, CLOSER_COUNT)
            }
        };
        let id = self.next_id;
        self.next_id += 1;
        let start = start.into_iter().filter(|p| *p != self.me).collect();
        let lookup = Lookup::new(key, start);
        self.running.insert(id, Running { lookup, purpose });
        self.advance(now, id, rpcs)
    }

    /// Refresh the next finger that the successor list does not cover.
    pub(crate) fn fix_next_finger(&mut self, now: Instant, ring: &Neighbours, rpcs: &mut Rpcs) {
        if let Some((k, start)) = self.fingers.next_to_look_up(self.me.id, ring.successors()) {
            // A finger lookup ends here, in `finish`.
            let end = self.start(now, ring, start, Purpose::Finger(k), None, rpcs);
            debug_assert!(end.is_none());
        }
    }

    /// `from` answered the routing request `kind` with `msg`. Returns the
    /// end of the lookup, if this ended one.
    pub(crate) fn on_answer(
        &mut self,
        now: Instant,
        from: Peer,
        kind: RouteRpc,
        msg: Message,
        rpcs: &mut Rpcs,
    ) -> Option<LookupEnd> {
        match (kind, msg) {
            (RouteRpc::Hop { lookup }, msg @ (Message::Found { .. } | Message::Closer { .. })) => {
                self.on_hop_answer(now, lookup, from, msg, rpcs)
            }
            (RouteRpc::FingerCheck { k }, Message::Pong { .. }) => {
                self.fingers.set(k, Some(from));
                None
            }
            // A well-formed answer of the wrong kind: count it as a failure.
            (kind, _) => self.on_failure(now, from, kind, rpcs),
        }
    }

    /// The routing request `kind` to `dead` went unanswered: forget it, and
    /// go round it if it was a lookup's hop.
    pub(crate) fn on_failure(
        &mut self,
        now: Instant,
        dead: Peer,
        kind: RouteRpc,
        rpcs: &mut Rpcs,
    ) -> Option<LookupEnd> {
        self.forget(dead.addr);
        match kind {
            RouteRpc::Hop { lookup } => self.advance(now, lookup, rpcs),
            RouteRpc::FingerCheck { .. } => None,
        }
    }

    /// Lookup `id`'s hop `from` answered.
    fn on_hop_answer(
        &mut self,
        now: Instant,
        id: u64,
        from: Peer,
        msg: Message,
        rpcs: &mut Rpcs,
    ) -> Option<LookupEnd> {
        match msg {
            Message::Found { succs, .. } if !succs.is_empty() => {
                let running = self.running.remove(&id)?;
                let list = succs.iter().map(|a| Peer::new(*a)).collect();
                let (key, hops) = (running.lookup.key, running.lookup.hops);
                self.finish(now, key, running.purpose, list, hops, rpcs)
            }
            Message::Closer { nodes, .. } => {
                let me = self.me;
                let nodes: Vec<Peer> = nodes
                    .iter()
                    .map(|a| Peer::new(*a))
                    .filter(|p| *p != me)
                    .collect();
                if let Some(running) = self.running.get_mut(&id) {
                    running.lookup.add_closer(from.id, &nodes);
                }
                self.advance(now, id, rpcs)
            }
            _ => self.advance(now, id, rpcs),
        }
    }

    /// Ask lookup `id`'s next candidate, or end it if none is left or the
    /// hop limit is reached.
    fn advance(&mut self, now: Instant, id: u64, rpcs: &mut Rpcs) -> Option<LookupEnd> {
        let running = self.running.get_mut(&id)?;
        let next = if running.lookup.hops >= self.max_hops {
            None
        } else {
            running.lookup.next_hop()
        };
        if let Some(p) = next {
            let key = running.lookup.key;
            let kind = RouteRpc::Hop { lookup: id };
            rpcs.request(now, p, |req| Message::FindSuccessor { req, key }, kind);
            return None;
        }
        let running = self.running.remove(&id)?;
        let (key, hops) = (running.lookup.key, running.lookup.hops);
        match running.purpose {
            // Fingers are refreshed again on a later tick.
            Purpose::Finger(_) => None,
            purpose => Some(LookupEnd::Failed { key, purpose, hops }),
        }
    }

    /// `list` owns `key`: a finger is checked here, the rest go to the node.
    fn finish(
        &mut self,
        now: Instant,
        key: Id,
        purpose: Purpose,
        list: Vec<Peer>,
        hops: u32,
        rpcs: &mut Rpcs,
    ) -> Option<LookupEnd> {
        let Purpose::Finger(k) = purpose else {
            return Some(LookupEnd::Found {
                key,
                purpose,
                list,
                hops,
            });
        };
        let owner = list[0];
        if owner == self.me {
            self.fingers.set(k, None);
        } else if self.fingers.get(k) != Some(owner) {
            let kind = RouteRpc::FingerCheck { k };
            rpcs.request(now, owner, |req| Message::Ping { req }, kind);
        }
        None
    }
}

#[cfg(test)]
mod tests;
