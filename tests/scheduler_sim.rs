//! The pure scheduler against scripted fake peers under a virtual clock.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use songswarm::config::{SuperSeedMode, SwarmConfig};
use songswarm::geometry::Geometry;
use songswarm::swarm::pieces::PeerKey;
use songswarm::swarm::scheduler::{Output, Scheduler};
use songswarm::wire::peer::BlockRef;

/// How a fake peer behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Behaviour {
    /// Serves this many blocks per step.
    Honest(usize),
    /// Never unchokes us.
    Choking,
    /// Serves blocks with flipped bits.
    Liar(usize),
    /// Accepts requests and never answers.
    BlackHole,
    /// Serves this many blocks per step, then leaves after this many blocks.
    Leaves(usize, usize),
}

struct FakePeer {
    behaviour: Behaviour,
    queue: VecDeque<BlockRef>,
    served: usize,
    requested: usize,
    cancels: usize,
    gone: bool,
    banned: bool,
}

struct Sim {
    sched: Scheduler,
    content: Vec<u8>,
    geometry: Geometry,
    peers: BTreeMap<PeerKey, FakePeer>,
    now: Instant,
    complete: bool,
    verifying: Vec<(u32, bool)>,
    /// Keep completed pieces waiting for their hash check (a slow hasher).
    hold_verify: bool,
    cancels: usize,
}

const STEP: Duration = Duration::from_millis(100);

impl Sim {
    fn new(pieces: u32, piece_length: u64, seed: u64) -> Sim {
        let cfg = SwarmConfig {
            request_timeout: Duration::from_secs(5),
            ..Default::default()
        };
        Sim::with_config(pieces, piece_length, seed, cfg)
    }

    fn with_config(pieces: u32, piece_length: u64, seed: u64, cfg: SwarmConfig) -> Sim {
        let mut rng = StdRng::seed_from_u64(seed);
        let total = u64::from(pieces) * piece_length - 1000; // short last piece
        let content: Vec<u8> = (0..total).map(|_| rng.gen()).collect();
        let geometry = Geometry::new(piece_length, total);
        let now = Instant::now();
        Sim {
            sched: Scheduler::new(geometry, cfg, StdRng::seed_from_u64(seed), now),
            content,
            geometry,
            peers: BTreeMap::new(),
            now,
            complete: false,
            verifying: Vec::new(),
            hold_verify: false,
            cancels: 0,
        }
    }

    fn full_bitfield(&self) -> Vec<u8> {
        let n = self.geometry.piece_count;
        let mut bits = vec![0u8; (n as usize).div_ceil(8)];
        for i in 0..n {
            bits[(i / 8) as usize] |= 0x80 >> (i % 8);
        }
        bits
    }

    fn add_peer(&mut self, key: PeerKey, behaviour: Behaviour, bits: Vec<u8>) {
        self.peers.insert(
            key,
            FakePeer {
                behaviour,
                queue: VecDeque::new(),
                served: 0,
                requested: 0,
                cancels: 0,
                gone: false,
                banned: false,
            },
        );
        self.sched.handle_peer_connected(self.now, key, None);
        self.sched.handle_bitfield(self.now, key, &bits);
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(out) = self.sched.poll_output() {
            assert!(self.sched.check_invariants(), "invariants after {out:?}");
            match out {
                Output::Request { peer, blocks } => {
                    let p = self.peers.get_mut(&peer).expect("request to a known peer");
                    assert!(!p.gone, "request to a peer that left");
                    p.requested += blocks.len();
                    p.queue.extend(blocks);
                }
                Output::Cancel { peer, block } => {
                    self.cancels += 1;
                    let p = self.peers.get_mut(&peer).unwrap();
                    p.cancels += 1;
                    p.queue.retain(|b| *b != block);
                }
                Output::Interest { peer, interested } => {
                    let p = &self.peers[&peer];
                    if interested && p.behaviour != Behaviour::Choking {
                        self.sched.handle_peer_choke(self.now, peer, false);
                    }
                }
                Output::Choke { .. } | Output::Have(_) | Output::Offer { .. } => {}
                Output::Verify { piece, blocks } => {
                    let start = self.geometry.piece_offset(piece) as usize;
                    let len = self.geometry.piece_len(piece) as usize;
                    let data: Vec<u8> = blocks.iter().flat_map(|b| b.iter().copied()).collect();
                    self.verifying
                        .push((piece, data == self.content[start..start + len]));
                }
                Output::Disconnect { peer, ban, .. } => {
                    let p = self.peers.get_mut(&peer).unwrap();
                    p.gone = true;
                    p.banned = ban;
                }
                Output::Complete => self.complete = true,
            }
        }
    }

    fn step(&mut self) {
        self.now += STEP;
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            let p = self.peers.get_mut(&key).unwrap();
            if p.gone {
                continue;
            }
            let (rate, corrupt) = match p.behaviour {
                Behaviour::Honest(r) => (r, false),
                Behaviour::Liar(r) => (r, true),
                Behaviour::Leaves(r, _) => (r, false),
                Behaviour::Choking | Behaviour::BlackHole => (0, false),
            };
            let mut blocks = Vec::new();
            for _ in 0..rate {
                let Some(r) = p.queue.pop_front() else { break };
                let start = (self.geometry.piece_offset(r.index) + u64::from(r.begin)) as usize;
                let mut data = self.content[start..start + r.length as usize].to_vec();
                if corrupt {
                    data[0] ^= 0xFF;
                }
                blocks.push((r, data));
            }
            p.served += blocks.len();
            let leaves = matches!(p.behaviour, Behaviour::Leaves(_, n) if p.served >= n);
            for (r, data) in blocks {
                self.sched
                    .handle_block(self.now, key, r.index, r.begin, Bytes::from(data));
                self.drain();
            }
            if leaves {
                self.peers.get_mut(&key).unwrap().gone = true;
                self.sched.handle_peer_gone(self.now, key);
                self.drain();
            }
        }
        if !self.hold_verify {
            self.release_verifications();
        }
        // The driver's side of the contract: run the scheduler's time-out
        // when the clock reaches it.
        if self.sched.poll_timeout().is_some_and(|t| t <= self.now) {
            self.sched.handle_timeout(self.now);
        }
        self.drain();
    }

    /// Reports every waiting hash check's result to the scheduler.
    fn release_verifications(&mut self) {
        for (piece, ok) in std::mem::take(&mut self.verifying) {
            self.sched.handle_verified(self.now, piece, ok);
            self.drain();
        }
    }

    /// Runs until complete; None if it does not complete within `limit` steps.
    fn run(&mut self, limit: usize) -> Option<usize> {
        for i in 0..limit {
            if self.complete {
                return Some(i);
            }
            self.step();
        }
        self.complete.then_some(limit)
    }
}

#[test]
fn completes_with_slow_choking_and_leaving_peers() {
    for seed in 0..20 {
        let mut sim = Sim::new(40, 64 * 1024, seed);
        let full = sim.full_bitfield();
        sim.add_peer(1, Behaviour::Honest(4), full.clone());
        sim.add_peer(2, Behaviour::Honest(1), full.clone());
        sim.add_peer(3, Behaviour::Choking, full.clone());
        sim.add_peer(4, Behaviour::Leaves(8, 30), full);
        assert!(sim.run(5_000).is_some(), "seed {seed}: did not complete");
        assert!(sim.sched.pieces().is_complete());
        assert_eq!(sim.peers[&3].requested, 0, "a choking peer is never asked");
        assert!(sim.peers[&4].gone);
    }
}

#[test]
fn pieces_waiting_for_their_hash_check_stop_new_pieces_at_the_byte_budget() {
    // 64 pieces of 64 KiB (4 blocks), a 256 KiB budget: four pieces may
    // wait. A fast honest peer could otherwise fill the whole torrent into
    // memory. At most 16 requests in flight (four pieces' worth).
    let piece_length = 64 * 1024;
    let cfg = SwarmConfig {
        max_verifying_bytes: 4 * piece_length,
        max_pipeline: 16,
        ..Default::default()
    };
    let mut sim = Sim::with_config(64, piece_length, 7, cfg);
    sim.hold_verify = true;
    let bits = sim.full_bitfield();
    sim.add_peer(1, Behaviour::Honest(64), bits);
    for _ in 0..50 {
        sim.step();
    }
    let waiting = sim.verifying.len();
    // Pieces already requested when the budget filled still finish: four
    // more at most, one pipeline's worth. Nothing near the whole torrent.
    assert!(
        (4..=8).contains(&waiting),
        "{waiting} pieces wait for a hash check"
    );
    let requested = sim.peers[&1].requested;
    for _ in 0..50 {
        sim.step();
    }
    assert_eq!(
        sim.verifying.len(),
        waiting,
        "a new piece was finished while the budget was full"
    );
    assert_eq!(
        sim.peers[&1].requested, requested,
        "blocks of a new piece were requested"
    );
    // Once the hashes are checked the download goes on to the end.
    sim.hold_verify = false;
    sim.release_verifications();
    assert!(sim.run(2000).is_some(), "download did not complete");
}

#[test]
fn timed_out_requests_are_reassigned() {
    // Enough pieces that the honest peer is still busy when the 5 s time-out
    // fires: the black hole's blocks must come back through the time-out,
    // not through endgame duplication.
    let mut sim = Sim::new(100, 64 * 1024, 7);
    let full = sim.full_bitfield();
    sim.add_peer(1, Behaviour::BlackHole, full.clone());
    sim.add_peer(2, Behaviour::Honest(2), full);
    let first_batch = sim.peers[&1].requested;
    assert!(first_batch > 1, "the black hole was asked for blocks");
    sim.run(10_000).expect("completes despite the black hole");
    let blocks: usize = (0..100).map(|i| sim.geometry.block_count(i) as usize).sum();
    assert_eq!(
        sim.peers[&2].served, blocks,
        "honest peer served every block"
    );
    // Once timed out the black hole is snubbed (one request at a time), so at
    // most that last one is duplicated and cancelled in endgame.
    assert!(
        sim.peers[&1].cancels <= 1,
        "reassigned by time-out, not endgame: {}",
        sim.peers[&1].cancels
    );
}

#[test]
fn endgame_cancels_duplicate_requests() {
    let mut sim = Sim::new(12, 64 * 1024, 3);
    let full = sim.full_bitfield();
    // A very slow peer holds the last blocks; a fast one duplicates them.
    sim.add_peer(1, Behaviour::Honest(1), full.clone());
    sim.add_peer(2, Behaviour::Honest(16), full);
    sim.run(10_000).expect("completes");
    assert!(sim.cancels > 0, "endgame sent cancels");
}

#[test]
fn liar_is_banned_and_download_completes() {
    for seed in 0..10 {
        let mut sim = Sim::new(30, 64 * 1024, seed);
        let full = sim.full_bitfield();
        sim.add_peer(1, Behaviour::Liar(4), full.clone());
        sim.add_peer(2, Behaviour::Honest(4), full.clone());
        sim.add_peer(3, Behaviour::Honest(2), full);
        assert!(
            sim.run(10_000).is_some(),
            "seed {seed}: completes from honest peers"
        );
        assert!(sim.peers[&1].banned, "seed {seed}: liar banned");
        assert!(
            !sim.peers[&2].banned && !sim.peers[&3].banned,
            "seed {seed}: honest peers kept"
        );
    }
}

#[test]
fn rarest_piece_is_picked_first() {
    for seed in 0..20 {
        let mut sim = Sim::new(20, 64 * 1024, seed);
        // Pieces 0..16 are common (three peers have them); 16..20 only the last peer has.
        let mut common = vec![0u8; 3];
        for i in 0..16 {
            common[i / 8] |= 0x80 >> (i % 8);
        }
        sim.add_peer(1, Behaviour::Choking, common.clone());
        sim.add_peer(2, Behaviour::Choking, common);
        let full = sim.full_bitfield();
        sim.add_peer(3, Behaviour::Honest(1), full);
        let first = sim.peers[&3]
            .queue
            .front()
            .copied()
            .expect("requests sent at unchoke");
        assert!(
            first.index >= 16,
            "seed {seed}: first request for piece {} which is not the rarest",
            first.index
        );
    }
}

#[test]
fn ties_are_broken_differently_by_different_seeds() {
    let firsts: std::collections::HashSet<u32> = (0..20)
        .map(|seed| {
            let mut sim = Sim::new(50, 64 * 1024, seed);
            let full = sim.full_bitfield();
            sim.add_peer(1, Behaviour::Honest(1), full);
            sim.peers[&1].queue.front().unwrap().index
        })
        .collect();
    assert!(
        firsts.len() > 5,
        "random tie-breaking spreads first picks: {firsts:?}"
    );
}

#[test]
fn super_seed_offers_each_piece_once_before_any_second_copy() {
    let (mut seed, now) = super_seed(20, SwarmConfig::default());
    // Offers in the order made: (piece, peer).
    let mut offers: Vec<(u32, PeerKey)> = Vec::new();
    let drain = |seed: &mut Scheduler, offers: &mut Vec<(u32, PeerKey)>| {
        while let Some(out) = seed.poll_output() {
            if let Output::Offer { peer, piece } = out {
                offers.push((piece, peer));
            }
        }
    };
    for peer in 1..=4 {
        seed.handle_peer_connected(now, peer, None);
        assert!(
            seed.bitfield_for(peer).is_none(),
            "a super-seed sends no bitfield"
        );
        seed.handle_peer_interest(now, peer, true);
        drain(&mut seed, &mut offers);
    }
    // Each peer completes what it was offered, round after round.
    for _ in 0..10 {
        let held = offers.clone();
        for (piece, peer) in held {
            seed.handle_have(now, peer, piece);
        }
        drain(&mut seed, &mut offers);
    }
    assert!(
        offers.len() >= 20,
        "pieces kept flowing as peers completed them: {offers:?}"
    );
    let first_round: std::collections::HashSet<u32> =
        offers[..20].iter().map(|(p, _)| *p).collect();
    assert_eq!(
        first_round.len(),
        20,
        "every piece offered once before any twice: {offers:?}"
    );
    // A peer never gets the same piece offered twice.
    let pairs: std::collections::HashSet<(u32, PeerKey)> = offers.iter().copied().collect();
    assert_eq!(pairs.len(), offers.len());
}

/// Regression: a HAVE that arrives while one of the peer's pieces is being
/// hash-checked must not make us lose interest in the peer's other pieces.
/// (We once recounted without the piece under check and then took it off
/// again when it verified, one short: NOT_INTERESTED with a piece still
/// wanted, and the download hung.)
#[test]
fn have_during_verification_keeps_interest() {
    let block = 16 * 1024;
    let geometry = Geometry::new(block as u64, 3 * block as u64);
    let now = Instant::now();
    let mut sched = Scheduler::new(
        geometry,
        SwarmConfig::default(),
        StdRng::seed_from_u64(7),
        now,
    );
    let drain = |s: &mut Scheduler| std::iter::from_fn(|| s.poll_output()).collect::<Vec<_>>();
    let (a, b): (PeerKey, PeerKey) = (1, 2);
    // Peer a has pieces 1 and 2; peer b has piece 0.
    sched.handle_peer_connected(now, a, None);
    sched.handle_bitfield(now, a, &[0b0110_0000]);
    sched.handle_peer_connected(now, b, None);
    sched.handle_bitfield(now, b, &[0b1000_0000]);
    sched.handle_peer_choke(now, a, false);
    sched.handle_peer_choke(now, b, false);
    drain(&mut sched);
    // Piece 0 arrives from b and verifies; piece 1 arrives from a.
    sched.handle_block(now, b, 0, 0, Bytes::from(vec![0u8; block]));
    sched.handle_verified(now, 0, true);
    sched.handle_block(now, a, 1, 0, Bytes::from(vec![1u8; block]));
    drain(&mut sched);
    // While piece 1 is being checked, a announces that it now has piece 0.
    sched.handle_have(now, a, 0);
    sched.handle_verified(now, 1, true);
    let lost_interest = drain(&mut sched)
        .into_iter()
        .any(|o| matches!(o, Output::Interest { peer, interested: false } if peer == a));
    assert!(
        !lost_interest,
        "lost interest in a while it has piece 2, which we still want"
    );
}

/// A super-seed of `pieces` 64 KiB pieces under `cfg`, and a way to drain
/// its outputs into (offers made, unchoked peers).
fn super_seed(pieces: u32, cfg: SwarmConfig) -> (Scheduler, Instant) {
    super_seed_of(64 * 1024, pieces, cfg)
}

/// A super-seed of `pieces` pieces of `piece` bytes under `cfg`, with
/// super-seeding on for every peer.
fn super_seed_of(piece: u64, pieces: u32, cfg: SwarmConfig) -> (Scheduler, Instant) {
    let cfg = SwarmConfig {
        super_seed: SuperSeedMode::On,
        ..cfg
    };
    let geometry = Geometry::new(piece, u64::from(pieces) * piece);
    let now = Instant::now();
    let mut seed = Scheduler::new(geometry, cfg, StdRng::seed_from_u64(3), now);
    for i in 0..pieces {
        seed.set_have(i);
    }
    (seed, now)
}

fn drain_seed(
    seed: &mut Scheduler,
    offers: &mut Vec<(u32, PeerKey)>,
    unchoked: &mut std::collections::BTreeSet<PeerKey>,
) {
    while let Some(out) = seed.poll_output() {
        match out {
            Output::Offer { peer, piece } => offers.push((piece, peer)),
            Output::Choke { peer, choke: false } => {
                unchoked.insert(peer);
            }
            Output::Choke { peer, choke: true } => {
                unchoked.remove(&peer);
            }
            _ => {}
        }
    }
}

/// Under an upload cap (which sends one piece at a time) a super-seed
/// unchokes every interested peer, not just its regular slots: a choked peer
/// would sit on the piece it was offered. After a re-evaluation it keeps
/// even the peers with nothing to fetch unchoked: an offer to a choked peer
/// counts for nothing, so one piece was offered again to every such peer.
#[test]
fn capped_super_seed_unchokes_every_peer() {
    let cfg = SwarmConfig {
        max_upload_rate: Some(2_000_000),
        unchoke_slots: 4,
        ..Default::default()
    };
    let (mut seed, now) = super_seed(40, cfg);
    let (mut offers, mut unchoked) = (Vec::new(), Default::default());
    for peer in 1..=8 {
        seed.handle_peer_connected(now, peer, None);
        seed.handle_peer_interest(now, peer, true);
        drain_seed(&mut seed, &mut offers, &mut unchoked);
    }
    assert_eq!(unchoked.len(), 8, "unchoked: {unchoked:?}");
    // Two peers have fetched all they were offered and lose interest.
    for peer in [7, 8] {
        seed.handle_peer_interest(now, peer, false);
    }
    seed.handle_timeout(now + Duration::from_secs(11));
    drain_seed(&mut seed, &mut offers, &mut unchoked);
    assert_eq!(unchoked.len(), 8, "unchoked after a rechoke: {unchoked:?}");
}

/// A super-seed sends no second copy of a piece while another piece has
/// been offered but reached no peer yet (that would delay the last new
/// pieces); once every piece is out, a piece only one peer holds goes out
/// again to a peer that lacks it.
#[test]
fn super_seed_sends_no_second_copy_until_every_piece_is_out() {
    let (mut seed, now) = super_seed(4, SwarmConfig::default());
    let (mut offers, mut unchoked) = (Vec::new(), Default::default());
    for peer in [1, 2] {
        seed.handle_peer_connected(now, peer, None);
        seed.handle_peer_interest(now, peer, true);
    }
    drain_seed(&mut seed, &mut offers, &mut unchoked);
    // Peer 2 completes everything offered to it, again and again; peer 1
    // completes nothing.
    for _ in 0..4 {
        let mine: Vec<u32> = offers
            .iter()
            .filter(|(_, k)| *k == 2)
            .map(|(p, _)| *p)
            .collect();
        for p in mine {
            seed.handle_have(now, 2, p);
        }
        drain_seed(&mut seed, &mut offers, &mut unchoked);
    }
    let to_one: Vec<u32> = offers
        .iter()
        .filter(|(_, k)| *k == 1)
        .map(|(p, _)| *p)
        .collect();
    let to_two: Vec<u32> = offers
        .iter()
        .filter(|(_, k)| *k == 2)
        .map(|(p, _)| *p)
        .collect();
    assert!(!to_one.is_empty(), "offers: {offers:?}");
    assert!(
        to_two.iter().all(|p| !to_one.contains(p)),
        "a piece still on its way to peer 1 went to peer 2 as well: {offers:?}"
    );
    assert_eq!(to_one.len() + to_two.len(), 4, "every piece offered once");
    // Peer 1 delivers: every piece is out, and peer 2 may now get one that
    // only peer 1 holds.
    for p in &to_one {
        seed.handle_have(now, 1, *p);
    }
    drain_seed(&mut seed, &mut offers, &mut unchoked);
    assert!(
        offers.iter().any(|(p, k)| *k == 2 && to_one.contains(p)),
        "a second copy once every piece was out: {offers:?}"
    );
}

/// A super-seed keeps about a second of a peer's rate on offer, up to 64 MiB
/// whatever the piece size. Counted in pieces (64), 16 KiB pieces put only
/// 1 MiB on offer, which held a lone leecher to a tenth of its speed.
#[test]
fn super_seed_offer_window_is_counted_in_bytes() {
    let (mut seed, now) = super_seed_of(16 * 1024, 8192, SwarmConfig::default());
    let (mut offers, mut unchoked) = (Vec::new(), Default::default());
    seed.handle_peer_connected(now, 1, None);
    seed.handle_peer_interest(now, 1, true);
    seed.handle_timeout(now);
    drain_seed(&mut seed, &mut offers, &mut unchoked);
    assert!(unchoked.contains(&1), "the only peer is unchoked");
    // The peer takes 100 MB in a second (6,104 pieces), then completes the
    // first piece it was offered: the seed tops its offers up.
    let later = now + Duration::from_secs(1);
    seed.handle_uploaded(later, 1, 100_000_000);
    seed.handle_timeout(later);
    seed.handle_have(later, 1, offers[0].0);
    drain_seed(&mut seed, &mut offers, &mut unchoked);
    let on_offer = offers.len() - 1;
    assert_eq!(on_offer, 4096, "64 MiB of 16 KiB pieces on offer");
    let distinct: std::collections::HashSet<u32> = offers.iter().map(|(p, _)| *p).collect();
    assert_eq!(distinct.len(), offers.len(), "no piece offered twice");
    assert!(seed.check_invariants());
}

/// A fast peer of a super-seed gets offers at its rate as soon as it has
/// taken a few pieces, not only after the first tick measures it: with a
/// piece or two on offer, libtorrent requested every block there was,
/// took that for its end-game and kept one request in flight. An unchoked
/// peer starts with two pieces, so it wants one while it completes the
/// other; a slow peer keeps a small window.
#[test]
fn super_seed_offers_a_fast_peer_its_rate_before_the_first_tick() {
    let (mut seed, now) = super_seed_of(1 << 20, 1024, SwarmConfig::default());
    let (mut offers, mut unchoked) = (Vec::new(), Default::default());
    for peer in [1, 2] {
        seed.handle_peer_connected(now, peer, None);
        seed.handle_peer_interest(now, peer, true);
    }
    seed.handle_timeout(now);
    drain_seed(&mut seed, &mut offers, &mut unchoked);
    assert!(unchoked.contains(&1) && unchoked.contains(&2));
    for peer in [1, 2] {
        let on_offer = offers.iter().filter(|(_, p)| *p == peer).count();
        assert_eq!(on_offer, 2, "an unchoked peer starts with two pieces");
    }
    // 20 ms later, before any tick: peer 1 took 16 MiB (800 MB/s), peer 2
    // one block (0.8 MB/s). Each completes its first offered piece.
    let later = now + Duration::from_millis(20);
    seed.handle_uploaded(later, 1, 16 << 20);
    seed.handle_uploaded(later, 2, 16 << 10);
    for peer in [1, 2] {
        let first = offers.iter().find(|(_, p)| *p == peer).unwrap().0;
        seed.handle_have(later, peer, first);
    }
    drain_seed(&mut seed, &mut offers, &mut unchoked);
    let on_offer = |peer| offers.iter().filter(|(_, p)| *p == peer).count() - 1;
    assert_eq!(on_offer(1), 64, "a second of 800 MB/s, capped at 64 MiB");
    assert_eq!(on_offer(2), 3, "the slow peer's window grew by one");
    assert!(seed.check_invariants());
}

/// The scheduler says when it next needs to run: its first tick at once,
/// then every 500 ms, and sooner when a request times out first. A request
/// is given up (and asked again) at its time-out, not at the next tick.
#[test]
fn poll_timeout_is_the_next_tick_or_the_oldest_request_time_out() {
    let ms = Duration::from_millis;
    let cfg = SwarmConfig {
        request_timeout: ms(1200),
        ..Default::default()
    };
    let geometry = Geometry::new(64 * 1024, 4 * 64 * 1024);
    let t0 = Instant::now();
    let mut sched = Scheduler::new(geometry, cfg, StdRng::seed_from_u64(1), t0);
    let requests = |s: &mut Scheduler| {
        std::iter::from_fn(|| s.poll_output())
            .filter_map(|o| match o {
                Output::Request { blocks, .. } => Some(blocks),
                _ => None,
            })
            .flatten()
            .collect::<Vec<BlockRef>>()
    };
    assert_eq!(
        sched.poll_timeout(),
        None,
        "no peer: nothing to time (an idle torrent never wakes)"
    );
    // At 100 ms a peer with every piece unchokes us: requests go out.
    let t1 = t0 + ms(100);
    sched.handle_peer_connected(t1, 1, None);
    sched.handle_bitfield(t1, 1, &[0xf0]);
    sched.handle_peer_choke(t1, 1, false);
    assert!(!requests(&mut sched).is_empty());
    assert_eq!(
        sched.poll_timeout(),
        Some(t1),
        "the first peer starts the ticks at once"
    );
    for tick in [500, 1000] {
        sched.handle_timeout(t0 + ms(tick));
        requests(&mut sched);
    }
    // They time out at 1,300 ms, before the tick at 1,500 ms.
    assert_eq!(sched.poll_timeout(), Some(t1 + ms(1200)));
    sched.handle_timeout(t1 + ms(1200));
    let again = requests(&mut sched);
    assert_eq!(again.len(), 1, "a snubbed peer gets one request: {again:?}");
    assert_eq!(sched.poll_timeout(), Some(t0 + ms(1500)));
    assert!(sched.check_invariants());
}
