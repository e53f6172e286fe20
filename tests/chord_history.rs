//! A history checker over the simulation: with N = 3, W = 2, R = 2, every
//! acknowledged announce is returned by every later lookup, through the
//! loss of one replica, joins that move keys, and a healed partition.
//!
//! Reads are checked from their start. While a partition lasts, and until
//! the merged ring is whole again plus two anti-entropy periods, reads are
//! recorded but not checked: a side cut off from a key's replicas cannot
//! know what the other side acknowledged (announces made then are checked
//! afterwards like any other).

#[path = "support/chord_sim.rs"]
mod chord_sim;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chord_sim::{for_each_seed, list_invariants, ring_invariants, sim_config, Finished, Sim};
use rand::Rng;
use songswarm::chord::node::{Node, OpId, OpOutcome};
use songswarm::chord::{ChordError, Role};
use songswarm::id::Id;

/// One announce issued by the workload.
struct Announce {
    node: usize,
    op: OpId,
    key: Id,
    peer: SocketAddr,
}

/// One read issued by the workload.
struct Read {
    node: usize,
    op: OpId,
    key: Id,
    issued: Instant,
    checked: bool,
}

struct Workload {
    keys: Vec<Id>,
    announces: Vec<Announce>,
    reads: Vec<Read>,
    next_peer: u32,
    checking: bool,
}

impl Workload {
    /// Run the sim for `d`, issuing one announce and two reads every 100 ms.
    fn run(&mut self, sim: &mut Sim, d: Duration, strict: bool) {
        let end = sim.now + d;
        while sim.now < end {
            if let Some(i) = sim.random_member() {
                let key = self.keys[sim.rng.gen_range(0..self.keys.len())];
                self.next_peer += 1;
                // A node announces peers at its own address only.
                let ip = sim.nodes[i].node.addr().ip();
                let peer = SocketAddr::new(ip, 1024 + (self.next_peer % 60_000) as u16);
                let op = sim.call(i, |n, now| n.announce(now, key, peer, Role::Seeder));
                self.announces.push(Announce {
                    node: i,
                    op,
                    key,
                    peer,
                });
            }
            for _ in 0..2 {
                if let Some(i) = sim.random_member() {
                    let key = self.keys[sim.rng.gen_range(0..self.keys.len())];
                    let op = sim.call(i, |n, now| n.peers(now, key));
                    let issued = sim.now;
                    let checked = self.checking;
                    self.reads.push(Read {
                        node: i,
                        op,
                        key,
                        issued,
                        checked,
                    });
                }
            }
            if strict {
                sim.run_for(Duration::from_millis(100), ring_invariants);
            } else {
                sim.run_for(Duration::from_millis(100), list_invariants);
            }
        }
    }

    /// Every checked read that succeeded holds every announce acknowledged
    /// before it started. Returns (checked reads that succeeded, acked announces).
    fn verify(&self, sim: &Sim) -> (usize, usize) {
        let acked: Vec<(&Announce, Instant)> = self
            .announces
            .iter()
            .filter_map(|a| {
                let f = sim.result(a.node, a.op)?;
                matches!(f.result, Ok(OpOutcome::Stored)).then_some((a, f.at))
            })
            .collect();
        let mut good = 0;
        for r in self.reads.iter().filter(|r| r.checked) {
            let Some(f) = sim.result(r.node, r.op) else {
                continue;
            };
            let Ok(OpOutcome::Peers(peers)) = &f.result else {
                continue;
            };
            good += 1;
            for (a, at) in acked
                .iter()
                .filter(|(a, at)| a.key == r.key && *at < r.issued)
            {
                if !peers.contains(&(a.peer, Role::Seeder)) {
                    let holders: Vec<usize> = (0..sim.nodes.len())
                        .filter(|&i| sim.nodes[i].alive)
                        .filter(|&i| {
                            sim.nodes[i]
                                .node
                                .stored(&a.key)
                                .is_some_and(|l| l.get(&a.peer).is_some())
                        })
                        .collect();
                    let mut ring: Vec<(Id, usize)> = (0..sim.nodes.len())
                        .filter(|&i| sim.is_member(i))
                        .map(|i| (sim.nodes[i].node.id(), i))
                        .collect();
                    ring.sort();
                    let k = ring.iter().position(|(id, _)| *id >= a.key).unwrap_or(0);
                    let set: Vec<usize> = (0..3).map(|d| ring[(k + d) % ring.len()].1).collect();
                    eprintln!(
                        "writer {} holders now {holders:?}, replica set now {set:?}",
                        a.node
                    );
                }
                assert!(
                    peers.contains(&(a.peer, Role::Seeder)),
                    "seed {}: read of {:?} on node {} at t={:.3}s (answered at t={:.3}s, {} peers) misses {} acknowledged at t={:.3}s",
                    sim.seed,
                    r.key,
                    r.node,
                    (r.issued - sim.base).as_secs_f64(),
                    (f.at - sim.base).as_secs_f64(),
                    peers.len(),
                    a.peer,
                    (*at - sim.base).as_secs_f64(),
                );
            }
        }
        (good, acked.len())
    }
}

/// Seeds that once failed, replayed on every run.
///
/// 5000085: a read issued 100 ms before the partition had its three
/// replicas cut off and took R "ready" answers from spares that never held
/// the key, so it returned an empty list. Reads now count only the replica
/// set's answers and such a read fails instead.
///
/// 5000338: the writer's lookup did not know a joiner yet, two of its
/// three primaries lost the Store, and the announce was acknowledged by
/// the third (no replica any more) and a spare; a read of the true replica
/// set 69 ms later missed it. Writes now count only primaries, and ask a
/// silent primary once more before giving up on it.
///
/// 5000005: the same key, and the same two nodes joining just before its
/// owner, both unknown to the writer's lookup; the owner lost the Store,
/// and two former replicas acknowledged it. Operations now anchor at the
/// owner (walking back from the node found) and a write needs the owner.
///
/// 5000000: a read issued 100 ms before the partition was anchored at a
/// head that the partition then cut off; passing over it for the next
/// node made spares its replica set. A silent head now stays at the head
/// of the list, and the operation runs unanchored.
///
/// 5005164: a read issued before the partition and answered while the
/// rings merged found the key's replicas nearly empty: a lookup answered
/// by a node still jumping across the other side had named three nodes
/// past them, and all three handed the key off there and deleted it. A
/// node now hands a key off only once the set's head confirms it owns the
/// key, and never one it owns itself.
///
/// 5005839: the owner had died, and the lookup's list named after it only
/// nodes far past the key's replicas; run over that list as it stood, a
/// read asked the dead owner and two nodes that held nothing. Past a
/// silent head the anchoring now walks on from the next node back to the
/// silent one's successors.
///
/// 5003285: an announce acknowledged by one side's replicas as the
/// partition healed; for four passes after the heal, those nodes offered
/// it only to each other (the replica set a lookup had found before), and
/// a read of the merged ring's set two passes after the heal missed it. A
/// node now looks up the sets of the keys it holds but does not own
/// whenever its neighbours changed.
const REGRESSION_SEEDS: &[u64] = &[
    5_000_000, 5_000_005, 5_000_085, 5_000_338, 5_003_285, 5_005_164, 5_005_501, 5_005_839,
];

#[test]
fn acknowledged_announces_survive_failure_joins_and_partition() {
    for_each_seed(6, 5, announce_history);
}

#[test]
fn regression_seeds_of_the_announce_history() {
    for &seed in REGRESSION_SEEDS {
        announce_history(seed);
    }
}

/// Joins, a failure, joins that move keys and a healed partition under a
/// steady workload; then every checked read is verified.
fn announce_history(seed: u64) {
    let mut sim = Sim::new(seed, sim_config());
    sim.add_node(None);
    while sim.nodes.len() < 40 {
        let via = sim.random_member().expect("member");
        sim.add_node(Some(via));
        sim.run_for(Duration::from_millis(100), ring_invariants);
    }
    sim.converge(Duration::from_secs(60), ring_invariants);
    let mut w = Workload {
        keys: (0..12)
            .map(|k| Id::hash(format!("song {k}").as_bytes()))
            .collect(),
        announces: Vec::new(),
        reads: Vec::new(),
        next_peer: 0,
        checking: true,
    };
    w.run(&mut sim, Duration::from_secs(8), true);

    // One replica fails.
    let victim = sim.random_member().expect("member");
    sim.kill(victim);
    w.run(&mut sim, Duration::from_secs(8), true);

    // Joins move keys to the newcomers.
    for _ in 0..6 {
        let via = (0..3).filter_map(|_| sim.random_member()).collect();
        sim.add_node_via(via);
        w.run(&mut sim, Duration::from_millis(500), true);
    }
    w.run(&mut sim, Duration::from_secs(6), true);

    // Partition, then heal.
    w.checking = false;
    for n in sim.nodes.iter_mut() {
        n.side = if n.node.id().0[0] < 0x80 { 0 } else { 1 };
    }
    sim.dirty = true;
    w.run(&mut sim, Duration::from_secs(10), false);
    for n in sim.nodes.iter_mut() {
        n.side = 0;
    }
    sim.dirty = true;
    while chord_sim::ideal_ring(&sim).is_err() {
        w.run(&mut sim, Duration::from_millis(500), false);
        assert!(sim.t() < 400.0, "seed {seed}: rings never merged");
    }
    // What the README promises after a heal: five anti-entropy periods. A
    // holder of a key it does not own looks the key's replica set up every
    // fourth pass (and at once when its own neighbours change), so a set it
    // found while the rings merged can stand four passes (seed 5005501).
    let settle = sim.config.replicate_interval * 5;
    w.run(&mut sim, settle, true);
    w.checking = true;
    w.run(&mut sim, Duration::from_secs(8), true);
    // Let the last operations finish.
    sim.run_for(Duration::from_secs(5), ring_invariants);

    let (good, acked) = w.verify(&sim);
    (sim.acked, sim.reads) = (acked as u64, good as u64);
    let checked = w.reads.iter().filter(|r| r.checked).count();
    eprintln!(
        "seed {seed}: {acked} announces acknowledged, {good} of {checked} checked reads answered"
    );
    assert!(
        acked > 300,
        "seed {seed}: only {acked} announces acknowledged"
    );
    assert!(
        good * 10 >= checked * 9,
        "seed {seed}: only {good} of {checked} checked reads succeeded"
    );
}

#[test]
fn announces_expire_and_removals_stick() {
    for_each_seed(2, 6, expiry_and_removal);
}

/// 6000691: the owner lost both Stores of an announce from node 0 (0.5 %
/// of messages are dropped), so the anchored write failed with the other
/// two replicas' acknowledgements in hand. The anchor, which has just
/// answered, is now asked three times. 6003678, 6004439: a read outlasted
/// the window the scenario gave it (see `finish`). 6005406: every try at
/// the owner was lost, the announce failed as it should,
/// and the scenario retries it (see `until_stored`).
#[test]
fn regression_seeds_of_expiry_and_removal() {
    for seed in [6_000_691, 6_003_678, 6_004_439, 6_005_406] {
        expiry_and_removal(seed);
    }
}

/// Two announces, one removed: the removal sticks through anti-entropy,
/// and past the TTL nothing is left.
fn expiry_and_removal(seed: u64) {
    let mut config = sim_config();
    config.announce_ttl = Duration::from_secs(20);
    let mut sim = Sim::new(seed, config);
    sim.add_node(None);
    while sim.nodes.len() < 12 {
        let via = sim.random_member().expect("member");
        sim.add_node(Some(via));
        sim.run_for(Duration::from_millis(200), ring_invariants);
    }
    sim.converge(Duration::from_secs(60), ring_invariants);
    let key = Id::hash(b"expiring");
    // Peers at their announcers' addresses (nodes 0 and 3).
    let (a, b) = (
        SocketAddr::new(sim.nodes[0].node.addr().ip(), 1),
        SocketAddr::new(sim.nodes[3].node.addr().ip(), 2),
    );
    let announce_a = |n: &mut Node, now| n.announce(now, key, a, Role::Seeder);
    let announce_b = |n: &mut Node, now| n.announce(now, key, b, Role::Leecher);
    let remove_b = |n: &mut Node, now| n.remove(now, key, b);
    let ops = (sim.call(0, announce_a), sim.call(3, announce_b));
    sim.run_for(Duration::from_secs(2), ring_invariants);
    // Both announces are acknowledged before the removal is issued.
    until_stored(&mut sim, 0, ops.0, announce_a);
    until_stored(&mut sim, 3, ops.1, announce_b);
    let op = sim.call(3, remove_b);
    sim.run_for(Duration::from_secs(4), ring_invariants);
    until_stored(&mut sim, 3, op, remove_b);
    // Several anti-entropy passes later, the removal still holds everywhere.
    for i in [1, 7, 11] {
        let op = sim.call(i, |n, now| n.peers(now, key));
        sim.run_for(Duration::from_secs(3), ring_invariants);
        let f = finish(&mut sim, i, op);
        assert_eq!(
            f.result,
            Ok(OpOutcome::Peers(vec![(a, Role::Seeder)])),
            "seed {seed} node {i}"
        );
    }
    // Past the TTL, nothing is left.
    sim.run_for(Duration::from_secs(15), ring_invariants);
    let op = sim.call(2, |n, now| n.peers(now, key));
    sim.run_for(Duration::from_secs(2), ring_invariants);
    assert_eq!(finish(&mut sim, 2, op).result, Ok(OpOutcome::Peers(vec![])));
}

/// Wait for write `op` from node `i` and, if its quorum failed, write
/// again with `write`, as the announcer does (`app::ring::announcer`
/// retries a failed announce), at most three tries in all. A write may
/// fail honestly: in seed 6005406 the owner's two answers and the third
/// Store to it were lost (0.5 % of messages are dropped), and an anchored
/// write without its owner's is not acknowledged. Any other error fails
/// the scenario.
fn until_stored(sim: &mut Sim, i: usize, mut op: OpId, write: impl Fn(&mut Node, Instant) -> OpId) {
    let seed = sim.seed;
    for _ in 1..3 {
        match finish(sim, i, op).result {
            Ok(OpOutcome::Stored) => return,
            Err(ChordError::QuorumFailed { .. }) => op = sim.call(i, &write),
            other => panic!("seed {seed}: write on node {i} ended {other:?}"),
        }
    }
    let third = finish(sim, i, op).result;
    assert_eq!(
        third,
        Ok(OpOutcome::Stored),
        "seed {seed}: node {i}'s third try"
    );
}

/// The result of op `op` on node `i`, running on until it has one. The
/// scenario checks what reads return, not how fast: a read that lost a
/// message at each of its steps waits out a time-out at each (seeds
/// 6003678 and 6004439 took more than the 3 s and 2 s given).
fn finish(sim: &mut Sim, i: usize, op: OpId) -> Finished {
    let limit = sim.now + Duration::from_secs(20);
    while sim.result(i, op).is_none() && sim.now < limit {
        sim.run_for(Duration::from_millis(100), ring_invariants);
    }
    let seed = sim.seed;
    sim.result(i, op)
        .cloned()
        .unwrap_or_else(|| panic!("seed {seed}: op {op:?} on node {i} unfinished after 20 s more"))
}
