//! A client that opens a connection and sends half a request line is
//! dropped once the header read time-out passes (it used to hold the
//! connection for ever), while other clients are served meanwhile.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use songswarm::http::{Catalog, HttpContext, HttpServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// The server's header read time-out in this test.
const HEADER_TIMEOUT: Duration = Duration::from_millis(300);
/// Only there to turn a hang into a failure.
const DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_client_that_sends_half_a_request_line_is_dropped() {
    let server = HttpServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
        .with_header_timeout(HEADER_TIMEOUT);
    let addr = server.local_addr();
    let cancel = CancellationToken::new();
    let ctx = HttpContext::new(
        Catalog::default(),
        Arc::new(OnceLock::new()),
        cancel.clone(),
    );
    let served = tokio::spawn(server.run(ctx));

    let opened = Instant::now();
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /metr").await.unwrap();

    // Meanwhile a whole request is answered.
    let mut quick = TcpStream::connect(addr).await.unwrap();
    quick
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(DEADLINE, quick.read_to_end(&mut reply))
        .await
        .expect("the whole request was never answered")
        .unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    // The half request's connection ends: end of stream or a reset, within
    // the deadline (it never ended before the time-out existed).
    let mut got = Vec::new();
    let ended = tokio::time::timeout(DEADLINE, slow.read_to_end(&mut got))
        .await
        .expect("the half request was never dropped");
    let held = opened.elapsed();
    if let Err(e) = ended {
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    }
    assert!(
        held >= HEADER_TIMEOUT,
        "dropped after {held:?}, before the time-out"
    );
    let got = String::from_utf8_lossy(&got);
    assert!(
        !got.contains(" 200 "),
        "the half request was answered: {got}"
    );
    eprintln!("half a request line held the connection {held:?}");

    // The server stops cleanly with the token.
    cancel.cancel();
    tokio::time::timeout(DEADLINE, served)
        .await
        .expect("the server did not stop")
        .unwrap();
}
