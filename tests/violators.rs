//! A peer that breaks the protocol is not dialled again at once: a scripted
//! peer answers the handshake with a frame no BitTorrent message has (an
//! oversize `have`); the leecher that dialled it does not come back within
//! a few seconds (it used to, every second or two, for ever), while a peer
//! that merely closes the connection is dialled again within them. A
//! breaker that connects to us again is refused, while another peer on
//! its address is let in.

use std::sync::Arc;
use std::time::Duration;

use songswarm::app::App;
use songswarm::config::SwarmConfig;
use songswarm::manifest::{build, BuildOptions, Manifest};
use songswarm::storage::Storage;
use songswarm::swarm::TorrentEvent;
use songswarm::wire::handshake::{self, Handshake};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

/// Opens a connection to `addr` as `peer_id` and sends our handshake;
/// the connection once the handshake is answered, None when it is not.
async fn knock(addr: std::net::SocketAddr, manifest: &Manifest, peer_id: u8) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let ours = Handshake::new(manifest.info_hash, [peer_id; 20]);
    handshake::write_ours(&mut stream, &ours, LIMIT)
        .await
        .ok()?;
    handshake::read_theirs(&mut stream, LIMIT).await.ok()?;
    Some(stream)
}

#[tokio::test]
async fn a_protocol_breaker_that_connects_again_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = song(dir.path());
    let storage = Arc::new(Storage::open_or_create(dir.path(), &manifest).unwrap());
    let app = App::bind("127.0.0.1:0".parse().unwrap(), SwarmConfig::default())
        .await
        .unwrap();
    let n = manifest.piece_count() as usize;
    let _handle = app.add_torrent(&manifest, storage, vec![true; n]);
    let addr = app.local_addr();
    // It connects, and breaks the protocol: the seeder closes on it.
    let mut breaker = knock(addr, &manifest, b'B')
        .await
        .expect("first connection");
    let broken: &[u8] = &[0, 0, 0, 9, 4, 0, 0, 0, 0, 0, 0, 0, 0];
    breaker.write_all(broken).await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(LIMIT, breaker.read_to_end(&mut rest))
        .await
        .expect("the seeder kept the breaker")
        .ok();
    // Its next connections are refused (once the seeder has counted the
    // offence: the close may reach us first).
    let deadline = tokio::time::Instant::now() + LIMIT;
    while knock(addr, &manifest, b'B').await.is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the breaker is still let in"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        knock(addr, &manifest, b'B').await.is_none(),
        "let in again at once"
    );
    // Another peer on the same address is not.
    assert!(
        knock(addr, &manifest, b'H').await.is_some(),
        "a peer that did nothing wrong was refused"
    );
}
