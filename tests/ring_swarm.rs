//! Trackerless swarms in one process on loopback: a ring of bare nodes, two
//! seeders and six leechers that know only one bootstrap address each. The
//! leechers find the swarm through the ring alone.

#[path = "support/chord_ring.rs"]
mod chord_ring;
#[path = "support/torrent_wait.rs"]
mod torrent_wait;
use torrent_wait::wait_complete;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use songswarm::app::ring::RingOptions;
use songswarm::app::App;
use songswarm::chord::driver::ChordHandle;
use songswarm::config::{AnnounceConfig, SwarmConfig};
use songswarm::manifest::{build, BuildOptions, Manifest};
use songswarm::storage::Storage;
use songswarm::swarm::coordinator::TorrentHandle;

/// Every wait in this file ends in a failure after this long.
const DEADLINE: Duration = Duration::from_secs(60);

fn ring_options(bootstrap: SocketAddr) -> RingOptions {
    RingOptions {
        bootstrap: vec![bootstrap],
        no_discovery: true,
        chord: chord_ring::fast_config(),
        announce: AnnounceConfig {
            requery_leeching: Duration::from_millis(300),
            requery_seeding: Duration::from_millis(500),
            retry: Duration::from_millis(200),
            ..AnnounceConfig::default()
        },
        ..RingOptions::default()
    }
}

/// A song of random bytes with odd length, and its manifest.
fn make_song(dir: &Path) -> Manifest {
    make_song_salted(dir, 0)
}

/// Like [`make_song`]; each `salt` gives other bytes (another info-hash).
fn make_song_salted(dir: &Path, salt: u32) -> Manifest {
    let data: Vec<u8> = (0..3_000_017u32)
        .map(|i| (i.wrapping_add(salt).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let path = dir.join("ring-song.flac");
    std::fs::write(&path, &data).unwrap();
    let opts = BuildOptions {
        piece_length: Some(32 * 1024),
        ..BuildOptions::default()
    };
    build(&[path], &opts).unwrap()
}

/// A process that joins the ring through `bootstrap` and serves `manifest`
/// from `root` (a seeder when the data is there, else a leecher).
async fn peer(manifest: &Manifest, root: &Path, bootstrap: SocketAddr) -> (App, TorrentHandle) {
    let storage = Arc::new(Storage::open_or_create(root, manifest).unwrap());
    let have = storage.verify_all(2);
    let mut app = App::bind("127.0.0.1:0".parse().unwrap(), SwarmConfig::default())
        .await
        .unwrap();
    app.join_ring(&ring_options(bootstrap), &[]).await;
    let handle = app.add_torrent(manifest, storage, have);
    app.ring().expect("joined").track(handle.clone(), None);
    (app, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leechers_find_the_swarm_through_the_ring() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = make_song(tmp.path());
    let nodes = chord_ring::start_ring(4, &chord_ring::fast_config()).await;
    let boot = |i: usize| nodes[i % nodes.len()].addr();

    let mut seeders = Vec::new();
    for i in 0..2 {
        seeders.push(peer(&manifest, tmp.path(), boot(i)).await);
    }
    let mut leechers = Vec::new();
    for i in 0..6 {
        let out = tmp.path().join(format!("leecher{i}"));
        leechers.push((peer(&manifest, &out, boot(i + 2)).await, out));
    }
    for ((_, handle), _) in &leechers {
        wait_complete(handle, DEADLINE).await;
    }
    let original = std::fs::read(tmp.path().join("ring-song.flac")).unwrap();
    for (_, out) in &leechers {
        let got = std::fs::read(out.join("ring-song.flac")).unwrap();
        assert!(
            got == original,
            "{} differs from the original",
            out.display()
        );
    }

    // The swarm list in the ring holds every one of them, as a seeder now.
    let addrs = |v: &[(App, TorrentHandle)]| -> Vec<SocketAddr> {
        v.iter()
            .map(|(app, _)| app.ring().unwrap().advertise)
            .collect()
    };
    let mut everyone = addrs(&seeders);
    everyone.extend(
        leechers
            .iter()
            .map(|((app, _), _)| app.ring().unwrap().advertise),
    );
    let listed = wait_listed(&nodes[0], &manifest, |peers| {
        everyone.iter().all(|a| peers.contains(a))
    })
    .await;
    assert!(listed.is_ok(), "not all listed: {listed:?}");

    // On a settled ring, a seeder that exits cleanly is gone from the very
    // next lookup. (While members are still joining, the remover and the
    // reader may see different replica sets; the tombstone then reaches the
    // reader's replicas by hand-off a little later.)
    let mut members: Vec<ChordHandle> = nodes.clone();
    members.extend(
        seeders
            .iter()
            .map(|(app, _)| app.ring().unwrap().chord.clone()),
    );
    members.extend(
        leechers
            .iter()
            .map(|((app, _), _)| app.ring().unwrap().chord.clone()),
    );
    let config = chord_ring::fast_config();
    chord_ring::wait_ideal(&members, config.successor_list_len, DEADLINE)
        .await
        .expect("the ring did not settle");
    let (gone, _) = seeders.remove(0);
    let gone_addr = gone.ring().unwrap().advertise;
    gone.shutdown().await;
    let peers = nodes[1].peers(manifest.info_hash).await.unwrap();
    let peers: Vec<SocketAddr> = peers.into_iter().map(|(a, _)| a).collect();
    assert!(
        !peers.contains(&gone_addr),
        "{gone_addr} still listed: {peers:?}"
    );
    assert!(peers.contains(&addrs(&seeders)[0]));
}

/// A swarm list is soft state: when every replica of it dies at once it is
/// gone from the ring, and a seeder that is still alive puts itself back at
/// its next look-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeder_whose_replicas_all_die_is_listed_again() {
    let tmp = tempfile::tempdir().unwrap();
    let config = chord_ring::fast_config();
    let nodes = chord_ring::start_ring(7, &config).await;
    let mut app = App::bind("127.0.0.1:0".parse().unwrap(), SwarmConfig::default())
        .await
        .unwrap();
    let me = app.local_addr();
    // A song whose replicas are three bare nodes, not the seeder's own node.
    let mut addrs: Vec<SocketAddr> = nodes.iter().map(|h| h.addr()).collect();
    addrs.push(me);
    let (manifest, replicas) = (0u32..)
        .find_map(|salt| {
            let m = make_song_salted(tmp.path(), salt);
            let set = chord_ring::replica_set(m.info_hash, &addrs, config.replicas);
            (!set.contains(&me)).then_some((m, set))
        })
        .unwrap();
    let storage = Arc::new(Storage::open_or_create(tmp.path(), &manifest).unwrap());
    let have = storage.verify_all(2);
    app.join_ring(&ring_options(nodes[0].addr()), &[]).await;
    let handle = app.add_torrent(&manifest, storage, have);
    let ring = app.ring().expect("joined");
    assert_eq!(ring.advertise, me);
    ring.track(handle, None);
    let mut members = nodes.clone();
    members.push(ring.chord.clone());
    chord_ring::wait_ideal(&members, config.successor_list_len, DEADLINE)
        .await
        .expect("the ring did not settle");
    wait_listed(&nodes[0], &manifest, |p| p.contains(&me))
        .await
        .expect("the seeder was never listed");

    // Members that held the list while the ring formed hand it on and drop
    // it; once only the replicas hold it, killing them loses it.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let mut stray = Vec::new();
        for h in members.iter().filter(|h| !replicas.contains(&h.addr())) {
            if h.ring_info().await.unwrap().keys > 0 {
                stray.push(h.addr());
            }
        }
        if stray.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{stray:?} still hold the list"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for h in nodes.iter().filter(|h| replicas.contains(&h.addr())) {
        h.kill().await;
    }
    members.retain(|h| !replicas.contains(&h.addr()));
    chord_ring::wait_ideal(&members, config.successor_list_len, DEADLINE)
        .await
        .expect("the ring did not settle after the kill");
    let reader = members.iter().find(|h| h.addr() != me).unwrap();
    let listed = wait_listed(reader, &manifest, |p| p.contains(&me)).await;
    assert!(
        listed.is_ok(),
        "the seeder never put itself back: {listed:?}"
    );
}

/// Polls the swarm list (announces land asynchronously) until `ok` holds.
async fn wait_listed(
    node: &songswarm::chord::driver::ChordHandle,
    manifest: &Manifest,
    ok: impl Fn(&[SocketAddr]) -> bool,
) -> Result<(), Vec<SocketAddr>> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let peers: Vec<SocketAddr> = match node.peers(manifest.info_hash).await {
            Ok(p) => p.into_iter().map(|(a, _)| a).collect(),
            Err(_) => Vec::new(),
        };
        if ok(&peers) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(peers);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leech_by_info_hash_alone() {
    use songswarm::cmd::leech::{leech, LeechOptions, LeechTarget};
    let tmp = tempfile::tempdir().unwrap();
    let manifest = make_song(tmp.path());
    let nodes = chord_ring::start_ring(3, &chord_ring::fast_config()).await;
    let (_seeder, _) = peer(&manifest, tmp.path(), nodes[0].addr()).await;
    let out = tmp.path().join("by-hash");
    let opts = LeechOptions {
        target: LeechTarget::parse(&manifest.info_hash.to_hex()),
        out: out.clone(),
        peers: vec![],
        listen: "127.0.0.1:0".parse().unwrap(),
        seed_after: false,
        recheck: false,
        config: SwarmConfig::default(),
        ring: Some(ring_options(nodes[1].addr())),
        json: true,
        http: None,
        give_up_after: None,
    };
    let summary = tokio::time::timeout(DEADLINE, leech(opts))
        .await
        .expect("leech by info-hash did not finish in time")
        .expect("leech by info-hash failed");
    assert_eq!(summary.info_hash, manifest.info_hash);
    let original = std::fs::read(tmp.path().join("ring-song.flac")).unwrap();
    assert!(std::fs::read(out.join("ring-song.flac")).unwrap() == original);
    // The fetched manifest was kept, and it is the same torrent.
    let saved = Manifest::load(&out.join(format!("{}.torrent", manifest.info_hash))).unwrap();
    assert_eq!(saved.info_hash, manifest.info_hash);
    assert_eq!(saved.info_bytes, manifest.info_bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walking_the_ring_visits_every_member_in_id_order() {
    let config = chord_ring::fast_config();
    let nodes = chord_ring::start_ring(6, &config).await;
    chord_ring::wait_ideal(&nodes, config.successor_list_len, DEADLINE)
        .await
        .unwrap();
    let walked = songswarm::chord::client::walk(nodes[3].addr(), Duration::from_secs(5), 100)
        .await
        .unwrap();
    let mut sorted: Vec<SocketAddr> = nodes.iter().map(|n| n.addr()).collect();
    sorted.sort_by_key(|a| songswarm::id::Id::of_addr(*a));
    let at = sorted.iter().position(|a| *a == nodes[3].addr()).unwrap();
    sorted.rotate_left(at);
    assert_eq!(walked, sorted);
    // A walk from a node of a broken ring fails instead of looping: with the
    // limit below the ring size it cannot get back to the start.
    assert!(
        songswarm::chord::client::walk(nodes[0].addr(), Duration::from_secs(5), 3)
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_the_album_through_a_ring() {
    use songswarm::app::demo::{demo, DemoOptions};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let opts = DemoOptions {
        manifest: root.join("torrents/demo-album.torrent"),
        data: root.join("torrents"),
        nodes: 4,
        leechers: 3,
        upload_rate: None,
        out: None,
    };
    let running = tokio::time::timeout(DEADLINE, demo(opts))
        .await
        .expect("demo did not finish in time")
        .expect("demo failed");
    let report = running.report.clone();
    running.stop().await;
    assert!(report.all_verified(), "{}", report.to_text());
    // 4 bare nodes, the seeder, 3 leechers and the listener are all ring members.
    assert_eq!(report.ring_size, 9, "{}", report.to_text());
    assert_eq!(report.leechers.len(), 3);
    assert!(report.swarm_size >= 5, "{}", report.to_text());
    // The listener played its song over HTTP and every byte matched.
    let play = &report.play;
    assert!(play.verified, "{}", report.to_text());
    assert!(play.first_byte_ms.is_finite() && play.seek_ms.is_finite());
    assert!(play
        .url
        .contains("/songs/607cbc70c0d7de3ada58fde5d97320fecfaf870e/"));
}
