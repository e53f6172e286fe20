//! One iterative lookup: which nodes to ask next about a key.
//!
//! The asking node keeps the candidates itself and asks one node at a time,
//! so a dead hop costs its time-outs and the lookup carries on with the
//! next closest candidate (retry around dead hops). A node the lookup
//! found dead (the caller decides on what evidence) is never asked again
//! and is left out of an owner's list. The number of questions asked is the hop count, and it
//! is bounded.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use crate::chord::Peer;
use crate::id::Id;

/// Most candidates remembered per lookup; the closest ones are the useful ones.
const MAX_CANDIDATES: usize = 16;

/// The state of one lookup.
#[derive(Debug)]
pub struct Lookup {
    /// The key looked up.
    pub key: Id,
    /// Questions asked so far.
    pub hops: u32,
    /// Not yet asked, closest preceding first.
    candidates: Vec<Peer>,
    /// Already asked (answered or not): never asked twice.
    tried: BTreeSet<SocketAddr>,
    /// Nodes found dead in this lookup.
    dead: BTreeSet<SocketAddr>,
}

impl Lookup {
    /// A lookup of `key` that will ask `start` first (in that order).
    pub fn new(key: Id, start: Vec<Peer>) -> Lookup {
        let mut l = Lookup {
            key,
            hops: 0,
            candidates: Vec::new(),
            tried: BTreeSet::new(),
            dead: BTreeSet::new(),
        };
        // Keep the caller's order for the first candidates (bootstrap nodes,
        // or the caller's own closest fingers, already sorted).
        for p in start {
            if !l.candidates.iter().any(|c| c.addr == p.addr) {
                l.candidates.push(p);
            }
        }
        l
    }

    /// The next node to ask, counting a hop; None when out of candidates.
    pub fn next_hop(&mut self) -> Option<Peer> {
        while !self.candidates.is_empty() {
            let p = self.candidates.remove(0);
            if self.tried.insert(p.addr) {
                self.hops += 1;
                return Some(p);
            }
        }
        None
    }

    /// `addr` is dead for the rest of the lookup: never asked as a hop
    /// again, and no owner.
    pub fn dead(&mut self, addr: SocketAddr) {
        self.tried.insert(addr);
        self.dead.insert(addr);
        self.candidates.retain(|c| c.addr != addr);
    }

    /// True if `addr` was found dead in this lookup.
    pub fn is_dead(&self, addr: SocketAddr) -> bool {
        self.dead.contains(&addr)
    }

    /// `from` answered with nodes that precede the key more closely. Only
    /// nodes strictly between `from` and the key are kept, so every answer
    /// makes progress around the ring.
    pub fn add_closer(&mut self, from: Id, nodes: &[Peer]) {
        for p in nodes {
            if self.tried.contains(&p.addr) || self.candidates.iter().any(|c| c.addr == p.addr) {
                continue;
            }
            if p.id.in_open(from, self.key) || p.id == self.key {
                self.candidates.push(*p);
            }
        }
        let key = self.key;
        self.candidates
            .sort_by_cached_key(|c| c.id.distance_to(key));
        self.candidates.truncate(MAX_CANDIDATES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> Peer {
        Peer::new(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn never_asks_twice_and_counts_hops() {
        let a = peer(1);
        let mut l = Lookup::new(Id::hash(b"k"), vec![a, a]);
        assert_eq!(l.next_hop(), Some(a));
        assert_eq!(l.next_hop(), None);
        l.add_closer(a.id, &[a]);
        assert_eq!(l.next_hop(), None);
        assert_eq!(l.hops, 1);
    }

    #[test]
    fn closer_answers_are_ordered_by_distance_to_key() {
        let peers: Vec<Peer> = (1..40).map(peer).collect();
        let key = Id::hash(b"some key");
        let from = peers[0];
        let mut l = Lookup::new(key, vec![]);
        l.add_closer(from.id, &peers[1..]);
        let mut last = None;
        while let Some(p) = l.next_hop() {
            assert!(p.id.in_open(from.id, key));
            let d = p.id.distance_to(key);
            assert!(last.is_none_or(|l| l <= d));
            last = Some(d);
        }
    }
}
