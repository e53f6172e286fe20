//! A player downloading from a super-seed, both sides the pure scheduler
//! under a virtual clock: the seed (`--super-seed on`) uploads at 1.5x the
//! song's rate over a link with a 20 ms one-way delay, the player reads the
//! song at its real-time rate, 32 KiB pieces. A super-seed announces pieces
//! one at a time, least spread first, so a player that does not say it
//! streams gets them in an order that has nothing to do with its play
//! position (it once waited 9.5 s for its first byte); a player that says
//! so (its extension handshake's `stream` key) gets every piece at once.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::SeedableRng;
use songswarm::config::{SuperSeedMode, SwarmConfig};
use songswarm::geometry::{BlockRef, Geometry, BLOCK_SIZE};
use songswarm::swarm::scheduler::{Output, Scheduler, BOTH_SEEDS};

const STEP: Duration = Duration::from_millis(5);
const ONE_WAY: Duration = Duration::from_millis(20);
/// A 320 kbit/s song: bytes per second of audio.
const BYTE_RATE: u64 = 40_000;
/// A minute of it.
const SONG: u64 = 60 * BYTE_RATE;
const PIECE: u64 = 32 * 1024;
/// How far ahead of the play position the player's body reads.
const BUFFER: Duration = Duration::from_secs(10);
/// Each side knows the other as peer 1.
const OTHER: u64 = 1;

/// What travels over the link.
#[derive(Debug)]
enum Msg {
    Bitfield(Vec<u8>),
    Have(u32),
    Choke(bool),
    Interested(bool),
    Request(BlockRef),
    Cancel(BlockRef),
    Block(BlockRef),
    /// The player's extension handshake with `stream`.
    Streams,
}

struct Run {
    now: Instant,
    start: Instant,
    seed: Scheduler,
    player: Scheduler,
    geometry: Geometry,
    /// In flight to the player / to the seed: (arrival, message).
    to_player: VecDeque<(Instant, Msg)>,
    to_seed: VecDeque<(Instant, Msg)>,
    /// Requests the seed has yet to serve, and whether it unchokes us.
    queue: VecDeque<BlockRef>,
    unchoked: bool,
    budget: f64,
    verifying: Vec<u32>,
    have: Vec<bool>,
    /// Play position, and the piece the body last told the scheduler of.
    pos: u64,
    told: Option<u32>,
    waiting: Option<Instant>,
    first_byte: Option<Duration>,
    stalls: u32,
    stall_time: Duration,
}

impl Run {
    /// Connects a player to a super-seed; `says_it_streams`: its extension
    /// handshake carries `stream`.
    fn new(says_it_streams: bool) -> Run {
        let start = Instant::now();
        let geometry = Geometry::new(PIECE, SONG);
        let cfg = SwarmConfig {
            super_seed: SuperSeedMode::On,
            ..SwarmConfig::default()
        };
        let mut seed = Scheduler::new(geometry, cfg, StdRng::seed_from_u64(3), start);
        for i in 0..geometry.piece_count {
            seed.set_have(i);
        }
        let player = Scheduler::new(
            geometry,
            SwarmConfig::default(),
            StdRng::seed_from_u64(4),
            start,
        );
        let mut run = Run {
            now: start,
            start,
            seed,
            player,
            geometry,
            to_player: VecDeque::new(),
            to_seed: VecDeque::new(),
            queue: VecDeque::new(),
            unchoked: false,
            budget: 0.0,
            verifying: Vec::new(),
            have: vec![false; geometry.piece_count as usize],
            pos: 0,
            told: None,
            waiting: Some(start),
            first_byte: None,
            stalls: 0,
            stall_time: Duration::ZERO,
        };
        run.seed.handle_peer_connected(start, OTHER, None);
        if let Some(bits) = run.seed.bitfield_for(OTHER) {
            run.to_player
                .push_back((start + ONE_WAY, Msg::Bitfield(bits)));
        }
        run.player.handle_peer_connected(start, OTHER, None);
        if says_it_streams {
            run.to_seed.push_back((start + ONE_WAY, Msg::Streams));
        }
        run.drain();
        run.tell();
        run
    }

    fn at(&self) -> Instant {
        self.now + ONE_WAY
    }

    /// Carries out both schedulers' outputs.
    fn drain(&mut self) {
        while let Some(out) = self.seed.poll_output() {
            match out {
                Output::Offer { piece, .. } => {
                    self.to_player.push_back((self.at(), Msg::Have(piece)))
                }
                Output::Choke { choke, .. } => {
                    self.unchoked = !choke;
                    if choke {
                        self.queue.clear();
                    }
                    self.to_player.push_back((self.at(), Msg::Choke(choke)));
                }
                Output::Disconnect { reason, .. } if reason == BOTH_SEEDS => {}
                Output::Disconnect { reason, .. } => {
                    panic!("the seed dropped the player: {reason}")
                }
                _ => {}
            }
        }
        while let Some(out) = self.player.poll_output() {
            let at = self.at();
            match out {
                Output::Request { blocks, .. } => {
                    (self.to_seed).extend(blocks.into_iter().map(|r| (at, Msg::Request(r))));
                }
                Output::Cancel { block, .. } => self.to_seed.push_back((at, Msg::Cancel(block))),
                Output::Interest { interested, .. } => {
                    self.to_seed.push_back((at, Msg::Interested(interested)))
                }
                Output::Have(piece) => self.to_seed.push_back((at, Msg::Have(piece))),
                Output::Verify { piece, .. } => self.verifying.push(piece),
                // Done: it has every piece too.
                Output::Disconnect { reason, .. } if reason == BOTH_SEEDS => {}
                Output::Disconnect { reason, .. } => {
                    panic!("the player dropped the seed: {reason}")
                }
                _ => {}
            }
        }
        assert!(self.seed.check_invariants() && self.player.check_invariants());
    }

    fn step(&mut self) {
        self.now += STEP;
        let now = self.now;
        // The seed's capped link.
        let step = 1.5 * BYTE_RATE as f64 * STEP.as_secs_f64();
        self.budget = (self.budget + step).min(step + f64::from(BLOCK_SIZE));
        while let Some(&r) = self.queue.front() {
            if !self.unchoked || self.budget < f64::from(r.length) {
                break;
            }
            self.budget -= f64::from(r.length);
            self.queue.pop_front();
            self.seed.handle_uploaded(now, OTHER, u64::from(r.length));
            self.to_player.push_back((self.at(), Msg::Block(r)));
        }
        while self.to_seed.front().is_some_and(|(t, _)| *t <= now) {
            let (_, msg) = self.to_seed.pop_front().expect("a message");
            match msg {
                Msg::Request(r) if self.unchoked => self.queue.push_back(r),
                Msg::Cancel(r) => self.queue.retain(|q| *q != r),
                Msg::Interested(i) => self.seed.handle_peer_interest(now, OTHER, i),
                Msg::Have(piece) => self.seed.handle_have(now, OTHER, piece),
                Msg::Streams => self.seed.handle_peer_streams(now, OTHER),
                _ => {}
            }
        }
        while self.to_player.front().is_some_and(|(t, _)| *t <= now) {
            let (_, msg) = self.to_player.pop_front().expect("a message");
            match msg {
                Msg::Bitfield(bits) => self.player.handle_bitfield(now, OTHER, &bits),
                Msg::Have(piece) => self.player.handle_have(now, OTHER, piece),
                Msg::Choke(c) => self.player.handle_peer_choke(now, OTHER, c),
                Msg::Block(r) => {
                    let data = Bytes::from(vec![0u8; r.length as usize]);
                    self.player.handle_block(now, OTHER, r.index, r.begin, data);
                }
                _ => {}
            }
        }
        self.drain();
        for piece in std::mem::take(&mut self.verifying) {
            self.have[piece as usize] = true;
            self.player.handle_verified(now, piece, true);
        }
        self.drain();
        self.play();
        for s in [&mut self.seed, &mut self.player] {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
        }
        self.drain();
    }

    fn piece_at(&self, offset: u64) -> u32 {
        (offset / PIECE) as u32
    }

    /// One step of playing at the song's rate, counting stalls.
    fn play(&mut self) {
        let now = self.now;
        if self.pos >= SONG {
            return;
        }
        if let Some(since) = self.waiting {
            if !self.have[self.piece_at(self.pos) as usize] {
                self.tell();
                return;
            }
            match self.first_byte {
                None => self.first_byte = Some(now - self.start),
                Some(_) => self.stall_time += now - since,
            }
            self.waiting = None;
        }
        let want = (self.pos + (BYTE_RATE as f64 * STEP.as_secs_f64()) as u64).min(SONG);
        while self.pos < want && self.have[self.piece_at(self.pos) as usize] {
            let piece = self.piece_at(self.pos);
            let end = self.geometry.piece_offset(piece) + u64::from(self.geometry.piece_len(piece));
            self.pos = want.min(end);
        }
        if self.pos < want {
            self.stalls += 1;
            self.waiting = Some(now);
        }
        self.tell();
    }

    /// The player's body reads through verified pieces up to its buffer
    /// and tells the scheduler where it is.
    fn tell(&mut self) {
        let limit = SONG.min(self.pos + BYTE_RATE * BUFFER.as_secs());
        let mut read = self.pos;
        while read < limit && self.have[self.piece_at(read) as usize] {
            read = (u64::from(self.piece_at(read)) + 1) * PIECE;
        }
        let read = read.min(limit).min(SONG - 1);
        let piece = self.piece_at(read);
        if self.told != Some(piece) {
            self.told = Some(piece);
            self.player
                .handle_stream_at(self.now, 1, read, SONG, BYTE_RATE);
            self.drain();
        }
    }

    /// Plays the song out; false if that takes over `limit`.
    fn play_out(&mut self, limit: Duration) -> bool {
        while self.pos < SONG && self.now - self.start < limit {
            self.step();
        }
        self.pos >= SONG
    }
}

#[test]
fn a_super_seed_never_delays_a_player_that_says_it_streams() {
    let mut run = Run::new(true);
    assert!(
        run.play_out(Duration::from_secs(240)),
        "the song was played out"
    );
    let first = run.first_byte.expect("a first byte");
    eprintln!(
        "says it streams: first byte after {first:?}, {} stalls ({:?})",
        run.stalls, run.stall_time
    );
    // A piece at the seed's rate, a round trip and a little.
    let bound = Duration::from_secs_f64(PIECE as f64 / (1.5 * BYTE_RATE as f64) + 0.2);
    assert!(first < bound, "first byte after {first:?}, over {bound:?}");
    assert_eq!(run.stalls, 0, "stalled {:?}", run.stall_time);
}

#[test]
fn a_super_seed_offers_a_player_the_first_piece_first_but_stalls_one_that_does_not_say() {
    let mut run = Run::new(false);
    assert!(
        run.play_out(Duration::from_secs(600)),
        "the song was played out"
    );
    let first = run.first_byte.expect("a first byte");
    eprintln!(
        "says nothing: first byte after {first:?}, {} stalls ({:?})",
        run.stalls, run.stall_time
    );
    // The first piece goes out first whoever asks ...
    let bound = Duration::from_secs_f64(2.0 * PIECE as f64 / (1.5 * BYTE_RATE as f64) + 0.2);
    assert!(first < bound, "first byte after {first:?}, over {bound:?}");
    // ... but the rest comes least spread first, not in play order: this
    // is what the `stream` key is for (else this test tests nothing).
    assert!(run.stalls > 0, "super-seeding never delayed the player");
}
