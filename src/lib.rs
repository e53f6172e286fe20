//! songswarm: share and play songs peer to peer, BitTorrent style, with a
//! Chord ring instead of a central tracker.
//!
//! Every process is one peer: one TCP listener that speaks both the BitTorrent
//! peer wire protocol and Chord RPC (told apart by their first bytes), one
//! Chord node, and one coordinator task per torrent. Peer connections send
//! `TorrentEvent`s to their torrent's coordinator (its inbox), which alone
//! owns the download state and answers with `PeerCommand`s.
//!
//! # Layout
//!
//! - [`id`]: 160-bit ids and ring interval arithmetic.
//! - [`config`]: every tunable with its default.
//! - [`geometry`]: the ground floor of pieces: piece and block math,
//!   have-bitfields, where files lie in the torrent's byte stream.
//! - [`manifest`]: BitTorrent v1 metainfo parse/build, info-hash.
//! - [`storage`]: positional reads/writes of pieces, SHA-1 verification;
//!   files opened beneath the data root through no symbolic link, BEP 47 pad
//!   files read as zeros and never stored.
//! - [`piece_hash`]: SHA-1 of several pieces at once.
//! - [`wire`]: every wire format: [`wire::handshake`] (the 68-byte peer
//!   handshake, and the one helper that exchanges it), [`wire::peer`] (BEP 3
//!   frames, and BEP 6's fast extension), [`wire::extension`] (BEP 10
//!   extension handshake, BEP 11 peer exchange), [`wire::metadata`] (BEP 9
//!   `ut_metadata` messages) and
//!   [`wire::chord`] (Chord RPC frames and the node-to-node vocabulary the
//!   ring speaks).
//! - [`chord`]: the ring: [`chord::node`], a pure state machine that
//!   dispatches to parts owning their state (neighbours, lookups and
//!   fingers, a store of typed records [`chord::records`] with swarm lists
//!   as the first kind, quorum operations over [`chord::quorum`],
//!   replication, [`chord::probes`] for relayed swarm entries checked with
//!   their source); the async shell: [`chord::driver`] (the task that owns
//!   the node, on tokio's clock), [`chord::handle`] (what the rest of the
//!   process holds), [`chord::connection`] (one task per Chord
//!   connection) and [`chord::prober`] (one task per probe: a BitTorrent
//!   handshake); [`chord::catalog`], which publishes songs (metadata and
//!   keyword postings) and searches them through a running node; and a
//!   [`chord::client`] for the `dht`, `search` and `library` commands.
//! - [`swarm`]: downloading and serving: piece bookkeeping [`swarm::pieces`],
//!   the pure [`swarm::scheduler`] (a dispatcher over the leech picker, the
//!   streams' deadlines, the choker and the super-seed policy, each owning
//!   its state), one task per torrent [`swarm::coordinator`] (its handle
//!   publishes the pieces verified so far, [`swarm::verified`], for streams
//!   to wait on), one task per peer [`swarm::connection`], rate caps
//!   [`swarm::rate`], and metadata exchange (BEP 9): [`swarm::metadata`] (the
//!   pure assembler) and [`swarm::magnet`] (fetching by info-hash).
//! - [`words`]: search words (case-folded, accents stripped, stop words
//!   dropped) and the ring keys of their posting lists.
//! - [`identity`]: the user's ed25519 key pair, kept in the config
//!   directory (mode 0600).
//! - [`playlist`]: playlists as chains of signed items in the ring,
//!   [`playlist::ring`], reading and writing signed items through a node,
//!   and [`playlist::own`], editing the user's own (the CLI and the HTTP
//!   API both edit through it).
//! - [`discovery`]: finding a ring on the local network by UDP multicast.
//! - [`http`]: the HTTP room (axum): song URLs with the Range semantics
//!   players send, bodies read from verified pieces only
//!   ([`http::range`] decides status and bytes as one pure function),
//!   the JSON API (with the ring's library: [`http::search`]; playlists:
//!   [`http::playlists`]; songs fetched on demand and the track ahead:
//!   [`http::prefetch`]; changes only from the page: [`http::guard`]),
//!   `/metrics`, and the web player's page, embedded.
//! - [`app`]: one process ([`app::App`]): [`app::listener`] is the single
//!   accept loop and first-byte router (peer wire to the torrent's
//!   coordinator, anything else to the Chord node), [`app::shutdown`] the
//!   one wait for SIGINT/SIGTERM and the token and tracker of every task,
//!   [`app::ring`] joins the ring and keeps the torrents announced in it,
//!   [`app::on_demand`] starts and stops torrents for the HTTP room,
//!   [`app::progress`] draws progress bars, [`app::demo`] runs the whole
//!   system in one process, [`app::alloc`] sets the heap up.
//! - [`cmd`]: the commands of the binary, one file each ([`cmd::create`],
//!   [`cmd::seed`], [`cmd::leech`], [`cmd::play`], [`cmd::node`],
//!   [`cmd::dht`], [`cmd::search`], [`cmd::library`], [`cmd::demo`],
//!   [`cmd::playlist`] with `id`, [`cmd::dht_mutable`], and
//!   [`cmd::play_list`], which plays a playlist with the next track
//!   prefetched), and [`cmd::output`], which prints every result as
//!   text or as `--json`. `main.rs` is clap and one call to [`cmd::main`].

// A panic in a peer's or node's task would end a connection for a reason
// nobody reads; outside tests every unwrap/expect states why it cannot fail.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod app;
pub mod chord;
pub mod cmd;
pub mod config;
pub mod discovery;
pub mod geometry;
pub mod http;
pub mod id;
pub mod identity;
pub mod manifest;
pub mod piece_hash;
pub mod playlist;
pub mod storage;
pub mod swarm;
pub mod wire;
pub mod words;

// Lets tests inside the crate name it as integration tests do: the Chord
// simulation in tests/support also runs a test-only record kind (chord::records).
#[cfg(test)]
extern crate self as songswarm;
