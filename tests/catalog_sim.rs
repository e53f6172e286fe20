//! The catalog in the simulated ring: songs' metadata and postings written
//! through random members, with a replica killed, nodes joining and a
//! partition healing in between. Every acknowledged metadata record is
//! read back whole, and every acknowledged posting is found under its
//! word, through random members at the end. A posting is stored by a
//! replica only after it read the song's metadata from the ring, so this
//! also runs that check through hand-off, repair and the healed partition.

#[path = "support/chord_sim.rs"]
mod chord_sim;
#[path = "support/song_info.rs"]
mod song_info;

use std::collections::BTreeSet;
use std::time::Duration;

use chord_sim::{for_each_seed, ideal_ring, list_invariants, ring_invariants, sim_config, Sim};
use song_info::{song_info, song_of};
use songswarm::chord::node::OpOutcome;
use songswarm::chord::records::{song_words, Immutable, Postings, Record, RecordKind, Song};
use songswarm::id::Id;
use songswarm::words::{posting_key, shard_of};

const TTL: Duration = Duration::from_secs(3600);

fn run(sim: &mut Sim, d: Duration, strict: bool) {
    if strict {
        sim.run_for(d, ring_invariants);
    } else {
        sim.run_for(d, list_invariants);
    }
}

/// Writes `make(now)` at `key` through a member until a quorum stored it.
fn put(
    sim: &mut Sim,
    side: Option<u8>,
    key: Id,
    make: impl Fn(std::time::Instant) -> Record,
    strict: bool,
) {
    for _ in 0..40 {
        let i = member(sim, side);
        let value = make(sim.now);
        let op = sim.call(i, |node, now| node.put(now, key, value));
        run(sim, Duration::from_secs(2), strict);
        if let Some(Ok(OpOutcome::Stored)) = sim.result(i, op).map(|f| &f.result) {
            return;
        }
    }
    panic!("seed {}: a write at {key} was never acknowledged", sim.seed);
}

/// A random live member, on `side` if given.
fn member(sim: &mut Sim, side: Option<u8>) -> usize {
    for _ in 0..1000 {
        let i = sim.random_member().expect("a member");
        if side.is_none_or(|s| sim.nodes[i].side == s) {
            return i;
        }
    }
    panic!("no member on side {side:?}");
}

/// The record of `kind` at `key` as a quorum read through a random member.
fn get(sim: &mut Sim, key: Id, kind: u8) -> Record {
    for _ in 0..10 {
        let i = member(sim, None);
        let op = sim.call(i, |node, now| node.get(now, key, kind));
        run(sim, Duration::from_secs(2), true);
        if let Some(Ok(OpOutcome::Record(r))) = sim.result(i, op).map(|f| &f.result) {
            return r.clone();
        }
    }
    panic!("seed {}: no read of {key} succeeded", sim.seed);
}

/// What was acknowledged: metadata (key, info) and postings (word, song).
#[derive(Default)]
struct Acked {
    metadata: Vec<(Id, Vec<u8>)>,
    postings: BTreeSet<(String, Song)>,
}

/// Publishes a song as a seeder does: metadata first, then one posting
/// per word of its tags.
fn publish(sim: &mut Sim, acked: &mut Acked, side: Option<u8>, info: Vec<u8>, strict: bool) {
    let ih = Id::hash(&info);
    let song = song_of(&info);
    let value = info.clone();
    put(
        sim,
        side,
        ih,
        move |now| Immutable::new(value.clone(), now, TTL).into(),
        strict,
    );
    acked.metadata.push((ih, info));
    for word in song_words(&song) {
        let key = posting_key(&word, shard_of(&ih));
        let (w, s) = (word.clone(), song.clone());
        put(
            sim,
            side,
            key,
            move |now| Postings::new(&w, std::slice::from_ref(&s), now, TTL).into(),
            strict,
        );
        acked.postings.insert((word, song.clone()));
    }
}

fn check_all(sim: &mut Sim, acked: &Acked, when: &str) {
    for (ih, info) in &acked.metadata {
        let record = get(sim, *ih, Immutable::KIND);
        let value = <&Immutable>::try_from(&record).ok().and_then(|v| v.value());
        assert_eq!(
            value,
            Some(info.as_slice()),
            "seed {}: {when}: metadata of {ih}",
            sim.seed
        );
    }
    for (word, song) in &acked.postings {
        let record = get(
            sim,
            posting_key(word, shard_of(&song.info_hash)),
            Postings::KIND,
        );
        let list = <&Postings>::try_from(&record).expect("postings");
        assert!(
            list.songs().any(|s| s == song),
            "seed {}: {when}: {:?} not found under {word:?}",
            sim.seed,
            song.title
        );
    }
}

const ARTISTS: [&str; 3] = ["Nova Band", "Kite Orchestra", "Björk Åström"];
const ALBUMS: [&str; 2] = ["Blue Hours", "Café Nights"];
const TITLES: [&str; 10] = [
    "Sunrise",
    "Dusk",
    "Blue Sky",
    "Harbour Lights",
    "Nights Café",
    "Paper Kite",
    "Sunrise Again",
    "Static",
    "Orbit",
    "Hours Between",
];

fn info(n: usize) -> Vec<u8> {
    let (title, artist, album) = (TITLES[n % 10], ARTISTS[n % 3], ALBUMS[n % 2]);
    song_info(title, artist, album, 100_000 + n as u64, 20_000 + n as u64)
}

fn catalog_history(seed: u64) {
    let mut sim = Sim::new(seed, sim_config());
    sim.add_node(None);
    while sim.nodes.len() < 12 {
        let via = sim.random_member().expect("a member");
        sim.add_node(Some(via));
        sim.run_for(Duration::from_millis(100), ring_invariants);
    }
    sim.converge(Duration::from_secs(60), ring_invariants);
    let mut acked = Acked::default();
    let period = sim.config.replicate_interval;
    for n in 0..4 {
        publish(&mut sim, &mut acked, None, info(n), true);
    }
    // One replica dies (N − W = 1): the others re-replicate.
    let victim = member(&mut sim, None);
    sim.kill(victim);
    run(&mut sim, period * 4, false);
    sim.converge(Duration::from_secs(60), ring_invariants);
    publish(&mut sim, &mut acked, None, info(4), true);
    check_all(&mut sim, &acked, "after a kill");

    // Joins move keys to newcomers by hand-off.
    for _ in 0..5 {
        let via = (0..3).filter_map(|_| sim.random_member()).collect();
        sim.add_node_via(via);
        run(&mut sim, Duration::from_millis(400), true);
    }
    sim.converge(Duration::from_secs(60), ring_invariants);
    publish(&mut sim, &mut acked, None, info(5), true);
    run(&mut sim, period * 3, true);
    check_all(&mut sim, &acked, "after the joins");

    // A partition: each side heals into its own ring and publishes.
    for n in sim.nodes.iter_mut() {
        n.side = u8::from(n.node.id().0[0] >= 0x80);
    }
    sim.dirty = true;
    run(&mut sim, Duration::from_secs(10), false);
    publish(&mut sim, &mut acked, Some(0), info(6), false);
    publish(&mut sim, &mut acked, Some(1), info(7), false);
    for n in sim.nodes.iter_mut() {
        n.side = 0;
    }
    sim.dirty = true;
    while ideal_ring(&sim).is_err() {
        run(&mut sim, Duration::from_millis(500), false);
        assert!(sim.t() < 600.0, "seed {seed}: rings never merged");
    }
    run(&mut sim, period * 6, true);
    check_all(&mut sim, &acked, "after the partition healed");
}

#[test]
fn no_acknowledged_metadata_or_posting_is_lost() {
    for_each_seed(2, 14, catalog_history);
}
