//! A record kind for tests only: a grow-only set of numbers. It exists to
//! show that a kind is one file and one line in the list of kinds, and
//! that the quorum operations, hand-off, read repair and the merge of
//! healed partitions then work for it unchanged (see the simulation below).
//!
//! Merge is set union. A replica takes at most `max_items_per_key` numbers
//! per key and only numbers below 2^32 (its validation). Numbers never
//! expire. On the wire: the numbers as 8-byte big-endian integers.

use std::collections::BTreeSet;
use std::time::Instant;

use crate::chord::records::{Limits, Quota, RecordKind};
use crate::id::Id;
use crate::wire::chord::message::{Kind, WireRecord};

/// A grow-only set of numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrowSet(pub BTreeSet<u64>);

impl GrowSet {
    /// The set of `numbers`.
    pub fn of(numbers: impl IntoIterator<Item = u64>) -> GrowSet {
        GrowSet(numbers.into_iter().collect())
    }
}

impl RecordKind for GrowSet {
    const KIND: Kind = 250;

    fn merge(&mut self, other: &GrowSet) {
        self.0.extend(&other.0);
    }

    fn merge_capped(&mut self, incoming: &GrowSet, limits: &Limits, _quota: &mut Quota) -> bool {
        let mut all_taken = true;
        for n in &incoming.0 {
            if !self.0.contains(n) && self.0.len() >= limits.max_items_per_key {
                all_taken = false;
                continue;
            }
            self.0.insert(*n);
        }
        all_taken
    }

    fn validate(&self, _key: &Id) -> bool {
        self.0.iter().all(|n| *n <= u64::from(u32::MAX))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn to_wire(&self, _now: Instant) -> WireRecord {
        let body = self.0.iter().flat_map(|n| n.to_be_bytes()).collect();
        WireRecord::Tagged {
            kind: Self::KIND,
            body,
        }
    }

    fn from_wire(_now: Instant, wire: &WireRecord, _limits: &Limits) -> Option<GrowSet> {
        match wire {
            WireRecord::Tagged { kind, body } if *kind == Self::KIND && body.len() % 8 == 0 => {
                let numbers = body.chunks_exact(8).map(|c| {
                    let mut be = [0u8; 8];
                    be.copy_from_slice(c);
                    u64::from_be_bytes(be)
                });
                Some(GrowSet::of(numbers))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::chord::records::{assert_join_laws, Record, SwarmList};

    fn limits(max: usize) -> Limits {
        Limits {
            max_items_per_key: max,
            max_items_per_source: max,
            max_items_per_key_per_source: max,
            max_items: 0,
            max_ttl: Duration::from_secs(60),
        }
    }

    #[test]
    fn union_is_a_join() {
        assert_join_laws(&GrowSet::of([1, 2]), &GrowSet::of([2, 3]), &GrowSet::of([9]));
    }

    #[test]
    fn travels_tagged_and_parses_only_its_own_kind() {
        let now = Instant::now();
        let set = GrowSet::of([7, 1 << 40]);
        let wire = set.to_wire(now);
        assert_eq!(wire.kind(), GrowSet::KIND);
        assert_eq!(GrowSet::from_wire(now, &wire, &limits(9)), Some(set.clone()));
        let record = Record::from_wire(now, &wire, &limits(9)).expect("a known kind");
        assert_eq!(<&GrowSet>::try_from(&record), Ok(&set));
        assert!(<&SwarmList>::try_from(&record).is_err());
        let torn = WireRecord::Tagged {
            kind: GrowSet::KIND,
            body: vec![0; 7],
        };
        assert_eq!(GrowSet::from_wire(now, &torn, &limits(9)), None);
        assert_eq!(GrowSet::from_wire(now, &WireRecord::Swarm(vec![]), &limits(9)), None);
    }

    #[test]
    fn caps_and_validation() {
        let mut quota = Quota::default();
        let mut set = GrowSet::of([1]);
        assert!(!set.merge_capped(&GrowSet::of([1, 2, 3]), &limits(2), &mut quota));
        assert_eq!(set, GrowSet::of([1, 2]));
        assert!(set.merge_capped(&GrowSet::of([2]), &limits(2), &mut quota));
        assert!(!GrowSet::of([1 << 40]).validate(&Id::default()));
        assert!(GrowSet::of([7]).validate(&Id::default()));
    }
}

/// The seeded simulation of `tests/chord_sim.rs`, compiled into the crate so
/// that it can run a ring that knows this test-only kind.
#[path = "../../../tests/support/chord_sim.rs"]
mod chord_sim;

/// Quorum writes and reads, hand-off to joiners and the merge of a healed
/// partition, for a kind the ring code has never heard of.
mod in_the_ring {
    use std::collections::BTreeSet;
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::chord_sim::{for_each_seed, ideal_ring, list_invariants, ring_invariants, sim_config, Sim};
    use super::*;
    use crate::chord::node::OpOutcome;
    use crate::chord::Role;

    /// Put `n` into the set at `key` through node `i` until a quorum stored
    /// it (a side of a partition may need a while to heal).
    fn put(sim: &mut Sim, i: usize, key: Id, n: u64, strict: bool) {
        for _ in 0..30 {
            let op = sim.call(i, |node, now| node.put(now, key, GrowSet::of([n]).into()));
            run(sim, Duration::from_secs(1), strict);
            if let Some(Ok(OpOutcome::Stored)) = sim.result(i, op).map(|f| &f.result) {
                return;
            }
        }
        panic!("seed {}: node {i} never stored {n}", sim.seed);
    }

    /// The set at `key` as a quorum read through node `i` returns it.
    fn get(sim: &mut Sim, i: usize, key: Id) -> GrowSet {
        for _ in 0..5 {
            let op = sim.call(i, |node, now| node.get(now, key, GrowSet::KIND));
            run(sim, Duration::from_secs(2), true);
            if let Some(Ok(OpOutcome::Record(record))) = sim.result(i, op).map(|f| &f.result) {
                return <&GrowSet>::try_from(record).expect("the kind asked for").clone();
            }
        }
        panic!("seed {}: no read of the set succeeded through node {i}", sim.seed);
    }

    fn run(sim: &mut Sim, d: Duration, strict: bool) {
        if strict {
            sim.run_for(d, ring_invariants);
        } else {
            sim.run_for(d, list_invariants);
        }
    }

    /// Every acknowledged number is read back through five members.
    fn reads_hold(sim: &mut Sim, key: Id, acked: &BTreeSet<u64>, when: &str) {
        for _ in 0..5 {
            let i = sim.random_member().expect("a member");
            let set = get(sim, i, key);
            assert!(
                set.0.is_superset(acked),
                "seed {}: {when}: node {i} read {:?}, acknowledged {acked:?}",
                sim.seed,
                set.0
            );
        }
    }

    /// The live members that hold the set at `key`, and the key's replica
    /// set (its owner and the next two members).
    fn holders(sim: &Sim, key: Id) -> (BTreeSet<usize>, BTreeSet<usize>) {
        let mut ring: Vec<usize> = (0..sim.nodes.len()).filter(|&i| sim.is_member(i)).collect();
        ring.sort_by_key(|&i| sim.nodes[i].node.id());
        let owner = ring
            .iter()
            .position(|&i| sim.nodes[i].node.id() >= key)
            .unwrap_or(0);
        let set = (0..3).map(|d| ring[(owner + d) % ring.len()]).collect();
        let held = ring
            .into_iter()
            .filter(|&i| sim.nodes[i].node.record(&key, GrowSet::KIND).is_some())
            .collect();
        (held, set)
    }

    /// The set node `i` holds at `key`.
    fn held(sim: &Sim, i: usize, key: Id) -> BTreeSet<u64> {
        let record = sim.nodes[i].node.record(&key, GrowSet::KIND);
        let set = record.and_then(|r| <&GrowSet>::try_from(r).ok());
        set.map(|s| s.0.clone()).unwrap_or_default()
    }

    fn grow_set_history(seed: u64) {
        const FIRST: usize = 16;
        let mut sim = Sim::new(seed, sim_config());
        sim.add_node(None);
        while sim.nodes.len() < FIRST {
            let via = sim.random_member().expect("a member");
            sim.add_node(Some(via));
            sim.run_for(Duration::from_millis(100), ring_invariants);
        }
        sim.converge(Duration::from_secs(60), ring_invariants);
        // The key is the id of the next node to join (addresses as
        // `Sim::add_node` gives them): that node will own it.
        let newcomer = SocketAddr::from(([127, 0, 0, FIRST as u8 + 1], 7000));
        let key = Id::of_addr(newcomer);
        let mut acked = BTreeSet::new();
        for n in 1..=4 {
            let i = sim.random_member().expect("a member");
            put(&mut sim, i, key, n, true);
            acked.insert(n);
        }
        // A swarm list at the same key is a record of its own.
        let peer = SocketAddr::new(sim.nodes[0].node.addr().ip(), 6881);
        let op = sim.call(0, |node, now| node.announce(now, key, peer, Role::Seeder));
        run(&mut sim, Duration::from_secs(2), true);
        assert_eq!(sim.result(0, op).map(|f| &f.result), Some(&Ok(OpOutcome::Stored)));
        reads_hold(&mut sim, key, &acked, "after the writes");

        // Joins, the first of which takes the key over: its range comes by
        // hand-off, and the replica that drops out hands its copy over and
        // deletes it.
        for _ in 0..8 {
            let via = (0..3).filter_map(|_| sim.random_member()).collect();
            sim.add_node_via(via);
            run(&mut sim, Duration::from_millis(500), true);
        }
        assert_eq!(sim.nodes[FIRST].node.addr(), newcomer);
        sim.converge(Duration::from_secs(60), ring_invariants);
        let settle = sim.config.replicate_interval * 6;
        run(&mut sim, settle, true);
        let (held_by, replica_set) = holders(&sim, key);
        assert!(replica_set.contains(&FIRST), "seed {seed}: the newcomer owns the key");
        assert_eq!(held_by, replica_set, "seed {seed}: holders after the joins");
        for &i in &replica_set {
            assert_eq!(held(&sim, i, key), acked, "seed {seed}: node {i} after the joins");
        }
        reads_hold(&mut sim, key, &acked, "after the joins");

        // A partition: each side heals into its own ring and takes a write.
        for n in sim.nodes.iter_mut() {
            n.side = u8::from(n.node.id().0[0] >= 0x80);
        }
        sim.dirty = true;
        run(&mut sim, Duration::from_secs(10), false);
        for side in 0..2u8 {
            let i = (0..sim.nodes.len())
                .find(|&i| sim.is_member(i) && sim.nodes[i].side == side)
                .expect("a member on each side");
            let n = 100 + u64::from(side);
            put(&mut sim, i, key, n, false);
            acked.insert(n);
        }
        // Heal: anti-entropy merges both sides' writes on the replica set.
        for n in sim.nodes.iter_mut() {
            n.side = 0;
        }
        sim.dirty = true;
        while ideal_ring(&sim).is_err() {
            run(&mut sim, Duration::from_millis(500), false);
            assert!(sim.t() < 400.0, "seed {seed}: rings never merged");
        }
        run(&mut sim, settle, true);
        let (_, replica_set) = holders(&sim, key);
        for &i in &replica_set {
            assert_eq!(held(&sim, i, key), acked, "seed {seed}: node {i} after the heal");
        }
        reads_hold(&mut sim, key, &acked, "after the partition healed");
        let i = sim.random_member().expect("a member");
        let op = sim.call(i, |node, now| node.peers(now, key));
        run(&mut sim, Duration::from_secs(2), true);
        assert_eq!(
            sim.result(i, op).map(|f| &f.result),
            Some(&Ok(OpOutcome::Peers(vec![(peer, Role::Seeder)])))
        );
    }

    #[test]
    fn a_second_kind_survives_joins_and_a_healed_partition() {
        for_each_seed(2, 9, grow_set_history);
    }
}
