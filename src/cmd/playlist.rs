//! `songswarm playlist ...` and `songswarm id`: the user's identity and
//! playlists, read and written through any ring node (`--node`).
//!
//! Every change reads the playlist, edits it, and writes the next version
//! with compare-and-swap on the one read: a change made meanwhile from
//! another device is reported as a conflict, never overwritten. The names
//! of the playlists made here are kept in `playlists` in the config
//! directory, which `playlist list` reads.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::output::{Answer, Event, Output};
use super::CmdError;
use crate::chord::client::ChordClient;
use crate::id::Id;
use crate::identity::{config_dir, Identity, KEY_FILE};
use crate::playlist::ring::{self, PlaylistError};
use crate::playlist::{check_name, PlaylistRef};

/// Longest wait for one answer of the ring (a quorum takes several RPCs).
const TIMEOUT: Duration = Duration::from_secs(30);

/// The file listing the playlists made here, one name a line.
const INDEX_FILE: &str = "playlists";

/// Where the identity is kept.
#[derive(Args, Debug)]
pub struct IdentityArgs {
    /// Directory of the identity key and the list of own playlists
    /// (default: $XDG_CONFIG_HOME/songswarm, or ~/.config/songswarm).
    #[arg(long, env = "SONGSWARM_CONFIG_DIR", value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
}

impl IdentityArgs {
    /// The config directory.
    pub fn dir(&self) -> PathBuf {
        config_dir(self.config_dir.clone())
    }
}

/// Flags of every `playlist` subcommand.
#[derive(Args, Debug)]
pub struct At {
    /// A ring node to talk through, IP:PORT.
    #[arg(long)]
    node: SocketAddr,
    #[command(flatten)]
    identity: IdentityArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// The `playlist` subcommands.
#[derive(Subcommand, Debug)]
pub enum PlaylistCommand {
    /// Make a new playlist of yours, optionally with its first tracks.
    Create {
        name: String,
        /// Info-hashes of the tracks, in order.
        tracks: Vec<String>,
        #[command(flatten)]
        at: At,
    },
    /// Append tracks to a playlist of yours.
    Add {
        name: String,
        /// Info-hashes to append, in order.
        #[arg(required = true)]
        tracks: Vec<String>,
        #[command(flatten)]
        at: At,
    },
    /// Remove every occurrence of these tracks from a playlist of yours.
    Remove {
        name: String,
        /// Info-hashes to remove.
        #[arg(required = true)]
        tracks: Vec<String>,
        #[command(flatten)]
        at: At,
    },
    /// Show a playlist: NAME (yours) or OWNER/NAME (anyone's).
    Show {
        playlist: String,
        #[command(flatten)]
        at: At,
    },
    /// List your playlists (those made here) as the ring holds them.
    List {
        #[command(flatten)]
        at: At,
    },
}

/// `songswarm id`'s flags.
#[derive(Args, Debug)]
pub struct IdArgs {
    #[command(flatten)]
    identity: IdentityArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// A playlist as `show` and the editing commands print it.
#[derive(Debug, Serialize)]
pub struct PlaylistView {
    /// OWNER/NAME, as others open it.
    pub playlist: String,
    /// Its name.
    pub name: String,
    /// Its version (the head record's sequence number).
    pub version: u64,
    /// Its tracks' info-hashes, in order.
    pub tracks: Vec<Id>,
    /// Records it spans in the ring (long playlists are chained).
    pub records: usize,
}

impl Answer for PlaylistView {
    /// A header line, then one numbered track a line.
    fn to_text(&self) -> String {
        let mut out = format!(
            "playlist {} (version {}, {} tracks)",
            self.playlist,
            self.version,
            self.tracks.len()
        );
        for (i, t) in self.tracks.iter().enumerate() {
            out.push_str(&format!("\n{:>4}. {t}", i + 1));
        }
        out
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// The user's own playlists, as `playlist list` prints them.
#[derive(Debug, Serialize)]
pub struct PlaylistList {
    /// One line each.
    pub playlists: Vec<PlaylistSummary>,
}

impl Answer for PlaylistList {
    fn to_text(&self) -> String {
        if self.playlists.is_empty() {
            return "no playlists made here yet".to_string();
        }
        let line = |p: &PlaylistSummary| match p.version {
            Some(v) => format!("{} (version {v}, {} tracks)", p.playlist, p.tracks),
            None => format!("{} (not in the ring)", p.playlist),
        };
        self.playlists
            .iter()
            .map(line)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// What `id` prints.
#[derive(Debug, Serialize)]
pub struct IdentityView {
    /// The public key, hex.
    pub public_key: String,
    /// Where the secret key is kept.
    pub key_file: PathBuf,
}

impl Answer for IdentityView {
    fn to_text(&self) -> String {
        format!(
            "{}\n(secret key in {})",
            self.public_key,
            self.key_file.display()
        )
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// One own playlist as `list` prints it.
#[derive(Debug, Serialize)]
pub struct PlaylistSummary {
    /// Its name.
    pub name: String,
    /// OWNER/NAME.
    pub playlist: String,
    /// Its version, None if the ring holds none.
    pub version: Option<u64>,
    /// Its number of tracks.
    pub tracks: usize,
}

/// Prints the public key, making the identity on first use.
pub fn id(args: IdArgs) -> Result<(), CmdError> {
    let dir = args.identity.dir();
    let me = Identity::load_or_create(&dir)?;
    let key_file = dir.join(KEY_FILE);
    let view = IdentityView {
        public_key: me.public_hex(),
        key_file,
    };
    Output::new(args.json).print(&Event::Answer(&view));
    Ok(())
}

fn parse_tracks(args: &[String]) -> Result<Vec<Id>, CmdError> {
    args.iter()
        .map(|s| {
            s.parse::<Id>().map_err(|source| CmdError::BadId {
                arg: s.clone(),
                source,
            })
        })
        .collect()
}

/// Runs one `playlist` subcommand and prints its answer.
pub async fn run(command: PlaylistCommand) -> Result<(), CmdError> {
    match command {
        PlaylistCommand::Create { name, tracks, at } => {
            let tracks = parse_tracks(&tracks)?;
            edit(&at, &name, true, |list| list.extend(tracks)).await
        }
        PlaylistCommand::Add { name, tracks, at } => {
            let tracks = parse_tracks(&tracks)?;
            edit(&at, &name, false, |list| list.extend(tracks)).await
        }
        PlaylistCommand::Remove { name, tracks, at } => {
            let tracks = parse_tracks(&tracks)?;
            edit(&at, &name, false, |list| {
                list.retain(|t| !tracks.contains(t))
            })
            .await
        }
        PlaylistCommand::Show { playlist, at } => {
            let r = match PlaylistRef::parse(&playlist) {
                Some(r) => r.map_err(PlaylistError::from)?,
                None => own_ref(&at, &playlist)?,
            };
            let mut node = ChordClient::connect(at.node, TIMEOUT).await?;
            let loaded = ring::read(&mut node, &r)
                .await?
                .ok_or_else(|| PlaylistError::NotFound(r.to_string()))?;
            let view = view(&r, loaded.seq, loaded.tracks, loaded.records);
            Output::new(at.json).print(&Event::Answer(&view));
            Ok(())
        }
        PlaylistCommand::List { at } => {
            let me = Identity::load_or_create(&at.identity.dir())?;
            let mut node = ChordClient::connect(at.node, TIMEOUT).await?;
            let mut out = Vec::new();
            for name in read_index(&at.identity.dir()) {
                let r = PlaylistRef {
                    owner: me.public(),
                    name: name.clone(),
                };
                let loaded = ring::read(&mut node, &r).await?;
                out.push(PlaylistSummary {
                    playlist: r.to_string(),
                    name,
                    version: loaded.as_ref().map(|l| l.seq),
                    tracks: loaded.map_or(0, |l| l.tracks.len()),
                });
            }
            let list = PlaylistList { playlists: out };
            Output::new(at.json).print(&Event::Answer(&list));
            Ok(())
        }
    }
}

fn own_ref(at: &At, name: &str) -> Result<PlaylistRef, CmdError> {
    check_name(name).map_err(PlaylistError::from)?;
    let me = Identity::load_or_create(&at.identity.dir())?;
    Ok(PlaylistRef {
        owner: me.public(),
        name: name.to_string(),
    })
}

fn view(r: &PlaylistRef, version: u64, tracks: Vec<Id>, records: usize) -> PlaylistView {
    PlaylistView {
        playlist: r.to_string(),
        name: r.name.clone(),
        version,
        tracks,
        records,
    }
}

/// Reads the own playlist `name` (which must not exist if `create`),
/// applies `change`, and writes the next version with compare-and-swap.
async fn edit(
    at: &At,
    name: &str,
    create: bool,
    change: impl FnOnce(&mut Vec<Id>),
) -> Result<(), CmdError> {
    let r = own_ref(at, name)?;
    let dir = at.identity.dir();
    let me = Identity::load_or_create(&dir)?;
    let mut node = ChordClient::connect(at.node, TIMEOUT).await?;
    let (expected, mut tracks) = match (ring::read(&mut node, &r).await?, create) {
        (Some(l), true) => {
            return Err(PlaylistError::Exists {
                name: name.to_string(),
                seq: l.seq,
            }
            .into())
        }
        (Some(l), false) => (l.seq, l.tracks),
        (None, true) => (0, Vec::new()),
        (None, false) => return Err(PlaylistError::NotFound(r.to_string()).into()),
    };
    change(&mut tracks);
    let version = ring::write(&mut node, me.signing_key(), name, &tracks, expected).await?;
    remember(&dir, name)?;
    let records = crate::playlist::chain(&r.owner, name, &tracks).len();
    Output::new(at.json).print(&Event::Answer(&view(&r, version, tracks, records)));
    Ok(())
}

/// The names in the index of own playlists (none if there is no index).
pub(crate) fn read_index(dir: &Path) -> Vec<String> {
    let text = fs::read_to_string(dir.join(INDEX_FILE)).unwrap_or_default();
    text.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Adds `name` to the index of own playlists.
fn remember(dir: &Path, name: &str) -> Result<(), CmdError> {
    let mut names = read_index(dir);
    if names.iter().any(|n| n == name) {
        return Ok(());
    }
    names.push(name.to_string());
    let path = dir.join(INDEX_FILE);
    fs::write(&path, names.join("\n") + "\n")
        .map_err(|source| CmdError::Identity(crate::identity::IdentityError::Io { path, source }))
}
