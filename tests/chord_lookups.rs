//! Seeded simulations of client lookups while a ring is damaged: right
//! after a mass failure, before stabilization has repaired anything, a
//! lookup must still find the live successor of its key (it goes round
//! dead hops and checks the owner it reports).
//!
//! `CHORD_SIM_SEEDS=N` runs N seeds per scenario; `CHORD_SIM_SEED=S`
//! replays one. A failure prints its seed.

#[path = "support/chord_sim.rs"]
mod chord_sim;
#[path = "support/sim_lookups.rs"]
mod sim_lookups;

use std::time::Duration;

use chord_sim::{for_each_seed, ring_invariants, sim_config, Sim};

/// Grow to `n` nodes in batches of concurrent joins, reach the ideal ring,
/// and give the fingers time to fill.
fn grow(sim: &mut Sim, n: usize, batch: usize) {
    sim.add_node(None);
    while sim.nodes.len() < n {
        for _ in 0..batch.min(n - sim.nodes.len()) {
            let via = sim.random_member().expect("a member to join through");
            sim.add_node(Some(via));
        }
        sim.run_for(Duration::from_millis(300), ring_invariants);
    }
    sim.converge(Duration::from_secs(90), ring_invariants);
    sim.run_for(Duration::from_secs(20), ring_invariants);
}

/// Kill a fifth of a settled ring of 128 at once and start 1,000 lookups
/// at that instant: at least 99 % must be right. `refuse_dead`: the dead
/// refuse connections (killed processes on live hosts), else they are
/// silent (hosts that vanished), so that only time-outs tell of them.
fn a_fifth_dies(seed: u64, refuse_dead: bool) {
    let mut sim = Sim::new(seed, sim_config());
    sim.refuse_dead = refuse_dead;
    grow(&mut sim, 128, 16);
    // A settled ring on a lossless network: every lookup is right. Settled
    // means the ideal ring reached after the loss stopped: under loss, two
    // lost answers in a row make a node drop a live successor (a failure
    // detector on time-outs cannot tell), and until stabilization takes it
    // back a lookup may rightly name another owner.
    let drop_rate = std::mem::replace(&mut sim.drop_rate, 0.0);
    sim.converge(Duration::from_secs(30), ring_invariants);
    let before = sim.lookup_batch(200, Duration::from_secs(30), ring_invariants);
    assert_eq!(before.right, 200, "seed {seed}: a settled ring: {before:?}");
    sim.drop_rate = drop_rate;
    sim.kill_fraction(0.2);
    let after = sim.lookup_batch(1000, Duration::from_secs(60), ring_invariants);
    eprintln!(
        "seed {seed}: right after the kill: {} right, {} wrong, {} failed, {} unfinished of {}; slowest {:?}",
        after.right, after.wrong, after.failed, after.unfinished, after.asked, after.slowest
    );
    assert!(
        after.right_share() >= 0.99,
        "seed {seed}: {:.1}% right after a fifth died",
        after.right_share() * 100.0
    );
}

#[test]
fn lookups_right_after_a_fifth_of_the_nodes_die_silently() {
    for_each_seed(4, 11, |seed| a_fifth_dies(seed, false));
}

#[test]
fn lookups_right_after_a_fifth_of_the_nodes_die_refusing() {
    for_each_seed(4, 12, |seed| a_fifth_dies(seed, true));
}
