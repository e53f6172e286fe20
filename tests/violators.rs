//! A peer that breaks the protocol is not dialled again at once: a scripted
//! peer answers the handshake with a frame no BitTorrent message has (an
//! oversize `have`); the leecher that dialled it does not come back within
//! a few seconds (it used to, every second or two, for ever), while a peer
//! that merely closes the connection is dialled again within them.

use std::sync::Arc;
use std::time::Duration;

use songswarm::app::App;
use songswarm::config::SwarmConfig;
use songswarm::manifest::{build, BuildOptions, Manifest};
use songswarm::storage::Storage;
use songswarm::swarm::TorrentEvent;
use songswarm::wire::handshake::{self, Handshake};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

const LIMIT: Duration = Duration::from_secs(10);
/// Longer than the back-off after a plain close (1–2 s), far shorter than
/// the one after a violation (60 s).
const WINDOW: Duration = Duration::from_secs(5);

fn song(dir: &std::path::Path) -> Manifest {
    std::fs::write(dir.join("song.bin"), vec![7u8; 100_000]).unwrap();
    let opts = BuildOptions {
        piece_length: Some(16384),
        ..Default::default()
    };
    build(&[dir.join("song.bin")], &opts).unwrap()
}

/// A leecher of the song that dials a scripted peer; the scripted peer
/// answers the first connection with `first`, then counts how many more
/// connections arrive within `WINDOW`.
async fn redials(first: &'static [u8]) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let manifest = song(dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let out = tempfile::tempdir().unwrap();
    let storage = Arc::new(Storage::open_or_create(out.path(), &manifest).unwrap());
    let app = App::bind("127.0.0.1:0".parse().unwrap(), SwarmConfig::default())
        .await
        .unwrap();
    let n = manifest.piece_count() as usize;
    let handle = app.add_torrent(&manifest, storage, vec![false; n]);
    handle
        .events
        .send(TorrentEvent::AddPeers(vec![addr]))
        .await
        .unwrap();
    let (mut stream, _) = tokio::time::timeout(LIMIT, listener.accept())
        .await
        .expect("the leecher never dialled")
        .unwrap();
    handshake::read_theirs(&mut stream, LIMIT).await.unwrap();
    let ours = Handshake::new(manifest.info_hash, [b'V'; 20]);
    handshake::write_ours(&mut stream, &ours, LIMIT)
        .await
        .unwrap();
    stream.write_all(first).await.unwrap();
    drop(stream);
    let mut again = 0;
    let deadline = tokio::time::Instant::now() + WINDOW;
    while let Ok(Ok(_)) = tokio::time::timeout_at(deadline, listener.accept()).await {
        again += 1;
    }
    again
}

#[tokio::test]
async fn a_protocol_breaker_is_not_dialled_again_at_once() {
    // A `have` (id 4) frame of 9 bytes: its body must be 4.
    let broken: &[u8] = &[0, 0, 0, 9, 4, 0, 0, 0, 0, 0, 0, 0, 0];
    let again = redials(broken).await;
    assert_eq!(again, 0, "dialled {again} times again within {WINDOW:?}");
}

#[tokio::test]
async fn a_peer_that_just_closes_is_dialled_again() {
    let again = redials(&[]).await;
    assert!(again >= 1, "never dialled again within {WINDOW:?}");
}
