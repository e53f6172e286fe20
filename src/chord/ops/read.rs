//! Quorum reads with read repair: every replica of the set is asked and
//! waited for, their answers merged, and those behind repaired.

use std::net::SocketAddr;
use std::time::Instant;

use super::{Ops, ReadOp, Reply, REPAIR_SLACK};
use crate::chord::message::Message;
use crate::chord::neighbours::Neighbours;
use crate::chord::quorum::{Progress, Quorum};
use crate::chord::records::{Record, SwarmList};
use crate::chord::rpc::{OpId, OpOutcome, OpRpc, Rpcs};
use crate::chord::store::Store;
use crate::chord::{ChordError, Peer};
use crate::id::Id;
use crate::wire::chord::message::Kind;

use super::anchor::Then;

impl Ops {
    /// Read the record of `kind` at `key` from its replica set, anchored
    /// at its owner starting from `list` as a lookup found it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start_read(
        &mut self,
        now: Instant,
        op: OpId,
        (key, kind): (Id, Kind),
        list: &[Peer],
        ring: &Neighbours,
        store: &mut Store,
        rpcs: &mut Rpcs,
    ) {
        self.anchor(now, op, (key, Then::Read(kind)), list, ring, store, rpcs);
    }

    /// Read the record of `kind` at `key` from its replica set, `list`
    /// being its owner and the owner's successors.
    pub(super) fn read_over(
        &mut self,
        now: Instant,
        op: OpId,
        (key, kind): (Id, Kind),
        list: Vec<Peer>,
        store: &mut Store,
        rpcs: &mut Rpcs,
    ) {
        let candidates = list.iter().map(|p| p.addr).collect();
        // Only the replica set's answers make a read: see `quorum`.
        let (quorum, first) = Quorum::start(candidates, self.replicas, self.read_quorum);
        let Some(merged) = Record::empty(kind) else {
            rpcs.done(op, Err(ChordError::UnknownKind(kind)));
            return;
        };
        let read = ReadOp {
            key,
            kind,
            merged,
            answers: Vec::new(),
            quorum,
            reached: false,
            reported: false,
        };
        self.reads.insert(op, read);
        for target in first {
            self.read_from(now, op, target, store, rpcs);
        }
    }

    fn read_from(
        &mut self,
        now: Instant,
        op: OpId,
        target: SocketAddr,
        store: &mut Store,
        rpcs: &mut Rpcs,
    ) {
        let Some(r) = self.reads.get(&op) else {
            return;
        };
        let (key, kind) = (r.key, r.kind);
        if target == self.me {
            let held = || {
                store
                    .get(key, kind)
                    .cloned()
                    .or_else(|| Record::empty(kind))
            };
            let local = store.is_ready().then(held).flatten();
            let reply = local.map_or(Reply::Refused, Reply::Good);
            self.on_read_answer(now, op, target, reply, store, rpcs);
        } else {
            rpcs.request(
                now,
                Peer::new(target),
                |req| Message::Fetch { req, key, kind },
                OpRpc::Read { op },
            );
        }
    }

    /// Replica `replica` answered read `op` with its record, refused (not
    /// ready) or did not answer.
    pub(super) fn on_read_answer(
        &mut self,
        now: Instant,
        op: OpId,
        replica: SocketAddr,
        reply: Reply<Record>,
        store: &mut Store,
        rpcs: &mut Rpcs,
    ) {
        let Some(r) = self.reads.get_mut(&op) else {
            return;
        };
        let (spare, progress) = match reply {
            Reply::Good(list) => {
                r.merged.merge(&list);
                r.answers.push((replica, list));
                (None, r.quorum.succeed(replica))
            }
            Reply::Refused => r.quorum.fail(replica),
            Reply::Lost => r.quorum.lose(replica),
        };
        match progress {
            Progress::Reached => r.reached = true,
            Progress::Failed => {
                let got = r.quorum.succeeded().len();
                let needed = self.read_quorum;
                rpcs.done(op, Err(ChordError::QuorumFailed { got, needed }));
            }
            Progress::Waiting => {}
        }
        // R answers make a result, but the answers of every replica asked
        // are merged first: a writer whose view of the ring was a little
        // stale may have reached only one of ours.
        if r.reached && !r.reported && r.quorum.is_finished() {
            r.reported = true;
            let outcome = match <&SwarmList>::try_from(&r.merged) {
                Ok(list) => OpOutcome::Peers(list.live(now)),
                Err(_) => OpOutcome::Record(r.merged.clone()),
            };
            rpcs.done(op, Ok(outcome));
        }
        // Read repair: everyone who answered with less than the union gets it.
        if r.reported {
            let (key, merged) = (r.key, r.merged.clone());
            let behind: Vec<SocketAddr> = r
                .answers
                .drain(..)
                .filter(|(_, list)| list.is_behind(&merged, REPAIR_SLACK))
                .map(|(addr, _)| addr)
                .collect();
            for addr in behind {
                if addr == self.me {
                    store.merge(key, &merged);
                } else {
                    let value = merged.to_wire(now);
                    rpcs.request(
                        now,
                        Peer::new(addr),
                        |req| Message::Store { req, key, value },
                        OpRpc::Repair,
                    );
                }
            }
        }
        if let Some(s) = spare {
            self.read_from(now, op, s, store, rpcs);
        } else if self.reads.get(&op).is_some_and(|r| r.quorum.is_finished()) {
            self.reads.remove(&op);
        }
    }
}
