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
//! - [`wire`]: codecs: [`wire::peer`] (BEP 3 + BEP 10) and [`wire::chord`] (Chord RPC).
//! - [`chord`]: the ring: pure state machine [`chord::node`], swarm-list CRDT
//!   [`chord::records`], quorum bookkeeping [`chord::quorum`], async shell
//!   [`chord::driver`].
//! - [`swarm`]: downloading and serving: piece bookkeeping [`swarm::pieces`],
//!   pure picker and choker [`swarm::scheduler`], one task per torrent
//!   [`swarm::coordinator`], one task per peer [`swarm::connection`].
//! - [`discovery`]: finding a ring on the local network by UDP multicast.
//! - [`app`]: wiring of one process: listener, Chord driver, coordinators, shutdown.

pub mod app;
pub mod chord;
pub mod config;
pub mod discovery;
pub mod id;
pub mod manifest;
pub mod storage;
pub mod swarm;
pub mod wire;
