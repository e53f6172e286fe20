//! The checks of the fuzz targets (fuzz/fuzz_targets/), one function per
//! target: the targets call them, and tests/fuzz_regressions.rs replays
//! saved inputs through them on the stable toolchain.
#![allow(dead_code)]

use bytes::BytesMut;
use songswarm::http::range::{answer, Answer, Conditions};
use songswarm::id::Id;
use songswarm::manifest::Manifest;
use songswarm::swarm::metadata::Assembler;
use songswarm::wire::chord::ChordCodec;
use songswarm::wire::extension::{parse_pex, ExtensionHandshake};
use songswarm::wire::metadata::MetadataMsg;
use songswarm::wire::peer::PeerCodec;
use tokio_util::codec::Decoder;

/// The manifest decoder: any bytes as a .torrent file, and as a BEP 9 info
/// dictionary. Never a panic; whatever parses keeps its own invariants.
pub fn manifest(data: &[u8]) {
    let parsed = [Manifest::from_bytes(data), Manifest::from_info_bytes(data)];
    for m in parsed.into_iter().flatten() {
        // A manifest that parsed is consistent: its pieces cover its length.
        let g = m.geometry();
        let covered: u64 = (0..m.piece_count())
            .map(|i| u64::from(m.piece_len(i)))
            .sum();
        assert_eq!(covered, g.total_length);
        let _ = m.file_spans();
        let _ = m.to_bytes();
    }
}

/// The peer-wire codec (BEP 3/6/10 frames) and the payload parsers behind
/// it (extension handshake, PEX, BEP 9 messages), fed in chunks as a
/// socket would. Never a panic; an error ends the stream.
pub fn peer_wire(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Some((&chunk, rest)) = rest.split_first() else {
        return;
    };
    let mut codec = match mode % 2 {
        0 => PeerCodec::before_metadata(),
        _ => PeerCodec::new(u32::from(mode) * 37),
    };
    let chunk = usize::from(chunk).max(1);
    let mut buf = BytesMut::new();
    'feed: for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
    let _ = ExtensionHandshake::parse(rest);
    let _ = parse_pex(rest);
    let _ = MetadataMsg::decode(rest);
}

/// The Chord codec (preamble, length-prefixed frames, message decoding),
/// fed in chunks. Never a panic; an error ends the stream.
pub fn chord_codec(data: &[u8]) {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let mut codec = ChordCodec::new(1 << 20);
    // Most inputs start with the preamble, so the frames behind it are reached.
    let mut buf = BytesMut::from(&songswarm::wire::chord::PREAMBLE[..]);
    let chunk = usize::from(chunk).max(1);
    'feed: for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
}

/// The BEP 9 metadata assembler: pieces of any size, index and order from a
/// lying peer. Never a panic; what it returns always hashes to the
/// info-hash.
pub fn metadata(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let size = u64::from(u32::from_le_bytes(data[..4].try_into().unwrap()) % 100_000);
    // Half the runs know the right hash of the bytes that follow.
    let rest = &data[4..];
    let info_hash = match size % 2 {
        0 => Id::hash(rest.get(..size as usize).unwrap_or(rest)),
        _ => Id([7; 20]),
    };
    let Ok(mut assembler) = Assembler::new(info_hash, size) else {
        return;
    };
    let mut at = 0;
    while at + 6 <= rest.len() {
        let piece = u32::from(rest[at]);
        let told = if rest[at + 1].is_multiple_of(8) {
            size + 1
        } else {
            size
        };
        let len = usize::from(u16::from_le_bytes([rest[at + 2], rest[at + 3]]));
        let body = &rest[(at + 4).min(rest.len())..(at + 4 + len).min(rest.len())];
        at += 4 + body.len();
        if let Ok(Some(whole)) = assembler.handle_data(piece, told, body) {
            assert_eq!(Id::hash(&whole), info_hash);
            assert_eq!(whole.len() as u64, size);
        }
    }
}

/// The HTTP Range / If-Range / If-None-Match decision: any header values,
/// any length. Never a panic; a 206 is always inside the file.
pub fn http_range(data: &[u8]) {
    if data.len() < 8 {
        return;
    }
    let len = u64::from_le_bytes(data[..8].try_into().unwrap()) >> (data[0] % 64);
    let text = String::from_utf8_lossy(&data[8..]);
    let mut parts = text.splitn(3, '\n');
    let cond = Conditions {
        range: parts.next(),
        if_range: parts.next(),
        if_none_match: parts.next(),
    };
    match answer(&cond, len, "\"etag\"") {
        Answer::Partial { start, end } => {
            assert!(start < end && end <= len, "{start}..{end} of {len}")
        }
        Answer::Full | Answer::NotModified | Answer::Unsatisfiable => {}
    }
}
