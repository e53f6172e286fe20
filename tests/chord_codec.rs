//! The Chord wire codec: round trips, partial input, and hostile input.

use std::net::SocketAddr;

use bytes::{BufMut, BytesMut};
use songswarm::id::Id;
use songswarm::wire::chord::message::{Message, Role, WireEntry, WireRecord, SWARM_LIST};
use songswarm::wire::chord::{
    ChordCodec, ChordCodecError, ClientReply, ClientRequest, Frame, LookupInfo, RingInfo, PREAMBLE,
};
use tokio_util::codec::{Decoder, Encoder};

fn a(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn every_frame() -> Vec<Frame> {
    let k = Id::hash(b"key");
    let e = WireEntry {
        peer: a(6881),
        ttl_ms: 12345,
        role: Role::Seeder,
        removed: false,
    };
    let gone = WireEntry {
        removed: true,
        role: Role::Leecher,
        ..e
    };
    let tagged = WireRecord::Tagged {
        kind: 7,
        body: b"any bytes".to_vec(),
    };
    let msgs = vec![
        Message::Ping { req: 1 },
        Message::Pong { req: 2 },
        Message::GetState { req: 3 },
        Message::State {
            req: 4,
            pred: Some(a(1)),
            succs: vec![a(2), a(3)],
        },
        Message::State {
            req: 4,
            pred: None,
            succs: vec![],
        },
        Message::Notify,
        Message::FindSuccessor { req: 5, key: k },
        Message::Found {
            req: 6,
            succs: vec![a(4)],
        },
        Message::Closer {
            req: 7,
            nodes: vec![],
        },
        Message::Store {
            req: 8,
            key: k,
            value: WireRecord::Swarm(vec![e, gone]),
        },
        Message::Store {
            req: 8,
            key: k,
            value: tagged.clone(),
        },
        Message::Stored { req: 9, ok: true },
        Message::Fetch {
            req: 10,
            key: k,
            kind: SWARM_LIST,
        },
        Message::Fetch {
            req: 10,
            key: k,
            kind: 7,
        },
        Message::Fetched {
            req: 11,
            ready: false,
            value: WireRecord::Swarm(vec![e]),
        },
        Message::Fetched {
            req: 11,
            ready: true,
            value: tagged.clone(),
        },
        Message::Handoff {
            req: 12,
            upto: k,
            after: Some(Id::hash(b"x")),
        },
        Message::HandoffData {
            req: 13,
            keys: vec![(k, WireRecord::Swarm(vec![e])), (k, tagged)],
            next: None,
        },
    ];
    let mut frames: Vec<Frame> = msgs.into_iter().map(Frame::Node).collect();
    frames.push(Frame::Hello {
        id: Id::of_addr(a(7)),
        addr: Some(a(7)),
    });
    frames.push(Frame::Hello { id: k, addr: None });
    for body in [
        ClientRequest::Announce {
            key: k,
            peer: a(9),
            role: Role::Leecher,
        },
        ClientRequest::Remove { key: k, peer: a(9) },
        ClientRequest::Peers { key: k },
        ClientRequest::Lookup { key: k },
        ClientRequest::Ring,
        ClientRequest::Put {
            key: k,
            value: WireRecord::Tagged {
                kind: 44,
                body: b"de".to_vec(),
            },
        },
        ClientRequest::Get { key: k, kind: 44 },
    ] {
        frames.push(Frame::Request { req: 99, body });
    }
    for body in [
        ClientReply::Ok,
        ClientReply::Error("no".into()),
        ClientReply::Record(WireRecord::Tagged {
            kind: 44,
            body: b"d1:ai1ee".to_vec(),
        }),
        ClientReply::Peers(vec![(a(1), Role::Seeder), (a(2), Role::Leecher)]),
        ClientReply::Lookup(LookupInfo {
            key: k,
            owner: a(1),
            replicas: vec![a(1), a(2)],
            hops: 3,
        }),
        ClientReply::Ring(RingInfo {
            id: Id::of_addr(a(1)),
            addr: a(1),
            predecessor: None,
            successors: vec![a(2)],
            fingers: 4,
            keys: 5,
            joined: true,
        }),
    ] {
        frames.push(Frame::Reply { req: 100, body });
    }
    frames
}

#[test]
fn every_frame_round_trips_even_one_byte_at_a_time() {
    let frames = every_frame();
    let mut enc = ChordCodec::new(1 << 20);
    let mut wire = BytesMut::new();
    for f in &frames {
        enc.encode(f.clone(), &mut wire).unwrap();
    }
    assert_eq!(&wire[..8], PREAMBLE);
    assert_ne!(wire[0], 0x13, "must not look like a BitTorrent handshake");
    let mut dec = ChordCodec::new(1 << 20);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for byte in wire.iter() {
        buf.put_u8(*byte);
        while let Some(f) = dec.decode(&mut buf).unwrap() {
            out.push(f);
        }
    }
    assert_eq!(out, frames);
}

fn decode_all(bytes: &[u8], max: usize) -> Result<Vec<Frame>, ChordCodecError> {
    let mut dec = ChordCodec::new(max);
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(f) = dec.decode(&mut buf)? {
        out.push(f);
    }
    Ok(out)
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut v = PREAMBLE.to_vec();
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

#[test]
fn bittorrent_handshake_is_not_a_chord_preamble() {
    let mut hs = vec![0x13];
    hs.extend_from_slice(b"BitTorrent protocol");
    assert!(matches!(
        decode_all(&hs, 1024),
        Err(ChordCodecError::BadPreamble)
    ));
}

#[test]
fn oversize_frame_is_refused_before_it_is_read() {
    let mut v = PREAMBLE.to_vec();
    v.extend_from_slice(&(10_000u32).to_be_bytes());
    assert!(matches!(
        decode_all(&v, 1024),
        Err(ChordCodecError::Oversize {
            len: 10_000,
            max: 1024
        })
    ));
}

#[test]
fn partial_input_needs_more_bytes() {
    assert_eq!(decode_all(&PREAMBLE[..3], 1024).unwrap(), vec![]);
    assert_eq!(
        decode_all(&framed(b"d1:t4:pinge")[..14], 1024).unwrap(),
        vec![]
    );
}

#[test]
fn malformed_bodies_are_errors_not_panics() {
    let cases: &[&[u8]] = &[
        b"",
        b"i5e",
        b"d1:t7:unknowne",
        b"d1:t4:pinge",
        b"d1:q1:x1:t4:pinge",
        b"d1:qi-1e1:t4:pinge",
        b"d1:qi1e1:t4:pingei5e",
        b"d1:qi1e1:s4:abcd1:t5:founde",
        b"d1:qi1e1:s1:x1:t5:founde",
        b"d1:ei5e1:k20:aaaaaaaaaaaaaaaaaaaa1:qi1e1:t5:storee",
        b"d1:elli1eee1:k20:aaaaaaaaaaaaaaaaaaaa1:qi1e1:t5:storee",
        b"d1:k3:abc1:qi1e1:t4:finde",
        // A record kind tag of 0 (swarm lists carry none), too big, or
        // without its body.
        b"d1:k20:aaaaaaaaaaaaaaaaaaaa1:qi1e1:t5:store1:v0:1:yi0ee",
        b"d1:k20:aaaaaaaaaaaaaaaaaaaa1:qi1e1:t5:store1:v0:1:yi256ee",
        b"d1:k20:aaaaaaaaaaaaaaaaaaaa1:qi1e1:t5:store1:yi7ee",
        b"d1:k20:aaaaaaaaaaaaaaaaaaaa1:qi1e1:t5:fetch1:yi0ee",
        b"d1:lll20:aaaaaaaaaaaaaaaaaaaai0e0:ee1:qi1e1:t12:handoff_datae",
        b"d1:t4:pi",
    ];
    for body in cases {
        let r = decode_all(&framed(body), 1024);
        assert!(
            matches!(r, Err(ChordCodecError::Malformed(_))),
            "{:?} gave {r:?}",
            String::from_utf8_lossy(body)
        );
    }
    // Deep nesting is refused without recursing through it.
    let mut deep = vec![b'l'; 100_000];
    deep.extend(vec![b'e'; 100_000]);
    assert!(matches!(
        decode_all(&framed(&deep), 1 << 20),
        Err(ChordCodecError::Malformed(_))
    ));
}

#[test]
fn hello_with_an_id_that_is_not_the_address_hash_is_refused() {
    let mut enc = ChordCodec::new(1024);
    let mut wire = BytesMut::new();
    let lie = Frame::Hello {
        id: Id::hash(b"someone else"),
        addr: Some(a(7)),
    };
    enc.encode(lie, &mut wire).unwrap();
    match decode_all(&wire, 1024) {
        Err(ChordCodecError::Malformed(why)) => assert!(why.contains("SHA-1"), "{why}"),
        other => panic!("expected refusal, got {other:?}"),
    }
}

/// Swarm-list frames byte for byte as deployed nodes send them (plus `f`,
/// features older builds ignore): record kinds must not change how they travel.
#[test]
fn swarm_list_frames_keep_their_bytes() {
    let k = Id::hash(b"key");
    let e = WireEntry {
        peer: a(6881),
        ttl_ms: 12345,
        role: Role::Seeder,
        removed: false,
    };
    let gone = WireEntry {
        removed: true,
        role: Role::Leecher,
        ..e
    };
    let cases: Vec<(Message, &[u8])> = vec![
        (
            Message::Store {
                req: 8,
                key: k,
                value: WireRecord::Swarm(vec![e, gone]),
            },
            b"d1:ell14:127.0.0.1:6881i12345ei1ei0eel14:127.0.0.1:6881i12345ei0ei1eee\
              1:fi1e1:k20:\xa6/\"%\xbfp\xbf\xac\xcb\xc7\xf1\xef*9x6qsw\xde1:qi8e1:t5:storee",
        ),
        (
            Message::Fetch {
                req: 10,
                key: k,
                kind: SWARM_LIST,
            },
            b"d1:fi1e1:k20:\xa6/\"%\xbfp\xbf\xac\xcb\xc7\xf1\xef*9x6qsw\xde1:qi10e1:t5:fetche",
        ),
        (
            Message::Fetched {
                req: 11,
                ready: true,
                value: WireRecord::Swarm(vec![e]),
            },
            b"d1:ell14:127.0.0.1:6881i12345ei1ei0eee1:fi1e1:qi11e5:readyi1e1:t7:fetchede",
        ),
        (
            Message::HandoffData {
                req: 13,
                keys: vec![(k, WireRecord::Swarm(vec![e, gone]))],
                next: Some(k),
            },
            b"d1:fi1e1:lll20:\xa6/\"%\xbfp\xbf\xac\xcb\xc7\xf1\xef*9x6qsw\xde\
              ll14:127.0.0.1:6881i12345ei1ei0eel14:127.0.0.1:6881i12345ei0ei1eeeee\
              1:n20:\xa6/\"%\xbfp\xbf\xac\xcb\xc7\xf1\xef*9x6qsw\xde1:qi13e1:t12:handoff_datae",
        ),
    ];
    for (msg, body) in cases {
        let mut enc = ChordCodec::new(1 << 20);
        let mut wire = BytesMut::new();
        enc.encode(Frame::Node(msg.clone()), &mut wire).unwrap();
        assert_eq!(
            wire[..],
            framed(body)[..],
            "{msg:?} encodes as {}",
            wire[12..].escape_ascii()
        );
        assert_eq!(decode_all(&wire, 1 << 20).unwrap(), vec![Frame::Node(msg)]);
    }
}

/// Other record kinds travel with their tag under `y` and their body under
/// `v` (a hand-off page: `[key, kind, body]`), so a swarm list's frames
/// keep the shape they had before there were kinds.
#[test]
fn tagged_record_frames_have_their_own_fields() {
    let k = Id::hash(b"key");
    let tagged = WireRecord::Tagged {
        kind: 7,
        body: b"xyz".to_vec(),
    };
    let cases: Vec<(Message, &[u8])> = vec![
        (
            Message::Store {
                req: 8,
                key: k,
                value: tagged.clone(),
            },
            b"d1:fi1e1:k20:\xa6/\"%\xbfp\xbf\xac\xcb\xc7\xf1\xef*9x6qsw\xde1:qi8e1:t5:store1:v3:xyz1:yi7ee",
        ),
        (
            Message::Fetch {
                req: 10,
                key: k,
                kind: 7,
            },
            b"d1:fi1e1:k20:\xa6/\"%\xbfp\xbf\xac\xcb\xc7\xf1\xef*9x6qsw\xde1:qi10e1:t5:fetch1:yi7ee",
        ),
        (
            Message::HandoffData {
                req: 13,
                keys: vec![(k, tagged)],
                next: None,
            },
            b"d1:fi1e1:lll20:\xa6/\"%\xbfp\xbf\xac\xcb\xc7\xf1\xef*9x6qsw\xdei7e3:xyzee\
              1:qi13e1:t12:handoff_datae",
        ),
    ];
    for (msg, body) in cases {
        let mut enc = ChordCodec::new(1 << 20);
        let mut wire = BytesMut::new();
        enc.encode(Frame::Node(msg.clone()), &mut wire).unwrap();
        assert_eq!(
            wire[..],
            framed(body)[..],
            "{msg:?} encodes as {}",
            wire[12..].escape_ascii()
        );
        assert_eq!(decode_all(&wire, 1 << 20).unwrap(), vec![Frame::Node(msg)]);
    }
}
