//! Client operations in flight: quorum writes (announces, removals) and
//! quorum reads with read repair, each over the key's owner and its
//! successor list: first anchored at the owner (`anchor`), starting from
//! the list a lookup found. The quorum arithmetic is in
//! [`crate::chord::quorum`]; this part sends the requests and merges the
//! answers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::chord::message::Message;
use crate::chord::neighbours::Neighbours;
use crate::chord::quorum::{replica_set, Progress, Quorum};
use crate::chord::records::Record;
use crate::chord::rpc::{OpId, OpOutcome, OpRpc, Rpcs};
use crate::chord::store::Store;
use crate::chord::{ChordError, LookupInfo, Peer};
use crate::config::ChordConfig;
use crate::id::Id;
use crate::wire::chord::message::Kind;

use anchor::{Anchoring, Then};

mod anchor;
mod read;

/// Expiry differences below this are transfer delay, not a replica behind.
const REPAIR_SLACK: Duration = Duration::from_secs(1);

/// How a replica answered one request of a quorum operation.
#[derive(Debug)]
enum Reply<T> {
    /// Stored the write, or answered the read with this.
    Good(T),
    /// Answered, but no: refused the write, or not ready for the read.
    Refused,
    /// No answer (time-out, unreachable): it may be asked again.
    Lost,
}

/// A quorum write in flight.
#[derive(Debug)]
struct WriteOp {
    /// The key written.
    key: Id,
    /// What is written (e.g. one announce or one removal).
    value: Record,
    /// Who was asked and who acknowledged.
    quorum: Quorum,
}

/// A quorum read in flight.
#[derive(Debug)]
struct ReadOp {
    /// The key read.
    key: Id,
    /// The kind of record read.
    kind: Kind,
    /// Union of the answers so far.
    merged: Record,
    /// Each answering replica's own record, to find the ones behind.
    answers: Vec<(SocketAddr, Record)>,
    /// Who was asked and who answered.
    quorum: Quorum,
    /// Set once R replicas answered.
    reached: bool,
    /// Set once the result went to the client.
    reported: bool,
}

/// Quorum writes and reads in flight.
#[derive(Debug)]
pub(crate) struct Ops {
    /// This node's address (a replica like any other, answered locally).
    me: SocketAddr,
    /// Replica set size N.
    replicas: usize,
    /// Acknowledgements a write needs (W).
    write_quorum: usize,
    /// Answers a read needs (R).
    read_quorum: usize,
    /// Id of the next client operation.
    next_op: OpId,
    /// What each write whose lookup or anchoring is still running will write.
    queued: BTreeMap<OpId, Record>,
    /// Operations looking for their key's owner.
    anchoring: BTreeMap<OpId, Anchoring>,
    /// Quorum writes in flight.
    writes: BTreeMap<OpId, WriteOp>,
    /// Quorum reads in flight.
    reads: BTreeMap<OpId, ReadOp>,
}

impl Ops {
    /// Nothing in flight.
    pub(crate) fn new(me: SocketAddr, config: &ChordConfig) -> Ops {
        Ops {
            me,
            replicas: config.replicas,
            write_quorum: config.write_quorum,
            read_quorum: config.read_quorum,
            next_op: 1,
            queued: BTreeMap::new(),
            anchoring: BTreeMap::new(),
            writes: BTreeMap::new(),
            reads: BTreeMap::new(),
        }
    }

    /// A fresh client operation id.
    pub(crate) fn new_op(&mut self) -> OpId {
        let op = self.next_op;
        self.next_op += 1;
        op
    }

    /// `from` answered the request `kind` of a client operation with `msg`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_answer(
        &mut self,
        now: Instant,
        from: Peer,
        kind: OpRpc,
        msg: Message,
        ring: &Neighbours,
        store: &mut Store,
        rpcs: &mut Rpcs,
    ) {
        match (kind, msg) {
            (OpRpc::Anchor { op }, Message::State { pred, succs, .. }) => {
                self.on_owner_state(now, op, from, pred, &succs, ring, store, rpcs)
            }
            (OpRpc::Write { op }, Message::Stored { ok, .. }) => {
                let reply = if ok { Reply::Good(()) } else { Reply::Refused };
                self.on_write_answer(now, op, from.addr, reply, store, rpcs)
            }
            (OpRpc::Read { op }, Message::Fetched { ready, value, .. }) => {
                // Not ready, an unknown kind or a value that does not parse
                // or validate: a failed answer.
                let read = self.reads.get(&op).map(|r| (r.key, r.kind));
                let record = read.filter(|_| ready).and_then(|(key, kind)| {
                    store.decode(now, key, &value).filter(|r| r.kind() == kind)
                });
                let reply = record.map_or(Reply::Refused, Reply::Good);
                self.on_read_answer(now, op, from.addr, reply, store, rpcs)
            }
            (OpRpc::Repair, Message::Stored { .. }) => {}
            // A well-formed answer of the wrong kind: count it as a failure.
            (kind, _) => self.on_refusal(now, from, kind, ring, store, rpcs),
        }
    }

    /// `from` answered the request `kind` of a client operation, but with
    /// an answer of the wrong kind: a refusal.
    fn on_refusal(
        &mut self,
        now: Instant,
        from: Peer,
        kind: OpRpc,
        ring: &Neighbours,
        store: &mut Store,
        rpcs: &mut Rpcs,
    ) {
        match kind {
            OpRpc::Anchor { op } => self.on_owner_silent(now, (op, from), false, ring, store, rpcs),
            OpRpc::Write { op } => {
                self.on_write_answer(now, op, from.addr, Reply::Refused, store, rpcs)
            }
            OpRpc::Read { op } => {
                self.on_read_answer(now, op, from.addr, Reply::Refused, store, rpcs)
            }
            OpRpc::Repair => {}
        }
    }

    /// The request `kind` of a client operation to `dead` failed.
    pub(crate) fn on_failure(
        &mut self,
        now: Instant,
        dead: Peer,
        kind: OpRpc,
        ring: &Neighbours,
        store: &mut Store,
        rpcs: &mut Rpcs,
    ) {
        match kind {
            OpRpc::Anchor { op } => self.on_owner_silent(now, (op, dead), true, ring, store, rpcs),
            OpRpc::Write { op } => {
                self.on_write_answer(now, op, dead.addr, Reply::Lost, store, rpcs)
            }
            OpRpc::Read { op } => self.on_read_answer(now, op, dead.addr, Reply::Lost, store, rpcs),
            // A replica missing a repair gets it from anti-entropy.
            OpRpc::Repair => {}
        }
    }

    /// The lookup for `op` found `list` for `key` after `hops` questions:
    /// that is the answer of a client lookup.
    pub(crate) fn located(&self, op: OpId, key: Id, list: &[Peer], hops: u32, rpcs: &mut Rpcs) {
        let info = LookupInfo {
            key,
            owner: list[0].addr,
            replicas: replica_set(list, self.replicas),
            hops,
        };
        rpcs.done(op, Ok(OpOutcome::Located(info)));
    }

    /// Client operation `op` failed before it reached any replica.
    pub(crate) fn fail(&mut self, op: OpId, err: ChordError, rpcs: &mut Rpcs) {
        self.queued.remove(&op);
        rpcs.done(op, Err(err));
    }

    // ----- quorum writes -----

    /// Write `op` will write `value` once its key's lookup ends.
    pub(crate) fn queue_write(&mut self, op: OpId, value: Record) {
        self.queued.insert(op, value);
    }

    /// Write `op` to the replica set of `key`, anchored at its owner
    /// starting from `list`, the owner's successor list as a lookup found it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start_write(
        &mut self,
        now: Instant,
        op: OpId,
        key: Id,
        list: &[Peer],
        ring: &Neighbours,
        store: &mut Store,
        rpcs: &mut Rpcs,
    ) {
        if self.queued.contains_key(&op) {
            self.anchor(now, op, (key, Then::Write), list, ring, store, rpcs);
        }
    }

    /// Write `op` to the replica set of `key`, `list` being its owner and
    /// the owner's successors. If `anchored` (the head is the owner in its
    /// own view), the owner's own acknowledgement is one of the W.
    #[allow(clippy::too_many_arguments)]
    fn write_over(
        &mut self,
        now: Instant,
        op: OpId,
        key: Id,
        list: Vec<Peer>,
        anchored: bool,
        store: &mut Store,
        rpcs: &mut Rpcs,
    ) {
        let Some(value) = self.queued.remove(&op) else {
            return;
        };
        let candidates = list.iter().map(|p| p.addr).collect();
        let (n, w) = (self.replicas, self.write_quorum);
        let (quorum, first) = if anchored {
            Quorum::start_anchored(candidates, n, w)
        } else {
            Quorum::start(candidates, n, w)
        };
        self.writes.insert(op, WriteOp { key, value, quorum });
        for target in first {
            self.write_to(now, op, target, store, rpcs);
        }
    }

    fn write_to(
        &mut self,
        now: Instant,
        op: OpId,
        target: SocketAddr,
        store: &mut Store,
        rpcs: &mut Rpcs,
    ) {
        let Some(w) = self.writes.get(&op) else {
            return;
        };
        if target == self.me {
            let (key, value) = (w.key, w.value.clone());
            let reply = if store.merge(key, &value) {
                Reply::Good(())
            } else {
                Reply::Refused
            };
            self.on_write_answer(now, op, target, reply, store, rpcs);
        } else {
            let (key, value) = (w.key, w.value.to_wire(now));
            rpcs.request(
                now,
                Peer::new(target),
                |req| Message::Store { req, key, value },
                OpRpc::Write { op },
            );
        }
    }

    /// Replica `replica` stored write `op`, refused it or did not answer.
    fn on_write_answer(
        &mut self,
        now: Instant,
        op: OpId,
        replica: SocketAddr,
        reply: Reply<()>,
        store: &mut Store,
        rpcs: &mut Rpcs,
    ) {
        let Some(w) = self.writes.get_mut(&op) else {
            return;
        };
        let (spare, progress) = match reply {
            Reply::Good(()) => (None, w.quorum.succeed(replica)),
            Reply::Refused => w.quorum.fail(replica),
            Reply::Lost => w.quorum.lose(replica),
        };
        let got = w.quorum.succeeded().len();
        let finished = w.quorum.is_finished();
        match progress {
            Progress::Reached => rpcs.done(op, Ok(OpOutcome::Stored)),
            Progress::Failed => {
                let needed = self.write_quorum;
                rpcs.done(op, Err(ChordError::QuorumFailed { got, needed }));
            }
            Progress::Waiting => {}
        }
        if let Some(s) = spare {
            self.write_to(now, op, s, store, rpcs);
        } else if finished {
            self.writes.remove(&op);
        }
    }
}

#[cfg(test)]
mod tests;
