//! LAN discovery over real UDP multicast on the loopback interface.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use songswarm::discovery::{discover, DiscoveryConfig, Responder};
use tokio_util::sync::CancellationToken;

/// A group port of our own, so parallel test runs do not answer each other.
fn loopback_config() -> DiscoveryConfig {
    let port = 40000 + (std::process::id() % 20000) as u16;
    DiscoveryConfig {
        group: SocketAddrV4::new(Ipv4Addr::new(239, 255, 77, 78), port),
        interface: Ipv4Addr::LOCALHOST,
        wait: Duration::from_millis(700),
    }
}

#[tokio::test]
async fn query_finds_every_responder_but_itself() {
    let config = loopback_config();
    let token = CancellationToken::new();
    let addrs: Vec<SocketAddr> = ["127.0.0.1:7001", "127.0.0.2:7002", "127.0.0.1:7003"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    let mut tasks = Vec::new();
    for &addr in &addrs {
        let responder = match Responder::bind(&config) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("skipped: this kernel cannot join a multicast group on lo: {e}");
                return;
            }
        };
        tasks.push(tokio::spawn(responder.run(addr, token.clone())));
    }
    // The third responder plays "ourselves": it must be left out.
    let mut found = discover(&config, Some(addrs[2])).await.expect("query sent");
    found.sort();
    assert_eq!(found, vec![addrs[0], addrs[1]]);
    token.cancel();
    for task in tasks {
        task.await.unwrap().expect("responder ends cleanly");
    }
}

#[tokio::test]
async fn query_with_no_ring_finds_nothing() {
    let mut config = loopback_config();
    // Another group than the other test's, so its responders stay silent here.
    config.group = SocketAddrV4::new(Ipv4Addr::new(239, 255, 77, 79), config.group.port());
    config.wait = Duration::from_millis(300);
    assert_eq!(
        discover(&config, None).await.unwrap(),
        Vec::<SocketAddr>::new()
    );
}
