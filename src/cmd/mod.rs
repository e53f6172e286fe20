//! The commands of the `songswarm` binary, one file each, and the one
//! place that prints their results ([`output`]).
//!
//! - [`create`]: make a manifest.
//! - [`seed`]: serve torrents until SIGINT/SIGTERM.
//! - [`leech`]: download a torrent (by manifest or by info-hash).
//! - [`play`]: download a song with streaming priority and serve it over
//!   HTTP to a player while it downloads.
//! - [`node`]: a process that is only a ring node.
//! - [`placement`]: `node --placement K`, the best of K ports.
//! - [`dht`]: talk to the ring from outside.
//! - [`search`]: find songs in the ring by their words.
//! - [`library`]: list every song in the ring.
//! - [`playlist`]: `id` and `playlist`: the user's key and signed playlists.
//! - [`dht_mutable`]: `dht put --mutable` and `dht get OWNER/NAME`.
//! - [`play_list`]: `play OWNER/NAME`, a playlist in order, prefetching.
//! - [`demo`]: the whole system in one process on loopback.
//! - [`probe`]: (hidden) a song URL's time to first byte, for the
//!   multi-network simulation.
//! - [`args`]: flags several commands share.
//! - [`music_dir`]: a directory tree of songs and their manifests.
//!
//! `main.rs` parses [`Command`] with clap and calls [`main`].

pub mod args;
pub mod create;
pub mod demo;
pub mod dht;
pub mod dht_mutable;
pub mod leech;
pub mod library;
pub mod music_dir;
pub mod node;
pub mod output;
pub mod placement;
pub mod play;
pub mod play_list;
pub mod playlist;
pub mod probe;
pub mod search;
pub mod seed;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use tracing_subscriber::EnvFilter;

use crate::app::AppError;
use crate::chord::ChordError;
use crate::id::ParseIdError;
use crate::manifest::ManifestError;

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Make a manifest (.torrent) for a song file or an album directory.
    Create(create::CreateArgs),
    /// Serve one or more torrents from one process and one port.
    Seed(seed::SeedArgs),
    /// Download a torrent, verify every piece, and upload to others meanwhile.
    Leech(leech::LeechArgs),
    /// Play a song while it downloads: serve it over HTTP, print its URL and
    /// the web player's, optionally start a player on it; seed meanwhile.
    Play(play::PlayArgs),
    /// The whole system on loopback in one process: a ring, a seeder of the
    /// demo album, and leechers that find it through the ring.
    Demo(demo::DemoArgs),
    /// Run a bare Chord node until SIGINT/SIGTERM.
    Node(node::NodeArgs),
    /// Find songs in the ring by words of their title, artist or album.
    Search(search::SearchArgs),
    /// List every song in the ring, page by page.
    Library(library::LibraryArgs),
    /// Talk to the Chord ring through any node.
    Dht {
        #[command(subcommand)]
        command: dht::DhtCommand,
    },
    /// A song URL's time to first byte (for the multi-network simulation).
    #[command(hide = true)]
    Probe(probe::ProbeArgs),
    /// Show your public key (made on first use): it names your playlists.
    Id(playlist::IdArgs),
    /// Make, change and show signed playlists in the ring.
    Playlist {
        #[command(subcommand)]
        command: playlist::PlaylistCommand,
    },
}

/// Why a command failed: its last line, `songswarm: <this>`.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// A process failed (listener, manifest, data, download).
    #[error(transparent)]
    App(#[from] AppError),
    /// `play` could not play.
    #[error(transparent)]
    Play(#[from] play::PlayError),
    /// `create` could not build or write the manifest.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The ring did not answer, or answered with an error.
    #[error(transparent)]
    Chord(#[from] ChordError),
    /// An argument that must be an info-hash or key is not one.
    #[error("{arg:?}: {source}")]
    BadId {
        /// The argument as given.
        arg: String,
        /// Why it is not an id.
        source: ParseIdError,
    },
    /// `dht get` found no value under the key.
    #[error("the ring holds no value under {0}")]
    NotFound(crate::id::Id),
    /// `search` or `play <WORDS>` found no song.
    #[error("no song in the ring matches {0:?}")]
    NoMatch(String),
    /// `demo` without the demo album at hand.
    #[error("cannot find the demo album torrents/demo-album.torrent here or in {}: run `songswarm demo` from the songswarm source directory, or give --manifest and --data", source_tree.display())]
    NoDemoAlbum {
        /// The source tree the binary was built from.
        source_tree: PathBuf,
    },
    /// A demo leecher ended with other bytes than the seeder's.
    #[error("a leecher's files differ from the originals")]
    DemoMismatch,
    /// `probe` got no song from the URL in time.
    #[error("probe {url}: {why}")]
    Probe {
        /// The URL probed.
        url: String,
        /// The last answer (or failure).
        why: String,
    },
    /// The identity key cannot be read or made.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// A playlist or signed value could not be read or written.
    #[error(transparent)]
    Playlist(#[from] crate::playlist::ring::PlaylistError),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// Arguments that do not go together, or name nothing to work on.
    #[error("{0}")]
    Usage(String),
}

/// Runs `command` to its end: logging to stderr (`RUST_LOG`), the async
/// runtime, and the closing error line. Exit status 1 on any failure.
pub fn main(command: Command) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = tokio::runtime::Runtime::new()
        .map_err(CmdError::Runtime)
        .and_then(|runtime| runtime.block_on(run(command)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::error(&e);
            ExitCode::FAILURE
        }
    }
}

/// Runs one command.
pub async fn run(command: Command) -> Result<(), CmdError> {
    match command {
        Command::Create(args) => create::run(args),
        Command::Seed(args) => Ok(seed::seed(args.options()).await?),
        Command::Leech(args) => leech::leech(args.options())
            .await
            .map(|_| ())
            .map_err(Into::into),
        Command::Play(args) => Ok(play::run(args).await?),
        Command::Demo(args) => demo::run(args).await,
        Command::Node(args) => Ok(node::run(args).await?),
        Command::Dht { command } => dht::run(command).await,
        Command::Probe(args) => probe::run(args).await,
        Command::Search(args) => search::run(args).await,
        Command::Library(args) => library::run(args).await,
        Command::Id(args) => playlist::id(args),
        Command::Playlist { command } => playlist::run(command).await,
    }
}
