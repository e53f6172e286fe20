//! The node-to-node Chord protocol, as plain data.
//!
//! Every message is one-way and addressed by the receiver's advertised
//! address; a request carries a [`ReqId`] that its answer echoes. Keeping
//! the protocol datagram-shaped lets the same state machine run over TCP (in
//! [`crate::wire::chord`]) and over the in-memory network of the simulation
//! tests. The ring speaks this vocabulary; this module knows nothing of
//! the ring.

use std::net::SocketAddr;

use serde::Serialize;

use crate::id::Id;

/// Request id, unique per sending node; answers echo it.
pub type ReqId = u64;

/// What a peer does with a torrent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Still downloading.
    Leecher,
    /// Has every piece.
    Seeder,
}

/// One swarm-list entry as it travels: time left instead of an instant, so
/// replicas never compare clocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireEntry {
    /// The announced peer.
    pub peer: SocketAddr,
    /// Milliseconds until expiry on the sender's clock.
    pub ttl_ms: u64,
    /// Seeder or leecher.
    pub role: Role,
    /// Tombstone flag.
    pub removed: bool,
}

/// One song as the catalog lists it: a file of a torrent and its tags.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Song {
    /// The torrent's info-hash.
    pub info_hash: Id,
    /// The file's index in the torrent (0 for a single song).
    pub file: u32,
    /// Title (a file without one: its file name).
    pub title: String,
    /// Artist, or empty.
    pub artist: String,
    /// Album, or empty.
    pub album: String,
    /// Play time in milliseconds (0: unknown).
    pub duration_ms: u64,
}

/// One search result: a song and its swarm as the ring lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hit {
    /// The song.
    #[serde(flatten)]
    pub song: Song,
    /// Live seeders of its torrent.
    pub seeders: u32,
    /// Live peers of its torrent, seeders included.
    pub peers: u32,
}

/// The tag that names a record kind on the wire.
pub type Kind = u8;

/// Swarm lists, the first record kind. Their frames predate record kinds and
/// carry no tag; every other kind's frames do.
pub const SWARM_LIST: Kind = 0;

/// A record as it travels, whatever its kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireRecord {
    /// A swarm list (kind [`SWARM_LIST`]): its entries, in the encoding that
    /// predates record kinds.
    Swarm(Vec<WireEntry>),
    /// A record of any other kind: its tag (never [`SWARM_LIST`]) and its
    /// body in that kind's own encoding, opaque to the codec.
    Tagged { kind: Kind, body: Vec<u8> },
}

impl WireRecord {
    /// The record's kind.
    pub fn kind(&self) -> Kind {
        match self {
            WireRecord::Swarm(_) => SWARM_LIST,
            WireRecord::Tagged { kind, .. } => *kind,
        }
    }
}

/// A record's version, as a receiver compares it to its own before the
/// record is pushed (see `chord::records::Version`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Version {
    /// Sequence number (signed items); 0 for kinds without one.
    pub seq: u64,
    /// FNV-1a hash of the items, expiries left out.
    pub hash: u64,
    /// Milliseconds left, summed over the items.
    pub life_ms: u64,
    /// Number of items.
    pub items: u64,
}

/// One Chord protocol message between two ring nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Liveness check.
    Ping { req: ReqId },
    /// Answer to [`Message::Ping`].
    Pong { req: ReqId },
    /// Ask for the receiver's predecessor and successor list (stabilize).
    GetState { req: ReqId },
    /// Answer to [`Message::GetState`].
    State {
        req: ReqId,
        pred: Option<SocketAddr>,
        succs: Vec<SocketAddr>,
    },
    /// "I believe I am your predecessor" (one-way; the receiver rectifies).
    Notify,
    /// One hop of an iterative lookup for `key`.
    FindSuccessor { req: ReqId, key: Id },
    /// The receiver knows the owner: `succs[0]` owns the key, the rest follow it.
    Found { req: ReqId, succs: Vec<SocketAddr> },
    /// The receiver does not know the owner; these nodes precede the key more closely.
    Closer { req: ReqId, nodes: Vec<SocketAddr> },
    /// Merge this record into the one of its kind at `key` (write, repair,
    /// hand-off).
    Store {
        req: ReqId,
        key: Id,
        value: WireRecord,
    },
    /// Answer to [`Message::Store`]; `ok` is false when limits refused it.
    Stored { req: ReqId, ok: bool },
    /// Read the record of kind `kind` at `key`.
    Fetch { req: ReqId, key: Id, kind: Kind },
    /// Answer to [`Message::Fetch`] (an empty record if none is held);
    /// `ready` is false while the replica is still receiving its key range
    /// after a join, or does not know the kind, so its answer must not count.
    Fetched {
        req: ReqId,
        ready: bool,
        value: WireRecord,
    },
    /// Anti-entropy: the versions of the records the sender would push;
    /// the receiver answers which it wants.
    Digest {
        req: ReqId,
        records: Vec<(Id, Kind, Version)>,
    },
    /// Answer to [`Message::Digest`]: the records wanted, by key and kind.
    Wanted {
        req: ReqId,
        records: Vec<(Id, Kind)>,
    },
    /// A joiner asks its successor for every key outside `(upto, successor]`,
    /// in key order after `after` (paging keeps frames small).
    Handoff {
        req: ReqId,
        upto: Id,
        after: Option<Id>,
    },
    /// One page of a hand-off: every record held at each key of the page;
    /// `next` is the cursor for the next page, if any.
    HandoffData {
        req: ReqId,
        keys: Vec<(Id, WireRecord)>,
        next: Option<Id>,
    },
}

impl Message {
    /// The request id an answer echoes, if this is an answer.
    pub fn answer_to(&self) -> Option<ReqId> {
        match self {
            Message::Pong { req }
            | Message::State { req, .. }
            | Message::Found { req, .. }
            | Message::Closer { req, .. }
            | Message::Stored { req, .. }
            | Message::Fetched { req, .. }
            | Message::HandoffData { req, .. }
            | Message::Wanted { req, .. } => Some(*req),
            _ => None,
        }
    }
}
