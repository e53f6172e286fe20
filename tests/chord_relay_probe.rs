//! Asking the source, on real sockets: a ring member running modified
//! software relays (a raw `store` frame, as anti-entropy would carry it)
//! swarm entries for addresses that are not its own. The replica keeps
//! them and asks each address for a BitTorrent handshake of the info-hash:
//! the entry of a port nobody listens on is dropped, and no relay brings
//! it back; the entry of a songswarm peer seeding the song stays.
//!
//! The modified member calls from 127.0.0.2, so the entries it relays
//! (on 127.0.0.1) are a third party's to the replica. Each test waits for
//! the replica's verdict counters (`/metrics`), which count a verdict once
//! the node has applied it, with a deadline.

#[path = "support/chord_ring.rs"]
mod chord_ring;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use songswarm::app::ring::RingOptions;
use songswarm::app::App;
use songswarm::chord::driver::ChordHandle;
use songswarm::chord::message::{Message, Role, WireEntry, WireRecord};
use songswarm::config::{ChordConfig, SwarmConfig};
use songswarm::id::Id;
use songswarm::manifest::{build, BuildOptions, Manifest};
use songswarm::storage::Storage;
use songswarm::wire::chord::{ChordCodec, Frame};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::codec::Framed;

use chord_ring::fast_config;

const LIMIT: Duration = Duration::from_secs(20);

/// A song of 4 pieces of 16 KiB in `dir`, and its manifest.
fn song(dir: &std::path::Path) -> Manifest {
    let data: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(7919) >> 5) as u8)
        .collect();
    std::fs::write(dir.join("song.bin"), &data).unwrap();
    let opts = BuildOptions {
        piece_length: Some(16 * 1024),
        ..Default::default()
    };
    build(&[dir.join("song.bin")], &opts).unwrap()
}

/// A songswarm process on 127.0.0.1 seeding the song in `dir`.
async fn seed(dir: &std::path::Path, manifest: &Manifest) -> App {
    let storage = Arc::new(Storage::open_existing(dir, manifest).unwrap());
    let have = storage.verify_all(1);
    let app = App::bind("127.0.0.1:0".parse().unwrap(), SwarmConfig::default())
        .await
        .unwrap();
    app.add_torrent(manifest, storage, have);
    app
}

/// A loopback port nobody listens on (bound, then released).
async fn dead_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// The modified member: a node connection to `replica` from 127.0.0.2,
/// introduced as the node advertised there.
async fn modified_member(replica: SocketAddr) -> Framed<TcpStream, ChordCodec> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let me = socket.local_addr().unwrap();
    let stream = socket.connect(replica).await.unwrap();
    let mut framed = Framed::new(stream, ChordCodec::new(1 << 20));
    let hello = Frame::Hello {
        id: Id::of_addr(me),
        addr: Some(me),
    };
    framed.send(hello).await.unwrap();
    framed
}

/// Relay `peers` for `key` over `framed` and wait for the replica's answer.
async fn relay(
    framed: &mut Framed<TcpStream, ChordCodec>,
    req: u64,
    key: Id,
    peers: &[SocketAddr],
) {
    let entries = peers
        .iter()
        .map(|&peer| WireEntry {
            peer,
            ttl_ms: 10 * 60 * 1000,
            role: Role::Seeder,
            removed: false,
        })
        .collect();
    let value = WireRecord::Swarm(entries);
    let store = Message::Store { req, key, value };
    framed.send(Frame::Node(store)).await.unwrap();
    let deadline = Instant::now() + LIMIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, framed.next())
            .await
            .expect("an answer to the store in time")
            .expect("the replica kept the connection")
            .expect("a frame");
        // The replica may also ask us things (a ping): only our answer counts.
        if let Frame::Node(Message::Stored { req: r, ok }) = frame {
            if r == req {
                assert!(ok, "the relay was taken");
                return;
            }
        }
    }
}

/// Wait until `replica` has applied `n` verdicts of kind `verdict`.
async fn wait_probed(replica: &ChordHandle, verdict: &'static str, n: u64) {
    let deadline = Instant::now() + LIMIT;
    while replica.metrics().probes(verdict) < n {
        assert!(Instant::now() < deadline, "no {verdict} verdict in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn config() -> ChordConfig {
    ChordConfig {
        probe_timeout: Duration::from_secs(5),
        ..fast_config()
    }
}

/// A ring node alone on loopback (so it holds every key), with `chord`.
async fn lone_replica(chord: ChordConfig, rng_seed: u64) -> ChordHandle {
    let opts = RingOptions {
        no_discovery: true,
        chord,
        rng_seed: Some(rng_seed),
        ..RingOptions::default()
    };
    App::bare_node("127.0.0.1:0".parse().unwrap(), &opts)
        .await
        .expect("bind on loopback")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_entry_nobody_serves_is_dropped_and_a_seeding_peer_stays() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = song(dir.path());
    let key = manifest.info_hash;
    let seeder = seed(dir.path(), &manifest).await;
    let serving = seeder.local_addr();
    let dead = dead_port().await;

    let replica = lone_replica(config(), 1).await;
    let mut member = modified_member(replica.addr()).await;

    relay(&mut member, 1, key, &[dead, serving]).await;
    // Both are kept and asked; the verdicts are applied as they come.
    wait_probed(&replica, "gone", 1).await;
    wait_probed(&replica, "serving", 1).await;
    let peers = replica.peers(key).await.expect("read");
    assert_eq!(peers, vec![(serving, Role::Seeder)], "the dead entry went");

    // The same relay again: the dead entry is refused, the live one taken.
    relay(&mut member, 2, key, &[dead, serving]).await;
    let peers = replica.peers(key).await.expect("read");
    assert_eq!(
        peers,
        vec![(serving, Role::Seeder)],
        "no relay brings it back"
    );
    // Each was asked once: the verdicts stand.
    assert_eq!(replica.metrics().probes("gone"), 1);
    assert_eq!(replica.metrics().probes("serving"), 1);

    replica.leave().await;
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_torrent_at_the_address_is_gone_too() {
    // A songswarm peer at the address, but seeding something else.
    let dir = tempfile::tempdir().unwrap();
    let manifest = song(dir.path());
    let seeder = seed(dir.path(), &manifest).await;
    let elsewhere = seeder.local_addr();
    let key = Id::hash(b"a song that peer does not have");

    let replica = lone_replica(config(), 2).await;
    let mut member = modified_member(replica.addr()).await;
    relay(&mut member, 1, key, &[elsewhere]).await;
    wait_probed(&replica, "gone", 1).await;
    let peers = replica.peers(key).await.expect("read");
    assert!(peers.is_empty(), "{peers:?}");

    replica.leave().await;
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_address_keeps_its_entry() {
    // Connections are taken (by the kernel's backlog) but nothing answers:
    // a firewall that drops, or a host too busy to answer.
    let quiet = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = quiet.local_addr().unwrap();
    let key = Id::hash(b"a song");
    let chord = ChordConfig {
        probe_timeout: Duration::from_millis(300),
        ..config()
    };
    let replica = lone_replica(chord, 3).await;
    let mut member = modified_member(replica.addr()).await;
    relay(&mut member, 1, key, &[silent]).await;
    wait_probed(&replica, "silent", 1).await;
    let peers = replica.peers(key).await.expect("read");
    assert_eq!(peers, vec![(silent, Role::Seeder)]);
    assert_eq!(replica.metrics().probes("gone"), 0);

    replica.leave().await;
    drop(quiet);
}
