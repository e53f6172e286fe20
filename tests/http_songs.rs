//! Song URLs on a real socket: what players send and what they get back,
//! bodies that wait for verified pieces, streams that end with their
//! client, and many at once. The test plays the coordinator (see
//! `support/http_fixture.rs`).

use std::time::Duration;

use tokio::io::AsyncReadExt;

#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/http_fixture.rs"]
mod http_fixture;
#[path = "support/manifest_bencode.rs"]
mod manifest_bencode;

use http_client::*;
use http_fixture::{one_song, serve, FileSpec};

#[tokio::test]
async fn every_range_players_send_is_byte_exact() {
    let mut f = one_song(300_000, 32 * 1024).await;
    f.verify_all();
    let (url, len, data) = (f.url(), f.data.len(), f.data.clone());

    let whole = get(f.addr, &url).await;
    assert_eq!(whole.status, 200);
    assert!(whole.body == data, "the whole song differs");
    assert_eq!(whole.header("accept-ranges"), "bytes");
    assert_eq!(whole.header("content-type"), "audio/mpeg");
    assert_eq!(whole.header("content-length"), len.to_string());
    let (id, offset, end, rate) = f.stream_at().await;
    assert_eq!((offset, end), (0, len as u64));
    assert_eq!(rate, len as u64 * 1000 / 10_000, "length ÷ duration_ms");
    f.closed(id).await;

    let cases: [(&str, std::ops::Range<usize>); 8] = [
        ("bytes=0-1", 0..2), // Safari's probe: exactly two bytes
        ("bytes=0-", 0..len),
        ("bytes=40000-", 40_000..len),
        ("bytes=-1000", len - 1000..len),
        ("bytes=-999999", 0..len),
        ("bytes=32700-99999", 32_700..100_000),
        ("bytes=299990-999999", 299_990..len),
        ("bytes=299999-299999", 299_999..len),
    ];
    for (range, want) in cases {
        let r = get_range(f.addr, &url, range).await;
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.body.len(), want.len(), "{range}: length");
        assert!(r.body == data[want.clone()], "{range}: wrong bytes");
        assert_eq!(
            r.header("content-length"),
            want.len().to_string(),
            "{range}"
        );
        let content_range = format!("bytes {}-{}/{len}", want.start, want.end - 1);
        assert_eq!(r.header("content-range"), content_range, "{range}");
        assert_eq!(r.header("accept-ranges"), "bytes", "{range}");
        let (id, offset, end, _) = f.stream_at().await;
        assert_eq!(offset, want.start as u64, "{range}: StreamAt at its start");
        assert_eq!(end, want.end as u64, "{range}: StreamAt to its end");
        f.closed(id).await;
    }

    // Several ranges: the whole body, with 200.
    let multi = get_range(f.addr, &url, "bytes=0-1, 100-199").await;
    assert_eq!(multi.status, 200);
    assert!(multi.body == data, "multi-range: the whole song");
    assert_eq!(multi.header("content-range"), "");
    let (id, ..) = f.stream_at().await;
    f.closed(id).await;

    // Past the end, or no satisfiable range at all: 416 with */LEN.
    for range in [
        format!("bytes={len}-"),
        "bytes=999999-".into(),
        "bytes=-0".into(),
    ] {
        let r = get_range(f.addr, &url, &range).await;
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(
            r.header("content-range"),
            format!("bytes */{len}"),
            "{range}"
        );
        assert_eq!(r.header("accept-ranges"), "bytes", "{range}");
        assert!(r.body.is_empty(), "{range}");
    }
    f.assert_no_event("a 416 opens no stream");
}

#[tokio::test]
async fn etags_revalidate_and_if_range_keeps_or_drops_the_range() {
    let mut f = one_song(100_000, 32 * 1024).await;
    f.verify_all();
    let url = f.url();
    let etag = fetch(f.addr, "HEAD", &url, &[])
        .await
        .header("etag")
        .to_string();
    assert_eq!(etag, format!("\"{}-0\"", f.manifest.info_hash.to_hex()));

    let fresh = fetch(f.addr, "GET", &url, &[("If-None-Match", &etag)]).await;
    assert_eq!((fresh.status, fresh.body.len()), (304, 0));
    assert_eq!(fresh.header("etag"), etag);
    f.assert_no_event("a 304 opens no stream");

    let same = [("Range", "bytes=10-19"), ("If-Range", etag.as_str())];
    let kept = fetch(f.addr, "GET", &url, &same).await;
    assert_eq!(kept.status, 206);
    assert!(kept.body == f.data[10..20]);
    let (id, ..) = f.stream_at().await;
    f.closed(id).await;

    let other = [("Range", "bytes=10-19"), ("If-Range", "\"changed\"")];
    let dropped = fetch(f.addr, "GET", &url, &other).await;
    assert_eq!(dropped.status, 200);
    assert!(
        dropped.body == f.data,
        "a stale If-Range gets the whole song"
    );
    let (id, ..) = f.stream_at().await;
    f.closed(id).await;
}

#[tokio::test]
async fn head_answers_from_the_manifest_and_starts_no_download() {
    // Nothing verified: a GET would wait; HEAD must not.
    let mut f = one_song(100_000, 32 * 1024).await;
    let url = f.url();
    let head = fetch(f.addr, "HEAD", &url, &[]).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), "100000");
    assert_eq!(head.header("content-type"), "audio/mpeg");
    assert_eq!(head.header("accept-ranges"), "bytes");
    assert!(!head.header("etag").is_empty());
    assert!(head.body.is_empty());
    let probe = fetch(f.addr, "HEAD", &url, &[("Range", "bytes=0-1")]).await;
    assert_eq!(probe.status, 206);
    assert_eq!(probe.header("content-length"), "2");
    assert_eq!(probe.header("content-range"), "bytes 0-1/100000");
    let past = fetch(f.addr, "HEAD", &url, &[("Range", "bytes=100000-")]).await;
    assert_eq!(past.status, 416);
    assert_eq!(past.header("content-range"), "bytes */100000");
    // The room's events are in order: had a HEAD told the coordinator
    // anything, it would come before this GET's StreamAt.
    f.verify([1]);
    let get = get_range(f.addr, &url, "bytes=40000-40009").await;
    assert!(get.body == f.data[40_000..40_010]);
    let (_, offset, ..) = f.stream_at().await;
    assert_eq!(offset, 40_000, "HEAD sent the coordinator something first");
}

#[tokio::test]
async fn every_codec_has_its_content_type() {
    let files = [
        ("a.flac", Some("flac"), "audio/flac"),
        ("b.mp3", Some("mp3"), "audio/mpeg"),
        ("c.ogg", Some("vorbis"), "audio/ogg"),
        ("d.opus", Some("opus"), "audio/ogg"),
        ("e.m4a", Some("mp4"), "audio/mp4"),
        ("f.wav", Some("wav"), "audio/wav"),
        ("g.bin", Some("flac"), "audio/flac"), // the codec tag wins
        ("h.m4a", None, "audio/mp4"),          // else the extension
        ("i.dat", None, "application/octet-stream"),
    ];
    let specs: Vec<FileSpec> = files
        .iter()
        .enumerate()
        .map(|(i, (name, codec, _))| {
            let spec = FileSpec::random(name, 1000 + i, i as u64);
            match codec {
                Some(c) => spec.with_codec(c),
                None => spec,
            }
        })
        .collect();
    let f = serve(&specs, 16 * 1024).await;
    f.verify_all();
    let hash = f.manifest.info_hash.to_hex();
    for (i, (name, _, want)) in files.iter().enumerate() {
        for method in ["HEAD", "GET"] {
            let r = fetch(f.addr, method, &format!("/songs/{hash}/{i}"), &[]).await;
            assert_eq!(r.status, 200, "{method} {name}");
            assert_eq!(r.header("content-type"), *want, "{method} {name}");
            assert_eq!(r.header("content-length"), (1000 + i).to_string());
        }
    }
}

#[tokio::test]
async fn the_body_waits_for_verified_pieces_and_never_sends_others() {
    let piece = 32 * 1024;
    let mut f = one_song(100_000, piece as u64).await;
    // Piece 1 on disk is garbage until it "arrives"; only piece 0 is verified.
    let path = f.dir.path().join("song.mp3");
    let mut garbage = f.data.clone();
    garbage[piece..2 * piece].fill(0xAA);
    std::fs::write(&path, &garbage).unwrap();
    f.verify([0]);
    let mut stream = send(f.addr, "GET", &f.url(), &[]).await;
    let (status, headers, mut body) = read_head(&mut stream).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-length"], "100000");
    let (id, offset, ..) = f.stream_at().await;
    assert_eq!(offset, 0);
    body.extend(read_exactly(&mut stream, piece - body.len()).await);
    // The stream said where it is now, and waits.
    let (next, offset, ..) = f.stream_at().await;
    assert_eq!((next, offset), (id, piece as u64));
    // A bounded look for a byte that must not come (not a synchronisation).
    let mut more = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut more)).await;
    assert!(early.is_err(), "a byte of an unverified piece was sent");
    // The piece arrives, right, and passes its check; then the rest.
    std::fs::write(&path, &f.data).unwrap();
    f.verify(1..f.manifest.piece_count());
    tokio::time::timeout(HTTP_DEADLINE, stream.read_to_end(&mut body))
        .await
        .unwrap()
        .unwrap();
    assert!(body == f.data, "the song differs from the original");
    f.closed(id).await;
}

#[tokio::test]
async fn a_client_that_goes_away_ends_its_stream() {
    let mut f = one_song(100_000, 32 * 1024).await;
    // Waiting for a piece that never comes.
    let mut waiting = send(f.addr, "GET", &f.url(), &[]).await;
    let (status, ..) = read_head(&mut waiting).await;
    assert_eq!(status, 200);
    let (id, ..) = f.stream_at().await;
    drop(waiting);
    f.closed(id).await;
    // And one that leaves mid-body, with the first pieces there.
    f.verify([0, 1]);
    let mut reading = send(f.addr, "GET", &f.url(), &[]).await;
    let (_, _, got) = read_head(&mut reading).await;
    let (id, ..) = f.stream_at().await;
    let _ = read_exactly(&mut reading, 1000usize.saturating_sub(got.len())).await;
    drop(reading);
    f.closed(id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_streams_at_once() {
    let mut f = one_song(200_000, 16 * 1024).await;
    let (addr, url) = (f.addr, f.url());
    let readers: Vec<_> = (0..32)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                let range = format!("bytes={}-", i * 1000);
                (i * 1000, get_range(addr, &url, &range).await)
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    while ids.len() < 32 {
        let (id, ..) = f.stream_at().await;
        ids.insert(id);
    }
    // All 32 are open and waiting; now the pieces arrive.
    f.verify_all();
    for reader in readers {
        let (start, reply) = reader.await.unwrap();
        assert_eq!(reply.status, 206);
        assert!(reply.body == f.data[start..], "stream from {start} differs");
    }
    let mut closed = 0;
    while closed < 32 {
        if let songswarm::swarm::TorrentEvent::StreamClosed { id } = f.next_event().await {
            assert!(ids.remove(&id), "unknown or twice closed stream {id}");
            closed += 1;
        }
    }
}
