//! Seeded simulations of many `chord::node`s on an in-memory network, with
//! the ring invariants checked after every step that changes a successor
//! list, and the ideal ring required once churn stops.
//!
//! `CHORD_SIM_SEEDS=N` runs N seeds per scenario (N/10 for the 200-node
//! growth, which costs ten of the others); `CHORD_SIM_SEED=S` replays one.
//! A failure prints its seed.

#[path = "support/chord_sim.rs"]
mod chord_sim;

use std::collections::BTreeSet;
use std::time::Duration;

use chord_sim::{
    for_each_seed, for_each_seed_costly, ideal_ring, list_invariants, ring_invariants, sim_config,
    Sim,
};
use rand::Rng;

/// Grow to `n` nodes in batches of concurrent joins, then reach the ideal ring.
fn grow(sim: &mut Sim, n: usize, batch: usize) {
    if sim.nodes.is_empty() {
        sim.add_node(None);
    }
    while sim.nodes.len() < n {
        for _ in 0..batch.min(n - sim.nodes.len()) {
            let via = sim.random_member().expect("a member to join through");
            sim.add_node(Some(via));
        }
        sim.run_for(Duration::from_millis(300), ring_invariants);
    }
    sim.converge(Duration::from_secs(90), ring_invariants);
}

/// `count` random live members whose death leaves every node a live entry
/// in its successor list: no r consecutive ring members die (Zave's model
/// assumes exactly this). `recent` are earlier victims still in lists.
fn pick_victims(sim: &mut Sim, count: usize, recent: &BTreeSet<usize>) -> Vec<usize> {
    let r = sim.config.successor_list_len;
    let mut ring: Vec<usize> = (0..sim.nodes.len())
        .filter(|&i| sim.is_member(i) || recent.contains(&i))
        .collect();
    ring.sort_by_key(|&i| sim.nodes[i].node.id());
    let live: Vec<usize> = ring.iter().copied().filter(|&i| sim.is_member(i)).collect();
    for _ in 0..1000 {
        let mut victims = BTreeSet::new();
        while victims.len() < count.min(live.len()) {
            victims.insert(live[sim.rng.gen_range(0..live.len())]);
        }
        let dead = |i: &usize| victims.contains(i) || recent.contains(i);
        let mut run = 0;
        let mut worst = 0;
        for k in 0..2 * ring.len() {
            if dead(&ring[k % ring.len()]) {
                run += 1;
                worst = worst.max(run);
            } else {
                run = 0;
            }
        }
        // The same assumption on the actual lists, which can be shorter
        // than r for a while (a joiner copies what it is given).
        let lists_keep_a_live_entry = live.iter().filter(|i| !victims.contains(i)).all(|&i| {
            let succs = sim.nodes[i].node.successors();
            succs.is_empty()
                || succs.iter().any(|p| {
                    ring.iter()
                        .find(|&&j| sim.nodes[j].node.addr() == p.addr)
                        .is_some_and(|j| !dead(j))
                })
        });
        // A joiner joins through a live member (Zave's join assumes one):
        // one that has not joined yet keeps a live node it was told of.
        // (Seed 3000490: a joiner's first request was lost, and its three
        // contacts died one by one before it asked each.)
        let joiners_keep_a_contact = (0..sim.nodes.len())
            .filter(|&i| sim.nodes[i].alive && !sim.is_member(i))
            .all(|i| {
                let boot = &sim.nodes[i].bootstrap;
                boot.is_empty() || boot.iter().any(|b| sim.nodes[*b].alive && !dead(b))
            });
        if worst < r && lists_keep_a_live_entry && joiners_keep_a_contact {
            return victims.into_iter().collect();
        }
    }
    panic!("seed {}: no admissible victim set", sim.seed);
}

#[test]
fn grows_to_200_nodes_with_concurrent_joins() {
    // Ten times dearer than the other scenarios: a tenth of the seeds.
    for_each_seed_costly(2, 1, 10, |seed| {
        let mut sim = Sim::new(seed, sim_config());
        grow(&mut sim, 200, 20);
        assert_eq!(sim.nodes.iter().filter(|n| n.alive).count(), 200);
    });
}

#[test]
fn survives_a_quarter_killed_at_once() {
    for_each_seed(8, 2, quarter_killed);
}

/// Seeds of the kill scenario that once failed, replayed on every run.
///
/// 2000028: while the ring grew, a joiner whose first candidate was
/// silent took the next entry of the list found, which had wrapped round
/// the small ring to a node before it: a second ring of two formed.
///
/// 2005782: the same, through the lookup: it had given up on a silent
/// node and answered with the entry after it, behind the joiner. A joiner
/// now takes a head only if the head's predecessor precedes it.
const KILL_REGRESSION_SEEDS: &[u64] = &[2_000_028, 2_005_782];

#[test]
fn regression_seeds_of_the_kill() {
    for &seed in KILL_REGRESSION_SEEDS {
        quarter_killed(seed);
    }
}

/// Grow to 100 nodes, kill 25 at once (no r in a row), reach the ideal ring.
fn quarter_killed(seed: u64) {
    let mut sim = Sim::new(seed, sim_config());
    grow(&mut sim, 100, 25);
    let victims = pick_victims(&mut sim, 25, &BTreeSet::new());
    for v in victims {
        sim.kill(v);
    }
    ring_invariants(&sim).unwrap_or_else(|e| panic!("seed {seed}: right after the kill: {e}"));
    sim.converge(Duration::from_secs(60), ring_invariants);
}

#[test]
fn steady_churn_then_ideal_ring() {
    for_each_seed(8, 3, steady_churn);
}

/// Seeds of the churn scenario that once failed, replayed on every run.
///
/// 3000282: a joiner copied the three-entry list its lookup found, all of
/// it dead by then, and had no live successor. A joiner now asks the
/// first node of that list for its state (the next if it is silent) and
/// copies it and its full successor list.
///
/// 3000464: a joiner's two stabilize requests to its only successor were
/// lost; the rescue took the one node the ring named beyond it, the
/// joiner's own predecessor: a ring of two. A rescue now keeps a silent
/// successor the ring still names rather than go behind its predecessor.
///
/// 3000490, 3002387: a joiner's first request was lost, and the victims
/// then chosen were its three contacts, so it could never join. Victims
/// now leave every joiner a live contact, as Zave's join assumes.
const CHURN_REGRESSION_SEEDS: &[u64] = &[3_000_282, 3_000_464, 3_000_490, 3_002_387];

#[test]
fn regression_seeds_of_steady_churn() {
    for &seed in CHURN_REGRESSION_SEEDS {
        steady_churn(seed);
    }
}

/// A join and a death every 0.2 to 1.5 s, forty times, then the ideal ring.
fn steady_churn(seed: u64) {
    let mut sim = Sim::new(seed, sim_config());
    grow(&mut sim, 50, 10);
    let mut recent: Vec<(usize, f64)> = Vec::new();
    for _ in 0..40 {
        // Like a real client, a joiner knows a few nodes, not one.
        let via = (0..3).filter_map(|_| sim.random_member()).collect();
        sim.add_node_via(via);
        // Victims count as still listed for 10 s after they die.
        let t = sim.t();
        recent.retain(|(_, at)| t - at < 10.0);
        let listed: BTreeSet<usize> = recent.iter().map(|(i, _)| *i).collect();
        let v = pick_victims(&mut sim, 1, &listed)[0];
        sim.kill(v);
        recent.push((v, t));
        let pause = Duration::from_millis(sim.rng.gen_range(200..1500));
        sim.run_for(pause, ring_invariants);
    }
    sim.converge(Duration::from_secs(60), ring_invariants);
}

#[test]
fn splits_in_two_and_heals_into_one_ring() {
    for_each_seed(8, 4, |seed| {
        let mut sim = Sim::new(seed, sim_config());
        grow(&mut sim, 60, 10);
        for i in 0..sim.nodes.len() {
            sim.nodes[i].side = sim.rng.gen_range(0..2);
        }
        sim.dirty = true;
        // Each side sees the other as dead: the strict invariants do not
        // hold until each side has healed into its own ring.
        sim.converge(Duration::from_secs(90), list_invariants);
        sim.run_for(Duration::from_secs(5), ring_invariants);
        for n in sim.nodes.iter_mut() {
            n.side = 0;
        }
        sim.dirty = true;
        // Merging two rings passes through loopy states; the ideal single
        // ring must follow, and then hold.
        sim.converge(Duration::from_secs(180), list_invariants);
        sim.run_for(Duration::from_secs(5), ring_invariants);
    });
}

#[test]
fn one_and_two_node_rings() {
    for_each_seed(3, 7, |seed| {
        let mut sim = Sim::new(seed, sim_config());
        let a = sim.add_node(None);
        sim.run_for(Duration::from_secs(2), ring_invariants);
        assert!(
            sim.nodes[a].node.successors().is_empty(),
            "alone: successor is itself"
        );
        let key = songswarm::id::Id::hash(b"anything");
        let op = sim.call(a, |n, now| n.lookup(now, key));
        let f = sim.result(a, op).expect("a lone node answers at once");
        match &f.result {
            Ok(songswarm::chord::node::OpOutcome::Located(info)) => {
                assert_eq!(info.owner, sim.nodes[a].node.addr());
                assert_eq!(info.hops, 0);
            }
            other => panic!("seed {seed}: {other:?}"),
        }
        let b = sim.add_node(Some(a));
        sim.converge(Duration::from_secs(30), ring_invariants);
        let (na, nb) = (&sim.nodes[a].node, &sim.nodes[b].node);
        assert_eq!(
            na.successors().iter().map(|p| p.addr).collect::<Vec<_>>(),
            vec![nb.addr()]
        );
        assert_eq!(
            nb.successors().iter().map(|p| p.addr).collect::<Vec<_>>(),
            vec![na.addr()]
        );
        assert_eq!(na.predecessor().map(|p| p.addr), Some(nb.addr()));
        // Kill one of two (below the r + 1 members the model assumes, so
        // only the list invariants hold meanwhile): the survivor stands alone.
        sim.kill(b);
        sim.converge(Duration::from_secs(30), list_invariants);
        ring_invariants(&sim).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(sim.nodes[a].node.successors().is_empty());
    });
}

#[test]
fn a_settled_ring_slows_its_finger_refresh() {
    for_each_seed(4, 6, |seed| {
        let mut sim = Sim::new(seed, sim_config());
        sim.drop_rate = 0.0;
        grow(&mut sim, 64, 16);
        // Let the fingers fill and the refresh back off.
        sim.run_for(Duration::from_secs(120), ring_invariants);
        let before = sim.lookups_delivered;
        let window = Duration::from_secs(120);
        sim.run_for(window, ring_invariants);
        let ticks = window.as_secs_f64() / sim.config.fix_finger_interval.as_secs_f64();
        let per_node_tick = (sim.lookups_delivered - before) as f64 / 64.0 / ticks;
        // At full speed every node looks up one finger per tick, 2.3
        // lookup requests per node and tick here; backed off, what is left
        // is mostly the periodic self-lookups through past contacts (0.6).
        assert!(
            per_node_tick < 1.0,
            "seed {seed}: {per_node_tick:.2} lookup requests per node and finger tick in a settled ring"
        );
        ideal_ring(&sim).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    });
}

#[test]
fn slow_answers_are_not_taken_for_death() {
    for_each_seed(4, 7, |seed| {
        let mut sim = Sim::new(seed, sim_config());
        sim.drop_rate = 0.0;
        grow(&mut sim, 32, 8);
        // Answers slow down, a little every second, until a round trip
        // takes up to four times the configured time-out (as on a host
        // getting overloaded); nobody dies, so the ideal ring must hold
        // throughout.
        let timeout = sim.config.rpc_timeout;
        for step in 1..=200u32 {
            let one_way = timeout * step / 100;
            sim.delay = (one_way * 9 / 10, one_way);
            sim.run_for(Duration::from_secs(1), ideal_ring);
        }
    });
}
