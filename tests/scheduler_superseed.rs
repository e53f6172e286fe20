//! Super-seeding only where it helps, and never a stall (the pure scheduler
//! under a virtual clock): in `auto` mode a lone leecher gets the whole
//! bitfield (once the seed has run a moment: leechers that were waiting
//! for it arrive together), later ones are super-seeded while another
//! leecher is there, and the last one left gets every piece; in any mode a peer that takes
//! its offers and never reports them gets every piece after a short while,
//! and a lone one is offered pieces as it asks, so it never runs dry.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use songswarm::config::{SuperSeedMode, SwarmConfig};
use songswarm::geometry::Geometry;
use songswarm::swarm::pieces::PeerKey;
use songswarm::swarm::scheduler::{Output, Scheduler};

const PIECE: u64 = 64 * 1024;
const PIECES: u32 = 40;

fn seed(mode: SuperSeedMode, now: Instant) -> Scheduler {
    seed_of(mode, now, PIECE, PIECES)
}

/// A seed of `pieces` pieces of `piece` bytes.
fn seed_of(mode: SuperSeedMode, now: Instant, piece: u64, pieces: u32) -> Scheduler {
    let cfg = SwarmConfig {
        super_seed: mode,
        ..SwarmConfig::default()
    };
    let geometry = Geometry::new(piece, u64::from(pieces) * piece);
    let mut s = Scheduler::new(geometry, cfg, StdRng::seed_from_u64(5), now);
    for i in 0..pieces {
        s.set_have(i);
    }
    s
}

/// The pieces offered (announced by HAVE) to each peer so far.
fn offers(s: &mut Scheduler, to: PeerKey) -> BTreeSet<u32> {
    let mut got = BTreeSet::new();
    while let Some(out) = s.poll_output() {
        if let Output::Offer { peer, piece } = out {
            if peer == to {
                got.insert(piece);
            }
        }
    }
    got
}

fn connect(s: &mut Scheduler, now: Instant, peer: PeerKey) {
    s.handle_peer_connected(now, peer, None);
    s.handle_peer_interest(now, peer, true);
}

#[test]
fn auto_super_seeds_only_beside_another_leecher() {
    let start = Instant::now();
    let mut s = seed(SuperSeedMode::Auto, start);
    let t0 = start + Duration::from_secs(3);
    connect(&mut s, t0, 1);
    assert!(
        s.bitfield_for(1).is_some(),
        "a lone leecher gets the bitfield"
    );
    connect(&mut s, t0, 2);
    connect(&mut s, t0, 3);
    assert!(
        s.bitfield_for(2).is_none(),
        "a second leecher is super-seeded"
    );
    assert!(s.bitfield_for(3).is_none());
    let offered = offers(&mut s, 2);
    assert!(
        !offered.is_empty() && offered.len() < PIECES as usize,
        "{offered:?}"
    );
    // 1 and 3 leave: 2 is alone, and gets every piece it was not offered.
    s.handle_peer_gone(t0, 1);
    s.handle_peer_gone(t0, 3);
    s.handle_timeout(t0 + Duration::from_millis(500));
    let rest = offers(&mut s, 2);
    let all: BTreeSet<u32> = offered.union(&rest).copied().collect();
    assert_eq!(
        all.len(),
        PIECES as usize,
        "a lone leecher is not super-seeded"
    );
    assert!(offered.is_disjoint(&rest), "no piece announced twice");
    assert!(s.check_invariants());
}

/// Leechers that were waiting for a new seed arrive a few milliseconds
/// apart: the first is not taken for a lone one.
#[test]
fn a_new_auto_seed_super_seeds_the_first_of_leechers_arriving_together() {
    let start = Instant::now();
    let mut s = seed(SuperSeedMode::Auto, start);
    connect(&mut s, start + Duration::from_millis(20), 1);
    assert!(s.bitfield_for(1).is_none());
    connect(&mut s, start + Duration::from_millis(25), 2);
    assert!(s.bitfield_for(2).is_none());
    // Alone after all: once the wait is over it gets every piece.
    s.handle_peer_gone(start + Duration::from_millis(30), 2);
    let mut announced = offers(&mut s, 1);
    s.handle_timeout(start + Duration::from_secs(1));
    announced.extend(offers(&mut s, 1));
    assert!(
        announced.len() < PIECES as usize,
        "fell back within the wait"
    );
    s.handle_timeout(start + Duration::from_millis(2500));
    announced.extend(offers(&mut s, 1));
    assert_eq!(announced.len(), PIECES as usize);
    assert!(s.check_invariants());
}

#[test]
fn off_sends_every_peer_the_bitfield() {
    let t0 = Instant::now();
    let mut s = seed(SuperSeedMode::Off, t0);
    for peer in 1..=3 {
        connect(&mut s, t0, peer);
        assert!(s.bitfield_for(peer).is_some());
    }
    assert!(offers(&mut s, 2).is_empty());
}

/// A lone peer under `on`: it takes every byte it is offered and never
/// says HAVE (as a client that skips HAVEs to a seed does).
#[test]
fn a_peer_that_never_reports_gets_every_piece_after_a_short_while() {
    let t0 = Instant::now();
    let mut s = seed(SuperSeedMode::On, t0);
    connect(&mut s, t0, 1);
    assert!(s.bitfield_for(1).is_none());
    let mut announced = BTreeSet::new();
    let mut all_at = None;
    for step in 0..40u32 {
        let now = t0 + Duration::from_millis(250) * step;
        s.handle_timeout(now);
        let new = offers(&mut s, 1);
        // It takes at once whatever it is offered, and reports nothing.
        s.handle_uploaded(now, 1, new.len() as u64 * PIECE);
        announced.extend(new);
        if announced.len() == PIECES as usize {
            all_at = Some(now - t0);
            break;
        }
    }
    let all_at = all_at.expect("the silent peer never got every piece");
    assert!(
        all_at >= Duration::from_secs(1),
        "it got every piece at {all_at:?}: super-seeding never started"
    );
    assert!(s.check_invariants());
}

#[test]
fn a_peer_that_reports_stays_super_seeded() {
    let t0 = Instant::now();
    let mut s = seed(SuperSeedMode::On, t0);
    connect(&mut s, t0, 1);
    s.handle_timeout(t0);
    let mut offered = offers(&mut s, 1);
    let mut now = t0;
    for _ in 0..4 {
        now += Duration::from_secs(1);
        s.handle_uploaded(now, 1, offered.len() as u64 * PIECE);
        for &p in &offered {
            s.handle_have(now, 1, p);
        }
        now += Duration::from_secs(2);
        s.handle_timeout(now);
        offered = offers(&mut s, 1);
        assert!(
            offered.len() < PIECES as usize / 2,
            "offered {} pieces at once",
            offered.len()
        );
    }
    assert!(s.check_invariants());
}

/// What a leecher like rqbit does, which sends a seed no HAVE and, once it
/// has a free request slot and no piece left to ask for, looks again only
/// 5 s later: it asks for the pieces it knows of, one after another,
/// keeping `window` pieces in flight, and asks for the next one each time
/// a piece's data is in. Returns how many of the `pieces` it got before it
/// found nothing to ask for (all of them: it never ran dry).
fn silent_client(s: &mut Scheduler, mut now: Instant, pieces: u32, window: usize) -> usize {
    let peer = 1;
    let (mut known, mut asked) = (BTreeSet::new(), BTreeSet::new());
    let mut in_flight = VecDeque::new();
    let (mut unchoked, mut done) = (false, 0);
    loop {
        while let Some(out) = s.poll_output() {
            match out {
                Output::Offer { peer: p, piece } if p == peer => {
                    known.insert(piece);
                }
                Output::Choke { peer: p, choke } if p == peer => unchoked = !choke,
                _ => {}
            }
        }
        if unchoked && in_flight.len() < window && asked.len() < pieces as usize {
            let Some(&piece) = known.difference(&asked).next() else {
                return done;
            };
            asked.insert(piece);
            in_flight.push_back(piece);
            s.handle_peer_requested(now, peer, piece);
            continue;
        }
        // The data of the oldest piece in flight arrives (the seed counts
        // the bytes; the client reports nothing).
        if in_flight.pop_front().is_none() {
            return done;
        }
        s.handle_uploaded(now, peer, PIECE_1M);
        done += 1;
        now += Duration::from_millis(1);
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
    }
}

const PIECE_1M: u64 = 1 << 20;

/// A lone client that never reports a piece, connecting in a new auto
/// seed's first moments (when it is still super-seeded, since others may
/// be on their way): every piece reaches it while it still has requests
/// in flight, none waits for the seed's time-outs.
#[test]
fn a_lone_silent_leecher_never_runs_dry_in_a_new_auto_seed() {
    let start = Instant::now();
    let pieces = 64;
    let mut s = seed_of(SuperSeedMode::Auto, start, PIECE_1M, pieces);
    let t0 = start + Duration::from_millis(20);
    connect(&mut s, t0, 1);
    assert!(s.bitfield_for(1).is_none(), "super-seeded at first");
    // The first tick, due as the first peer connects.
    s.handle_timeout(t0);
    let got = silent_client(&mut s, t0, pieces, 2);
    assert_eq!(got, pieces as usize, "it ran dry after {got} pieces");
    assert!(s.check_invariants());
}

/// The same client beside another leecher asks for its offers and gets
/// no more for it: offers ahead of requests are for a lone leecher only,
/// the others' pieces go one peer at a time.
#[test]
fn requests_bring_no_offers_ahead_beside_another_leecher() {
    let start = Instant::now();
    let mut s = seed_of(SuperSeedMode::Auto, start, PIECE_1M, 64);
    let t0 = start + Duration::from_millis(20);
    connect(&mut s, t0, 1);
    connect(&mut s, t0, 2);
    let offered = offers(&mut s, 1);
    assert!(!offered.is_empty());
    for &piece in &offered {
        s.handle_peer_requested(t0, 1, piece);
    }
    assert!(offers(&mut s, 1).is_empty(), "offered ahead of requests");
    assert!(s.check_invariants());
}
