//! Requests in flight, and the outputs the driver has not polled yet.
//!
//! Every request is remembered with what its answer is for ([`Pending`])
//! until the node it was sent to answers it, its deadline passes, or the
//! driver reports that node unreachable; then it is handed back to the node
//! to act on, with the [`Failure`] that tells a node that is gone from one
//! that is only slow. Deadlines follow the round trip ([`Rtt`]), and a
//! request sent again ([`Rpcs::retry`]) keeps its id, so the answer to any
//! of its sends counts.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::chord::message::{Message, ReqId};
use crate::chord::records::Record;
use crate::chord::rtt::Rtt;
use crate::chord::{ChordError, LookupInfo, Peer, Role};
use crate::id::Id;

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No answer by the deadline of its latest send: the node may be dead,
    /// or only slow (a loaded host, a long queue). No evidence of death by
    /// itself; [`Rpcs::retry`] can send it again.
    TimedOut(Sends),
    /// Definite evidence: the connection was refused or reset, or the
    /// node broke the protocol.
    Refused,
}

/// The sends of one request so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sends {
    /// Its id, the same for every send.
    pub(crate) req: ReqId,
    /// How many times it was sent.
    pub(crate) tries: u32,
    /// When it was first sent: its round trip counts from there (over TCP
    /// an answer is nearly always to the first send).
    first: Instant,
}

/// Handle of a client operation, echoed in its [`Output::Done`].
pub type OpId = u64;

/// What the node wants done.
#[derive(Debug, PartialEq)]
pub enum Output {
    /// Deliver `msg` to the node advertised at `to`.
    Send { to: SocketAddr, msg: Message },
    /// A client operation finished.
    Done {
        op: OpId,
        result: Result<OpOutcome, ChordError>,
    },
    /// Ask `peer` whether it shares `info_hash` (a BitTorrent handshake)
    /// and report what it said with `Node::on_probe`: a relayed swarm
    /// entry names it (see `probes`). Never answering is allowed: silence
    /// keeps the entry.
    Probe { peer: SocketAddr, info_hash: Id },
}

/// The successful result of a client operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpOutcome {
    /// Announce or removal stored on W replicas.
    Stored,
    /// The merged swarm list of R replicas.
    Peers(Vec<(SocketAddr, Role)>),
    /// Owner and replica set of a key.
    Located(LookupInfo),
    /// The merged record of R replicas, for kinds other than swarm lists
    /// (which read as [`OpOutcome::Peers`]).
    Record(Record),
}

/// What an outstanding request is for: the part that made it, and what
/// that part is to do with the answer. Each part handles its own.
#[derive(Debug)]
pub(crate) enum Pending {
    /// Ring upkeep (`neighbours`).
    Ring(RingRpc),
    /// Routing (`lookups`).
    Route(RouteRpc),
    /// A client operation (`ops`).
    Op(OpRpc),
    /// Replication (`replication`).
    Replica(ReplicaRpc),
}

/// Requests of ring upkeep.
#[derive(Debug)]
pub(crate) enum RingRpc {
    /// `GetState` to the first successor.
    Stabilize,
    /// Liveness check of the successor's predecessor before adopting it.
    StabilizeCheck,
    /// Liveness check of our predecessor; on death, take `notifier` instead.
    PredCheck { notifier: Option<Peer> },
    /// Liveness check of the head of a successor list found by a self-lookup.
    MergeCheck { list: Vec<Peer> },
    /// `GetState` to the would-be first successor of a joiner; `rest` is
    /// what is left of the list its lookup found, to try next.
    JoinCheck { rest: Vec<Peer> },
}

/// Requests of routing.
#[derive(Debug)]
pub(crate) enum RouteRpc {
    /// One hop of lookup `lookup`.
    Hop { lookup: u64 },
    /// Liveness check of a new finger `k`.
    FingerCheck { k: usize },
    /// Liveness check of the owner that a `Found` answer to lookup
    /// `lookup` named: the answerer's successor may have died unnoticed.
    OwnerCheck { lookup: u64 },
}

/// Requests of client operations.
#[derive(Debug)]
pub(crate) enum OpRpc {
    /// Quorum write `op`.
    Write { op: OpId },
    /// Quorum read `op`.
    Read { op: OpId },
    /// Read repair of a replica that answered a read with less.
    Repair,
    /// `GetState` to the would-be owner of op `op`'s key (anchoring).
    Anchor { op: OpId },
}

/// Requests of replication.
#[derive(Debug)]
pub(crate) enum ReplicaRpc {
    /// Anti-entropy push, part of hand-off `handoff` if any.
    Push { handoff: Option<u64> },
    /// Anti-entropy digest `page` (see `Replication::send_digests`).
    Digest { page: u64 },
    /// Page request of the key range a joiner takes over, the keys after
    /// `after`; `tries` earlier requests for this page went unanswered.
    Range { after: Option<Id>, tries: u32 },
    /// `GetState` to the head of the replica set a lookup found for `key`,
    /// which we are not in: is it the owner in its own view?
    Confirm { key: Id },
}

impl From<RingRpc> for Pending {
    fn from(r: RingRpc) -> Pending {
        Pending::Ring(r)
    }
}

impl From<RouteRpc> for Pending {
    fn from(r: RouteRpc) -> Pending {
        Pending::Route(r)
    }
}

impl From<OpRpc> for Pending {
    fn from(r: OpRpc) -> Pending {
        Pending::Op(r)
    }
}

impl From<ReplicaRpc> for Pending {
    fn from(r: ReplicaRpc) -> Pending {
        Pending::Replica(r)
    }
}

/// One outstanding request.
#[derive(Debug)]
pub(crate) struct Rpc {
    /// Who must answer it (answers from anyone else are ignored).
    pub(crate) to: Peer,
    /// What the answer is for.
    pub(crate) kind: Pending,
    /// When it counts as failed.
    deadline: Instant,
    /// Its sends so far (for retries and the round-trip estimate).
    sends: Sends,
}

impl Rpc {
    /// How this request failed, given that its deadline passed.
    pub(crate) fn timed_out(&self) -> Failure {
        Failure::TimedOut(self.sends)
    }
}

/// The requests in flight and the output queue of one node.
#[derive(Debug)]
pub(crate) struct Rpcs {
    /// Next request id.
    next_req: ReqId,
    /// Outstanding requests.
    pending: BTreeMap<ReqId, Rpc>,
    /// Deadlines of outstanding requests, earliest first.
    deadlines: BTreeSet<(Instant, ReqId)>,
    /// Round-trip estimate, for the deadlines.
    rtt: Rtt,
    /// Outputs not yet polled.
    outputs: VecDeque<Output>,
}

impl Rpcs {
    /// Nothing in flight; requests time out after `rpc_timeout` or more.
    pub(crate) fn new(rpc_timeout: Duration) -> Rpcs {
        Rpcs {
            next_req: 1,
            pending: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            rtt: Rtt::new(rpc_timeout),
            outputs: VecDeque::new(),
        }
    }

    /// Queue a one-way message.
    pub(crate) fn send(&mut self, to: SocketAddr, msg: Message) {
        self.outputs.push_back(Output::Send { to, msg });
    }

    /// Queue a request to `to` and remember what its answer is for.
    pub(crate) fn request(
        &mut self,
        now: Instant,
        to: Peer,
        make: impl FnOnce(ReqId) -> Message,
        kind: impl Into<Pending>,
    ) {
        let req = self.next_req;
        self.next_req += 1;
        let sends = Sends {
            req,
            tries: 1,
            first: now,
        };
        self.register(now, to, sends, kind.into());
        self.send(to.addr, make(req));
    }

    /// Send again to `to` a request whose `sends` timed out, under the same
    /// id and with twice the patience of the last send, `make` building
    /// the message from the id: an answer to any send ends it. For a node
    /// that may only be slow.
    pub(crate) fn retry(
        &mut self,
        now: Instant,
        to: Peer,
        sends: Sends,
        make: impl FnOnce(ReqId) -> Message,
        kind: impl Into<Pending>,
    ) {
        let sends = Sends {
            tries: sends.tries + 1,
            ..sends
        };
        self.register(now, to, sends, kind.into());
        self.send(to.addr, make(sends.req));
    }

    /// Remember a request sent now for the `sends.tries`th time: its
    /// deadline doubles with each send.
    fn register(&mut self, now: Instant, to: Peer, sends: Sends, kind: Pending) {
        let deadline = now + self.rtt.rto() * (1 << (sends.tries - 1).min(4));
        let rpc = Rpc {
            to,
            kind,
            deadline,
            sends,
        };
        self.pending.insert(sends.req, rpc);
        self.deadlines.insert((deadline, sends.req));
    }

    /// Queue the result of client operation `op`.
    pub(crate) fn done(&mut self, op: OpId, result: Result<OpOutcome, ChordError>) {
        self.outputs.push_back(Output::Done { op, result });
    }

    /// Queue a probe of `peer` for `info_hash`.
    pub(crate) fn probe(&mut self, peer: SocketAddr, info_hash: Id) {
        self.outputs.push_back(Output::Probe { peer, info_hash });
    }

    /// The next output, if any.
    pub(crate) fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The earliest deadline of a request in flight.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(d, _)| *d)
    }

    /// The request that `from` just answered with id `req`, if it was sent
    /// to `from`: nobody answers for another. Its round trip is sampled.
    pub(crate) fn take_answer(
        &mut self,
        now: Instant,
        req: ReqId,
        from: SocketAddr,
    ) -> Option<Rpc> {
        if self.pending.get(&req).is_none_or(|rpc| rpc.to.addr != from) {
            return None;
        }
        let rpc = self.take(req)?;
        self.rtt
            .sample(now.saturating_duration_since(rpc.sends.first));
        Some(rpc)
    }

    /// A request whose deadline passed by `now`, earliest first.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Option<Rpc> {
        let &(deadline, req) = self.deadlines.first()?;
        if deadline > now {
            return None;
        }
        self.take(req)
    }

    /// Ids of the requests sent to `addr`, oldest first.
    pub(crate) fn sent_to(&self, addr: SocketAddr) -> Vec<ReqId> {
        self.pending
            .iter()
            .filter(|(_, rpc)| rpc.to.addr == addr)
            .map(|(r, _)| *r)
            .collect()
    }

    /// Stop waiting for request `req`.
    pub(crate) fn take(&mut self, req: ReqId) -> Option<Rpc> {
        let rpc = self.pending.remove(&req)?;
        self.deadlines.remove(&(rpc.deadline, req));
        Some(rpc)
    }

    /// True while a push (anti-entropy, hand-off or read repair) waits for
    /// its answer.
    pub(crate) fn pushing(&self) -> bool {
        self.any(|_, kind| {
            matches!(
                kind,
                Pending::Replica(ReplicaRpc::Push { .. }) | Pending::Op(OpRpc::Repair)
            )
        })
    }

    /// True if some request in flight satisfies `f` (given its addressee
    /// and purpose).
    pub(crate) fn any(&self, f: impl Fn(Peer, &Pending) -> bool) -> bool {
        self.pending.values().any(|rpc| f(rpc.to, &rpc.kind))
    }
}

#[cfg(test)]
mod tests;
