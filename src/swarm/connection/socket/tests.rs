use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

#[test]
fn only_a_short_path_gets_the_small_send_buffer() {
    let us = Duration::from_micros;
    assert_eq!(send_buffer_for(Some(us(20))), Some(SHORT_PATH_SEND_BUFFER));
    assert_eq!(send_buffer_for(Some(us(999))), Some(SHORT_PATH_SEND_BUFFER));
    assert_eq!(send_buffer_for(Some(us(1000))), None);
    assert_eq!(send_buffer_for(Some(Duration::from_millis(80))), None);
    // No measurement: keep the large buffer a long path needs.
    assert_eq!(send_buffer_for(None), None);
}

/// Over loopback the kernel's round trip is short, and the send buffer is
/// cut to the short-path size (Linux doubles what is asked).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn loopback_connection_gets_the_short_path_send_buffer() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 68];
        s.read_exact(&mut buf).await.unwrap();
        s.write_all(&buf).await.unwrap();
        s
    });
    let mut dialled = TcpStream::connect(addr).await.unwrap();
    let big = 4 * 1024 * 1024;
    socket2::SockRef::from(&dialled)
        .set_send_buffer_size(big)
        .unwrap();
    dialled.write_all(&[7u8; 68]).await.unwrap();
    let mut back = [0u8; 68];
    dialled.read_exact(&mut back).await.unwrap();
    let _server = accept.await.unwrap();

    let rtt = fit_send_buffer(&dialled).expect("Linux reports a round trip");
    assert!(
        rtt < Duration::from_millis(1),
        "loopback round trip {rtt:?}"
    );
    let now = socket2::SockRef::from(&dialled).send_buffer_size().unwrap();
    assert!(
        (SHORT_PATH_SEND_BUFFER..=2 * SHORT_PATH_SEND_BUFFER).contains(&now),
        "send buffer {now} after fitting"
    );
}
