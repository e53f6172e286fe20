//! Chord RPC on the wire: a preamble, then length-prefixed bencoded frames.
//!
//! Each direction of a Chord connection starts with [`PREAMBLE`], whose first
//! byte is not 0x13, so one listener can tell Chord from a BitTorrent
//! handshake by peeking at one byte. Then come frames: a 4-byte big-endian
//! body length and a bencoded dictionary whose `t` key names the frame type.
//! The first frame from the connecting side is a [`Frame::Hello`].
//!
//! Decoding is strict: an unknown type, a missing field, a bad address, a
//! claimed id that is not SHA-1 of the claimed address, or a body longer than
//! the limit is an error, and the caller closes that one connection.
//!
//! What a node understands travels with what it sends: a hello and every
//! node frame carry [`FEATURES`] under `f`, bits naming the frame kinds
//! added since the first build. A build from before any feature bits sends
//! none (and ignores the key, as it ignores any key it does not know), so
//! a node sends a newer kind only to a peer whose frames name it; an older
//! build would close the connection on it.
//!
//! Records travel as a [`WireRecord`]. A swarm list keeps the shape its
//! frames had before there were record kinds (entries under `e`; a hand-off
//! item `[key, entries]`); any other kind adds its tag under `y` and its
//! body, opaque here, under `v` (a hand-off item `[key, kind, body]`).
//!
//! - [`message`]: the node-to-node vocabulary (plain data, used by `chord`).
//! - `encode` and `decode`: frames to bencoded bodies and back.
//!
//! This module imports nothing from `chord`: the ring speaks the vocabulary
//! defined here.

use std::net::SocketAddr;

use bytes::{Buf, BufMut, BytesMut};
use serde::Serialize;
use tokio_util::codec::{Decoder, Encoder};

use crate::id::Id;

mod decode;
mod encode;
pub mod message;

use decode::decode_frame;
use encode::encode_frame;
pub use message::{Hit, Kind, Message, ReqId, Role, Song, WireEntry, WireRecord, SWARM_LIST};

/// First bytes of every Chord connection, in each direction.
pub const PREAMBLE: &[u8; 8] = b"SSCHORD1";

/// Feature bit: the node answers a `digest` frame with `wanted`.
pub const FEATURE_DIGEST: u64 = 1;

/// The feature bits this build sends under `f` in its node frames.
pub const FEATURES: u64 = FEATURE_DIGEST;

/// Why a Chord byte stream was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ChordCodecError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The connection did not start with [`PREAMBLE`].
    #[error("not a Chord connection (bad preamble)")]
    BadPreamble,
    /// A frame longer than the limit was announced.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    Oversize { len: usize, max: usize },
    /// The frame body is not a valid Chord frame.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// A request from a client (the `dht` commands) to any node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientRequest {
    Announce {
        key: Id,
        peer: SocketAddr,
        role: Role,
    },
    Remove {
        key: Id,
        peer: SocketAddr,
    },
    Peers {
        key: Id,
    },
    Lookup {
        key: Id,
    },
    Ring,
    /// Search the catalog for songs matching every word of `query`.
    Search {
        query: String,
        limit: u32,
    },
    /// One page of the songs whose metadata the node owns.
    Library {
        after: Option<Id>,
        limit: u32,
    },
    /// Store an immutable value under its SHA-1.
    PutValue {
        value: Vec<u8>,
    },
    /// The immutable value under `key`.
    GetValue {
        key: Id,
    },
    /// Merge a record (any kind but swarm lists) into its key's replicas;
    /// answered [`ClientReply::Ok`] once W stored it.
    Put {
        key: Id,
        value: WireRecord,
    },
    /// Read the record of `kind` at `key` from R replicas, repairing those
    /// behind; answered [`ClientReply::Record`].
    Get {
        key: Id,
        kind: Kind,
    },
}

/// A node's answer to a [`ClientRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientReply {
    Ok,
    Peers(Vec<(SocketAddr, Role)>),
    Lookup(LookupInfo),
    Ring(RingInfo),
    /// The merged record a [`ClientRequest::Get`] read.
    Record(WireRecord),
    Error(String),
    /// Search results, best first.
    Hits(Vec<Hit>),
    /// A page of songs and the cursor of the next one.
    Songs {
        songs: Vec<Song>,
        next: Option<Id>,
    },
    /// An immutable value, if the ring holds one.
    Value(Option<Vec<u8>>),
}

/// Where a key lives, as found by a lookup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LookupInfo {
    /// The key looked up.
    pub key: Id,
    /// successor(key).
    pub owner: SocketAddr,
    /// The owner and the next N − 1 successors.
    pub replicas: Vec<SocketAddr>,
    /// Nodes asked.
    pub hops: u32,
}

/// One node's view of the ring.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RingInfo {
    /// The node's id.
    pub id: Id,
    /// The node's advertised address.
    pub addr: SocketAddr,
    /// Its predecessor, if known.
    pub predecessor: Option<SocketAddr>,
    /// Its successor list, closest first.
    pub successors: Vec<SocketAddr>,
    /// Distinct nodes in its finger table.
    pub fingers: usize,
    /// Keys it stores.
    pub keys: usize,
    /// True once it has joined a ring.
    pub joined: bool,
}

/// Everything that travels on a Chord connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// First frame from the connecting side: a node (with its advertised
    /// address, whose SHA-1 must be `id`) or a client (no address).
    Hello { id: Id, addr: Option<SocketAddr> },
    /// Node-to-node protocol.
    Node(Message),
    /// Client request, answered on the same connection.
    Request { req: ReqId, body: ClientRequest },
    /// Answer to a client request.
    Reply { req: ReqId, body: ClientReply },
}

/// Codec for one Chord connection (both directions).
#[derive(Debug)]
pub struct ChordCodec {
    /// Largest body accepted.
    max_frame: usize,
    /// Set once the peer's preamble was read.
    preamble_read: bool,
    /// Set once ours was written.
    preamble_written: bool,
    /// The feature bits the last node frame decoded carried (0: none).
    peer_features: u64,
}

impl ChordCodec {
    /// A codec that refuses bodies above `max_frame` bytes.
    pub fn new(max_frame: usize) -> ChordCodec {
        ChordCodec {
            max_frame,
            preamble_read: false,
            preamble_written: false,
            peer_features: 0,
        }
    }

    /// The feature bits (see [`FEATURES`]) of the last hello or node frame
    /// decoded: 0 if it carried none, as a build from before them sends.
    pub fn peer_features(&self) -> u64 {
        self.peer_features
    }
}

impl Decoder for ChordCodec {
    type Item = Frame;
    type Error = ChordCodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ChordCodecError> {
        if !self.preamble_read {
            let n = src.len().min(PREAMBLE.len());
            if src[..n] != PREAMBLE[..n] {
                return Err(ChordCodecError::BadPreamble);
            }
            if n < PREAMBLE.len() {
                return Ok(None);
            }
            src.advance(PREAMBLE.len());
            self.preamble_read = true;
        }
        if src.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
        if len > self.max_frame {
            return Err(ChordCodecError::Oversize {
                len,
                max: self.max_frame,
            });
        }
        if src.len() < 4 + len {
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        src.advance(4);
        let body = src.split_to(len);
        let (frame, features) = decode_frame(&body)?;
        if matches!(frame, Frame::Hello { .. } | Frame::Node(_)) {
            self.peer_features = features;
        }
        Ok(Some(frame))
    }
}

impl Encoder<Frame> for ChordCodec {
    type Error = ChordCodecError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), ChordCodecError> {
        let body = encode_frame(&frame)?;
        if body.len() > self.max_frame {
            return Err(ChordCodecError::Oversize {
                len: body.len(),
                max: self.max_frame,
            });
        }
        if !self.preamble_written {
            dst.extend_from_slice(PREAMBLE);
            self.preamble_written = true;
        }
        dst.put_u32(body.len() as u32);
        dst.extend_from_slice(&body);
        Ok(())
    }
}
