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

use serde_json::{json, Value};

use crate::app::demo::DemoReport;
use crate::chord::{LookupInfo, RingInfo, Role};
use crate::id::Id;
use crate::manifest::Manifest;
use crate::swarm::coordinator::TorrentStats;

/// A one-shot answer that renders itself, for the commands whose answers
/// are their own types.
pub trait Answer {
    /// The text form.
    fn to_text(&self) -> String;
    /// The JSON object.
    fn to_json(&self) -> Value;
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
            json_of(event)
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
        Event::MetadataFetched { name, saved } => format!(
            "metadata of {name} fetched from the swarm, saved as {}",
            saved.display()
        ),
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
    })
}

/// The JSON form, one line; None for events only text shows. Typed
/// answers keep their fields' order.
fn json_of(event: &Event) -> Option<String> {
    let value = match event {
        Event::Answer(answer) => answer.to_json(),
        Event::Created { manifest, out } => {
            let files: Vec<Value> = manifest
                .files
                .iter()
                .map(|f| json!({"path": f.path, "length": f.length}))
                .collect();
            json!({
                "info_hash": manifest.info_hash.to_hex(),
                "name": manifest.name,
                "piece_length": manifest.piece_length,
                "pieces": manifest.piece_count(),
                "total_length": manifest.total_length,
                "files": files,
                "song": manifest.song,
                "out": out,
            })
        }
        Event::Listening {
            addr,
            info_hashes,
            http,
        } => {
            let hex: Vec<String> = info_hashes.iter().map(|h| h.to_hex()).collect();
            let mut v = json!({"event": "listening", "addr": addr.to_string(), "info_hashes": hex});
            with_http(&mut v, *http);
            v
        }
        Event::NodeListening { addr, id, http } => {
            let mut v = json!({"event": "listening", "addr": addr.to_string(), "node_id": id});
            with_http(&mut v, *http);
            v
        }
        Event::Playing {
            title,
            song_url,
            player_url,
        } => json!({
            "event": "playing",
            "title": title,
            "song_url": song_url,
            "player_url": player_url,
        }),
        Event::Leaving => json!({"event": "leaving"}),
        Event::MetadataFetched { .. } => return None,
        Event::Done {
            info_hash,
            stats,
            seconds,
            ..
        } => {
            let rate = if *seconds > 0.0 {
                stats.total_bytes as f64 / seconds
            } else {
                0.0
            };
            json!({
                "event": "done",
                "info_hash": info_hash.to_hex(),
                "bytes": stats.total_bytes,
                "seconds": seconds,
                "rate_bytes_per_sec": rate,
                "peers": stats.peers_seen,
                "uploaded_bytes": stats.uploaded_bytes,
                "downloaded_bytes": stats.downloaded_bytes,
                "resumed_pieces": stats.resumed_pieces,
            })
        }
        Event::Stopped {
            info_hash,
            name,
            error,
        } => json!({"event": "stopped", "info_hash": info_hash.to_hex(),
            "name": name, "error": error}),
        Event::Stats {
            uploaded,
            downloaded,
        } => json!({"event": "stats", "uploaded_bytes": uploaded, "downloaded_bytes": downloaded}),
        Event::Announced { key, peer, role } => {
            json!({"info_hash": key, "peer": peer, "role": role, "stored": true})
        }
        Event::Peers { key, peers } => {
            let list: Vec<Value> = peers
                .iter()
                .map(|(p, r)| json!({"peer": p, "role": r}))
                .collect();
            json!({"info_hash": key, "peers": list})
        }
        Event::Located(info) => return serde_json::to_string(info).ok(),
        Event::Walked(members) => json!({"size": members.len(), "members": members}),
        Event::Ring(info) => return serde_json::to_string(info).ok(),
        Event::Demo(report) => return serde_json::to_string(report).ok(),
        Event::DemoKept { player_url } => json!({"event": "kept", "player_url": player_url}),
    };
    Some(value.to_string())
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

/// Adds `"http": "ADDR"` to a listening line when the process serves HTTP.
fn with_http(v: &mut Value, http: Option<SocketAddr>) {
    if let Some(a) = http {
        v["http"] = json!(a.to_string());
    }
}

fn ring_text(info: &RingInfo) -> String {
    let pred = info
        .predecessor
        .map_or("none".to_string(), |p| p.to_string());
    let mut lines = vec![
        format!("id          {}", info.id),
        format!("address     {}", info.addr),
        format!("predecessor {pred}"),
    ];
    for (i, s) in info.successors.iter().enumerate() {
        lines.push(format!("successor {i} {s}"));
    }
    lines.push(format!("fingers     {}", info.fingers));
    lines.push(format!("keys        {}", info.keys));
    lines.join("\n")
}

#[cfg(test)]
mod tests;
