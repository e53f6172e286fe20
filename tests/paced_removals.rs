//! A clean exit removes a process's announces at the pace of its announces:
//! a library of many songs does not send all its removals in the same
//! second, and the exit stays bounded (what has no turn by then is left to
//! expire with its TTL).

#[path = "support/chord_ring.rs"]
mod chord_ring;
#[path = "support/paced_library.rs"]
mod paced_library;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use songswarm::app::App;
use songswarm::chord::driver::ChordHandle;
use songswarm::config::SwarmConfig;
use songswarm::manifest::Manifest;
use songswarm::storage::Storage;
use tokio::time::Instant;

/// Every wait in this file ends in a failure after this long.
const DEADLINE: Duration = Duration::from_secs(60);
/// Songs the process serves.
const SONGS: usize = 40;
/// Its ring operations a second (the token bucket holds a second's worth).
const RATE: u32 = 10;
/// How long its removals may take at exit.
const REMOVE_WINDOW: Duration = Duration::from_millis(1500);

/// The addresses `node` finds listed for `manifest` (none when the lookup fails).
async fn listed(node: &ChordHandle, manifest: &Manifest) -> Vec<SocketAddr> {
    match node.peers(manifest.info_hash).await {
        Ok(p) => p.into_iter().map(|(a, _)| a).collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removals_at_exit_are_paced_and_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let config = chord_ring::fast_config();
    let nodes = chord_ring::start_ring(3, &config).await;
    let mut opts = paced_library::paced_options(nodes[0].addr(), &config, RATE);
    opts.announce.remove_timeout = REMOVE_WINDOW;
    let mut app = App::bind("127.0.0.1:0".parse().unwrap(), SwarmConfig::default())
        .await
        .unwrap();
    let me = app.local_addr();
    app.join_ring(&opts, &[]).await;
    let mut manifests = Vec::new();
    for i in 0..SONGS {
        let manifest = paced_library::make_song(tmp.path(), "song", i);
        let storage = Arc::new(Storage::open_existing(tmp.path(), &manifest).unwrap());
        let n = manifest.piece_count() as usize;
        let handle = app.add_torrent(&manifest, storage, vec![true; n]);
        // Looked up just now: the first lookup waits its (long) period.
        app.ring().unwrap().track(handle, Some(Instant::now()));
        manifests.push(manifest);
    }
    let mut members = nodes.clone();
    members.push(app.ring().unwrap().chord.clone());
    chord_ring::wait_ideal(&members, config.successor_list_len, DEADLINE)
        .await
        .expect("the ring did not settle");
    let deadline = Instant::now() + DEADLINE;
    for m in &manifests {
        while !listed(&nodes[0], m).await.contains(&me) {
            assert!(Instant::now() < deadline, "{} never listed", m.name);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let started = Instant::now();
    app.shutdown().await;
    let took = started.elapsed();
    let mut removed = 0;
    for m in &manifests {
        if !listed(&nodes[1], m).await.contains(&me) {
            removed += 1;
        }
    }
    // At most a full bucket plus the window's refill, and a token of slack
    // for the window's edge.
    let most = RATE as usize + (f64::from(RATE) * REMOVE_WINDOW.as_secs_f64()) as usize + 1;
    assert!(
        removed <= most,
        "{removed} of {SONGS} removals in {REMOVE_WINDOW:?}: the pace allows {most}"
    );
    assert!(removed > 0, "no removal was sent at exit");
    // The removals end with their window; leaving the ring follows.
    assert!(
        took < REMOVE_WINDOW + Duration::from_secs(5),
        "the exit took {took:?}"
    );
}
