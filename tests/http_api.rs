//! The JSON API, the web player's page and `/metrics` on a real socket,
//! over a torrent whose progress the test publishes itself.

use tokio::io::AsyncReadExt;

#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/http_fixture.rs"]
mod http_fixture;
#[path = "support/manifest_bencode.rs"]
mod manifest_bencode;
#[path = "support/prometheus.rs"]
mod prometheus;

use http_client::*;
use http_fixture::{one_song, serve, FileSpec};
use prometheus::parse_prometheus;
use songswarm::id::Id;
use songswarm::swarm::coordinator::TorrentStats;

fn json(reply: &Reply) -> serde_json::Value {
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("content-type"), "application/json");
    serde_json::from_slice(&reply.body).unwrap()
}

#[tokio::test]
async fn the_json_api_lists_songs_and_their_progress() {
    let f = one_song(100_000, 32 * 1024).await;
    let hash = f.manifest.info_hash.to_hex();
    let songs = json(&get(f.addr, "/api/songs").await);
    let t = &songs[0];
    assert_eq!(t["info_hash"], hash);
    assert_eq!(t["name"], "song.mp3");
    assert_eq!(t["title"], "Test Song");
    assert_eq!(t["artist"], "The Testers");
    assert_eq!(t["duration_ms"], 10_000);
    let song = &t["files"][0];
    assert_eq!(song["index"], 0);
    assert_eq!(song["url"], f.url());
    assert_eq!(song["title"], "Test Song");
    assert_eq!(song["duration_ms"], 10_000);
    assert_eq!(song["length"], 100_000);
    assert_eq!(song["content_type"], "audio/mpeg");

    f.stats.send_replace(TorrentStats {
        piece_count: 4,
        have_pieces: 1,
        total_bytes: 100_000,
        downloaded_bytes: 32_768,
        uploaded_bytes: 5,
        peers: 3,
        ..TorrentStats::default()
    });
    let url = format!("/api/torrents/{hash}");
    let p = json(&get(f.addr, &url).await);
    assert_eq!(p["info_hash"], hash);
    assert_eq!(p["downloaded_percent"], 25.0);
    assert_eq!(p["have_pieces"], 1);
    assert_eq!(p["piece_count"], 4);
    assert_eq!(p["peers"], 3);
    assert_eq!(p["complete"], false);
    assert_eq!(p["downloaded_bytes"], 32_768);
    assert_eq!(p["uploaded_bytes"], 5);
    for field in ["download_rate", "upload_rate"] {
        assert!(p[field].is_u64(), "{field}: {p}");
    }
    let all = json(&get(f.addr, "/api/torrents").await);
    assert_eq!(all[0]["peers"], 3);
    let missing = get(
        f.addr,
        &format!("/api/torrents/{}", Id::hash(b"x").to_hex()),
    )
    .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn an_album_lists_each_song_with_its_own_url() {
    let files = [
        FileSpec::random("01 one.flac", 5_000, 1).with_codec("flac"),
        FileSpec::random("02 two.flac", 7_000, 2).with_codec("flac"),
    ];
    let f = serve(&files, 16 * 1024).await;
    let hash = f.manifest.info_hash.to_hex();
    let songs = json(&get(f.addr, "/api/songs").await);
    let t = &songs[0];
    assert_eq!(t["album"], "Test Album");
    let list = t["files"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    for (i, song) in list.iter().enumerate() {
        assert_eq!(song["url"], format!("/songs/{hash}/{i}"));
        assert_eq!(
            song["album"], "Test Album",
            "an album's tags reach its songs"
        );
        assert_eq!(song["content_type"], "audio/flac");
    }
    assert_eq!(list[1]["path"], "album/02 two.flac");
}

#[tokio::test]
async fn the_player_page_is_served_from_the_binary() {
    let f = one_song(1000, 32 * 1024).await;
    let page = get(f.addr, "/").await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").starts_with("text/html"));
    let html = String::from_utf8(page.body).unwrap();
    assert!(html.contains("<audio"), "no audio element");
    assert!(
        html.contains("/api/songs"),
        "the page does not ask for the songs"
    );
    assert!(html.contains("name=\"viewport\""), "no phone viewport");
    // Nothing from elsewhere: no CDN, no external script or style.
    for external in ["http://", "https://", "//cdn", "src=\"//"] {
        assert!(!html.contains(external), "the page loads {external}…");
    }
}

#[tokio::test]
async fn metrics_count_streams_in_the_prometheus_text_format() {
    let mut f = one_song(100_000, 32 * 1024).await;
    f.stats.send_replace(TorrentStats {
        piece_count: 4,
        have_pieces: 3,
        resumed_pieces: 1,
        downloaded_bytes: 70_000,
        uploaded_bytes: 1234,
        failed_pieces: 2,
        peers: 5,
        ..TorrentStats::default()
    });
    f.verify([0]);
    // A stream that gets its first byte at once, then stalls on piece 1.
    let mut stream = send(f.addr, "GET", &f.url(), &[]).await;
    let (_, _, got) = read_head(&mut stream).await;
    let (id, ..) = f.stream_at().await;
    let _ = read_exactly(&mut stream, 32 * 1024 - got.len()).await;
    // It is waiting for piece 1 now (it said so).
    let (at, offset, ..) = f.stream_at().await;
    assert_eq!((at, offset), (id, 32 * 1024));
    f.verify_all();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.unwrap();
    f.closed(id).await;
    let seek = get_range(f.addr, &f.url(), "bytes=50000-").await;
    assert_eq!(seek.status, 206);
    let (id, ..) = f.stream_at().await;
    f.closed(id).await;

    let reply = get(f.addr, "/metrics").await;
    assert_eq!(reply.status, 200);
    let kind = reply.header("content-type");
    assert!(kind.starts_with("text/plain") || kind.starts_with("application/openmetrics-text"));
    let text = String::from_utf8(reply.body).unwrap();
    let samples = parse_prometheus(&text);
    let value = |name: &str| {
        samples
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("{name} missing from\n{text}"))
    };
    assert_eq!(value("songswarm_stream_first_byte_seconds_count"), 1.0);
    assert_eq!(value("songswarm_stream_seek_seconds_count"), 1.0);
    assert_eq!(value("songswarm_stream_stalls_total"), 1.0);
    assert_eq!(value("songswarm_stream_stall_seconds_count"), 1.0);
    assert_eq!(value("songswarm_stream_bytes_total"), 150_000.0);
    assert_eq!(value("songswarm_streams_open"), 0.0);
    let label = format!("{{info_hash=\"{}\"}}", f.manifest.info_hash.to_hex());
    let per_torrent = [
        ("songswarm_downloaded_bytes_total", 70_000.0),
        ("songswarm_uploaded_bytes_total", 1234.0),
        ("songswarm_pieces_verified_total", 2.0),
        ("songswarm_pieces_failed_total", 2.0),
        ("songswarm_pieces_have", 3.0),
        ("songswarm_peers", 5.0),
    ];
    for (name, want) in per_torrent {
        assert_eq!(value(&format!("{name}{label}")), want, "{name}");
    }
}
