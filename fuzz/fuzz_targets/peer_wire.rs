//! The peer-wire codec (BEP 3/6/10 frames) and the payload parsers behind
//! it (extension handshake, PEX, BEP 9 messages), fed in chunks as a
//! socket would. Never a panic; an error ends the stream.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use songswarm::wire::extension::{parse_pex, ExtensionHandshake};
use songswarm::wire::metadata::MetadataMsg;
use songswarm::wire::peer::PeerCodec;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let Some((&chunk, rest)) = rest.split_first() else { return };
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
});
