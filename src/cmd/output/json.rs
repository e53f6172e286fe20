//! The `--json` form of every event: one line each.

use serde_json::{json, Value};

use std::net::SocketAddr;

use super::Event;

/// The JSON form, one line; None for events only text shows. Typed
/// answers keep their fields' order.
pub(super) fn json_of(event: &Event) -> Option<String> {
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
        Event::Stalled {
            info_hash,
            reason,
            seconds,
        } => json!({
            "event": "stalled",
            "info_hash": info_hash.to_hex(),
            "reason": reason.code(),
            "detail": reason.to_string(),
            "seconds": seconds,
        }),
        Event::Probed {
            url,
            waited,
            first_byte,
            bytes,
        } => json!({
            "event": "probe",
            "url": url,
            "waited_ms": waited.as_secs_f64() * 1e3,
            "first_byte_ms": first_byte.as_secs_f64() * 1e3,
            "bytes": bytes,
        }),
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
        Event::Hits { query, hits } => super::catalog::hits_json(query, hits),
        Event::Songs(songs) => return Some(super::catalog::songs_json(songs)),
        Event::StoredValue { key, bytes } => super::catalog::stored_json(*key, *bytes),
        Event::Value { key, value } => super::catalog::value_json(*key, value),
        Event::Ring(info) => return serde_json::to_string(info).ok(),
        Event::Demo(report) => return serde_json::to_string(report).ok(),
        Event::DemoKept { player_url } => json!({"event": "kept", "player_url": player_url}),
    };
    Some(value.to_string())
}

/// Adds `"http": "ADDR"` to a listening line when the process serves HTTP.
fn with_http(v: &mut Value, http: Option<SocketAddr>) {
    if let Some(a) = http {
        v["http"] = json!(a.to_string());
    }
}
