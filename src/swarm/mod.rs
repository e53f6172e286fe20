//! Downloading and serving torrents (DESIGN.md §3).
//!
//! `pieces` and `scheduler` are pure. `coordinator` is the one task per
//! torrent that owns the download state; `connection` is the one task per peer.

pub mod connection;
pub mod coordinator;
pub mod metadata;
pub mod pieces;
pub mod scheduler;
