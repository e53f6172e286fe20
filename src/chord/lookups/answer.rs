//! Answering one hop of someone else's lookup (`FindSuccessor`) from our
//! own tables: the owner's list if we know it, else the known nodes that
//! precede the key most closely.

use std::net::SocketAddr;

use super::{Lookups, CLOSER_COUNT};
use crate::chord::message::{Message, ReqId};
use crate::chord::neighbours::Neighbours;
use crate::chord::rpc::Rpcs;
use crate::chord::Peer;
use crate::chord::Phase;
use crate::id::Id;

impl Lookups {
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
        // The sort key, a 160-bit subtraction, is computed once per node.
        let mut all: Vec<(Id, Peer)> = self
            .fingers
            .iter()
            .chain(ring.successors().iter())
            .filter(|p| p.id.in_open(self.me.id, key))
            .map(|p| (p.id.distance_to(key), *p))
            .collect();
        all.sort_unstable_by_key(|(d, p)| (*d, p.addr));
        all.dedup_by_key(|(_, p)| p.addr);
        all.into_iter().take(count).map(|(_, p)| p).collect()
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
}
