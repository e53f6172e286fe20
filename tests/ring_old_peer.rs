//! A ring member from a build that predates anti-entropy digests: it keeps
//! getting its records by the old push path, and is never sent a frame it
//! cannot decode (an older build closes the connection on one and counts
//! the sender as breaking the protocol).
//!
//! The older peer here is a raw socket peer speaking the frame set of the
//! build before digests: it answers ring upkeep and stores, sends frames
//! without feature bits, and treats `digest` and `wanted` as that build's
//! decoder did (an unknown frame type: close the connection).

#[path = "support/chord_ring.rs"]
mod chord_ring;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bendy::decoding::FromBencode;
use bendy::encoding::ToBencode;
use bendy::value::Value;
use bytes::{BufMut, BytesMut};
use futures_util::{SinkExt, StreamExt};
use songswarm::app::ring::RingOptions;
use songswarm::app::App;
use songswarm::chord::message::{Message, Role, WireRecord};
use songswarm::id::Id;
use songswarm::wire::chord::{ChordCodec, ChordCodecError, Frame, PREAMBLE};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Decoder, Encoder, Framed};

use chord_ring::fast_config;

const MAX_FRAME: usize = 1 << 20;

/// The codec of the build before digests: the same frames, but none sent
/// with feature bits (the key `f`), and `digest` / `wanted` unknown.
struct OldCodec {
    inner: ChordCodec,
    preamble_written: bool,
}

impl Decoder for OldCodec {
    type Item = Frame;
    type Error = ChordCodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ChordCodecError> {
        match self.inner.decode(src)? {
            Some(Frame::Node(Message::Digest { .. } | Message::Wanted { .. })) => Err(
                ChordCodecError::Malformed("unknown frame type \"digest\"".into()),
            ),
            other => Ok(other),
        }
    }
}

impl Encoder<Frame> for OldCodec {
    type Error = ChordCodecError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), ChordCodecError> {
        let mut new = BytesMut::new();
        ChordCodec::new(MAX_FRAME).encode(frame, &mut new)?;
        // Preamble, 4-byte length, body: the body without `f`.
        let value = Value::from_bencode(&new[PREAMBLE.len() + 4..]).expect("own frame decodes");
        let Value::Dict(mut d) = value else {
            panic!("a frame is a dictionary");
        };
        d.remove(&b"f"[..]);
        let body = Value::Dict(d).to_bencode().expect("re-encodes");
        if !self.preamble_written {
            dst.extend_from_slice(PREAMBLE);
            self.preamble_written = true;
        }
        dst.put_u32(body.len() as u32);
        dst.extend_from_slice(&body);
        Ok(())
    }
}

fn old_framed(stream: TcpStream) -> Framed<TcpStream, OldCodec> {
    let codec = OldCodec {
        inner: ChordCodec::new(MAX_FRAME),
        preamble_written: false,
    };
    Framed::new(stream, codec)
}

/// What the older peer saw.
#[derive(Default)]
struct Seen {
    /// Keys pushed to it (`store` frames).
    stored: BTreeSet<Id>,
    /// `store` frames received.
    stores: usize,
    /// Frames it could not decode (each closed a connection).
    undecodable: Vec<String>,
    /// Connections the new node dialed to it.
    accepted: usize,
}

/// The older peer at `me`, in a ring with the node at `other`: it answers
/// as a member whose predecessor and successor are `other`.
async fn serve_old(
    mut framed: Framed<TcpStream, OldCodec>,
    me: SocketAddr,
    other: SocketAddr,
    seen: Arc<Mutex<Seen>>,
) {
    while let Some(frame) = framed.next().await {
        let msg = match frame {
            Ok(Frame::Node(msg)) => msg,
            Ok(_) => continue,
            Err(e) => {
                // As the older build: log, close this connection.
                seen.lock().unwrap().undecodable.push(e.to_string());
                return;
            }
        };
        let reply = match msg {
            Message::Ping { req } => Message::Pong { req },
            Message::GetState { req } => Message::State {
                req,
                pred: Some(other),
                succs: vec![other],
            },
            Message::FindSuccessor { req, key } => {
                let owner = if key.in_open_closed(Id::of_addr(other), Id::of_addr(me)) {
                    me
                } else {
                    other
                };
                let next = if owner == me { other } else { me };
                Message::Found {
                    req,
                    succs: vec![owner, next],
                }
            }
            Message::Store { req, key, .. } => {
                let mut seen = seen.lock().unwrap();
                seen.stored.insert(key);
                seen.stores += 1;
                Message::Stored { req, ok: true }
            }
            Message::Fetch { req, .. } => Message::Fetched {
                req,
                ready: true,
                value: WireRecord::Swarm(vec![]),
            },
            Message::Handoff { req, .. } => Message::HandoffData {
                req,
                keys: vec![],
                next: None,
            },
            _ => continue,
        };
        if framed.send(Frame::Node(reply)).await.is_err() {
            return;
        }
    }
}

/// Poll `cond` until it holds or `limit` passes.
async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_peer_gets_its_records_pushed_and_is_never_sent_a_digest() {
    let config = fast_config();
    let opts = RingOptions {
        no_discovery: true,
        chord: config.clone(),
        rng_seed: Some(1),
        ..RingOptions::default()
    };
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let node = App::bare_node(local, &opts).await.expect("bind");
    let a = node.addr();

    // Records written while the node is alone: only it holds them.
    let peer: SocketAddr = "127.0.0.1:6881".parse().unwrap();
    let keys: BTreeSet<Id> = (0..8)
        .map(|i| Id::hash(format!("song {i}").as_bytes()))
        .collect();
    for key in &keys {
        node.announce(*key, peer, Role::Seeder)
            .await
            .expect("announce");
    }

    // The older peer joins: it dials, says hello, notifies.
    let listener = TcpListener::bind(local).await.unwrap();
    let b = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let accept_seen = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            accept_seen.lock().unwrap().accepted += 1;
            tokio::spawn(serve_old(old_framed(stream), b, a, accept_seen.clone()));
        }
    });
    let stream = TcpStream::connect(a).await.unwrap();
    let mut framed = old_framed(stream);
    let hello = Frame::Hello {
        id: Id::of_addr(b),
        addr: Some(b),
    };
    framed.send(hello).await.unwrap();
    framed.send(Frame::Node(Message::Notify)).await.unwrap();
    tokio::spawn(serve_old(framed, b, a, seen.clone()));

    // Every record, then every record again at two more replication
    // passes (one a second): anti-entropy keeps pushing to the older peer.
    let all = wait_for(Duration::from_secs(30), || {
        let seen = seen.lock().unwrap();
        seen.stored.is_superset(&keys) && seen.stores >= 3 * keys.len()
    })
    .await;
    let after = node.ring_info().await.expect("ring info");
    let seen = seen.lock().unwrap();
    eprintln!(
        "stored {}/{} ({} store frames), undecodable {:?}, connections dialed to it {}, ring {:?}",
        seen.stored.intersection(&keys).count(),
        keys.len(),
        seen.stores,
        seen.undecodable,
        seen.accepted,
        (after.predecessor, &after.successors),
    );
    assert!(
        all,
        "records did not all reach the older peer, pass after pass"
    );
    assert!(
        seen.undecodable.is_empty(),
        "the older peer was sent frames it cannot decode: {:?}",
        seen.undecodable
    );
    // Nor did the node lose its connection to it and dial again.
    assert_eq!(
        seen.accepted, 0,
        "the node had to dial the older peer again"
    );
    assert_eq!(after.predecessor, Some(b));
    assert_eq!(after.successors.first(), Some(&b));
}

/// A node frame names the sender's features under `f`; one from a build
/// before feature bits has none (0), and decodes as before.
#[test]
fn node_frames_carry_the_senders_features_and_older_ones_none() {
    let mut dec = ChordCodec::new(1024);
    let mut wire = BytesMut::new();
    ChordCodec::new(1024)
        .encode(Frame::Node(Message::Ping { req: 3 }), &mut wire)
        .unwrap();
    let older = b"d1:qi4e1:t4:pinge";
    wire.put_u32(older.len() as u32);
    wire.extend_from_slice(older);
    let first = dec.decode(&mut wire).unwrap();
    assert_eq!(first, Some(Frame::Node(Message::Ping { req: 3 })));
    assert_eq!(dec.peer_features(), songswarm::wire::chord::FEATURES);
    assert_ne!(
        dec.peer_features() & songswarm::wire::chord::FEATURE_DIGEST,
        0
    );
    let second = dec.decode(&mut wire).unwrap();
    assert_eq!(second, Some(Frame::Node(Message::Ping { req: 4 })));
    assert_eq!(dec.peer_features(), 0, "a frame without `f`");
}
