//! The fast extension's hints in the pure scheduler under a virtual clock
//! (BEP 6): a suggested piece is fetched first among pieces as rare,
//! never before a rarer one; allowed-fast pieces are fetched from a peer
//! that chokes us, and nothing else is asked of it.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::SeedableRng;
use songswarm::config::SwarmConfig;
use songswarm::geometry::{BlockRef, Geometry};
use songswarm::swarm::pieces::PeerKey;
use songswarm::swarm::scheduler::{Output, Scheduler};

const PIECE: u64 = 32 * 1024;
const PIECES: u32 = 40;
const STEP: Duration = Duration::from_millis(50);

fn leecher(seed: u64) -> (Scheduler, Instant) {
    let now = Instant::now();
    let geometry = Geometry::new(PIECE, u64::from(PIECES) * PIECE);
    let cfg = SwarmConfig::default();
    (
        Scheduler::new(geometry, cfg, StdRng::seed_from_u64(seed), now),
        now,
    )
}

/// A bitfield of every piece but `lacks`.
fn bits_without(lacks: &[u32]) -> Vec<u8> {
    let mut bits = vec![0u8; (PIECES as usize).div_ceil(8)];
    for i in (0..PIECES).filter(|i| !lacks.contains(i)) {
        bits[i as usize / 8] |= 0x80 >> (i % 8);
    }
    bits
}

/// Drains the scheduler: requests per peer, in order; pieces to verify.
fn drain(s: &mut Scheduler, asked: &mut Vec<(PeerKey, BlockRef)>, verify: &mut Vec<u32>) {
    while let Some(out) = s.poll_output() {
        match out {
            Output::Request { peer, blocks } => asked.extend(blocks.into_iter().map(|r| (peer, r))),
            Output::Verify { piece, .. } => verify.push(piece),
            Output::Disconnect { reason, .. } => panic!("dropped a peer: {reason}"),
            _ => {}
        }
    }
    assert!(s.check_invariants());
}

/// The pieces in the order they were first asked of `peer`.
fn pieces_asked_of(asked: &[(PeerKey, BlockRef)], peer: PeerKey) -> Vec<u32> {
    let mut order = Vec::new();
    for (k, r) in asked {
        if *k == peer && !order.contains(&r.index) {
            order.push(r.index);
        }
    }
    order
}

#[test]
fn a_suggested_piece_goes_first_among_pieces_as_rare() {
    for seed in 0..20 {
        let (mut s, now) = leecher(seed);
        let (mut asked, mut verify) = (Vec::new(), Vec::new());
        // Three peers hold every piece but 30, which only peer 1 has: it is
        // the rarest. Peer 1 suggests 17 (as common as any other piece).
        for peer in 1..=3 {
            s.handle_peer_connected(now, peer, None);
            let lacks: &[u32] = if peer == 1 { &[] } else { &[30] };
            s.handle_bitfield(now, peer, &bits_without(lacks));
        }
        s.handle_suggest(now, 1, 17);
        drain(&mut s, &mut asked, &mut verify);
        assert!(asked.is_empty(), "asked a peer that chokes us");
        s.handle_peer_choke(now, 1, false);
        drain(&mut s, &mut asked, &mut verify);
        let order = pieces_asked_of(&asked, 1);
        assert!(order.len() >= 2, "seed {seed}: {order:?}");
        assert_eq!(
            order[0], 30,
            "seed {seed}: the rarer piece first: {order:?}"
        );
        assert_eq!(
            order[1], 17,
            "seed {seed}: then the suggested one: {order:?}"
        );
    }
}

#[test]
fn without_a_suggestion_the_order_is_rarest_first_with_random_ties() {
    // The control of the test above: 17 comes second only by chance.
    let second: BTreeSet<u32> = (0..20)
        .map(|seed| {
            let (mut s, now) = leecher(seed);
            let (mut asked, mut verify) = (Vec::new(), Vec::new());
            for peer in 1..=3 {
                s.handle_peer_connected(now, peer, None);
                let lacks: &[u32] = if peer == 1 { &[] } else { &[30] };
                s.handle_bitfield(now, peer, &bits_without(lacks));
            }
            s.handle_peer_choke(now, 1, false);
            drain(&mut s, &mut asked, &mut verify);
            pieces_asked_of(&asked, 1)[1]
        })
        .collect();
    assert!(second.len() > 1, "always {second:?}");
}

#[test]
fn allowed_fast_pieces_come_from_a_peer_that_chokes_us() {
    let (mut s, mut now) = leecher(7);
    let (mut asked, mut verify) = (Vec::new(), Vec::new());
    // One peer with every piece that never unchokes us, and allows 4 and 9.
    s.handle_peer_connected(now, 1, None);
    s.handle_bitfield(now, 1, &bits_without(&[]));
    drain(&mut s, &mut asked, &mut verify);
    assert!(asked.is_empty(), "asked a peer that chokes us");
    s.handle_allowed_fast(now, 1, 4);
    s.handle_allowed_fast(now, 1, 9);
    // It serves what it is asked, a step later, while choking us.
    let mut queue: VecDeque<BlockRef> = VecDeque::new();
    let mut done = BTreeSet::new();
    for _ in 0..200 {
        drain(&mut s, &mut asked, &mut verify);
        queue.extend(asked.drain(..).map(|(peer, r)| {
            assert_eq!(peer, 1);
            assert!(
                r.index == 4 || r.index == 9,
                "asked a choking peer for piece {}",
                r.index
            );
            r
        }));
        now += STEP;
        if let Some(r) = queue.pop_front() {
            let data = Bytes::from(vec![0u8; r.length as usize]);
            s.handle_block(now, 1, r.index, r.begin, data);
        }
        drain(&mut s, &mut asked, &mut verify);
        for piece in verify.drain(..) {
            s.handle_verified(now, piece, true);
            done.insert(piece);
        }
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
        if done.len() == 2 && queue.is_empty() {
            break;
        }
    }
    assert_eq!(
        done,
        BTreeSet::from([4, 9]),
        "the allowed-fast pieces arrived"
    );
    // A choke keeps the allowed-fast requests standing and asks for nothing else.
    s.handle_allowed_fast(now, 1, 12);
    drain(&mut s, &mut asked, &mut verify);
    let before: Vec<u32> = asked.iter().map(|(_, r)| r.index).collect();
    assert!(before.iter().all(|&i| i == 12), "{before:?}");
    s.handle_peer_choke(now, 1, true);
    drain(&mut s, &mut asked, &mut verify);
    assert_eq!(
        asked.iter().filter(|(_, r)| r.index == 12).count(),
        before.len(),
        "the standing requests of piece 12 were not asked again"
    );
}

#[test]
fn a_hint_for_a_piece_that_does_not_exist_drops_the_peer() {
    let (mut s, now) = leecher(1);
    s.handle_peer_connected(now, 1, None);
    s.handle_suggest(now, 1, PIECES);
    let dropped = std::iter::from_fn(|| s.poll_output()).any(|o| {
        matches!(
            o,
            Output::Disconnect {
                peer: 1,
                ban: false,
                ..
            }
        )
    });
    assert!(dropped, "a suggest past the last piece was let through");
    assert_eq!(s.peer_count(), 0);
}
