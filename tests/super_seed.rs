//! A super-seed serving a fast leecher many small pieces: the seed answers
//! every HAVE with a new offer, and a burst of HAVEs must not fill the
//! leecher's command queue at the seed (a peer that fills it is dropped as
//! too slow, and the download waits for a reconnection).

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use songswarm::app::App;
use songswarm::config::{SuperSeedMode, SwarmConfig};
use songswarm::manifest::{build, BuildOptions};
use songswarm::storage::Storage;
use songswarm::swarm::TorrentEvent;

#[path = "support/torrent_wait.rs"]
mod torrent_wait;
use torrent_wait::wait_complete;

const DEADLINE: Duration = Duration::from_secs(60);

/// What the process logs, kept for the test to read.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl io::Write for Log {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_super_seed_keeps_a_fast_leecher_of_small_pieces() {
    let log = Log::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .init();

    // 32 MiB in 2,048 pieces of 16 KiB.
    let src = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..32u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(src.path().join("song.bin"), &data).unwrap();
    let opts = BuildOptions {
        piece_length: Some(16 * 1024),
        ..Default::default()
    };
    let manifest = build(&[src.path().join("song.bin")], &opts).unwrap();

    let storage = Arc::new(Storage::open_existing(src.path(), &manifest).unwrap());
    let have = storage.verify_all(2);
    assert!(have.iter().all(|h| *h));
    // A short command queue per peer: with one command per HAVE answered,
    // the seed dropped the leecher in each of three runs.
    let config = SwarmConfig {
        peer_queue: 8,
        // A lone leecher: `auto` would send it the whole bitfield.
        super_seed: SuperSeedMode::On,
        ..SwarmConfig::default()
    };
    let seed = App::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let _seeding = seed.add_torrent(&manifest, storage, have);

    let out = tempfile::tempdir().unwrap();
    let storage = Arc::new(Storage::open_or_create(out.path(), &manifest).unwrap());
    let pieces = storage.geometry().piece_count as usize;
    let leech = App::bind("127.0.0.1:0".parse().unwrap(), SwarmConfig::default())
        .await
        .unwrap();
    let handle = leech.add_torrent(&manifest, storage, vec![false; pieces]);
    handle
        .events
        .send(TorrentEvent::AddPeers(vec![seed.local_addr()]))
        .await
        .unwrap();
    wait_complete(&handle, DEADLINE).await;
    assert!(std::fs::read(out.path().join("song.bin")).unwrap() == data);

    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(
        !text.contains("too slow"),
        "the seed dropped its only leecher:\n{text}"
    );
}
