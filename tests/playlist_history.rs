//! Signed mutable items (playlists) in the seeded ring simulation, with
//! N = 3, W = 2, R = 2: compare-and-swap writes from several members, then
//! kills (one at a time, each followed by re-replication), joins, and a
//! partition in which both sides write. Checked: every read returns at
//! least the highest acknowledged sequence number of its key (no
//! acknowledged version is lost), and once the partition healed every
//! member reads the same, highest, version of every key.

#[path = "support/chord_sim.rs"]
mod chord_sim;

use std::collections::BTreeMap;
use std::time::Duration;

use chord_sim::{for_each_seed, ideal_ring, list_invariants, ring_invariants, sim_config, Sim};
use ed25519_dalek::SigningKey;
use songswarm::chord::node::OpOutcome;
use songswarm::chord::records::{Mutable, RecordKind, SignedItem};
use songswarm::id::Id;

fn run(sim: &mut Sim, d: Duration, strict: bool) {
    if strict {
        sim.run_for(d, ring_invariants);
    } else {
        sim.run_for(d, list_invariants);
    }
}

/// The item at `key` as a quorum read through node `i` returns it (None:
/// nothing there), or Err if no read succeeded.
fn read(sim: &mut Sim, i: usize, key: Id, strict: bool) -> Result<Option<SignedItem>, String> {
    for _ in 0..5 {
        let op = sim.call(i, |node, now| node.get(now, key, Mutable::KIND));
        run(sim, Duration::from_secs(2), strict);
        if let Some(Ok(OpOutcome::Record(record))) = sim.result(i, op).map(|f| &f.result) {
            let m = <&Mutable>::try_from(record).expect("the kind asked for");
            return Ok(m.item.clone());
        }
    }
    Err(format!(
        "seed {}: no read of {key} through node {i}",
        sim.seed
    ))
}

/// Read the current version through node `i`, then write the next one
/// with compare-and-swap on it; retried (re-reading) until a quorum
/// acknowledged. Returns the acknowledged seq.
fn write_next(sim: &mut Sim, i: usize, pair: &SigningKey, salt: &[u8], strict: bool) -> u64 {
    let key = Id::hash(&[pair.verifying_key().as_bytes(), salt].concat());
    for _ in 0..30 {
        let Ok(current) = read(sim, i, key, strict) else {
            continue;
        };
        let held = current.map_or(0, |c| c.seq);
        let v = format!("i{}e", sim.rng_u64()).into_bytes();
        let item = SignedItem::sign(pair, salt, held + 1, v).expect("valid");
        assert_eq!(item.target(), key);
        let op = sim.call(i, |node, now| {
            node.put(now, key, Mutable::swap(item, held).into())
        });
        run(sim, Duration::from_secs(1), strict);
        if let Some(Ok(OpOutcome::Stored)) = sim.result(i, op).map(|f| &f.result) {
            return held + 1;
        }
    }
    panic!("seed {}: node {i} never wrote {salt:?}", sim.seed);
}

trait RngU64 {
    fn rng_u64(&mut self) -> u64;
}

impl RngU64 for Sim {
    fn rng_u64(&mut self) -> u64 {
        rand::Rng::gen_range(&mut self.rng, 0..1_000_000)
    }
}

/// Every acknowledged version is read back (or a newer one) through five
/// random members.
fn reads_hold(sim: &mut Sim, keys: &BTreeMap<Id, u64>, when: &str) {
    for (&key, &acked) in keys {
        for _ in 0..5 {
            let i = sim.random_member().expect("a member");
            let got = read(sim, i, key, true).unwrap_or_else(|e| panic!("{when}: {e}"));
            let seq = got.map_or(0, |g| g.seq);
            assert!(
                seq >= acked,
                "seed {}: {when}: node {i} read seq {seq} of {key}, {acked} was acknowledged",
                sim.seed
            );
        }
    }
}

fn history(seed: u64) {
    let mut sim = Sim::new(seed, sim_config());
    sim.add_node(None);
    while sim.nodes.len() < 14 {
        let via = sim.random_member().expect("a member");
        sim.add_node(Some(via));
        run(&mut sim, Duration::from_millis(100), true);
    }
    sim.converge(Duration::from_secs(60), ring_invariants);
    let pair = SigningKey::from_bytes(&[seed as u8; 32]);
    let salts: [&[u8]; 3] = [b"road trip", b"focus", b"party"];
    let key_of = |salt: &[u8]| Id::hash(&[pair.verifying_key().as_bytes(), salt].concat());
    let mut acked: BTreeMap<Id, u64> = BTreeMap::new();
    let settle = sim.config.replicate_interval * 4;

    // Writes from several members, each on top of what it read.
    for round in 0..3 {
        for salt in salts {
            let i = sim.random_member().expect("a member");
            let seq = write_next(&mut sim, i, &pair, salt, true);
            assert!(seq > round, "seed {seed}: a write went backwards");
            acked.insert(key_of(salt), seq);
        }
    }
    reads_hold(&mut sim, &acked, "after the writes");

    // Kills (one at a time: at most N - W replicas of a key are lost at
    // once) and joins, with writes in between.
    for step in 0..4 {
        let victim = sim.random_member().expect("a member");
        sim.kill(victim);
        run(&mut sim, Duration::from_secs(2), false);
        let via = (0..3).filter_map(|_| sim.random_member()).collect();
        sim.add_node_via(via);
        sim.converge(Duration::from_secs(60), ring_invariants);
        run(&mut sim, settle, true);
        let salt = salts[step % salts.len()];
        let i = sim.random_member().expect("a member");
        acked.insert(key_of(salt), write_next(&mut sim, i, &pair, salt, true));
        reads_hold(&mut sim, &acked, &format!("after kill {step}"));
    }

    // A partition: each side heals into its own ring and writes on its own.
    for n in sim.nodes.iter_mut() {
        n.side = u8::from(n.node.id().0[0] >= 0x80);
    }
    sim.dirty = true;
    run(&mut sim, Duration::from_secs(10), false);
    for side in 0..2u8 {
        let i = (0..sim.nodes.len())
            .find(|&i| sim.is_member(i) && sim.nodes[i].side == side)
            .expect("a member on each side");
        for salt in salts {
            let seq = write_next(&mut sim, i, &pair, salt, false);
            let best = acked.entry(key_of(salt)).or_insert(0);
            *best = (*best).max(seq);
        }
    }
    for n in sim.nodes.iter_mut() {
        n.side = 0;
    }
    sim.dirty = true;
    while ideal_ring(&sim).is_err() {
        run(&mut sim, Duration::from_millis(500), false);
        assert!(sim.t() < 600.0, "seed {seed}: rings never merged");
    }
    run(&mut sim, settle * 2, true);
    // Every member reads the same item, at the highest seq acknowledged.
    for (&key, &best) in &acked {
        let members: Vec<usize> = (0..sim.nodes.len()).filter(|&i| sim.is_member(i)).collect();
        let mut seen = None;
        for i in members {
            let got =
                read(&mut sim, i, key, true).unwrap_or_else(|e| panic!("after the heal: {e}"));
            let got = got.expect("an item");
            assert!(
                got.seq >= best,
                "seed {seed}: node {i} read seq {} < {best}",
                got.seq
            );
            let same = seen.get_or_insert_with(|| got.clone());
            assert_eq!(
                *same, got,
                "seed {seed}: node {i} reads another version of {key}"
            );
        }
    }
}

#[test]
fn no_acknowledged_playlist_version_is_lost() {
    for_each_seed(2, 44, history);
}
