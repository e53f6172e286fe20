//! A seeding library publishes its songs' metadata on the same budget as
//! its announces: many songs completing at once do not write their
//! metadata and postings to the ring all in the same second.

#[path = "support/chord_ring.rs"]
mod chord_ring;
#[path = "support/paced_library.rs"]
mod paced_library;

use std::sync::Arc;
use std::time::Duration;

use songswarm::app::App;
use songswarm::chord::catalog;
use songswarm::chord::driver::ChordHandle;
use songswarm::chord::metrics::QuorumLabels;
use songswarm::config::SwarmConfig;
use songswarm::storage::Storage;
use tokio::time::Instant;

/// Every wait in this file ends in a failure after this long.
const DEADLINE: Duration = Duration::from_secs(60);
/// Songs the process serves.
const SONGS: usize = 30;
/// Its ring operations a second (the token bucket holds a second's worth).
const RATE: u32 = 10;
/// How long the process runs before its ring operations are counted.
const WINDOW: Duration = Duration::from_secs(2);

/// The quorum operations (reads and writes, whatever their result) that
/// `node` ran to their end.
fn ring_ops(node: &ChordHandle) -> u64 {
    let results = [
        "ok",
        "quorum_failed",
        "lookup_failed",
        "not_joined",
        "shutdown",
        "error",
    ];
    let family = &node.metrics().quorum;
    ["read", "write"]
        .iter()
        .flat_map(|op| results.iter().map(move |result| (*op, *result)))
        .map(|(op, result)| family.get_or_create(&QuorumLabels { op, result }).get())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_shares_the_budget_of_announces() {
    let tmp = tempfile::tempdir().unwrap();
    let config = chord_ring::fast_config();
    let nodes = chord_ring::start_ring(3, &config).await;
    let opts = paced_library::paced_options(nodes[0].addr(), &config, RATE);
    let mut app = App::bind("127.0.0.1:0".parse().unwrap(), SwarmConfig::default())
        .await
        .unwrap();
    app.join_ring(&opts, &[]).await;
    let mut members = nodes.clone();
    members.push(app.ring().unwrap().chord.clone());
    chord_ring::wait_ideal(&members, config.successor_list_len, DEADLINE)
        .await
        .expect("the ring did not settle");
    let chord = app.ring().unwrap().chord.clone();
    let before = ring_ops(&chord);
    let mut manifests = Vec::new();
    let mut writes = 0;
    let started = Instant::now();
    for i in 0..SONGS {
        let manifest = Arc::new(paced_library::make_song(tmp.path(), "tune", i));
        writes += 1 + catalog::postings_of(&manifest).len();
        let storage = Arc::new(Storage::open_existing(tmp.path(), &manifest).unwrap());
        let n = manifest.piece_count() as usize;
        let handle = app.add_shared_torrent(manifest.clone(), storage, vec![true; n]);
        let ring = app.ring().unwrap();
        ring.track_published(handle, Some(Instant::now()), manifest.clone());
        manifests.push(manifest);
    }
    // Every song's announce and publish writes, at once, would be far more
    // than the budget lets through in the window.
    assert!(SONGS + writes > 2 * RATE as usize * (1 + WINDOW.as_secs() as usize));
    tokio::time::sleep_until(started + WINDOW).await; // measuring a rate
    let ran = ring_ops(&chord) - before;
    let took = started.elapsed().as_secs_f64();
    // A full bucket, its refill over the time taken, and one of slack.
    let most = RATE as u64 + (f64::from(RATE) * took) as u64 + 1;
    assert!(
        ran <= most,
        "{ran} ring operations in {took:.2} s: the budget allows {most}"
    );
    assert!(ran > 0, "nothing was announced or published");

    // Within the budget, every song is published in the end.
    let deadline = Instant::now() + DEADLINE;
    for m in &manifests {
        while !matches!(
            catalog::get_value(&nodes[0], m.info_hash).await,
            Ok(Some(_))
        ) {
            assert!(Instant::now() < deadline, "{} never published", m.name);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    app.shutdown().await;
}
