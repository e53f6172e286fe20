//! Fetching a torrent's `info` dictionary from peers (BEP 9, `ut_metadata`).
//!
//! With only an info-hash, a leecher asks peers for the metadata in 16 KiB
//! pieces over the extension protocol (BEP 10), assembles them, and accepts
//! the result only if its SHA-1 is the info-hash: a peer cannot make us
//! download the wrong thing, only waste a little of our time.
//!
//! This module is pure: message encoding and the assembler. The connection
//! task moves the bytes.

use bendy::decoding::{Decoder, Object};
use bendy::encoding::{SingleItemEncoder, ToBencode};

use crate::id::Id;
use crate::manifest::MAX_METAINFO_BYTES;

/// Extension name advertised in the BEP 10 handshake's `m` dictionary.
pub const EXTENSION_NAME: &str = "ut_metadata";
/// The id we ask peers to send `ut_metadata` messages under (our `m` dict).
pub const OUR_ID: u8 = 3;
/// Size of one metadata piece; only the last may be shorter.
pub const PIECE_SIZE: usize = 16 * 1024;

/// Why a metadata message or exchange was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetadataError {
    #[error("malformed ut_metadata message: {0}")]
    Malformed(&'static str),
    #[error("metadata size {0} is zero or above the {MAX_METAINFO_BYTES}-byte limit")]
    BadSize(u64),
    #[error("metadata piece {piece} has {got} bytes, expected {expected}")]
    BadPieceLength {
        piece: u32,
        got: usize,
        expected: usize,
    },
    #[error("metadata piece {0} is out of range")]
    BadPiece(u32),
    #[error("assembled metadata does not hash to the info-hash")]
    HashMismatch,
}

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
        let mut out = header
            .to_bencode()
            .expect("a dictionary of three integers always encodes");
        out.extend_from_slice(data);
        out
    }

    /// Parses one message; trailing bytes are the piece of a `Data` message
    /// and are refused after any other kind.
    pub fn decode(payload: &[u8]) -> Result<MetadataMsg, MetadataError> {
        let mut decoder = Decoder::new(payload).with_max_depth(2);
        let dict = match decoder.next_object() {
            Ok(Some(Object::Dict(dict))) => dict,
            _ => return Err(MetadataError::Malformed("not a dictionary")),
        };
        let raw = dict
            .into_raw()
            .map_err(|_| MetadataError::Malformed("bad dictionary"))?;
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
                    .ok_or(MetadataError::Malformed("data without total_size"))?,
                data: rest.to_vec(),
            }),
            MSG_REQUEST | MSG_REJECT => Err(MetadataError::Malformed("trailing bytes")),
            _ => Err(MetadataError::Malformed("unknown msg_type")),
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
    fn parse(raw: &[u8]) -> Result<Header, MetadataError> {
        let malformed = MetadataError::Malformed;
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

/// Collects metadata pieces for one info-hash until they hash right.
///
/// Invariant: `received[i]` is true exactly when bytes of piece `i` are in
/// `buffer`. Any number of peers may feed it; pieces are requested in order
/// of `next_wanted`.
#[derive(Debug)]
pub struct Assembler {
    /// What the assembled bytes must hash to.
    info_hash: Id,
    /// The metadata being assembled, `size` bytes.
    buffer: Vec<u8>,
    /// Which pieces are in `buffer`.
    received: Vec<bool>,
}

impl Assembler {
    /// Starts assembling metadata of `size` bytes, as a peer announced in its
    /// extension handshake (`metadata_size`).
    pub fn new(info_hash: Id, size: u64) -> Result<Assembler, MetadataError> {
        if size == 0 || size > MAX_METAINFO_BYTES {
            return Err(MetadataError::BadSize(size));
        }
        Ok(Assembler {
            info_hash,
            buffer: vec![0; size as usize],
            received: vec![false; piece_count(size) as usize],
        })
    }

    /// Total size being assembled.
    pub fn size(&self) -> u64 {
        self.buffer.len() as u64
    }

    /// The first piece not received yet, at or after `from` (wrapping), so
    /// that several peers can be asked for different pieces.
    pub fn next_wanted(&self, from: u32) -> Option<u32> {
        let n = self.received.len();
        (0..n)
            .map(|i| (from as usize + i) % n)
            .find(|&i| !self.received[i])
            .map(|i| i as u32)
    }

    /// Takes piece `piece`. Returns the whole metadata once every piece is
    /// in and the SHA-1 matches; on a mismatch everything is discarded (we
    /// cannot tell which peer lied) and the error says so.
    pub fn handle_data(
        &mut self,
        piece: u32,
        total_size: u64,
        data: &[u8],
    ) -> Result<Option<Vec<u8>>, MetadataError> {
        if total_size != self.size() {
            return Err(MetadataError::BadSize(total_size));
        }
        let index = piece as usize;
        if index >= self.received.len() {
            return Err(MetadataError::BadPiece(piece));
        }
        let start = index * PIECE_SIZE;
        let expected = (self.buffer.len() - start).min(PIECE_SIZE);
        if data.len() != expected {
            return Err(MetadataError::BadPieceLength {
                piece,
                got: data.len(),
                expected,
            });
        }
        self.buffer[start..start + expected].copy_from_slice(data);
        self.received[index] = true;
        if self.received.iter().any(|r| !r) {
            return Ok(None);
        }
        if Id::hash(&self.buffer) == self.info_hash {
            return Ok(Some(std::mem::take(&mut self.buffer)));
        }
        self.received.iter_mut().for_each(|r| *r = false);
        Err(MetadataError::HashMismatch)
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

    fn assemble_from(info: &[u8], hash: Id) -> Result<Option<Vec<u8>>, MetadataError> {
        let mut asm = Assembler::new(hash, info.len() as u64)?;
        let mut last = Ok(None);
        // Fetch in an odd order, as several peers would.
        let n = piece_count(info.len() as u64);
        for piece in (0..n).rev() {
            let MetadataMsg::Data {
                total_size, data, ..
            } = answer(info, piece)
            else {
                panic!("piece {piece} in range must be answered");
            };
            last = asm.handle_data(piece, total_size, &data);
        }
        last
    }

    #[test]
    fn assembles_and_verifies() {
        let info: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let got = assemble_from(&info, Id::hash(&info)).unwrap();
        assert_eq!(got, Some(info));
    }

    #[test]
    fn lying_metadata_is_refused_and_can_be_retried() {
        let info = vec![5u8; 20_000];
        let wrong = Id::hash(b"something else");
        assert_eq!(
            assemble_from(&info, wrong),
            Err(MetadataError::HashMismatch)
        );
        let mut asm = Assembler::new(wrong, info.len() as u64).unwrap();
        asm.handle_data(0, 20_000, &info[..PIECE_SIZE]).unwrap();
        assert_eq!(asm.next_wanted(0), Some(1));
        assert_eq!(
            asm.handle_data(1, 20_000, &info[PIECE_SIZE..]),
            Err(MetadataError::HashMismatch)
        );
        // Everything is wanted again after a mismatch.
        assert_eq!(asm.next_wanted(1), Some(1));
        assert_eq!(asm.next_wanted(0), Some(0));
    }

    #[test]
    fn sizes_and_lengths_are_checked() {
        let hash = Id::hash(b"x");
        assert!(Assembler::new(hash, 0).is_err());
        assert!(Assembler::new(hash, MAX_METAINFO_BYTES + 1).is_err());
        let mut asm = Assembler::new(hash, 20_000).unwrap();
        assert!(asm.handle_data(0, 30_000, &[0; PIECE_SIZE]).is_err());
        assert!(asm.handle_data(2, 20_000, &[0; 10]).is_err());
        assert!(asm.handle_data(1, 20_000, &[0; 10]).is_err());
        assert_eq!(asm.next_wanted(0), Some(0));
        assert_eq!(answer(&[0; 10], 1), MetadataMsg::Reject { piece: 1 });
    }
}
