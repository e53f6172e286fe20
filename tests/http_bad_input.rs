//! Bad requests to the HTTP room: each gets a clear 4xx, opens no stream,
//! reads nothing outside the manifest's files, and the streams already
//! open go on unharmed.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/http_fixture.rs"]
mod http_fixture;
#[path = "support/manifest_bencode.rs"]
mod manifest_bencode;

use http_client::*;
use http_fixture::{serve, FileSpec};
use songswarm::http::catalog::DEFAULT_BYTE_RATE;
use songswarm::id::Id;

#[tokio::test]
async fn bad_urls_and_ranges_get_a_clear_4xx_and_other_streams_go_on() {
    let files = [
        FileSpec::random("01 one.flac", 50_000, 1),
        FileSpec::random("02 two.ogg", 70_000, 2),
    ];
    let mut f = serve(&files, 16 * 1024).await;
    // A secret beside the data, which no URL may reach.
    std::fs::write(f.dir.path().join("secret.txt"), b"do not serve").unwrap();
    let hash = f.manifest.info_hash.to_hex();
    let mut waiting = send(f.addr, "GET", &format!("/songs/{hash}/1"), &[]).await;
    let (status, headers, mut body) = read_head(&mut waiting).await;
    assert_eq!(
        (status, headers["content-type"].as_str()),
        (200, "audio/ogg")
    );
    let (id, offset, end, rate) = f.stream_at().await;
    assert_eq!(
        (offset, end),
        (50_000, 120_000),
        "file 1 in the torrent's bytes"
    );
    assert_eq!(rate, DEFAULT_BYTE_RATE, "no duration for this file");

    let unknown = Id::hash(b"nobody").to_hex();
    let bad: Vec<(&str, String, u16, &str)> = vec![
        ("GET", format!("/songs/{hash}"), 404, "add /INDEX"),
        ("GET", format!("/songs/{hash}/2"), 404, "out of range"),
        (
            "GET",
            format!("/songs/{hash}/99999999999999999999"),
            404,
            "out of range",
        ),
        ("GET", format!("/songs/{hash}/-1"), 400, "not a file index"),
        ("GET", format!("/songs/{hash}/1.0"), 400, "not a file index"),
        ("GET", format!("/songs/{unknown}"), 404, "no torrent"),
        ("GET", format!("/songs/{unknown}/0"), 404, "no torrent"),
        ("GET", "/songs/not-a-hash".into(), 400, "not an info-hash"),
        (
            "GET",
            format!("/songs/{}", &hash[..39]),
            400,
            "not an info-hash",
        ),
        (
            "GET",
            format!("/songs/{hash}/..%2F..%2Fetc%2Fpasswd"),
            400,
            "not a file index",
        ),
        (
            "GET",
            format!("/songs/{hash}/..%2Fsecret.txt"),
            400,
            "not a file index",
        ),
        ("GET", format!("/songs/{hash}%2F0"), 400, "not an info-hash"),
        ("GET", format!("/songs/{hash}/.."), 400, "not a file index"),
        ("GET", "/songs/../../etc/passwd".into(), 404, "not found"),
        (
            "GET",
            format!("/songs/{hash}/0/../../secret.txt"),
            404,
            "not found",
        ),
        ("GET", "/secret.txt".into(), 404, "not found"),
        ("GET", "/%2e%2e/secret.txt".into(), 404, "not found"),
        ("HEAD", format!("/songs/{hash}/7"), 404, ""),
        ("GET", "/api/torrents/nope".into(), 400, "not an info-hash"),
    ];
    for (method, target, want, says) in bad {
        let r = fetch(f.addr, method, &target, &[]).await;
        assert_eq!(r.status, want, "{method} {target}");
        let text = String::from_utf8_lossy(&r.body);
        assert!(text.contains(says), "{method} {target}: {text:?}");
        assert!(
            !text.contains("do not serve"),
            "{target} reached the secret"
        );
    }
    let song0 = format!("/songs/{hash}/0");
    for range in [
        "bytes=5-2",
        "bytes=abc",
        "bytes 0-1",
        "bytes=-",
        "bytes=+1-2",
    ] {
        let r = get_range(f.addr, &song0, range).await;
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(r.header("content-range"), "bytes */50000", "{range}");
    }
    // A header that is not even text.
    let mut raw = tokio::net::TcpStream::connect(f.addr).await.unwrap();
    let mut req = format!("GET {song0} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n").into_bytes();
    req.extend_from_slice(b"Range: bytes=\xff-\r\n\r\n");
    raw.write_all(&req).await.unwrap();
    let (status, headers, _) = read_head(&mut raw).await;
    assert_eq!(status, 416);
    assert_eq!(headers["content-range"], "bytes */50000");
    // A request that is not HTTP at all.
    let mut junk = tokio::net::TcpStream::connect(f.addr).await.unwrap();
    junk.write_all(b"\x13BitTorrent protocol\0\0\0\0\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(HTTP_DEADLINE, junk.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer:?}"
    );
    f.assert_no_event("bad requests open no stream");

    // The stream that was waiting goes on, to the right bytes.
    f.verify_all();
    tokio::time::timeout(HTTP_DEADLINE, waiting.read_to_end(&mut body))
        .await
        .unwrap()
        .unwrap();
    assert!(body == f.data[50_000..], "file 1 differs");
    f.closed(id).await;
    let first = get(f.addr, &song0).await;
    assert_eq!(first.header("content-type"), "audio/flac");
    assert!(first.body == f.data[..50_000]);
}

#[tokio::test]
async fn half_requests_and_huge_headers_do_not_stop_the_server() {
    let mut f = serve(&[FileSpec::random("song.mp3", 40_000, 3)], 16 * 1024).await;
    f.verify_all();
    // Clients that start a request and never finish it.
    let mut idle = Vec::new();
    for _ in 0..20 {
        let mut s = tokio::net::TcpStream::connect(f.addr).await.unwrap();
        s.write_all(b"GET /songs/").await.unwrap();
        idle.push(s);
    }
    // A header far larger than any player sends.
    let mut big = tokio::net::TcpStream::connect(f.addr).await.unwrap();
    let huge = format!(
        "GET {} HTTP/1.1\r\nHost: x\r\nRange: bytes={}0-\r\n\r\n",
        f.url(),
        "0".repeat(1 << 20)
    );
    // The server may hang up before it has read it all.
    let _ = big.write_all(huge.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(HTTP_DEADLINE, big.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{}",
        &answer[..answer.len().min(200)]
    );
    // Everyone else is served as usual.
    let song = get(f.addr, &f.url()).await;
    assert_eq!(song.status, 200);
    assert!(song.body == f.data);
    let (id, ..) = f.stream_at().await;
    f.closed(id).await;
    drop(idle);
}
