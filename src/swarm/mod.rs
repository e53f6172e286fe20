//! Downloading and serving torrents (DESIGN.md §3).
//!
//! `pieces` and `scheduler` are pure. `coordinator` is the one task per
//! torrent that owns the download state; `connection` is the one task per
//! peer. They talk only through the messages below: connections (and the
//! listener, the ring and hashing jobs) send [`TorrentEvent`]s to the
//! torrent's one inbox, the coordinator answers with [`PeerCommand`]s on each
//! peer's own channel.

pub mod connection;
pub mod coordinator;
pub mod magnet;
pub mod metadata;
pub mod pieces;
pub mod rate;
pub mod scheduler;
pub mod verified;

use std::net::SocketAddr;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::storage::StorageError;
use crate::wire::peer::{BlockRef, ExtensionHandshake, Handshake, Message};
use pieces::PeerKey;

/// Identifies one reader of a torrent's bytes (one HTTP response body).
pub type StreamId = u64;

/// The inbox of a torrent's coordinator: what its peer connections report,
/// and what the rest of the process hands it (incoming connections from the
/// listener, peer addresses, hashing results).
#[derive(Debug)]
pub enum TorrentEvent {
    /// A connection finished its handshake; `commands` reaches its writer.
    Connected {
        /// The connection's key (chosen by the coordinator when it spawned it).
        key: PeerKey,
        /// Remote socket address.
        addr: SocketAddr,
        /// The peer's id from its handshake.
        peer_id: [u8; 20],
        /// True when we dialled it.
        outgoing: bool,
        /// Where to send this peer's commands.
        commands: mpsc::Sender<PeerCommand>,
    },
    /// The peer's BEP 10 extension handshake.
    Extension {
        /// Which connection.
        key: PeerKey,
        /// What it said (boxed, like the other rare large events: every
        /// torrent's inbox holds a block of events from the start).
        handshake: Box<ExtensionHandshake>,
    },
    /// A protocol message that changes download state (not requests: the
    /// connection serves those itself; have-all and have-none arrive as
    /// the bitfields they stand for).
    Message {
        /// Which connection.
        key: PeerKey,
        /// The message.
        message: Message,
    },
    /// The peer asked for a block of `piece`, for the first time on this
    /// connection (once per piece: a super-seed offers a lone leecher more
    /// as it asks, before the data goes).
    Requested {
        /// Which connection.
        key: PeerKey,
        /// The piece.
        piece: u32,
    },
    /// The connection sent `bytes` of piece data to the peer.
    Uploaded {
        /// Which connection.
        key: PeerKey,
        /// Piece payload bytes.
        bytes: u64,
    },
    /// Peers learnt by peer exchange (BEP 11).
    Pex {
        /// Which connection told us.
        key: PeerKey,
        /// Their listen addresses.
        added: Vec<SocketAddr>,
    },
    /// The connection ended (or never got past the handshake).
    Closed {
        /// Which connection.
        key: PeerKey,
        /// Why, for the log.
        reason: String,
        /// The peer broke the protocol (its address is dialled again only
        /// after a long back-off).
        violation: bool,
    },
    /// An incoming connection for this torrent whose handshake was read.
    Incoming {
        /// The socket, right after the peer's 68-byte handshake.
        stream: TcpStream,
        /// The peer's handshake.
        handshake: Box<Handshake>,
    },
    /// More peer addresses to dial while we lack pieces (Chord lookups,
    /// peer exchange).
    AddPeers(Vec<SocketAddr>),
    /// Peers the user named (`--peer`): dialled whatever our data, so that a
    /// seed reaches a leecher that only accepts connections; not again once
    /// both sides are seeds.
    NamedPeers(Vec<SocketAddr>),
    /// A hashing job finished: per piece (index), whether it matched and
    /// was written, or the write error.
    Verified(Vec<(u32, Result<bool, StorageError>)>),
    /// Verified data could not be read back to upload it: the torrent stops.
    StorageFailed(StorageError),
    /// A stream reads from `offset` (a byte offset in the torrent's byte
    /// stream) onward at `byte_rate` bytes per second (the song's length ÷
    /// duration), up to `end` (exclusive: the end of the song's file, or of
    /// the Range). Sent when a stream opens, on every seek, and as it
    /// advances (at least once per piece).
    StreamAt {
        /// Which stream.
        id: StreamId,
        /// Its read position in the torrent's byte stream.
        offset: u64,
        /// Where it stops reading (exclusive).
        end: u64,
        /// How fast it reads, in bytes per second.
        byte_rate: u64,
    },
    /// The stream ended (client gone or body finished): drop its deadlines.
    StreamClosed {
        /// Which stream.
        id: StreamId,
    },
}

/// Commands from the coordinator to one connection's writer.
#[derive(Debug)]
pub enum PeerCommand {
    /// First command: send our bitfield (None when we have nothing).
    Start {
        /// Our have-bitfield.
        bitfield: Option<Bytes>,
        /// We play the torrent while it downloads (said in our extension
        /// handshake, so that a super-seed shows us every piece).
        streaming: bool,
    },
    /// Send these requests.
    Request(Vec<BlockRef>),
    /// Send a message as is (interested, not interested, cancel).
    Send(Message),
    /// Choke (true) or unchoke the peer; a choke drops its queued requests.
    Choke(bool),
    /// We have new pieces (or, super-seeding, offer them): announce them and
    /// start serving them. One command for all the offers of one pass, so a
    /// large offer window cannot overflow the peer's command queue.
    Have(Vec<u32>),
    /// Tell the peer about other peers (BEP 11 `added`).
    Pex {
        /// The id the peer gave `ut_pex` in its extension handshake.
        ext_id: u8,
        /// Listen addresses of other peers of the torrent.
        added: Vec<SocketAddr>,
    },
}
