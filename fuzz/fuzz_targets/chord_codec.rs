//! The Chord codec (preamble, length-prefixed frames, message decoding),
//! fed in chunks. Never a panic; an error ends the stream.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use songswarm::wire::chord::ChordCodec;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else { return };
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
});
