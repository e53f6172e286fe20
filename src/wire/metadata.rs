//! BEP 9 `ut_metadata` messages: how a torrent's `info` dictionary travels
//! between peers, in 16 KiB pieces, inside BEP 10 extended messages.
//!
//! Each message is a bencoded dictionary (`msg_type`, `piece`, and for data
//! `total_size`), followed by the piece's bytes for a data message. Parsing
//! never panics: anything else is a [`MalformedMetadata`].

use bendy::decoding::{Decoder, Object};
use bendy::encoding::{SingleItemEncoder, ToBencode};

/// Extension name advertised in the BEP 10 handshake's `m` dictionary.
pub const EXTENSION_NAME: &str = "ut_metadata";
/// The id we ask peers to send `ut_metadata` messages under (our `m` dict).
pub const OUR_ID: u8 = 3;
/// Size of one metadata piece; only the last may be shorter.
pub const PIECE_SIZE: usize = 16 * 1024;

/// A `ut_metadata` message that could not be parsed (what was wrong).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed ut_metadata message: {0}")]
pub struct MalformedMetadata(pub &'static str);

/// One `ut_metadata` message (the payload after the extended message id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataMsg {
    /// Please send piece `piece`.
    Request { piece: u32 },
    /// Piece `piece` of metadata that is `total_size` bytes long.
    Data {
        piece: u32,
        total_size: u64,
        data: Vec<u8>,
    },
    /// The sender will not send piece `piece`.
    Reject { piece: u32 },
}

const MSG_REQUEST: i64 = 0;
const MSG_DATA: i64 = 1;
const MSG_REJECT: i64 = 2;

impl MetadataMsg {
    /// The message as sent: a bencoded dictionary, then the piece for `Data`.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, piece, total_size, data) = match self {
            MetadataMsg::Request { piece } => (MSG_REQUEST, *piece, None, &[][..]),
            MetadataMsg::Data {
                piece,
                total_size,
                data,
            } => (MSG_DATA, *piece, Some(*total_size), &data[..]),
            MetadataMsg::Reject { piece } => (MSG_REJECT, *piece, None, &[][..]),
        };
        let header = Header {
            kind,
            piece,
            total_size,
        };
        // Justified: bendy fails only on unsorted or duplicate keys, which a
        // fixed three-integer dictionary cannot have.
        #[allow(clippy::expect_used)]
        let mut out = header
            .to_bencode()
            .expect("a dictionary of three integers always encodes");
        out.extend_from_slice(data);
        out
    }

    /// Parses one message; trailing bytes are the piece of a `Data` message
    /// and are refused after any other kind.
    pub fn decode(payload: &[u8]) -> Result<MetadataMsg, MalformedMetadata> {
        let mut decoder = Decoder::new(payload).with_max_depth(2);
        let dict = match decoder.next_object() {
            Ok(Some(Object::Dict(dict))) => dict,
            _ => return Err(MalformedMetadata("not a dictionary")),
        };
        let raw = dict
            .into_raw()
            .map_err(|_| MalformedMetadata("bad dictionary"))?;
        let header = Header::parse(raw)?;
        let rest = &payload[raw.len()..];
        let piece = header.piece;
        match header.kind {
            MSG_REQUEST if rest.is_empty() => Ok(MetadataMsg::Request { piece }),
            MSG_REJECT if rest.is_empty() => Ok(MetadataMsg::Reject { piece }),
            MSG_DATA => Ok(MetadataMsg::Data {
                piece,
                total_size: header
                    .total_size
                    .ok_or(MalformedMetadata("data without total_size"))?,
                data: rest.to_vec(),
            }),
            MSG_REQUEST | MSG_REJECT => Err(MalformedMetadata("trailing bytes")),
            _ => Err(MalformedMetadata("unknown msg_type")),
        }
    }
}

/// The bencoded part of a message.
struct Header {
    kind: i64,
    piece: u32,
    total_size: Option<u64>,
}

impl Header {
    fn parse(raw: &[u8]) -> Result<Header, MalformedMetadata> {
        let malformed = MalformedMetadata;
        let mut decoder = Decoder::new(raw).with_max_depth(2);
        let Ok(Some(Object::Dict(mut dict))) = decoder.next_object() else {
            return Err(malformed("not a dictionary"));
        };
        let (mut kind, mut piece, mut total_size) = (None, None, None);
        while let Some((key, value)) = dict.next_pair().map_err(|_| malformed("bad pair"))? {
            // Unknown keys are allowed (BEP 10 lets clients add their own).
            let Object::Integer(text) = value else {
                continue;
            };
            let number: i64 = text.parse().map_err(|_| malformed("bad integer"))?;
            match key {
                b"msg_type" => kind = Some(number),
                b"piece" => piece = Some(number),
                b"total_size" => total_size = Some(number),
                _ => {}
            }
        }
        let piece = piece.ok_or(malformed("no piece"))?;
        Ok(Header {
            kind: kind.ok_or(malformed("no msg_type"))?,
            piece: u32::try_from(piece).map_err(|_| malformed("piece out of range"))?,
            total_size: match total_size {
                Some(n) => Some(u64::try_from(n).map_err(|_| malformed("negative total_size"))?),
                None => None,
            },
        })
    }
}

impl ToBencode for Header {
    const MAX_DEPTH: usize = 1;

    fn encode(&self, encoder: SingleItemEncoder) -> Result<(), bendy::encoding::Error> {
        encoder.emit_dict(|mut e| {
            e.emit_pair(b"msg_type", self.kind)?;
            e.emit_pair(b"piece", self.piece)?;
            if let Some(total) = self.total_size {
                e.emit_pair(b"total_size", total)?;
            }
            Ok(())
        })
    }
}

/// Number of pieces of metadata that is `size` bytes long.
pub fn piece_count(size: u64) -> u32 {
    size.div_ceil(PIECE_SIZE as u64) as u32
}

/// The answer to a request for `piece` of our own `info` bytes.
pub fn answer(info: &[u8], piece: u32) -> MetadataMsg {
    let start = piece as usize * PIECE_SIZE;
    if start >= info.len() {
        return MetadataMsg::Reject { piece };
    }
    let end = (start + PIECE_SIZE).min(info.len());
    MetadataMsg::Data {
        piece,
        total_size: info.len() as u64,
        data: info[start..end].to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        for msg in [
            MetadataMsg::Request { piece: 3 },
            MetadataMsg::Reject { piece: 0 },
            MetadataMsg::Data {
                piece: 1,
                total_size: 20_000,
                data: vec![7; 3616],
            },
        ] {
            assert_eq!(MetadataMsg::decode(&msg.encode()), Ok(msg));
        }
    }

    #[test]
    fn wire_form_is_bep9() {
        assert_eq!(
            MetadataMsg::Request { piece: 0 }.encode(),
            b"d8:msg_typei0e5:piecei0ee"
        );
        let data = MetadataMsg::Data {
            piece: 0,
            total_size: 2,
            data: b"xy".to_vec(),
        };
        assert_eq!(
            data.encode(),
            b"d8:msg_typei1e5:piecei0e10:total_sizei2eexy"
        );
    }

    #[test]
    fn bad_messages_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"le",
            b"d8:msg_typei0ee",
            b"d5:piecei0ee",
            b"d8:msg_typei0e5:piecei-1ee",
            b"d8:msg_typei9e5:piecei0ee",
            b"d8:msg_typei0e5:piecei0eextra",
            b"d8:msg_typei1e5:piecei0ee",
            b"d8:msg_typei1e5:piecei0e10:total_sizei-5ee",
            b"d8:msg_typei0e5:piecei99999999999ee",
        ] {
            assert!(MetadataMsg::decode(bad).is_err(), "{bad:?}");
        }
        // Every prefix of a valid data message: an error or a shorter piece.
        let good = answer(&[1u8; 100], 0).encode();
        for cut in 0..good.len() {
            let _ = MetadataMsg::decode(&good[..cut]);
        }
    }
}
