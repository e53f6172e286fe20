//! Catalog benchmark: search in a simulated ring.
//!
//! The pure Chord nodes of the tests' simulation (tests/support/chord_sim.rs:
//! an in-memory network with one-way delays drawn from 1 to 30 ms, virtual
//! time) form a ring of 1,000 nodes; 10,000 made-up songs (titles, artists
//! and albums drawn from a Zipf-distributed vocabulary, as real catalogs
//! are) are published as a seeder does (metadata, then one posting per
//! word, every posting checked by its replicas against the metadata).
//! Then one-word and three-word searches run from random nodes, one at a
//! time, as `chord::catalog::search` does them: every shard of every word
//! read at once, then the swarms of the torrents found.
//!
//! Prints: virtual search latency (p50, p95, mean; without message loss
//! and with the simulation's 0.5 %), lookup hops per key,
//! results per query, the largest posting list (one shard, and a word over
//! all its shards), and the busiest node's records and bytes against the
//! mean.
//!
//! Then the same searches on loopback through real nodes: see
//! support/catalog_loopback.rs.
//!
//! `cargo bench --bench catalog`; `SONGSWARM_BENCH_NODES=N` and
//! `SONGSWARM_BENCH_SONGS=S` for a smaller run, `SONGSWARM_BENCH_CHOICES=K`
//! for the ports a joiner chooses its id among (default 4; 1: ids as they
//! fall, see `chord::placement`); `SONGSWARM_BENCH_PART=sim` or `loopback`
//! for one part only.

#[path = "support/catalog_loopback.rs"]
mod catalog_loopback;
#[path = "../tests/support/chord_ring.rs"]
mod chord_ring;
#[path = "../tests/support/chord_sim.rs"]
mod chord_sim;
#[path = "support/made_up_songs.rs"]
mod made_up_songs;
#[path = "../tests/support/song_info.rs"]
mod song_info;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use chord_sim::{ideal_ring, Sim};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use songswarm::chord::node::{OpId, OpOutcome};
use songswarm::chord::placement::pick_address;
use songswarm::chord::records::{
    song_words, songs_of_info, Immutable, Postings, Record, RecordKind, Song,
};
use songswarm::config::ChordConfig;
use songswarm::id::Id;
use songswarm::words::{posting_key, posting_keys, shard_of, SHARDS};

const TTL: Duration = Duration::from_secs(24 * 3600);

/// Writes in flight at once while publishing.
const IN_FLIGHT: usize = 400;

/// Ports a joining node chooses among (1: ids as they fall).
const CHOICES: usize = 4;

/// Searches of each kind.
const QUERIES: usize = 200;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs the sim until every op of `ops` (node, op) has finished; returns
/// the results and the virtual time it took.
fn settle(sim: &mut Sim, ops: &[(usize, OpId)]) -> (Vec<Result<OpOutcome, String>>, Duration) {
    let start = sim.now;
    let mut done: HashMap<(usize, OpId), (Result<OpOutcome, String>, Instant)> = HashMap::new();
    let wanted: BTreeSet<(usize, OpId)> = ops.iter().copied().collect();
    let collect = |sim: &mut Sim, done: &mut HashMap<_, _>| {
        for f in sim.finished.drain(..) {
            if wanted.contains(&(f.node, f.op)) {
                done.insert((f.node, f.op), (f.result.map_err(|e| e.to_string()), f.at));
            }
        }
    };
    collect(sim, &mut done);
    while done.len() < wanted.len() {
        sim.run_for(Duration::from_millis(20), |_| Ok(()));
        collect(sim, &mut done);
        assert!(
            sim.now - start < Duration::from_secs(600),
            "operations never ended"
        );
    }
    let last = done.values().map(|(_, at)| *at).max().unwrap_or(start);
    let results = ops
        .iter()
        .map(|k| done.remove(k).expect("finished").0)
        .collect();
    (results, last.saturating_duration_since(start))
}

/// Issues `writes` (node, key, record) with at most IN_FLIGHT at once;
/// returns how many failed.
fn write_all(sim: &mut Sim, writes: Vec<(usize, Id, Record)>) -> usize {
    let mut failed = 0;
    for batch in writes.chunks(IN_FLIGHT) {
        let ops: Vec<(usize, OpId)> = batch
            .iter()
            .map(|(i, key, value)| {
                let (key, value) = (*key, value.clone());
                (*i, sim.call(*i, move |n, now| n.put(now, key, value)))
            })
            .collect();
        let (results, _) = settle(sim, &ops);
        failed += results
            .iter()
            .filter(|r| !matches!(r, Ok(OpOutcome::Stored)))
            .count();
    }
    failed
}

fn member(sim: &mut Sim) -> usize {
    sim.random_member().expect("a member")
}

struct QueryStats {
    latency: Vec<Duration>,
    postings: Vec<Duration>,
    hops: Vec<u32>,
    results: Vec<usize>,
    failed: usize,
}

/// One search as `chord::catalog::search` runs it, from node `i`.
fn search(sim: &mut Sim, i: usize, words: &[String], stats: &mut QueryStats) {
    let keys: Vec<(usize, Id)> = words
        .iter()
        .enumerate()
        .flat_map(|(w, word)| posting_keys(word).into_iter().map(move |k| (w, k)))
        .collect();
    let ops: Vec<(usize, OpId)> = keys
        .iter()
        .map(|&(_, key)| (i, sim.call(i, |n, now| n.get(now, key, Postings::KIND))))
        .collect();
    let (results, postings_took) = settle(sim, &ops);
    let mut per_word: Vec<BTreeSet<(Id, u32)>> = vec![BTreeSet::new(); words.len()];
    for (&(w, _), r) in keys.iter().zip(&results) {
        match r {
            Ok(OpOutcome::Record(Record::Postings(p))) => {
                per_word[w].extend(p.songs().map(|s| (s.info_hash, s.file)))
            }
            Ok(_) => {}
            Err(_) => {
                stats.failed += 1;
                return;
            }
        }
    }
    let first = per_word[0].clone();
    let found: Vec<(Id, u32)> = first
        .into_iter()
        .filter(|k| per_word.iter().all(|l| l.contains(k)))
        .collect();
    let torrents: Vec<Id> = found.iter().map(|(ih, _)| *ih).take(64).collect();
    let swarm_ops: Vec<(usize, OpId)> = torrents
        .iter()
        .map(|&ih| (i, sim.call(i, |n, now| n.peers(now, ih))))
        .collect();
    let (_, swarms_took) = settle(sim, &swarm_ops);
    stats.latency.push(postings_took + swarms_took);
    stats.postings.push(postings_took);
    stats.results.push(found.len());
    // Hops: the same keys located from the same node.
    let locate: Vec<(usize, OpId)> = keys
        .iter()
        .map(|&(_, key)| (i, sim.call(i, |n, now| n.lookup(now, key))))
        .collect();
    for r in settle(sim, &locate).0 {
        if let Ok(OpOutcome::Located(info)) = r {
            stats.hops.push(info.hops);
        }
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn report(name: &str, mut s: QueryStats) {
    s.latency.sort();
    s.postings.sort();
    let mean_ms = s.latency.iter().map(|d| d.as_secs_f64()).sum::<f64>() * 1000.0
        / s.latency.len().max(1) as f64;
    let hops = s.hops.iter().sum::<u32>() as f64 / s.hops.len().max(1) as f64;
    let results = s.results.iter().sum::<usize>() as f64 / s.results.len().max(1) as f64;
    println!(
        "{name:>22}: latency p50 {:.0} ms, p95 {:.0} ms, mean {mean_ms:.0} ms \
         (posting lists alone: p50 {:.0} ms, p95 {:.0} ms); {hops:.2} hops per key; \
         {results:.1} results on average; {} of {} failed",
        pct(&s.latency, 0.5),
        pct(&s.latency, 0.95),
        pct(&s.postings, 0.5),
        pct(&s.postings, 0.95),
        s.failed,
        s.latency.len() + s.failed
    );
}

fn main() {
    // `cargo bench` passes --bench; under `cargo test --all-targets` this
    // runs once, small, as a smoke test.
    let full = std::env::args().any(|a| a == "--bench");
    if !full {
        println!("catalog: smoke run (use `cargo bench --bench catalog` to measure)");
    }
    let part = std::env::var("SONGSWARM_BENCH_PART").unwrap_or_default();
    if part != "loopback" {
        simulated(full);
    }
    if part != "sim" {
        catalog_loopback::run(full);
    }
}

/// The simulated ring of 1,000 nodes.
fn simulated(full: bool) {
    let nodes = env_or("SONGSWARM_BENCH_NODES", if full { 1000 } else { 40 });
    let songs = env_or("SONGSWARM_BENCH_SONGS", if full { 10_000 } else { 200 });
    let queries = if full { QUERIES } else { 10 };
    let choices = env_or("SONGSWARM_BENCH_CHOICES", CHOICES).max(1);
    let wall = Instant::now();
    let config = ChordConfig {
        stabilize_interval: Duration::from_millis(500),
        fix_finger_interval: Duration::from_millis(200),
        // Anti-entropy is not what is measured: once a minute.
        replicate_interval: Duration::from_secs(60),
        rejoin_interval: Duration::from_secs(30),
        rpc_timeout: Duration::from_millis(800),
        announce_ttl: TTL,
        successor_list_len: 20,
        ..ChordConfig::default()
    };
    let mut sim = Sim::new(7, config);
    sim.add_node(None);
    while sim.nodes.len() < nodes {
        let via = member(&mut sim);
        // A joiner takes, of CHOICES ports, the one whose id owns the
        // longest arc (chord::placement): the arcs a lookup of each
        // candidate's id would find, read here from the ring's members.
        let candidates: Vec<_> = (0..choices as u16)
            .map(|p| sim.next_addr(7000 + p))
            .collect();
        let ids: Vec<Id> = (0..sim.nodes.len())
            .filter(|&i| sim.is_member(i))
            .map(|i| sim.nodes[i].node.id())
            .collect();
        let addr = pick_address(&candidates, &ids).expect("a candidate");
        sim.add_node_at(addr, vec![via]);
        sim.run_for(Duration::from_millis(20), |_| Ok(()));
    }
    while ideal_ring(&sim).is_err() {
        sim.run_for(Duration::from_secs(1), |_| Ok(()));
        assert!(sim.t() < 3600.0, "no ideal ring");
    }
    // Let the finger tables fill.
    sim.run_for(Duration::from_secs(40), |_| Ok(()));
    println!("ids: each joiner takes the best of {choices} ports (SONGSWARM_BENCH_CHOICES)");
    println!(
        "ring of {nodes} simulated nodes ideal at t = {:.0} s ({:.0} s of wall time)",
        sim.t(),
        wall.elapsed().as_secs_f64()
    );

    let mut rng = StdRng::seed_from_u64(11);
    let infos = made_up_songs::catalog(songs, &mut rng);
    let all: Vec<Song> = infos
        .iter()
        .flat_map(|i| songs_of_info(i).expect("valid"))
        .collect();
    let now = sim.now;
    let metadata: Vec<(usize, Id, Record)> = infos
        .iter()
        .map(|info| {
            let i = rng.gen_range(0..nodes);
            (
                i,
                Id::hash(info),
                Immutable::new(info.clone(), now, TTL).into(),
            )
        })
        .collect();
    let publish = Instant::now();
    let failed_meta = write_all(&mut sim, metadata);
    let now = sim.now;
    let postings: Vec<(usize, Id, Record)> = all
        .iter()
        .flat_map(|s| song_words(s).into_iter().map(move |w| (w, s.clone())))
        .map(|(w, s)| {
            let i = rng.gen_range(0..nodes);
            let key = posting_key(&w, shard_of(&s.info_hash));
            (i, key, Postings::new(&w, &[s], now, TTL).into())
        })
        .collect();
    let posting_writes = postings.len();
    let failed_post = write_all(&mut sim, postings);
    println!(
        "published {songs} songs: {songs} metadata records ({failed_meta} failed), \
         {posting_writes} postings ({failed_post} failed), in {:.0} s of wall time",
        publish.elapsed().as_secs_f64()
    );

    // Where the records are.
    let (mut counts, mut bytes, mut largest, mut word_sizes) =
        (Vec::new(), Vec::new(), 0, BTreeMap::<String, usize>::new());
    for n in sim.nodes.iter().filter(|n| n.alive) {
        let (mut c, mut b) = (0usize, 0usize);
        for (_, r) in n.node.records() {
            c += 1;
            if let songswarm::chord::message::WireRecord::Tagged { body, .. } = r.to_wire(sim.now) {
                b += body.len();
            }
            if let Record::Postings(p) = r {
                largest = largest.max(p.count());
            }
        }
        counts.push(c);
        bytes.push(b);
    }
    for s in &all {
        for w in song_words(s) {
            *word_sizes.entry(w).or_default() += 1;
        }
    }
    let (top_word, top) = word_sizes
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(w, n)| (w.clone(), *n))
        .unwrap_or_default();
    let mean = |v: &[usize]| v.iter().sum::<usize>() as f64 / v.len().max(1) as f64;
    let max = |v: &[usize]| v.iter().copied().max().unwrap_or(0) as f64;
    println!(
        "records per node: mean {:.1}, busiest {:.0} ({:.2}x the mean); bytes per node: mean {:.0}, busiest {:.0} ({:.2}x)",
        mean(&counts),
        max(&counts),
        max(&counts) / mean(&counts),
        mean(&bytes),
        max(&bytes),
        max(&bytes) / mean(&bytes)
    );
    println!(
        "largest posting list: {largest} songs in one shard (cap {}); the commonest word, {top_word:?}, is in {top} songs over {SHARDS} shards",
        songswarm::chord::records::MAX_POSTINGS
    );

    // Searches: words as people type them, from songs in the catalog.
    // Virtual time; first without loss, then with the simulation's usual
    // 0.5 % of messages lost (a lost request waits for its 800 ms time-out).
    let lossy = sim.drop_rate;
    for (name, n_words, drop) in [
        ("1-word, no loss", 1usize, 0.0),
        ("3-word, no loss", 3, 0.0),
        ("1-word, 0.5 % lost", 1, lossy),
        ("3-word, 0.5 % lost", 3, lossy),
    ] {
        sim.drop_rate = drop;
        let mut stats = QueryStats {
            latency: Vec::new(),
            postings: Vec::new(),
            hops: Vec::new(),
            results: Vec::new(),
            failed: 0,
        };
        let mut done = 0;
        while done < queries {
            let s = &all[rng.gen_range(0..all.len())];
            let words: Vec<String> = song_words(s).into_iter().collect();
            if words.len() < n_words {
                continue;
            }
            let mut pick = words.clone();
            while pick.len() > n_words {
                pick.remove(rng.gen_range(0..pick.len()));
            }
            let i = member(&mut sim);
            search(&mut sim, i, &pick, &mut stats);
            done += 1;
        }
        let failed = stats.failed;
        report(name, stats);
        assert!(full || failed == 0, "{failed} searches failed");
    }
    println!("wall time {:.0} s", wall.elapsed().as_secs_f64());
}
