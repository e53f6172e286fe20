//! songswarm: share and play songs peer to peer, BitTorrent style, with a
//! Chord ring instead of a central tracker.
//!
//! Every process is one peer: one TCP listener that speaks both the BitTorrent
//! peer wire protocol and Chord RPC (told apart by their first bytes), one
//! Chord node, and one coordinator task per torrent. Peer connections publish
//! `PeerEvent`s to their torrent's coordinator, which alone owns the download
//! state and answers with `PeerCommand`s.
//!
//! # Layout
//!
//! - [`id`]: 160-bit ids and ring interval arithmetic.
//! - [`config`]: every tunable with its default.
//! - [`manifest`]: BitTorrent v1 metainfo parse/build, info-hash, piece geometry.
//! - [`storage`]: positional reads/writes of pieces, SHA-1 verification.
//! - [`piece_hash`]: SHA-1 of several pieces at once.
//! - [`wire`]: codecs: [`wire::peer`] (BEP 3, BEP 10 extension handshake,
//!   BEP 11 peer exchange) and [`wire::chord`] (Chord RPC frames and the
//!   node-to-node vocabulary the ring speaks).
//! - [`chord`]: the ring: [`chord::node`], a pure state machine that
//!   dispatches to parts owning their state (neighbours, lookups and
//!   fingers, a store of typed records [`chord::records`] with swarm lists
//!   as the first kind, quorum operations over [`chord::quorum`],
//!   replication); async shell [`chord::driver`] and its connections, and a
//!   [`chord::client`] for the `dht` commands.
//! - [`swarm`]: downloading and serving: piece bookkeeping [`swarm::pieces`],
//!   pure picker and choker [`swarm::scheduler`], one task per torrent
//!   [`swarm::coordinator`], one task per peer [`swarm::connection`], rate
//!   caps [`swarm::rate`], and metadata exchange (BEP 9): [`swarm::metadata`]
//!   (pure) and [`swarm::magnet`] (fetching by info-hash).
//! - [`discovery`]: finding a ring on the local network by UDP multicast.
//! - [`app`]: wiring of one process: listener, coordinators, shutdown, the
//!   `seed` and `leech` commands; [`app::ring`] joins the ring and keeps the
//!   torrents announced in it; [`app::demo`] is `songswarm demo`.

pub mod app;
pub mod chord;
pub mod config;
pub mod discovery;
pub mod id;
pub mod manifest;
pub mod piece_hash;
pub mod storage;
pub mod swarm;
pub mod wire;

// Lets tests inside the crate name it as integration tests do: the Chord
// simulation in tests/support also runs a test-only record kind (chord::records).
#[cfg(test)]
extern crate self as songswarm;
