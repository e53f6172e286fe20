//! The catalog benchmark's loopback part: search through real ring nodes.
//!
//! 16 real nodes (`App::bare_node`, as `songswarm node` starts one), each on
//! its own address 127.0.0.1 … 127.0.0.16, all in this process, join one
//! ring. A few hundred made-up songs (support/made_up_songs.rs) are
//! published as a seeder publishes them (`chord::catalog::publish`: the
//! metadata record, then one posting per word, each checked by its
//! replicas against the metadata), each from a random node, which also
//! announces itself as the song's seeder. Then one-word and three-word
//! searches run one at a time from every node in turn through
//! `chord::catalog::search`, the code that answers `songswarm search`.
//!
//! Prints wall-clock latency (p50, p95, mean), searches that failed (an
//! error, or the song the words were drawn from missing from the results),
//! and lookup hops per key (the search's keys located again from the same
//! node: a search does not report its hops).
//!
//! `SONGSWARM_BENCH_REAL_NODES=N` and `SONGSWARM_BENCH_REAL_SONGS=S` change
//! the size (16 nodes and 400 songs by default; 4 and 24 in the smoke run).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use songswarm::app::ring::RingOptions;
use songswarm::app::App;
use songswarm::chord::catalog::{publish, query_words, search};
use songswarm::chord::driver::ChordHandle;
use songswarm::chord::records::{song_words, songs_of_info, Song};
use songswarm::chord::Role;
use songswarm::config::ChordConfig;
use songswarm::manifest::Manifest;
use songswarm::words::posting_keys;

use crate::chord_ring::wait_ideal;
use crate::{env_or, made_up_songs, pct};

/// Publishes in flight at once.
const PUBLISHING: usize = 16;

/// As many results as any query here finds: the drawn song must be among them.
const LIMIT: usize = 100_000;

/// Node `i`'s address: its own loopback host, any port.
fn address(i: usize) -> SocketAddr {
    let host = Ipv4Addr::new(127, 0, 0, 1 + i as u8);
    SocketAddr::new(IpAddr::V4(host), 0)
}

/// Start `n` nodes, each joining through a few earlier ones (as
/// tests/support/chord_ring.rs does, but each on its own host).
async fn start(n: usize, config: &ChordConfig) -> Vec<ChordHandle> {
    let mut nodes: Vec<ChordHandle> = Vec::with_capacity(n);
    for i in 0..n {
        let bootstrap = match i {
            0 => vec![],
            _ => [i / 2, i / 3, i - 1]
                .iter()
                .map(|&j| nodes[j].addr())
                .collect(),
        };
        let opts = RingOptions {
            bootstrap,
            no_discovery: true,
            chord: config.clone(),
            rng_seed: Some(i as u64),
            ..RingOptions::default()
        };
        let node = App::bare_node(address(i), &opts)
            .await
            .expect("bind on loopback");
        nodes.push(node);
    }
    nodes
}

#[derive(Default)]
struct Stats {
    latency: Vec<Duration>,
    hops: Vec<u32>,
    results: Vec<usize>,
    failed: usize,
    first_failure: Option<String>,
}

impl Stats {
    fn fail(&mut self, why: String) {
        self.failed += 1;
        self.first_failure.get_or_insert(why);
    }
}

/// One search of `query` from `node`, which must find `want`.
async fn one_search(node: &ChordHandle, query: &str, want: &Song, stats: &mut Stats) {
    let t = Instant::now();
    let hits = search(node, query, LIMIT).await;
    let took = t.elapsed();
    match hits {
        Err(e) => return stats.fail(format!("{query:?} from {}: {e}", node.addr())),
        Ok(hits) if !hits.iter().any(|h| h.song == *want) => {
            return stats.fail(format!(
                "{query:?} from {}: {} results, not {:?}",
                node.addr(),
                hits.len(),
                want.title
            ))
        }
        Ok(hits) => stats.results.push(hits.len()),
    }
    stats.latency.push(took);
    // Hops: the same keys located again from the same node.
    for word in query_words(query) {
        for key in posting_keys(&word) {
            if let Ok(info) = node.lookup(key).await {
                stats.hops.push(info.hops);
            }
        }
    }
}

fn report(name: &str, mut s: Stats) -> usize {
    s.latency.sort();
    let mean = s.latency.iter().map(Duration::as_secs_f64).sum::<f64>() * 1000.0
        / s.latency.len().max(1) as f64;
    let hops = s.hops.iter().sum::<u32>() as f64 / s.hops.len().max(1) as f64;
    let results = s.results.iter().sum::<usize>() as f64 / s.results.len().max(1) as f64;
    println!(
        "{name:>22}: latency p50 {:.1} ms, p95 {:.1} ms, mean {mean:.1} ms; \
         {hops:.2} hops per key; {results:.1} results on average; {} of {} failed",
        pct(&s.latency, 0.5),
        pct(&s.latency, 0.95),
        s.failed,
        s.latency.len() + s.failed
    );
    if let Some(why) = &s.first_failure {
        println!("{:>22}  first failure: {why}", "");
    }
    s.failed
}

/// Runs the loopback part; `full` as `cargo bench` runs it, else small.
pub fn run(full: bool) {
    let n = env_or("SONGSWARM_BENCH_REAL_NODES", if full { 16 } else { 4 }).clamp(1, 200);
    let songs = env_or("SONGSWARM_BENCH_REAL_SONGS", if full { 400 } else { 24 });
    let queries = if full { 200 } else { 8 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let failed = runtime.block_on(bench(n, songs, queries));
    assert!(full || failed == 0, "{failed} searches failed");
}

async fn bench(n: usize, songs: usize, queries: usize) -> usize {
    let wall = Instant::now();
    let config = ChordConfig {
        stabilize_interval: Duration::from_millis(200),
        fix_finger_interval: Duration::from_millis(100),
        ..ChordConfig::default()
    };
    let nodes = start(n, &config).await;
    let joined = Instant::now();
    let r = config.successor_list_len;
    let ideal = match wait_ideal(&nodes, r, Duration::from_secs(120)).await {
        Ok(_) => joined.elapsed(),
        Err(e) => panic!("no ideal ring of {n} real nodes: {e}"),
    };
    // Let the finger tables fill.
    tokio::time::sleep(config.fix_finger_interval * 30).await;
    println!(
        "loopback: {n} real nodes on 127.0.0.1 to 127.0.0.{n}, ideal ring {:.1} s after the last join",
        ideal.as_secs_f64()
    );

    let mut rng = StdRng::seed_from_u64(13);
    let infos = made_up_songs::catalog(songs, &mut rng);
    let jobs: Vec<(ChordHandle, Vec<u8>)> = infos
        .iter()
        .map(|info| (nodes[rng.gen_range(0..n)].clone(), info.clone()))
        .collect();
    let t = Instant::now();
    let failed_publish = stream::iter(jobs)
        .map(|(node, info)| async move {
            let manifest = Manifest::from_info_bytes(&info).expect("a valid info");
            let ih = manifest.info_hash;
            let published = publish(&node, &manifest, Duration::from_secs(3600)).await;
            let announced = node.announce(ih, node.addr(), Role::Seeder).await;
            published.is_err() || announced.is_err()
        })
        .buffer_unordered(PUBLISHING)
        .filter(|failed| std::future::ready(*failed))
        .count()
        .await;
    let all: Vec<Song> = infos
        .iter()
        .flat_map(|i| songs_of_info(i).expect("valid"))
        .collect();
    println!(
        "published {songs} songs (metadata, postings, seeder) through real nodes, \
         {PUBLISHING} at a time, in {:.1} s; {failed_publish} failed",
        t.elapsed().as_secs_f64()
    );

    let mut failed = failed_publish;
    for (name, n_words) in [("1-word, loopback", 1usize), ("3-word, loopback", 3)] {
        let mut stats = Stats::default();
        let mut done = 0;
        while done < queries {
            let song = &all[rng.gen_range(0..all.len())];
            let mut words: Vec<String> = song_words(song).into_iter().collect();
            if words.len() < n_words {
                continue;
            }
            while words.len() > n_words {
                words.remove(rng.gen_range(0..words.len()));
            }
            let node = &nodes[done % n];
            one_search(node, &words.join(" "), song, &mut stats).await;
            done += 1;
        }
        failed += report(name, stats);
    }
    for node in &nodes {
        node.kill().await;
    }
    println!("loopback wall time {:.0} s", wall.elapsed().as_secs_f64());
    failed
}
