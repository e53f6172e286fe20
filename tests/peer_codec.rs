//! The peer wire codec: round trips, arbitrary splits, limits, garbage.

use bytes::{BufMut, Bytes, BytesMut};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use songswarm::id::Id;
use songswarm::wire::peer::{
    encode_message, encode_pex, parse_pex, BlockRef, ExtensionHandshake, Handshake, Message,
    PeerCodec, PeerWireError, HANDSHAKE_LEN,
};
use tokio_util::codec::Decoder;

const PIECES: u32 = 77;

fn every_message() -> Vec<Message> {
    let r = BlockRef {
        index: 3,
        begin: 16384,
        length: 16384,
    };
    vec![
        Message::KeepAlive,
        Message::Choke,
        Message::Unchoke,
        Message::Interested,
        Message::NotInterested,
        Message::Have(76),
        Message::Bitfield(Bytes::from(vec![0xAAu8; 10])),
        Message::Request(r),
        Message::Piece {
            index: 3,
            begin: 16384,
            data: Bytes::from(vec![7u8; 16384]),
        },
        Message::Piece {
            index: 0,
            begin: 0,
            data: Bytes::from_static(b"short last block"),
        },
        Message::Cancel(r),
        Message::Suggest(5),
        Message::HaveAll,
        Message::HaveNone,
        Message::Reject(r),
        Message::AllowedFast(76),
        Message::Port(6881),
        Message::Extended {
            id: 0,
            payload: ExtensionHandshake::ours(Some(4242), 500, None).to_bytes(),
        },
        Message::Extended {
            id: 1,
            payload: Bytes::from_static(b"de"),
        },
        Message::Unknown { id: 21 },
    ]
}

fn encode(m: &Message) -> BytesMut {
    let mut buf = BytesMut::new();
    encode_message(m, &mut buf);
    buf
}

fn decode_all(codec: &mut PeerCodec, buf: &mut BytesMut) -> Result<Vec<Message>, PeerWireError> {
    let mut out = Vec::new();
    while let Some(m) = codec.decode(buf)? {
        out.push(m);
    }
    Ok(out)
}

#[test]
fn every_message_round_trips() {
    for m in every_message() {
        let mut buf = encode(&m);
        let mut codec = PeerCodec::new(PIECES);
        let got = decode_all(&mut codec, &mut buf).expect("decodes");
        assert_eq!(got, vec![m.clone()], "round trip of {m:?}");
        assert!(buf.is_empty(), "whole frame consumed for {m:?}");
    }
}

#[test]
fn every_split_point_decodes_the_same() {
    let mut stream = BytesMut::new();
    for m in every_message() {
        encode_message(&m, &mut stream);
    }
    let whole = stream.freeze();
    for split in 0..=whole.len() {
        let mut codec = PeerCodec::new(PIECES);
        let mut buf = BytesMut::from(&whole[..split]);
        let mut got = decode_all(&mut codec, &mut buf).expect("first part");
        buf.extend_from_slice(&whole[split..]);
        got.extend(decode_all(&mut codec, &mut buf).expect("second part"));
        assert_eq!(got, every_message(), "split at {split}");
    }
}

#[test]
fn byte_at_a_time_decodes_the_same() {
    let mut stream = BytesMut::new();
    for m in every_message() {
        encode_message(&m, &mut stream);
    }
    let mut codec = PeerCodec::new(PIECES);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in stream.iter() {
        buf.put_u8(*b);
        got.extend(decode_all(&mut codec, &mut buf).expect("decodes"));
    }
    assert_eq!(got, every_message());
}

#[test]
fn oversize_frames_are_rejected() {
    let mut codec = PeerCodec::new(PIECES);
    // A piece one byte above 16 KiB.
    let mut buf = BytesMut::new();
    buf.put_u32(9 + 16384 + 1);
    buf.put_u8(7);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(PeerWireError::Oversize { .. })
    ));
    // A bitfield longer than the torrent needs.
    let mut buf = BytesMut::new();
    buf.put_u32(1 + 11);
    buf.put_u8(5);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(PeerWireError::Oversize { .. })
    ));
    // Anything else of a megabyte, rejected from the header alone.
    let mut buf = BytesMut::new();
    buf.put_u32(1 << 20);
    buf.put_u8(20);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(PeerWireError::Oversize { .. })
    ));
}

#[test]
fn wrong_fixed_lengths_are_rejected() {
    let mut codec = PeerCodec::new(PIECES);
    let mut buf = BytesMut::new();
    buf.put_u32(3);
    buf.put_u8(4); // have needs 4 bytes of body
    buf.put_u16(1);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(PeerWireError::BadLength { id: 4, .. })
    ));
    let mut buf = BytesMut::new();
    buf.put_u32(2);
    buf.put_u8(0); // choke has no body
    buf.put_u8(0);
    assert!(codec.decode(&mut buf).is_err());
    let mut buf = BytesMut::new();
    buf.put_u32(1 + 5);
    buf.put_u8(5); // bitfield of the wrong size for 77 pieces (needs 10)
    buf.put_slice(&[0; 5]);
    assert!(codec.decode(&mut buf).is_err());
}

#[test]
fn garbage_never_panics() {
    for seed in 0..2000u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let len = rng.gen_range(0..400);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        // Half the time, make the length prefix plausible so bodies get parsed.
        if seed % 2 == 0 && bytes.len() >= 5 {
            let body = (bytes.len() - 4) as u32;
            bytes[..4].copy_from_slice(&body.to_be_bytes());
            bytes[4] = (seed % 22) as u8;
        }
        let mut codec = PeerCodec::new(PIECES);
        let mut buf = BytesMut::from(&bytes[..]);
        let _ = decode_all(&mut codec, &mut buf);
        let _ = Handshake::parse(&bytes);
        let _ = ExtensionHandshake::parse(&bytes);
        let _ = parse_pex(&bytes);
    }
}

#[test]
fn handshake_round_trips_and_rejects_other_protocols() {
    let h = Handshake::new(Id::hash(b"torrent"), *b"-SW0100-abcdefghijkl");
    assert!(h.supports_extensions());
    let bytes = h.to_bytes();
    assert_eq!(Handshake::parse(&bytes).unwrap(), Some(h.clone()));
    for n in 0..HANDSHAKE_LEN {
        assert_eq!(
            Handshake::parse(&bytes[..n]).unwrap(),
            None,
            "prefix of {n}"
        );
    }
    let mut wrong = bytes;
    wrong[5] = b'X';
    assert!(Handshake::parse(&wrong).is_err());
    assert!(Handshake::parse(b"GET / HTTP/1.1\r\n").is_err());
}

#[test]
fn extension_handshake_round_trips() {
    let ours = ExtensionHandshake::ours(Some(6881), 250, Some(12_345));
    let parsed = ExtensionHandshake::parse(&ours.to_bytes()).unwrap();
    assert_eq!(parsed.p, Some(6881));
    assert_eq!(parsed.metadata_size, Some(12_345));
    assert_eq!(parsed.id_of("ut_metadata"), Some(3));
    assert_eq!(parsed.reqq, Some(250));
    assert_eq!(parsed.id_of("ut_pex"), ours.id_of("ut_pex"));
    assert!(parsed.v.unwrap().starts_with("songswarm"));
    assert!(!parsed.stream, "no stream open: no `stream` key");
    let playing = ExtensionHandshake::ours(Some(6881), 250, None).streaming(true);
    let bytes = playing.to_bytes();
    assert!(String::from_utf8_lossy(&bytes).contains("6:streami1e"));
    assert!(ExtensionHandshake::parse(&bytes).unwrap().stream);
    // libtorrent style, with keys we do not know and an extension turned off.
    let lt = b"d1:ei0e1:md11:lt_donthavei7e6:ut_pexi0ee1:pi6881e4:reqqi500e1:v16:libtorrent 2.0.8e";
    let parsed = ExtensionHandshake::parse(lt).unwrap();
    assert_eq!(parsed.id_of("lt_donthave"), Some(7));
    assert_eq!(parsed.id_of("ut_pex"), None, "id 0 means disabled");
    assert_eq!(parsed.reqq, Some(500));
    assert!(!parsed.stream);
    assert!(ExtensionHandshake::parse(b"li1ee").is_err());
}

#[test]
fn pex_round_trips() {
    let addrs: Vec<std::net::SocketAddr> = vec![
        "127.0.0.1:6881".parse().unwrap(),
        "127.0.0.2:1".parse().unwrap(),
    ];
    assert_eq!(parse_pex(&encode_pex(&addrs)).unwrap(), addrs);
}
