//! The copy → acknowledge → delete hand-off of keys a node no longer
//! holds a replica of, once the head of the replica set a lookup found
//! confirms it owns the key.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Instant;

use super::{push, Replication};
use crate::chord::message::Message;
use crate::chord::neighbours::Neighbours;
use crate::chord::quorum::replica_set;
use crate::chord::records::Record;
use crate::chord::rpc::{ReplicaRpc, Rpcs};
use crate::chord::store::Store;
use crate::chord::Peer;
use crate::id::Id;

/// A record pushed to its rightful replicas, deleted here once all acknowledge.
#[derive(Debug)]
pub(super) struct HandoffOp {
    /// The key handed off.
    key: Id,
    /// The record as pushed; deleted only if nothing newer arrived meanwhile.
    pushed: Record,
    /// Replicas that have not acknowledged yet.
    waiting: BTreeSet<SocketAddr>,
    /// False once any replica refused or failed: keep the key for next pass.
    all_ok: bool,
}

impl Replication {
    /// A lookup found `list`, the successor list of `key`'s owner: push the
    /// key's records to its replica set, and hand them off if we are not in
    /// that set, once its head confirms it owns the key.
    ///
    /// A lookup's answer is one node's view, and while a healed partition's
    /// rings merge it can be far off: in the announce history (seed
    /// 5005164) a lookup answered by a node whose successor pointer still
    /// jumped across the other side's nodes named three nodes past the
    /// key's replicas, and all three replicas handed the key off to them
    /// and deleted it. So a node that finds itself outside a key's set
    /// first asks the set's head for its state (as operations anchor, see
    /// `ops::anchor`) and hands off only if the head's predecessor precedes
    /// the key; and never while it owns the key in its own view.
    pub(crate) fn on_located(
        &mut self,
        now: Instant,
        key: Id,
        list: &[Peer],
        ring: &Neighbours,
        store: &Store,
        rpcs: &mut Rpcs,
    ) {
        let set = replica_set(list, self.replicas);
        if !store.holds(key) {
            return;
        }
        if set.contains(&self.me.addr) {
            let me = self.me.addr;
            let others: Vec<SocketAddr> = set.into_iter().filter(|a| *a != me).collect();
            for addr in &others {
                self.offer(*addr, key);
            }
            self.replica_sets.insert(key, others);
            self.send_digests(now, store, rpcs);
            return;
        }
        self.replica_sets.remove(&key);
        let owned = ring
            .predecessor()
            .is_some_and(|p| key.in_open_closed(p.id, self.me.id));
        let Some(&head) = set.first() else {
            return;
        };
        if owned || self.confirming.contains_key(&key) {
            return;
        }
        self.confirming.insert(key, set);
        rpcs.request(
            now,
            Peer::new(head),
            |req| Message::GetState { req },
            ReplicaRpc::Confirm { key },
        );
    }

    /// `head`, the head of the replica set found for `key`, answered with
    /// its predecessor `pred`: hand the key off to that set if `head` owns
    /// it in its own view.
    pub(super) fn on_confirm(
        &mut self,
        now: Instant,
        head: Peer,
        key: Id,
        pred: Option<SocketAddr>,
        store: &Store,
        rpcs: &mut Rpcs,
    ) {
        let Some(set) = self.confirming.remove(&key) else {
            return;
        };
        let owner = pred.is_some_and(|p| key.in_open_closed(Peer::new(p).id, head.id));
        if !owner || set.first() != Some(&head.addr) || !store.holds(key) {
            return;
        }
        // Not ours any more: copy to every replica, delete once all acknowledge.
        for pushed in store.at(key) {
            let id = self.next_handoff;
            self.next_handoff += 1;
            let waiting = set.iter().copied().collect();
            let value = pushed.to_wire(now);
            let handoff = HandoffOp {
                key,
                pushed: pushed.clone(),
                waiting,
                all_ok: true,
            };
            self.handoffs.insert(id, handoff);
            for addr in &set {
                push(now, Peer::new(*addr), key, value.clone(), Some(id), rpcs);
            }
        }
    }

    /// A push (part of hand-off `handoff`, if any) was stored (`ok`),
    /// refused or lost at `replica`.
    pub(super) fn on_push_answer(
        &mut self,
        handoff: Option<u64>,
        replica: SocketAddr,
        ok: bool,
        store: &mut Store,
    ) {
        let Some(id) = handoff else {
            return;
        };
        let Some(h) = self.handoffs.get_mut(&id) else {
            return;
        };
        h.waiting.remove(&replica);
        h.all_ok &= ok;
        if !h.waiting.is_empty() {
            return;
        }
        if let Some(h) = self.handoffs.remove(&id) {
            let kind = h.pushed.kind();
            if h.all_ok && store.get(h.key, kind) == Some(&h.pushed) {
                store.remove(h.key, kind);
            }
        }
    }
}
