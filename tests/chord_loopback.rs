//! Real sockets: many Chord nodes in one process on 127.0.0.1.

#[path = "support/chord_ring.rs"]
mod chord_ring;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chord_ring::{fast_config, ideal_ring, owner_of, start_ring, wait_ideal};
use songswarm::chord::client::ChordClient;
use songswarm::chord::Role;
use songswarm::config::ChordConfig;
use songswarm::id::Id;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn peer(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 20000 + i as u16))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_nodes_agree_on_owners_and_keep_announces_through_kills() {
    let config = fast_config();
    let r = config.successor_list_len;
    let mut nodes = start_ring(64, &config).await;
    wait_ideal(&nodes, r, Duration::from_secs(60))
        .await
        .expect("ring forms");

    // Every lookup agrees with the owner computed from the sorted ring.
    let addrs: Vec<SocketAddr> = nodes.iter().map(|h| h.addr()).collect();
    for k in 0..64 {
        let key = Id::hash(format!("key {k}").as_bytes());
        let info = nodes[(k * 7) % 64].lookup(key).await.expect("lookup");
        assert_eq!(info.owner, owner_of(key, &addrs), "owner of {key}");
        assert_eq!(info.replicas.len(), config.replicas);
        assert!(info.hops <= config.max_hops as u32);
    }

    // Announce, each acknowledged by W replicas.
    let announces: Vec<(Id, SocketAddr)> = (0..40)
        .map(|k| (Id::hash(format!("song {k}").as_bytes()), peer(k)))
        .collect();
    for (k, (hash, p)) in announces.iter().enumerate() {
        nodes[(k * 5) % 64]
            .announce(*hash, *p, Role::Seeder)
            .await
            .expect("announce");
    }

    // Kill 10 nodes, at most one per replica set (N − W = 1 loss allowed):
    // no two victims within N positions of each other on the ring.
    let mut ring: Vec<(Id, usize)> = nodes
        .iter()
        .enumerate()
        .map(|(i, h)| (Id::of_addr(h.addr()), i))
        .collect();
    ring.sort();
    let victims: BTreeSet<usize> = (0..10).map(|v| ring[v * 6 + 1].1).collect();
    for &v in victims.iter().rev() {
        nodes[v].kill().await;
    }
    let mut k = 0;
    nodes.retain(|_| {
        k += 1;
        !victims.contains(&(k - 1))
    });
    wait_ideal(&nodes, r, Duration::from_secs(60))
        .await
        .expect("ring heals");

    // Every announce made before is still returned.
    let deadline = Instant::now() + Duration::from_secs(30);
    for (k, (hash, p)) in announces.iter().enumerate() {
        loop {
            let peers = nodes[(k * 3) % nodes.len()].peers(*hash).await;
            match peers {
                Ok(list) if list.contains(&(*p, Role::Seeder)) => break,
                other if Instant::now() > deadline => panic!("announce {k} lost: {other:?}"),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    let addrs: Vec<SocketAddr> = nodes.iter().map(|h| h.addr()).collect();
    for k in 0..20 {
        let key = Id::hash(format!("after {k}").as_bytes());
        let info = nodes[k % nodes.len()]
            .lookup(key)
            .await
            .expect("lookup after kills");
        assert_eq!(info.owner, owner_of(key, &addrs));
    }
    for h in &nodes {
        h.leave().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_commands_and_bad_connections() {
    let config = fast_config();
    let nodes = start_ring(6, &config).await;
    wait_ideal(&nodes, config.successor_list_len, Duration::from_secs(30))
        .await
        .expect("ring forms");
    let target = nodes[2].addr();
    let mut client = ChordClient::connect(target, Duration::from_secs(5))
        .await
        .expect("connect");
    let hash = Id::hash(b"album");

    // Bad connections, each closed alone while the node keeps serving.
    let mut bt = TcpStream::connect(target).await.unwrap();
    bt.write_all(b"\x13BitTorrent protocol").await.unwrap();
    let mut oversize = TcpStream::connect(target).await.unwrap();
    oversize
        .write_all(b"SSCHORD1\xff\xff\xff\xff")
        .await
        .unwrap();
    let mut garbage = TcpStream::connect(target).await.unwrap();
    garbage
        .write_all(b"SSCHORD1\x00\x00\x00\x03i5e")
        .await
        .unwrap();
    for s in [&mut bt, &mut oversize, &mut garbage] {
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("closed in time");
        assert!(
            matches!(n, Ok(0) | Err(_)),
            "connection should be closed, got {n:?}"
        );
    }

    client
        .announce(hash, peer(1), Role::Seeder)
        .await
        .expect("announce");
    client
        .announce(hash, peer(2), Role::Leecher)
        .await
        .expect("announce");
    let mut peers = client.peers(hash).await.expect("peers");
    peers.sort();
    assert_eq!(
        peers,
        vec![(peer(1), Role::Seeder), (peer(2), Role::Leecher)]
    );
    client.remove(hash, peer(2)).await.expect("remove");
    // The removal survives read repair from any replica: ask every node.
    for h in &nodes {
        let mut c = ChordClient::connect(h.addr(), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(c.peers(hash).await.unwrap(), vec![(peer(1), Role::Seeder)]);
    }
    let info = client.lookup(hash).await.expect("lookup");
    let addrs: Vec<SocketAddr> = nodes.iter().map(|h| h.addr()).collect();
    assert_eq!(info.owner, owner_of(hash, &addrs));
    let ring = client.ring().await.expect("ring");
    assert_eq!(ring.addr, target);
    assert_eq!(ring.successors.len(), 5);
    assert!(ring.joined);
    for h in &nodes {
        h.leave().await;
    }
}

/// The driver reads tokio's clock: with time paused, real nodes on real
/// sockets stabilize as virtual time advances. Their timers are slow, so
/// the ring needs minutes of virtual time, and it forms in a tenth of that
/// on the wall clock. A driver on the wall clock would need those minutes
/// of real time (its timers would never come due in virtual time).
#[tokio::test(start_paused = true)]
async fn a_ring_forms_in_paused_time() {
    // Time-outs are long: with time paused, every wait for a socket is
    // also a jump to the next timer (at most the 500 ms steps below).
    let config = ChordConfig {
        stabilize_interval: Duration::from_secs(30),
        fix_finger_interval: Duration::from_secs(15),
        replicate_interval: Duration::from_secs(60),
        rejoin_interval: Duration::from_secs(60),
        rpc_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(3600),
        ..fast_config()
    };
    let r = config.successor_list_len;
    let (wall, virtual_start) = (Instant::now(), tokio::time::Instant::now());
    let nodes = start_ring(6, &config).await;
    assert!(
        ideal_ring(&nodes, r).await.is_err(),
        "a ring formed before any stabilization round"
    );
    let deadline = virtual_start + Duration::from_secs(1800);
    while let Err(why) = ideal_ring(&nodes, r).await {
        assert!(
            tokio::time::Instant::now() < deadline && wall.elapsed() < Duration::from_secs(60),
            "no ideal ring after {:?} virtual, {:?} real: {why}",
            virtual_start.elapsed(),
            wall.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (virtual_elapsed, wall_elapsed) = (virtual_start.elapsed(), wall.elapsed());
    println!("ring formed after {virtual_elapsed:?} virtual, {wall_elapsed:?} real");
    assert!(
        virtual_elapsed >= config.stabilize_interval / 2,
        "formed after only {virtual_elapsed:?} of virtual time"
    );
    assert!(
        wall_elapsed * 10 < virtual_elapsed,
        "{wall_elapsed:?} of wall-clock time for {virtual_elapsed:?} of virtual time"
    );
    for h in &nodes {
        h.leave().await;
    }
}

/// A node listening on 127.0.0.3 calls its peers from that address, not
/// from the kernel's usual loopback source (127.0.0.1): peers refuse a node
/// that calls from another address than it claims, so it could not join.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_on_other_loopback_addresses_join_one_ring() {
    use songswarm::app::ring::RingOptions;
    use songswarm::app::App;

    let config = fast_config();
    let mut nodes = Vec::new();
    for host in [1u8, 2, 3] {
        let opts = RingOptions {
            bootstrap: nodes
                .iter()
                .map(|h: &songswarm::chord::driver::ChordHandle| h.addr())
                .collect(),
            no_discovery: true,
            chord: config.clone(),
            rng_seed: Some(host as u64),
            ..RingOptions::default()
        };
        let listen = SocketAddr::from(([127, 0, 0, host], 0));
        nodes.push(
            App::bare_node(listen, &opts)
                .await
                .expect("bind on loopback"),
        );
    }
    wait_ideal(&nodes, config.successor_list_len, Duration::from_secs(30))
        .await
        .expect("the three nodes form one ring");
    let key = Id::hash(b"from 127.0.0.3");
    nodes[2]
        .announce(key, nodes[2].addr(), Role::Seeder)
        .await
        .expect("announce from 127.0.0.3");
    let peers = nodes[0].peers(key).await.expect("read from 127.0.0.1");
    assert_eq!(peers, vec![(nodes[2].addr(), Role::Seeder)]);
}
