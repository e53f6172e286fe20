//! Where a joining node sits on the ring, for an even load: ids are
//! SHA-1 of a node's address (no node picks its id freely), and random
//! ids give uneven arcs (the busiest of 1,000 nodes holds about 3.7 times
//! the mean number of records with N = 3). A joiner that may listen on any
//! of `k` ports takes the one whose id would own the longest arc, the
//! "k choices" of Byers, Considine and Mitzenmacher: with k = 4 the
//! busiest node's share drops to about 2 times the mean.
//!
//! Nothing else changes: the id is still the hash of the address others
//! reach the node at, the join is Chord's, and replica sets are still the
//! owner's successors (one node per address, so N distinct nodes), so
//! Zave's invariants and the replication argument hold as before. Choosing
//! among k ports gives a node no more say over its id than owning an
//! address already gives (any of 65,535 ports is a choice).

use std::net::SocketAddr;

use crate::id::Id;

/// Of `candidates`, the address whose id would own the longest arc of a
/// ring whose members have `ids` (sorted or not); the first if the ring is
/// empty or `candidates` has one. `ids` are what lookups of the candidates'
/// ids answer: each one's successor and that successor's predecessor.
pub fn pick_address(candidates: &[SocketAddr], ids: &[Id]) -> Option<SocketAddr> {
    let mut sorted = ids.to_vec();
    sorted.sort();
    candidates
        .iter()
        .rev() // of equal arcs, the first candidate
        .copied()
        .max_by_key(|a| owned_arc(Id::of_addr(*a), &sorted))
}

/// The arc (predecessor, id] that `id` would own among `sorted` ids: its
/// clockwise distance from the closest id before it.
pub fn owned_arc(id: Id, sorted: &[Id]) -> Id {
    let at = sorted.partition_point(|x| *x < id);
    let pred = match at {
        0 => sorted.last(),
        _ => sorted.get(at - 1),
    };
    match pred {
        Some(p) if *p != id => p.distance_to(id),
        _ => Id([0xff; 20]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_candidate_in_the_widest_gap_wins() {
        let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let ids: Vec<Id> = (0..50).map(|p| Id::of_addr(addr(9000 + p))).collect();
        let candidates: Vec<SocketAddr> = (1..=8).map(addr).collect();
        let picked = pick_address(&candidates, &ids).expect("one");
        let mut sorted = ids.clone();
        sorted.sort();
        let best = candidates
            .iter()
            .map(|a| owned_arc(Id::of_addr(*a), &sorted))
            .max()
            .expect("one");
        assert_eq!(owned_arc(Id::of_addr(picked), &sorted), best);
        assert_eq!(pick_address(&candidates[..1], &ids), Some(candidates[0]));
        assert_eq!(pick_address(&candidates, &[]), Some(candidates[0]));
    }
}
