//! `songswarm play`: download a song with streaming priority and serve it
//! over HTTP while it downloads, to a player of the user's choice or the
//! web player; seed what it has until SIGINT/SIGTERM.
//!
//! The swarm is found as `leech` finds it (the ring, `--peer`, or both):
//! this is `leech`'s start with an HTTP server always on, no end at
//! completion, and a stream opened at the song's start so its first
//! seconds are fetched first, before a player even connects.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::args::{addresses, host_port, http_addr, HostPort, RateArgs, RingArgs};
use super::leech::{start, LeechOptions, LeechTarget, Started};
use super::output::{Event, Output};
use super::play_list::{self, PlayTarget};
use super::search::find;
use super::seed::{print_stats, serve};
use crate::app::AppError;
use crate::http::body::new_stream_id;
use crate::http::catalog::song_of;
use crate::http::song_path;
use crate::swarm::TorrentEvent;

/// Flags of `play`.
#[derive(Args, Debug)]
pub struct PlayArgs {
    /// Manifest file of the song (or album), a 40-hex-digit info-hash to
    /// find in the ring or at the `--peer`s, a playlist OWNER-KEY/NAME to
    /// play in order, or words of a song's title, artist or album: the
    /// best match of a search in the ring plays.
    #[arg(required = true, value_name = "MANIFEST|INFO-HASH|OWNER/NAME|WORDS")]
    pub(super) target: Vec<String>,
    /// Which song of an album to play (its file index, from 0; with WORDS,
    /// the song found).
    #[arg(long, default_value_t = 0)]
    pub(super) file: usize,
    /// A player to start on the song's URL, e.g. `mpv` or `"vlc --intf
    /// dummy"` (split at spaces; the URL is added last).
    #[arg(long, value_name = "CMD")]
    pub(super) player: Option<String>,
    /// Directory to download into (default: $XDG_CACHE_HOME/songswarm, or
    /// ~/.cache/songswarm).
    #[arg(long)]
    pub(super) out: Option<PathBuf>,
    /// A peer to connect to, HOST:PORT (repeatable).
    #[arg(long = "peer", value_parser = host_port)]
    pub(super) peers: Vec<HostPort>,
    /// Address to listen on for other peers.
    #[arg(long, default_value = "0.0.0.0:0")]
    pub(super) listen: SocketAddr,
    /// Where to serve HTTP: a port alone is on loopback (127.0.0.1:PORT),
    /// IP:PORT or HOST:PORT binds that address; 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "0", value_parser = http_addr)]
    pub(super) http: SocketAddr,
    #[command(flatten)]
    pub(super) rates: RateArgs,
    #[command(flatten)]
    pub(super) ring: RingArgs,
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub(super) json: bool,
}

/// Why `play` cannot play what it was given.
#[derive(Debug, thiserror::Error)]
pub enum PlayError {
    /// The download could not start.
    #[error(transparent)]
    App(#[from] AppError),
    /// `--file` is past the torrent's last file.
    #[error("--file {index}: the torrent has {count} file(s), numbered from 0")]
    NoSuchFile {
        /// The index asked for.
        index: usize,
        /// Files in the torrent.
        count: usize,
    },
    /// A search for the song failed.
    #[error(transparent)]
    Search(Box<super::CmdError>),
    /// No song matches the words.
    #[error("no song in the ring matches {0:?}")]
    NoMatch(String),
    /// The player could not be started.
    #[error("cannot start the player {command:?}: {source}")]
    Player {
        /// The command given.
        command: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// What `play` was given: one manifest path or info-hash, else words.
fn parse_target(args: &[String]) -> Option<LeechTarget> {
    match args {
        [one] => match LeechTarget::parse(one) {
            LeechTarget::Manifest(path) if !path.exists() && !one.ends_with(".torrent") => None,
            target => Some(target),
        },
        _ => None,
    }
}

/// Plays until SIGINT/SIGTERM (a playlist: until its end).
pub async fn run(args: PlayArgs) -> Result<(), PlayError> {
    if let [one] = args.target.as_slice() {
        if let PlayTarget::Playlist(r) = PlayTarget::parse(one) {
            return play_list::run(args, r).await;
        }
    }
    play_song(args).await
}

/// Plays one song until SIGINT/SIGTERM.
async fn play_song(mut args: PlayArgs) -> Result<(), PlayError> {
    let out = Output::new(args.json);
    let target = match parse_target(&args.target) {
        Some(target) => target,
        None => {
            // Words: the best match of a search, through a ring node.
            let query = args.target.join(" ");
            let node = args
                .ring
                .options()
                .and_then(|o| o.bootstrap.first().copied());
            let hits = find(node, &query, 1)
                .await
                .map_err(|e| PlayError::Search(Box::new(e)))?;
            let hit = hits.first().ok_or(PlayError::NoMatch(query))?;
            args.file = hit.song.file as usize;
            LeechTarget::InfoHash(hit.song.info_hash)
        }
    };
    let opts = LeechOptions {
        target,
        out: args.out.unwrap_or_else(default_out),
        peers: addresses(&args.peers),
        listen: args.listen,
        seed_after: true,
        recheck: false,
        config: args.rates.config(),
        ring: args.ring.options(),
        json: args.json,
        http: Some(args.http),
        give_up_after: None,
    };
    let Started {
        app,
        manifest,
        handle,
        http,
        stop,
        ..
    } = start(&opts, out).await?;
    let count = manifest.files.len();
    let song = app
        .catalog()
        .get(&manifest.info_hash)
        .and_then(|entry| song_of(entry, args.file).ok());
    let (Some(song), Some(http)) = (song, http) else {
        app.shutdown().await;
        return Err(PlayError::NoSuchFile {
            index: args.file,
            count,
        });
    };
    // The song's start is wanted first, before any player asks for it.
    let prefetch = new_stream_id();
    let _ = handle
        .events
        .send(TorrentEvent::StreamAt {
            id: prefetch,
            offset: song.span.offset,
            end: song.span.end(),
            byte_rate: song.byte_rate,
        })
        .await;
    let index = (count > 1).then_some(args.file);
    let song_url = format!("http://{http}{}", song_path(&manifest.info_hash, index));
    let player_url = format!("http://{http}/");
    let file_name = manifest.files[args.file].path.display().to_string();
    out.print(&Event::Playing {
        title: song.meta.title.as_deref().unwrap_or(&file_name),
        song_url: &song_url,
        player_url: &player_url,
    });
    if let Some(command) = &args.player {
        if let Err(e) = start_player(command, &song_url) {
            app.shutdown().await;
            return Err(e);
        }
    }
    let torrents = [(handle.clone(), manifest.name.clone())];
    let served = serve(&torrents, stop, out).await;
    print_stats(&torrents, out);
    let _ = handle
        .events
        .send(TorrentEvent::StreamClosed { id: prefetch })
        .await;
    app.shutdown().await;
    Ok(served?)
}

/// Starts `command` (split at spaces) with `url` as its last argument; a
/// thread waits for it so it leaves no zombie.
fn start_player(command: &str, url: &str) -> Result<(), PlayError> {
    let mut child = start_player_child(command, url)?;
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

/// Starts `command` (split at spaces) with `url` as its last argument.
pub(super) fn start_player_child(
    command: &str,
    url: &str,
) -> Result<std::process::Child, PlayError> {
    let failed = |source| PlayError::Player {
        command: command.to_string(),
        source,
    };
    let mut words = command.split_whitespace();
    let program = words
        .next()
        .ok_or_else(|| failed(std::io::ErrorKind::InvalidInput.into()))?;
    std::process::Command::new(program)
        .args(words)
        .arg(url)
        .spawn()
        .map_err(failed)
}

/// The download directory when `--out` is not given.
pub(super) fn default_out() -> PathBuf {
    crate::app::on_demand::default_download_dir()
}
