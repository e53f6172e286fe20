//! Routing: answering `FindSuccessor` from our own tables (`answer`), and
//! driving our own iterative lookups to an end that the node routes by its
//! [`Purpose`]. Owns the finger table, whose refresh is a lookup like any
//! other.
//!
//! A lookup does not wait for stabilization to repair what a failure broke,
//! but it tells a dead node from a slow one: only definite evidence (a
//! refused or reset connection, a broken answer) or silence through
//! several sends with a doubling patience make a node dead for the lookup.
//! A node that is merely slow (a loaded host) is waited for, not skipped:
//! skipping the owner a `Found` answer names would name the wrong node.
//! - a hop that fails is dead for the rest of the lookup (and, once dead,
//!   dropped from the fingers), and the lookup asks at once the
//!   next-closest preceding node, from the answers so far and from our own
//!   successor list and fingers;
//! - a hop that times out is asked again, with twice the patience
//!   ([`HOP_SENDS`] sends in all) before it counts as failed;
//! - the owner a `Found` answer names is checked alive before a lookup whose
//!   result is that owner ends (the answerer's successor may have died
//!   unnoticed); it is pinged up to [`OWNER_SENDS`] times, each with twice
//!   the patience of the last. Only if it is dead does the next entry of
//!   the answerer's list own the key, and that one is checked in turn.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use crate::chord::fingers::Fingers;
use crate::chord::lookup::Lookup;
use crate::chord::message::Message;
use crate::chord::neighbours::Neighbours;
use crate::chord::rpc::{Failure, OpId, RouteRpc, Rpcs};
use crate::chord::Peer;
use crate::config::ChordConfig;
use crate::id::Id;
use crate::wire::chord::message::Kind;

/// Candidates returned in a `Closer` answer.
pub(crate) const CLOSER_COUNT: usize = 4;

/// Most nodes of our own tables added to a lookup's candidates after a
/// dead hop.
const MAX_REFILL: usize = 8;

/// Sends of one hop's question before its silence counts as a failure: the
/// patience is one time-out, then two (the time-out follows the round trip).
pub(crate) const HOP_SENDS: u32 = 2;

/// Sends of an owner check before a silent owner counts as dead: one, two,
/// then four time-outs. A wrong owner is worse than a slow lookup.
pub(crate) const OWNER_SENDS: u32 = 3;

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

impl Purpose {
    /// True if the lookup's result is the owner itself: it is checked alive
    /// before the lookup ends. Writes and reads go on to ask the replicas
    /// themselves and handle their silence as the quorum rules say (a
    /// replica skipped on a lost message would shift the set they use); the
    /// ring checks what it adopts itself; a finger is checked as it is set.
    fn checks_owner(&self) -> bool {
        matches!(self, Purpose::Locate { .. } | Purpose::Replicate)
    }
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
    /// Its candidates, suspects and hop count.
    lookup: Lookup,
    /// What its result is for.
    purpose: Purpose,
    /// Started from our own tables: after a dead hop they give more
    /// candidates. (A lookup through given nodes, such as a rejoin through
    /// a past contact, goes only where it was sent.)
    own_tables: bool,
    /// The owner's list from a `Found` answer while its head is checked
    /// alive (empty before).
    found: Vec<Peer>,
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
        let own_tables = start.is_none();
        let id = self.next_id;
        self.next_id += 1;
        let start = match start {
            Some(s) => s,
            None => {
                if let Some(list) = self.local_answer(ring, key) {
                    let lookup = Lookup::new(key, Vec::new());
                    let running = Running {
                        lookup,
                        purpose,
                        own_tables,
                        found: list,
                    };
                    self.running.insert(id, running);
                    return self.check_owner(now, id, rpcs);
                }
                self.closest_preceding(ring, key, CLOSER_COUNT)
            }
        };
        let start = start.into_iter().filter(|p| *p != self.me).collect();
        let running = Running {
            lookup: Lookup::new(key, start),
            purpose,
            own_tables,
            found: Vec::new(),
        };
        self.running.insert(id, running);
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
        ring: &Neighbours,
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
            (RouteRpc::OwnerCheck { lookup }, Message::Pong { .. }) => {
                let running = self.running.remove(&lookup)?;
                let (key, hops) = (running.lookup.key, running.lookup.hops);
                self.finish(now, key, running.purpose, running.found, hops, rpcs)
            }
            // A well-formed answer of the wrong kind: a broken node.
            (kind, _) => self.on_failure(now, from, kind, Failure::Refused, ring, rpcs),
        }
    }

    /// The routing request `kind` to `to` failed (`why`). A time-out within
    /// the request's patience is sent again; otherwise `to` is dead: it is
    /// forgotten, and a lookup whose hop or owner it was goes round it.
    pub(crate) fn on_failure(
        &mut self,
        now: Instant,
        to: Peer,
        kind: RouteRpc,
        why: Failure,
        ring: &Neighbours,
        rpcs: &mut Rpcs,
    ) -> Option<LookupEnd> {
        if let Failure::TimedOut(sends) = why {
            let key = match kind {
                // A joiner's hops are asked once: its few contacts may die
                // under it, and a join is checked before it counts anyway.
                RouteRpc::Hop { lookup } if sends.tries < HOP_SENDS => self
                    .running
                    .get(&lookup)
                    .filter(|r| !matches!(r.purpose, Purpose::Join))
                    .map(|r| Some(r.lookup.key)),
                RouteRpc::OwnerCheck { lookup } if sends.tries < OWNER_SENDS => {
                    self.running.get(&lookup).map(|_| None)
                }
                _ => None,
            };
            if let Some(key) = key {
                let make = |req| match key {
                    Some(key) => Message::FindSuccessor { req, key },
                    None => Message::Ping { req },
                };
                rpcs.retry(now, to, sends, make, kind);
                return None;
            }
        }
        match kind {
            RouteRpc::Hop { lookup } => {
                self.forget(to.addr);
                self.bury(lookup, to, ring);
                self.advance(now, lookup, rpcs)
            }
            RouteRpc::OwnerCheck { lookup } => {
                self.forget(to.addr);
                self.bury(lookup, to, ring);
                self.check_owner(now, lookup, rpcs)
            }
            // A finger is checked again on a later refresh; one that timed
            // out may only be slow, and was never set.
            RouteRpc::FingerCheck { .. } => {
                if why == Failure::Refused {
                    self.forget(to.addr);
                }
                None
            }
        }
    }

    /// `dead` failed lookup `id`: it is dead for the rest of the lookup,
    /// and the lookup gets the closest preceding nodes of our own tables as
    /// candidates, in case the answers so far run out.
    fn bury(&mut self, id: u64, dead: Peer, ring: &Neighbours) {
        let Some(running) = self.running.get(&id) else {
            return;
        };
        let known = if running.own_tables {
            self.closest_preceding(ring, running.lookup.key, MAX_REFILL)
        } else {
            Vec::new()
        };
        let me = self.me.id;
        if let Some(running) = self.running.get_mut(&id) {
            running.lookup.dead(dead.addr);
            running.lookup.add_closer(me, &known);
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
                let running = self.running.get_mut(&id)?;
                running.found = succs.iter().map(|a| Peer::new(*a)).collect();
                self.check_owner(now, id, rpcs)
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

    /// Lookup `id` has an owner's list: end it, after checking the owner
    /// alive if its purpose needs that. Nodes dead in this lookup (refused,
    /// or silent through every send) are left out: the first of the rest
    /// owns the key. With the list used up, the
    /// lookup goes on with its other candidates.
    fn check_owner(&mut self, now: Instant, id: u64, rpcs: &mut Rpcs) -> Option<LookupEnd> {
        let running = self.running.get_mut(&id)?;
        let lookup = &running.lookup;
        running.found.retain(|p| !lookup.is_dead(p.addr));
        let Some(&owner) = running.found.first() else {
            return self.advance(now, id, rpcs);
        };
        if owner != self.me && running.purpose.checks_owner() {
            let kind = RouteRpc::OwnerCheck { lookup: id };
            rpcs.request(now, owner, |req| Message::Ping { req }, kind);
            return None;
        }
        let running = self.running.remove(&id)?;
        let (key, hops) = (running.lookup.key, running.lookup.hops);
        self.finish(now, key, running.purpose, running.found, hops, rpcs)
    }

    /// Ask lookup `id`'s next candidate, or end it if none is left or the
    /// hop limit is reached.
    fn advance(&mut self, now: Instant, id: u64, rpcs: &mut Rpcs) -> Option<LookupEnd> {
        let running = self.running.get_mut(&id)?;
        running.found.clear();
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

mod answer;
#[cfg(test)]
mod tests;
