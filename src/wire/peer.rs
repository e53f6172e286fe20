//! BitTorrent peer wire messages (BEP 3, and the fast extension's of BEP 6),
//! with a `tokio_util` codec.
//!
//! The handshake is a fixed 68-byte record exchanged once per connection
//! ([`crate::wire::handshake`]); everything after it is a length-prefixed
//! frame ([`PeerCodec`]). Piece payloads are `Bytes` slices of the read buffer, so a
//! block travels from the socket to the disk writer without a copy.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::geometry::bitfield_len;

/// Blocks are named and sized by the piece geometry; re-exported because
/// `request`, `cancel` and `piece` messages carry them.
pub use crate::geometry::{bitfield_has, BlockRef, BLOCK_SIZE};
/// The extension protocol's messages (BEP 10, BEP 11), re-exported beside
/// the frames that carry them.
pub use crate::wire::extension::{encode_pex, parse_pex, ExtensionHandshake, UT_PEX_ID};
/// The handshake that opens every connection, re-exported beside the
/// messages that follow it.
pub use crate::wire::handshake::{Handshake, HANDSHAKE_LEN, PROTOCOL};

/// Largest frame of any kind other than `piece` and `bitfield` (extension
/// messages such as metadata pieces are 16 KiB plus a small dictionary).
pub const MAX_OTHER_FRAME: usize = 64 * 1024;
/// Spare room the decoder keeps in its read buffer (see `decode`).
const READ_ROOM: usize = 256 * 1024;
/// Below this much spare room the decoder makes `READ_ROOM` again.
const MIN_READ_ROOM: usize = 32 * 1024;

/// Errors of the peer wire codec. Any of them closes the connection.
#[derive(Debug, thiserror::Error)]
pub enum PeerWireError {
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A frame declared a length above what its kind allows.
    #[error("frame of {len} bytes is larger than allowed ({max})")]
    Oversize { len: usize, max: usize },
    /// A frame's body does not have the size its message id requires.
    #[error("message id {id} with a body of {len} bytes is malformed")]
    BadLength { id: u8, len: usize },
}

/// One message after the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Zero-length frame.
    KeepAlive,
    /// id 0.
    Choke,
    /// id 1.
    Unchoke,
    /// id 2.
    Interested,
    /// id 3.
    NotInterested,
    /// id 4: the sender now has this piece.
    Have(u32),
    /// id 5: which pieces the sender has, high bit first.
    Bitfield(Bytes),
    /// id 6.
    Request(BlockRef),
    /// id 7: a block of data.
    Piece {
        /// Piece index.
        index: u32,
        /// Byte offset inside the piece.
        begin: u32,
        /// The block itself.
        data: Bytes,
    },
    /// id 8.
    Cancel(BlockRef),
    /// id 9: DHT port (BEP 5); we have no mainline DHT and ignore it.
    Port(u16),
    /// id 13 (BEP 6): the sender suggests fetching this piece.
    Suggest(u32),
    /// id 14 (BEP 6): the sender has every piece (instead of a bitfield).
    HaveAll,
    /// id 15 (BEP 6): the sender has no piece (instead of a bitfield).
    HaveNone,
    /// id 16 (BEP 6): the sender will not serve this request.
    Reject(BlockRef),
    /// id 17 (BEP 6): the sender serves this piece even while choking.
    AllowedFast(u32),
    /// id 20: BEP 10 extension message; `id` 0 is the extension handshake.
    Extended {
        /// Extension message id (0 = handshake; others as in our `m` dict).
        id: u8,
        /// Bencoded payload (and for some messages, trailing raw data).
        payload: Bytes,
    },
    /// A message id we do not speak; ignored by the connection.
    Unknown {
        /// The message id.
        id: u8,
    },
}

impl Message {
    /// True for the messages of the fast extension (BEP 6), which a peer
    /// may send only when both handshakes set its bit.
    pub fn is_fast_extension(&self) -> bool {
        matches!(
            self,
            Message::Suggest(_)
                | Message::HaveAll
                | Message::HaveNone
                | Message::Reject(_)
                | Message::AllowedFast(_)
        )
    }
}

/// Length-prefixed frame codec for one connection.
#[derive(Clone, Debug)]
pub struct PeerCodec {
    /// Bytes of a bitfield for this torrent (ceil(pieces / 8)); None while
    /// the piece count is not known (fetching the metadata).
    bitfield_len: Option<usize>,
}

impl PeerCodec {
    /// A codec for a torrent with `piece_count` pieces.
    pub fn new(piece_count: u32) -> PeerCodec {
        PeerCodec {
            bitfield_len: Some(bitfield_len(piece_count)),
        }
    }

    /// A codec for a torrent whose metadata (so piece count) is not known
    /// yet: a bitfield of any length up to [`MAX_OTHER_FRAME`] is accepted.
    pub fn before_metadata() -> PeerCodec {
        PeerCodec { bitfield_len: None }
    }

    /// Largest frame body (after the 4-byte length) accepted for message `id`.
    fn max_body(&self, id: u8) -> usize {
        match (id, self.bitfield_len) {
            (5, Some(len)) => 1 + len,
            (7, _) => 9 + BLOCK_SIZE as usize,
            _ => MAX_OTHER_FRAME,
        }
    }
}

/// Makes room for the rest of a `frame`-byte frame and more, and returns
/// None ("need more bytes"). Socket reads fill the spare room, and piece
/// payloads keep older buffers alive; left alone the room shrinks to a
/// few blocks, so reads are small and many frames straddle two buffers.
/// Only the start of one frame is here now, so a new buffer copies little.
fn need_more(src: &mut BytesMut, frame: usize) -> Option<Message> {
    let missing = frame.saturating_sub(src.len());
    if src.capacity() - src.len() < missing.max(MIN_READ_ROOM) {
        src.reserve(missing.max(READ_ROOM));
    }
    None
}

fn bad(id: u8, len: usize) -> PeerWireError {
    PeerWireError::BadLength { id, len }
}

fn block_ref(body: &[u8]) -> BlockRef {
    let mut b = body;
    BlockRef {
        index: b.get_u32(),
        begin: b.get_u32(),
        length: b.get_u32(),
    }
}

impl Decoder for PeerCodec {
    type Item = Message;
    type Error = PeerWireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, PeerWireError> {
        if src.len() < 4 {
            return Ok(need_more(src, 4));
        }
        let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
        if len == 0 {
            src.advance(4);
            return Ok(Some(Message::KeepAlive));
        }
        if src.len() < 5 {
            return Ok(need_more(src, 5));
        }
        let id = src[4];
        let max = self.max_body(id);
        if len > max {
            return Err(PeerWireError::Oversize { len, max });
        }
        if src.len() < 4 + len {
            return Ok(need_more(src, 4 + len));
        }
        src.advance(5);
        let body_len = len - 1;
        let fixed = |want: usize| {
            if body_len == want {
                Ok(())
            } else {
                Err(bad(id, body_len))
            }
        };
        let msg = match id {
            0..=3 => {
                fixed(0)?;
                match id {
                    0 => Message::Choke,
                    1 => Message::Unchoke,
                    2 => Message::Interested,
                    _ => Message::NotInterested,
                }
            }
            4 | 13 | 17 => {
                fixed(4)?;
                let piece = src.get_u32();
                match id {
                    4 => Message::Have(piece),
                    13 => Message::Suggest(piece),
                    _ => Message::AllowedFast(piece),
                }
            }
            14 | 15 => {
                fixed(0)?;
                if id == 14 {
                    Message::HaveAll
                } else {
                    Message::HaveNone
                }
            }
            5 => {
                if let Some(len) = self.bitfield_len {
                    fixed(len)?;
                }
                Message::Bitfield(src.split_to(body_len).freeze())
            }
            6 | 8 | 16 => {
                fixed(12)?;
                let r = block_ref(&src[..12]);
                src.advance(12);
                match id {
                    6 => Message::Request(r),
                    8 => Message::Cancel(r),
                    _ => Message::Reject(r),
                }
            }
            7 => {
                if body_len < 8 {
                    return Err(bad(id, body_len));
                }
                let index = src.get_u32();
                let begin = src.get_u32();
                Message::Piece {
                    index,
                    begin,
                    data: src.split_to(body_len - 8).freeze(),
                }
            }
            9 => {
                fixed(2)?;
                Message::Port(src.get_u16())
            }
            20 => {
                if body_len < 1 {
                    return Err(bad(id, body_len));
                }
                let ext = src.get_u8();
                Message::Extended {
                    id: ext,
                    payload: src.split_to(body_len - 1).freeze(),
                }
            }
            _ => {
                src.advance(body_len);
                Message::Unknown { id }
            }
        };
        Ok(Some(msg))
    }
}

impl Encoder<Message> for PeerCodec {
    type Error = PeerWireError;

    fn encode(&mut self, msg: Message, dst: &mut BytesMut) -> Result<(), PeerWireError> {
        encode_message(&msg, dst);
        Ok(())
    }
}

/// Bytes before the payload of a `piece` frame: length, id, index, begin.
pub const PIECE_HEADER_LEN: usize = 13;

/// The frame header of a `piece` message carrying `len` payload bytes (sent
/// apart from the payload, which need not be copied next to it).
pub fn piece_header(index: u32, begin: u32, len: usize) -> [u8; PIECE_HEADER_LEN] {
    let mut h = [0u8; PIECE_HEADER_LEN];
    h[..4].copy_from_slice(&((9 + len) as u32).to_be_bytes());
    h[4] = 7;
    h[5..9].copy_from_slice(&index.to_be_bytes());
    h[9..13].copy_from_slice(&begin.to_be_bytes());
    h
}

/// Appends the wire form of `msg` to `dst`.
pub fn encode_message(msg: &Message, dst: &mut BytesMut) {
    let header = |dst: &mut BytesMut, len: usize, id: u8| {
        dst.reserve(4 + len);
        dst.put_u32(len as u32);
        dst.put_u8(id);
    };
    match msg {
        Message::KeepAlive => dst.put_u32(0),
        Message::Choke => header(dst, 1, 0),
        Message::Unchoke => header(dst, 1, 1),
        Message::Interested => header(dst, 1, 2),
        Message::NotInterested => header(dst, 1, 3),
        Message::Have(i) | Message::Suggest(i) | Message::AllowedFast(i) => {
            let id = match msg {
                Message::Have(_) => 4,
                Message::Suggest(_) => 13,
                _ => 17,
            };
            header(dst, 5, id);
            dst.put_u32(*i);
        }
        Message::HaveAll => header(dst, 1, 14),
        Message::HaveNone => header(dst, 1, 15),
        Message::Bitfield(bits) => {
            header(dst, 1 + bits.len(), 5);
            dst.put_slice(bits);
        }
        Message::Request(r) | Message::Cancel(r) | Message::Reject(r) => {
            let id = match msg {
                Message::Request(_) => 6,
                Message::Cancel(_) => 8,
                _ => 16,
            };
            header(dst, 13, id);
            dst.put_u32(r.index);
            dst.put_u32(r.begin);
            dst.put_u32(r.length);
        }
        Message::Piece { index, begin, data } => {
            dst.reserve(PIECE_HEADER_LEN + data.len());
            dst.put_slice(&piece_header(*index, *begin, data.len()));
            dst.put_slice(data);
        }
        Message::Port(p) => {
            header(dst, 3, 9);
            dst.put_u16(*p);
        }
        Message::Extended { id, payload } => {
            header(dst, 2 + payload.len(), 20);
            dst.put_u8(*id);
            dst.put_slice(payload);
        }
        Message::Unknown { id } => header(dst, 1, *id),
    }
}
