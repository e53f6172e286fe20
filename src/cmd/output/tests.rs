use super::json::json_of;
use super::*;
use serde_json::{json, Value};

fn json(event: &Event) -> Value {
    serde_json::from_str(&json_of(event).expect("a JSON form")).unwrap()
}

#[test]
fn serving_commands_say_listening_in_both_forms() {
    let addr: SocketAddr = "127.0.0.1:6881".parse().unwrap();
    let hash = Id::hash(b"song");
    let event = Event::Listening {
        addr,
        info_hashes: &[hash],
        http: None,
    };
    assert_eq!(text_of(&event).unwrap(), "listening on 127.0.0.1:6881");
    let v = json(&event);
    assert_eq!(v["event"], "listening");
    assert_eq!(v["addr"], "127.0.0.1:6881");
    assert_eq!(v["info_hashes"][0], hash.to_hex());
    assert!(v.get("http").is_none());
    let node = json(&Event::NodeListening {
        addr,
        id: hash,
        http: None,
    });
    assert_eq!((&node["event"], &node["addr"]), (&v["event"], &v["addr"]));
    let http = Some("127.0.0.1:8080".parse().unwrap());
    let event = Event::Listening {
        addr,
        info_hashes: &[hash],
        http,
    };
    assert_eq!(
        text_of(&event).unwrap(),
        "listening on 127.0.0.1:6881, HTTP on http://127.0.0.1:8080/"
    );
    assert_eq!(json(&event)["http"], "127.0.0.1:8080");
}

#[test]
fn some_events_have_one_form_only() {
    let stopped = Event::Stopped {
        info_hash: Id::hash(b"song"),
        name: "song",
        error: "gone",
    };
    assert!(text_of(&stopped).is_none());
    assert_eq!(json(&stopped)["error"], "gone");
    let stats = Event::Stats {
        uploaded: 5,
        downloaded: 7,
    };
    assert!(text_of(&stats).is_none());
    assert_eq!(json(&stats)["uploaded_bytes"], 5);
    let fetched = Event::MetadataFetched {
        name: "song",
        saved: Path::new("/tmp/x.torrent"),
    };
    assert!(json_of(&fetched).is_none());
    assert!(text_of(&fetched).unwrap().contains("/tmp/x.torrent"));
}

#[test]
fn a_download_summary_gives_decimal_megabytes() {
    let stats = TorrentStats {
        total_bytes: 3_000_000,
        peers_seen: 2,
        ..TorrentStats::default()
    };
    let done = Event::Done {
        name: "song",
        info_hash: Id::hash(b"song"),
        stats: &stats,
        seconds: 2.0,
    };
    assert_eq!(
        text_of(&done).unwrap(),
        "done: song (3.0 MB) in 2.00 s, 1.5 MB/s, 2 peers"
    );
    let v = json(&done);
    assert_eq!(v["event"], "done");
    assert_eq!(v["rate_bytes_per_sec"], 1_500_000.0);
}

#[test]
fn an_empty_swarm_list_is_an_empty_answer() {
    let key = Id::hash(b"song");
    assert_eq!(text_of(&Event::Peers { key, peers: &[] }).unwrap(), "");
    assert_eq!(json(&Event::Peers { key, peers: &[] })["peers"], json!([]));
}
