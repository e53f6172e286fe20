//! What can go wrong in a process, in words that say what to do about it.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::manifest::ManifestError;
use crate::storage::StorageError;

/// Errors of a process: its listener, its torrents, and the commands
/// that run them (`seed`, `leech`, `node`, `demo`).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A manifest could not be loaded.
    #[error("{path}: {source}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// Why.
        source: ManifestError,
    },
    /// A manifest file could not be read (the error names it).
    #[error(transparent)]
    ManifestFile(ManifestError),
    /// `--out` names something that is not a directory.
    #[error("--out {0} is a file: give a directory to download into (it is created if missing)")]
    OutNotDir(PathBuf),
    /// The torrent's data is missing or wrong, or the disk failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source} (is another process using the port? try --listen 127.0.0.1:0)")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The HTTP address could not be bound.
    #[error("{0} (is another process using the port? try --http 127.0.0.1:0)")]
    Http(#[from] crate::http::HttpError),
    /// `seed --library` found nothing it could serve.
    #[error("nothing to serve in the library {dir}: {why}")]
    EmptyLibrary {
        /// The library directory.
        dir: PathBuf,
        /// What was found instead.
        why: String,
    },
    /// The same manifest was given twice.
    #[error("torrent {0} is given twice")]
    Duplicate(String),
    /// SIGINT/SIGTERM arrived before the download completed.
    #[error("interrupted before the download completed ({have} of {total} pieces verified; run the same command again to resume)")]
    Interrupted {
        /// Verified pieces.
        have: u32,
        /// All pieces.
        total: u32,
    },
    /// Leeching by info-hash was asked for without a ring to look it up in
    /// and without a peer to ask.
    #[error("leeching by info-hash needs the ring or a --peer to find the swarm: drop --no-ring or name a --peer")]
    NeedsRing,
    /// The download made no progress for the time `--give-up-after` allows.
    #[error("gave up after {seconds} s without progress: {reason}")]
    GaveUp {
        /// Seconds without progress.
        seconds: u64,
        /// Why nothing arrived.
        reason: String,
    },
    /// The metadata could not be had from the swarm.
    #[error(transparent)]
    Metadata(#[from] crate::swarm::magnet::MagnetError),
    /// The torrent stopped on an error (e.g. the disk is full).
    #[error("download failed: {0}")]
    Failed(String),
    /// Every torrent being served stopped on an error; this one last.
    #[error("stopped serving {name}, the last torrent: {error}")]
    NothingToServe {
        /// The torrent's name.
        name: String,
        /// Why it stopped.
        error: String,
    },
}
