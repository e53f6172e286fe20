//! The fast extension (BEP 6) on the wire, against scripted peers: a
//! songswarm seed that both sides negotiated it with says have-all and
//! rejects every request it will not serve (choked, or a piece that does
//! not exist) instead of staying silent; without the bit it speaks plain
//! BEP 3. A songswarm leecher whose request is rejected asks again at once,
//! not after its request time-out.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use songswarm::app::App;
use songswarm::config::{SuperSeedMode, SwarmConfig};
use songswarm::manifest::{build, BuildOptions, Manifest};
use songswarm::storage::Storage;
use songswarm::swarm::TorrentEvent;
use songswarm::wire::handshake::{self, Handshake};
use songswarm::wire::peer::{encode_message, BlockRef, Message, PeerCodec};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::FramedRead;

#[path = "support/torrent_wait.rs"]
mod torrent_wait;
use torrent_wait::wait_complete;

const LIMIT: Duration = Duration::from_secs(10);
const PIECE: u32 = 16 * 1024;

/// A song of 4 pieces of 16 KiB in `dir`, and its manifest.
fn song(dir: &std::path::Path) -> (Vec<u8>, Manifest) {
    let data: Vec<u8> = (0..4 * PIECE)
        .map(|i| (i.wrapping_mul(7919) >> 5) as u8)
        .collect();
    std::fs::write(dir.join("song.bin"), &data).unwrap();
    let opts = BuildOptions {
        piece_length: Some(u64::from(PIECE)),
        ..Default::default()
    };
    (data, build(&[dir.join("song.bin")], &opts).unwrap())
}

/// A songswarm seed of the song that sends its bitfield (no super-seeding).
async fn seed(dir: &std::path::Path, manifest: &Manifest) -> App {
    let storage = Arc::new(Storage::open_existing(dir, manifest).unwrap());
    let have = storage.verify_all(1);
    let config = SwarmConfig {
        super_seed: SuperSeedMode::Off,
        ..SwarmConfig::default()
    };
    let app = App::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    app.add_torrent(manifest, storage, have);
    app
}

/// A scripted peer's connection: frames in, frames out.
struct Wire {
    frames: FramedRead<OwnedReadHalf, PeerCodec>,
    out: OwnedWriteHalf,
}

impl Wire {
    async fn send(&mut self, m: Message) {
        let mut buf = BytesMut::new();
        encode_message(&m, &mut buf);
        self.out.write_all(&buf).await.unwrap();
    }

    /// The next message other than keep-alives, extension messages and HAVEs.
    async fn next(&mut self) -> Message {
        loop {
            let m = tokio::time::timeout(LIMIT, self.frames.next())
                .await
                .expect("no message in time")
                .expect("connection closed")
                .expect("bad frame");
            if !matches!(
                m,
                Message::KeepAlive | Message::Extended { .. } | Message::Have(_)
            ) {
                return m;
            }
        }
    }
}

fn wire(stream: TcpStream, pieces: u32) -> Wire {
    let (r, w) = stream.into_split();
    Wire {
        frames: FramedRead::new(r, PeerCodec::new(pieces)),
        out: w,
    }
}

/// Dials `app` for `manifest`, announcing the fast extension or not.
async fn dial(app: &App, manifest: &Manifest, fast: bool) -> (Wire, Handshake) {
    let mut stream = TcpStream::connect(app.local_addr()).await.unwrap();
    let ours = Handshake::new(manifest.info_hash, [b'F'; 20]).with_fast(fast);
    let theirs = handshake::exchange(&mut stream, &ours, LIMIT)
        .await
        .unwrap();
    (wire(stream, manifest.piece_count()), theirs)
}

fn block(index: u32) -> BlockRef {
    BlockRef {
        index,
        begin: 0,
        length: PIECE,
    }
}

#[tokio::test]
async fn a_seed_says_have_all_and_rejects_what_it_will_not_serve() {
    let dir = tempfile::tempdir().unwrap();
    let (data, manifest) = song(dir.path());
    let app = seed(dir.path(), &manifest).await;
    let (mut w, theirs) = dial(&app, &manifest, true).await;
    assert!(theirs.supports_fast(), "the seed does not announce BEP 6");
    assert_eq!(w.next().await, Message::HaveAll);
    // Choked: rejected, not ignored.
    w.send(Message::Request(block(1))).await;
    assert_eq!(w.next().await, Message::Reject(block(1)));
    w.send(Message::Interested).await;
    assert_eq!(w.next().await, Message::Unchoke);
    // A piece that does not exist.
    w.send(Message::Request(block(9))).await;
    assert_eq!(w.next().await, Message::Reject(block(9)));
    w.send(Message::Request(block(2))).await;
    let piece = Message::Piece {
        index: 2,
        begin: 0,
        data: Bytes::copy_from_slice(&data[2 * PIECE as usize..3 * PIECE as usize]),
    };
    assert_eq!(w.next().await, piece);
}

#[tokio::test]
async fn without_the_bit_a_seed_speaks_plain_bep3() {
    let dir = tempfile::tempdir().unwrap();
    let (_, manifest) = song(dir.path());
    let app = seed(dir.path(), &manifest).await;
    let (mut w, theirs) = dial(&app, &manifest, false).await;
    assert!(theirs.supports_fast(), "we announce it, the peer does not");
    assert!(matches!(w.next().await, Message::Bitfield(_)));
    // Choked: the request is dropped silently (BEP 3); the next message
    // is the unchoke that interest earns.
    w.send(Message::Request(block(1))).await;
    w.send(Message::Interested).await;
    assert_eq!(w.next().await, Message::Unchoke);
}

/// A scripted seed that rejects the first request it gets and serves the
/// rest (the rejected block too, when it is asked again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leecher_asks_again_at_once_after_a_reject() {
    let dir = tempfile::tempdir().unwrap();
    let (data, manifest) = song(dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let info_hash = manifest.info_hash;
    let pieces = manifest.piece_count();
    let served = data.clone();
    let script = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let theirs = handshake::read_theirs(&mut stream, LIMIT).await.unwrap();
        assert!(
            theirs.supports_fast(),
            "the leecher does not announce BEP 6"
        );
        let ours = Handshake::new(info_hash, [b'S'; 20]).with_fast(true);
        handshake::write_ours(&mut stream, &ours, LIMIT)
            .await
            .unwrap();
        let mut w = wire(stream, pieces);
        w.send(Message::HaveAll).await;
        w.send(Message::Unchoke).await;
        let mut rejected = None;
        loop {
            match w.next().await {
                Message::Request(r) if rejected.is_none() => {
                    rejected = Some(r);
                    w.send(Message::Reject(r)).await;
                }
                Message::Request(r) => {
                    let at = (r.index * PIECE + r.begin) as usize;
                    let data = Bytes::copy_from_slice(&served[at..at + r.length as usize]);
                    let (index, begin) = (r.index, r.begin);
                    w.send(Message::Piece { index, begin, data }).await;
                    if Some(r) == rejected {
                        return;
                    }
                }
                _ => {}
            }
        }
    });

    let out = tempfile::tempdir().unwrap();
    let storage = Arc::new(Storage::open_or_create(out.path(), &manifest).unwrap());
    let app = App::bind("127.0.0.1:0".parse().unwrap(), SwarmConfig::default())
        .await
        .unwrap();
    let handle = app.add_torrent(&manifest, storage, vec![false; pieces as usize]);
    handle
        .events
        .send(TorrentEvent::AddPeers(vec![addr]))
        .await
        .unwrap();
    // Within half the request time-out (20 s): the reject freed the block.
    tokio::time::timeout(LIMIT, script)
        .await
        .expect("the rejected block was not asked for again in time")
        .unwrap();
    wait_complete(&handle, LIMIT).await;
    assert!(std::fs::read(out.path().join("song.bin")).unwrap() == data);
}
