//! Everything a command prints, in one place.
//!
//! Each command says what happened as an [`Event`]; [`Output`] renders it
//! as text for people or, with `--json`, as one JSON object per line (a
//! `seed`/`leech`/`node` line has an `event` field; a one-shot command's
//! answer is its object alone). Results go to stdout, flushed at once so
//! that a harness reading the pipe sees each line as it happens; warnings
//! and the closing error go to stderr as `songswarm: ...` in both modes.

use std::fmt::Display;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

use crate::app::demo::DemoReport;
use crate::app::stall::StallReason;
use crate::chord::records::Song;
use crate::chord::{LookupInfo, RingInfo, Role};
use crate::id::Id;
use crate::manifest::Manifest;
use crate::swarm::coordinator::TorrentStats;
use crate::wire::chord::Hit;

mod catalog;
mod ring;
use ring::ring_text;

/// A one-shot answer that renders itself, for the commands whose answers
/// are their own types.
pub trait Answer {
    /// The text form.
    fn to_text(&self) -> String;
    /// The JSON object.
    fn to_json(&self) -> serde_json::Value;
}

/// What a command tells its user.
pub enum Event<'a> {
    /// A one-shot answer that renders itself (`id`, `playlist`,
    /// `dht put --mutable`, `dht get`).
    Answer(&'a dyn Answer),
    /// `create` wrote a manifest.
    Created {
        /// The manifest.
        manifest: &'a Manifest,
        /// Where it was written.
        out: &'a Path,
    },
    /// A process listens (`seed`, `leech`, `play`): its address and torrents.
    Listening {
        /// The bound address.
        addr: SocketAddr,
        /// The torrents it serves.
        info_hashes: &'a [Id],
        /// Where its HTTP server listens (`--http`).
        http: Option<SocketAddr>,
    },
    /// A bare ring node listens (`node`).
    NodeListening {
        /// The node's advertised address.
        addr: SocketAddr,
        /// Its ring id.
        id: Id,
        /// Where its HTTP server listens (`--http`).
        http: Option<SocketAddr>,
    },
    /// `play` serves a song: its URL and the web player's.
    Playing {
        /// The song's title (or file name).
        title: &'a str,
        /// The song's URL.
        song_url: &'a str,
        /// The web player's URL.
        player_url: &'a str,
    },
    /// A bare ring node leaves the ring (`node`, on SIGINT/SIGTERM).
    Leaving,
    /// `leech <info-hash>` fetched the manifest from the swarm.
    MetadataFetched {
        /// The torrent's name.
        name: &'a str,
        /// Where the manifest was saved.
        saved: &'a Path,
    },
    /// A download completed and every piece is verified.
    Done {
        /// The torrent's name.
        name: &'a str,
        /// The torrent.
        info_hash: Id,
        /// Its final counters.
        stats: &'a TorrentStats,
        /// Seconds from start to completion.
        seconds: f64,
    },
    /// A download has made no progress for a while: why.
    Stalled {
        /// The torrent.
        info_hash: Id,
        /// Why nothing arrives.
        reason: &'a StallReason,
        /// Seconds since the last progress.
        seconds: f64,
    },
    /// `probe`: a song URL's first body byte.
    Probed {
        /// The URL.
        url: &'a str,
        /// From the probe's start to the `GET` that got the song.
        waited: std::time::Duration,
        /// From that `GET` to the first body byte.
        first_byte: std::time::Duration,
        /// Body bytes read.
        bytes: usize,
    },
    /// A served torrent stopped on an error; the process serves on.
    Stopped {
        /// The torrent.
        info_hash: Id,
        /// Its name.
        name: &'a str,
        /// Why.
        error: &'a str,
    },
    /// A serving process stops: what it moved over its life.
    Stats {
        /// Bytes uploaded.
        uploaded: u64,
        /// Bytes downloaded.
        downloaded: u64,
    },
    /// `dht announce` was acknowledged.
    Announced {
        /// The info-hash.
        key: Id,
        /// The peer announced.
        peer: SocketAddr,
        /// As what.
        role: Role,
    },
    /// `dht peers`: the swarm list of an info-hash.
    Peers {
        /// The info-hash.
        key: Id,
        /// Its live peers.
        peers: &'a [(SocketAddr, Role)],
    },
    /// `dht lookup`: where a key lives.
    Located(&'a LookupInfo),
    /// `dht walk`: the ring's members along successor pointers.
    Walked(&'a [SocketAddr]),
    /// `dht ring`: one node's view.
    Ring(&'a RingInfo),
    /// `demo`: the report.
    Demo(&'a DemoReport),
    /// `demo --keep`: the swarm stays up until Ctrl-C.
    DemoKept {
        /// The listener's web player.
        player_url: &'a str,
    },
    /// `search`: the songs matching a query, best first.
    Hits {
        /// The query as given.
        query: &'a str,
        /// The results.
        hits: &'a [Hit],
    },
    /// `library`: one page of songs.
    Songs(&'a [Song]),
    /// `dht put` was acknowledged.
    StoredValue {
        /// The value's key (its SHA-1).
        key: Id,
        /// Its length.
        bytes: usize,
    },
    /// `dht get`: the value under `key`, if any.
    Value { key: Id, value: &'a Option<Vec<u8>> },
}

/// How this run of a command prints.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    /// `--json`: one JSON object per line instead of text.
    json: bool,
}

impl Output {
    /// Text, or JSON with `json`.
    pub fn new(json: bool) -> Output {
        Output { json }
    }

    /// Prints `event` on stdout in this run's form (some events have only
    /// one form and print nothing in the other).
    pub fn print(&self, event: &Event) {
        let text = if self.json {
            json::json_of(event)
        } else {
            text_of(event)
        };
        // An empty answer (no peers listed) prints no line at all.
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", text.trim_end_matches('\n'));
            let _ = out.flush();
        }
    }

    /// Tells the user about a problem the command lives through, on stderr.
    pub fn warn(&self, what: impl Display) {
        eprintln!("songswarm: {what}");
    }
}

/// The line a command that failed ends with, on stderr, in every mode.
pub fn error(e: &dyn std::error::Error) {
    eprintln!("songswarm: {e}");
}

/// The text form; None for events only `--json` shows.
fn text_of(event: &Event) -> Option<String> {
    Some(match event {
        Event::Answer(answer) => answer.to_text(),
        Event::Created { manifest, out } => format!(
            "info-hash {}\nname {}\npieces {} x {} bytes, {} bytes in {} file(s)\nwrote {}",
            manifest.info_hash,
            manifest.name,
            manifest.piece_count(),
            manifest.piece_length,
            manifest.total_length,
            manifest.files.len(),
            out.display()
        ),
        Event::Listening { addr, http, .. } => {
            format!("listening on {addr}{}", http_text(*http))
        }
        Event::NodeListening { addr, id, http } => {
            format!("listening on {addr}, node id {id}{}", http_text(*http))
        }
        Event::Playing {
            title,
            song_url,
            player_url,
        } => format!("playing {title}\nsong        {song_url}\nweb player  {player_url}"),
        Event::Leaving => "leaving the ring".to_string(),
        Event::MetadataFetched { name, saved } => {
            format!("metadata of {name} fetched, saved as {}", saved.display())
        }
        Event::Done {
            name,
            stats,
            seconds,
            ..
        } => {
            let mb = stats.total_bytes as f64 / 1e6;
            format!(
                "done: {name} ({mb:.1} MB) in {seconds:.2} s, {:.1} MB/s, {} peers",
                mb / seconds.max(1e-9),
                stats.peers_seen
            )
        }
        Event::Stalled {
            reason, seconds, ..
        } => format!("no progress for {seconds:.0} s: {reason}"),
        Event::Probed {
            url,
            waited,
            first_byte,
            bytes,
        } => format!(
            "{url}: answered after {:.1} ms, first byte {:.1} ms after the GET, {bytes} bytes",
            waited.as_secs_f64() * 1e3,
            first_byte.as_secs_f64() * 1e3
        ),
        Event::Stopped { .. } | Event::Stats { .. } => return None,
        Event::Announced { key, peer, role } => format!("announced {peer} ({role:?}) for {key}"),
        Event::Peers { peers, .. } => peers
            .iter()
            .map(|(p, r)| format!("{p} {}", role_name(*r)))
            .collect::<Vec<_>>()
            .join("\n"),
        Event::Located(info) => {
            let replicas: Vec<String> = info.replicas.iter().map(|a| a.to_string()).collect();
            format!(
                "key      {}\nowner    {}\nreplicas {}\nhops     {}",
                info.key,
                info.owner,
                replicas.join(" "),
                info.hops
            )
        }
        Event::Walked(members) => {
            let mut lines: Vec<String> = members
                .iter()
                .map(|m| format!("{} {m}", Id::of_addr(*m)))
                .collect();
            lines.push(format!("{} members", members.len()));
            lines.join("\n")
        }
        Event::Ring(info) => ring_text(info),
        // The demo is also a library call whose caller may print its
        // report, so the report renders itself.
        Event::Demo(report) => report.to_text(),
        Event::DemoKept { player_url } => format!(
            "the demo swarm keeps running: open {player_url} to play the album; Ctrl-C ends it"
        ),
        Event::Hits { query, hits } => catalog::hits_text(query, hits),
        Event::Songs(songs) => catalog::songs_text(songs),
        Event::StoredValue { key, .. } => format!("stored under {key}"),
        Event::Value { value, .. } => catalog::value_text(value),
    })
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Seeder => "seeder",
        Role::Leecher => "leecher",
    }
}

/// `, HTTP on http://ADDR/` when the process serves HTTP.
fn http_text(http: Option<SocketAddr>) -> String {
    http.map(|a| format!(", HTTP on http://{a}/"))
        .unwrap_or_default()
}

mod json;

#[cfg(test)]
mod tests;
