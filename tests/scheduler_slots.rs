//! Which peer gives its slot to a new connection when every slot is taken
//! (the pure scheduler under a virtual clock): only a peer with which no
//! piece data moved for a while, peers wanting nothing either way first.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::SeedableRng;
use songswarm::config::SwarmConfig;
use songswarm::geometry::Geometry;
use songswarm::swarm::scheduler::Scheduler;

const PIECE: u64 = 64 * 1024;

fn config() -> SwarmConfig {
    SwarmConfig {
        idle_evict_after: Duration::from_secs(5),
        stalled_evict_after: Duration::from_secs(30),
        ..SwarmConfig::default()
    }
}

/// A seed of 8 pieces.
fn seed(now: Instant) -> Scheduler {
    let mut s = Scheduler::new(
        Geometry::new(PIECE, 8 * PIECE),
        config(),
        StdRng::seed_from_u64(1),
        now,
    );
    for i in 0..8 {
        s.set_have(i);
    }
    s
}

#[test]
fn a_seed_evicts_only_peers_that_stayed_idle() {
    let t0 = Instant::now();
    let mut s = seed(t0);
    // 1 says nothing; 2 is interested and downloads; 3 is interested only.
    for peer in 1..=3 {
        s.handle_peer_connected(t0, peer, None);
    }
    s.handle_peer_interest(t0, 2, true);
    s.handle_peer_interest(t0, 3, true);
    assert_eq!(s.evict_candidate(t0), None, "nobody is idle at connect");
    assert_eq!(
        s.evict_candidate(t0 + Duration::from_secs(4)),
        None,
        "within the grace"
    );
    let t1 = t0 + Duration::from_secs(6);
    s.handle_uploaded(t1 - Duration::from_millis(1), 2, 16384);
    assert_eq!(s.evict_candidate(t1), Some(1), "the silent peer goes first");
    s.handle_peer_gone(t1, 1);
    // 3 has been interested, but nothing moved: it may wait longer.
    assert_eq!(s.evict_candidate(t1), None);
    let t2 = t0 + Duration::from_secs(31);
    assert_eq!(s.evict_candidate(t2), Some(3));
    // 2 keeps downloading: never a candidate.
    s.handle_uploaded(t2, 2, 16384);
    s.handle_peer_gone(t2, 3);
    assert_eq!(s.evict_candidate(t2 + Duration::from_secs(4)), None);
}

#[test]
fn a_leecher_keeps_a_peer_that_sends_data_and_one_it_wants_longer() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(
        Geometry::new(PIECE, 8 * PIECE),
        config(),
        StdRng::seed_from_u64(2),
        t0,
    );
    // 1 has everything (we want it), 2 has nothing, 3 sends us data.
    for peer in 1..=3 {
        s.handle_peer_connected(t0, peer, None);
    }
    s.handle_bitfield(t0, 1, &[0xff]);
    s.handle_bitfield(t0, 3, &[0xff]);
    s.handle_peer_choke(t0, 3, false);
    while s.poll_output().is_some() {}
    let t1 = t0 + Duration::from_secs(10);
    s.handle_block(t1, 3, 0, 0, Bytes::from(vec![0u8; 16384]));
    assert_eq!(
        s.evict_candidate(t1),
        Some(2),
        "the peer with nothing to give"
    );
    s.handle_peer_gone(t1, 2);
    assert_eq!(s.evict_candidate(t1), None, "1 has pieces we want");
    assert_eq!(s.evict_candidate(t0 + Duration::from_secs(31)), Some(1));
}
