//! Anchoring an operation at the key's owner before its quorum starts.
//!
//! A lookup's answer is one node's view, and during joins it can be stale
//! by more than one node: in the announce history (seed 5000005) two
//! nodes joined just before a key's owner, and a writer that knew neither
//! had its announce acknowledged by two nodes that were no replicas any
//! more. So the first node of the list found is asked for its state
//! (`GetState`): if its predecessor lies between the key and it, the key
//! belongs further back, and the walk goes on there; once a node's
//! predecessor precedes the key, that node is the owner in its own view,
//! and the operation runs over it and its successor list.
//!
//! With the owner anchored, a write also needs the owner's own
//! acknowledgement (see `Quorum::start_anchored`): every acknowledged
//! announce is then on the node that owned the key when it was written, and
//! a later read of the key's replica set asks that node unless more than
//! N − 1 nodes joined in front of it meanwhile, or it died (and then the
//! second acknowledgement is on its successor or the one after).
//!
//! A head that stays silent (asked twice) may be dead, or cut off. Its
//! successors are then not taken from the lookup's list as it stands: right
//! after an owner dies that list can be stale enough that its live entries
//! are no replicas at all (history seed 5005839: a read asked the dead
//! owner and two nodes far past it, which answered "nothing"). The walk
//! goes on at the next candidate instead, back to the first node whose
//! predecessor precedes the key or is silent too: the owner in its own view
//! once the silent ones are gone. The operation then runs over the silent
//! nodes between the key and it, and its list: unanchored, the silent ones
//! still primaries (so spares decide nothing, as in `quorum`), and a write
//! needs W of the others instead.

use std::net::SocketAddr;
use std::time::Instant;

use super::Ops;
use crate::chord::message::Message;
use crate::chord::neighbours::Neighbours;
use crate::chord::rpc::{OpId, OpRpc, Rpcs};
use crate::chord::store::Store;
use crate::chord::{ChordError, Peer};
use crate::id::Id;
use crate::wire::chord::message::Kind;

/// Steps back (or past silent nodes) before an anchoring gives up.
const MAX_STEPS: u32 = 8;

/// Silent heads an anchoring walks past. Each costs two time-outs, and with
/// this many silent primaries leading the list, a quorum of W = R = 2 out
/// of N = 3 cannot be made without one of them: the operation then runs as
/// it stands, and fails rather than misses unless they answer.
const MAX_SILENT: usize = 2;

/// What runs once the owner is anchored.
#[derive(Clone, Copy, Debug)]
pub(super) enum Then {
    /// The queued write of the operation.
    Write,
    /// A read of the record of this kind.
    Read(Kind),
}

/// An operation looking for the owner of its key.
#[derive(Debug)]
pub(super) struct Anchoring {
    /// The key.
    key: Id,
    /// What to run then.
    then: Then,
    /// The would-be owner first, then its successors as last seen.
    candidates: Vec<Peer>,
    /// True once the current head was asked a second time.
    retried: bool,
    /// Heads that stayed silent, in the order found.
    silent: Vec<Peer>,
    /// Heads asked so far.
    steps: u32,
}

impl Ops {
    /// Anchor op `op` on `key`'s owner, starting from `list` as a lookup
    /// found it, then run `then`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn anchor(
        &mut self,
        now: Instant,
        op: OpId,
        (key, then): (Id, Then),
        list: &[Peer],
        ring: &Neighbours,
        store: &mut Store,
        rpcs: &mut Rpcs,
    ) {
        let a = Anchoring {
            key,
            then,
            candidates: list.to_vec(),
            retried: false,
            silent: Vec::new(),
            steps: 0,
        };
        self.anchoring.insert(op, a);
        self.ask_head(now, op, ring, store, rpcs);
    }

    /// Ask the current head of op `op`'s candidates for its state.
    fn ask_head(
        &mut self,
        now: Instant,
        op: OpId,
        ring: &Neighbours,
        store: &mut Store,
        rpcs: &mut Rpcs,
    ) {
        let Some(a) = self.anchoring.get_mut(&op) else {
            return;
        };
        a.steps += 1;
        let head = a.candidates.first().copied();
        match head {
            Some(h) if a.steps <= MAX_STEPS => {
                if h.addr == self.me {
                    let pred = ring.predecessor().map(|p| p.addr);
                    let succs: Vec<SocketAddr> = ring.successors().iter().map(|p| p.addr).collect();
                    self.on_owner_state(now, op, h, pred, &succs, ring, store, rpcs);
                } else {
                    let kind = OpRpc::Anchor { op };
                    rpcs.request(now, h, |req| Message::GetState { req }, kind);
                }
            }
            _ => {
                let a = self.anchoring.remove(&op);
                self.queued.remove(&op);
                let key = a.map_or(Id::default(), |a| a.key);
                let hops = MAX_STEPS;
                rpcs.done(op, Err(ChordError::LookupFailed { key, hops }));
            }
        }
    }

    /// `head` of op `op`'s candidates answered with its predecessor and
    /// successor list.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_owner_state(
        &mut self,
        now: Instant,
        op: OpId,
        head: Peer,
        pred: Option<SocketAddr>,
        succs: &[SocketAddr],
        ring: &Neighbours,
        store: &mut Store,
        rpcs: &mut Rpcs,
    ) {
        let Some(a) = self.anchoring.get_mut(&op) else {
            return;
        };
        if a.candidates.first() != Some(&head) {
            return;
        }
        a.retried = false;
        let mut list = vec![head];
        list.extend(succs.iter().map(|s| Peer::new(*s)).filter(|p| *p != head));
        // What the lookup found beyond the head's own list still serves as
        // spares (a head that knows few successors).
        let rest: Vec<Peer> = a.candidates[1..]
            .iter()
            .filter(|p| !list.contains(p))
            .copied()
            .collect();
        list.extend(rest);
        let key = a.key;
        let before = |p: &Peer| *p != head && !key.in_open_closed(p.id, head.id);
        let further_back = pred
            .map(Peer::new)
            .filter(before)
            .filter(|p| !a.silent.contains(p));
        if let Some(p) = further_back {
            // Someone between the key and the head: the key is theirs (a
            // join the lookup did not see yet).
            list.insert(0, p);
            a.candidates = list;
            self.ask_head(now, op, ring, store, rpcs);
            return;
        }
        // Silent nodes between the key and the head may be alive, and the
        // owners: they lead the list, nearest the key first.
        let mut skipped: Vec<Peer> = a.silent.iter().filter(|p| before(p)).copied().collect();
        skipped.sort_by_key(|p| key.distance_to(p.id));
        list.retain(|p| !skipped.contains(p));
        let anchored = skipped.is_empty();
        skipped.extend(list);
        a.candidates = skipped;
        self.run_anchored(now, op, anchored, store, rpcs);
    }

    /// Run op `op` over its candidates: `anchored` if its head is the owner
    /// in its own view, else as they stand.
    fn run_anchored(
        &mut self,
        now: Instant,
        op: OpId,
        anchored: bool,
        store: &mut Store,
        rpcs: &mut Rpcs,
    ) {
        let Some(a) = self.anchoring.remove(&op) else {
            return;
        };
        let list = a.candidates;
        match a.then {
            Then::Write => self.write_over(now, op, a.key, list, anchored, store, rpcs),
            Then::Read(kind) => self.read_over(now, op, (a.key, kind), list, store, rpcs),
        }
    }

    /// The head of op `op`'s candidates did not answer (`lost`) or answered
    /// wrongly: ask it once more, or go on at the next candidate.
    pub(super) fn on_owner_silent(
        &mut self,
        now: Instant,
        (op, head): (OpId, Peer),
        lost: bool,
        ring: &Neighbours,
        store: &mut Store,
        rpcs: &mut Rpcs,
    ) {
        let Some(a) = self.anchoring.get_mut(&op) else {
            return;
        };
        if a.candidates.first() != Some(&head) {
            return;
        }
        if lost && !a.retried {
            a.retried = true;
            let kind = OpRpc::Anchor { op };
            rpcs.request(now, head, |req| Message::GetState { req }, kind);
            return;
        }
        a.retried = false;
        a.candidates.remove(0);
        a.silent.push(head);
        if a.silent.len() >= MAX_SILENT || a.candidates.is_empty() {
            // The silent ones lead the list, and decide the operation.
            let rest = std::mem::take(&mut a.candidates);
            a.candidates = a.silent.iter().copied().chain(rest).collect();
            self.run_anchored(now, op, false, store, rpcs);
        } else {
            self.ask_head(now, op, ring, store, rpcs);
        }
    }
}
