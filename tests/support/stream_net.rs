//! A virtual network for streaming simulations of the pure scheduler.
//!
//! Seeds hold every song (all of it, or all but some pieces). Each has one upload link with a rate cap and a
//! one-way delay; it serves the requests of each connection (one per song)
//! in order, and its connections round-robin, block by block, as TCP
//! connections sharing a capped link roughly do. Every song is one
//! torrent with its own scheduler (as in one process, one coordinator per
//! torrent), hashing is instant and always matches. Players read a song at
//! its real-time rate, reporting where their body reads as an HTTP body
//! does (at open, at a seek, at each new piece), and count stalls.
//! Virtual time moves in steps of [`STEP`]; each scheduler's time-out runs
//! when the clock reaches its `poll_timeout`.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::SeedableRng;
use songswarm::config::SwarmConfig;
use songswarm::geometry::{BlockRef, Geometry, BLOCK_SIZE};
use songswarm::swarm::pieces::PeerKey;
use songswarm::swarm::scheduler::{Output, Scheduler};
use songswarm::swarm::StreamId;

/// One tick of virtual time.
pub const STEP: Duration = Duration::from_millis(5);

/// A seed's link.
#[derive(Clone, Debug)]
pub struct SeedSpec {
    /// Upload cap in bytes per second.
    pub rate: f64,
    /// One-way delay of requests to it and blocks from it.
    pub one_way: Duration,
    /// From this long after the start it uploads at this rate instead.
    pub slows: Option<(Duration, f64)>,
    /// Pieces it lacks (it holds every other one).
    pub lacks: Option<std::ops::Range<u32>>,
}

impl SeedSpec {
    /// A seed uploading `rate` bytes per second with a 20 ms one-way delay.
    pub fn new(rate: f64) -> SeedSpec {
        SeedSpec {
            rate,
            one_way: Duration::from_millis(20),
            slows: None,
            lacks: None,
        }
    }
}

struct Seed {
    spec: SeedSpec,
    /// Bytes it may send now (a token bucket, at most one block of burst).
    budget: f64,
    /// Per song: requests, with when each reaches the seed.
    queues: Vec<VecDeque<(Instant, BlockRef)>>,
    /// The song whose connection sends next.
    turn: usize,
}

/// One song (one torrent) and what happened to it.
pub struct Song {
    /// Its scheduler.
    pub sched: Scheduler,
    /// Its layout.
    pub geometry: Geometry,
    /// When each piece verified.
    pub verified_at: Vec<Option<Instant>>,
    /// Every request sent: when, for which block, to which seed.
    pub requests: Vec<(Instant, BlockRef, PeerKey)>,
    /// Bytes received per seed.
    pub received: BTreeMap<PeerKey, u64>,
    /// Cancels sent.
    pub cancels: usize,
    /// Pieces waiting for their (instant) hash check.
    verifying: Vec<u32>,
}

impl Song {
    /// Whether piece `i` has verified.
    pub fn has(&self, i: u32) -> bool {
        self.verified_at[i as usize].is_some()
    }

    /// The piece holding byte `offset`.
    pub fn piece_at(&self, offset: u64) -> u32 {
        (offset / self.geometry.piece_length) as u32
    }

    /// Total bytes received.
    pub fn received_total(&self) -> u64 {
        self.received.values().sum()
    }
}

/// A player reading one song at its real-time rate.
pub struct Player {
    /// The song it plays.
    pub song: usize,
    /// Its current stream (a seek opens a new one, as a new GET does).
    id: StreamId,
    /// Bytes per second of audio.
    pub byte_rate: u64,
    /// Play position.
    pub pos: u64,
    /// Where the song ends.
    end: u64,
    /// How far ahead of the play position its body reads (the player's
    /// buffer).
    buffer: Duration,
    /// The piece its body last told the scheduler about.
    told: Option<u32>,
    /// When it opened or last sought.
    since: Instant,
    /// Waiting for data: since when (None while playing).
    waiting: Option<Instant>,
    /// The wait is for a seek (else for the first byte or a stall).
    seeking: bool,
    /// Time from open to its first byte.
    pub first_byte: Option<Duration>,
    /// Time from each seek to its first byte.
    pub seeks: Vec<Duration>,
    /// Stalls after the first byte of an open or a seek.
    pub stalls: u32,
    /// Time spent stalled.
    pub stall_time: Duration,
    /// It reached the end of the song.
    pub done: bool,
}

/// Seeds, songs and players under one virtual clock.
pub struct Net {
    /// The clock.
    pub now: Instant,
    /// When the simulation started.
    pub start: Instant,
    seeds: Vec<Seed>,
    /// The songs, each with its scheduler.
    pub songs: Vec<Song>,
    /// The players.
    pub players: Vec<Player>,
    /// Blocks on their way to us: (arrival, song, seed, block).
    wire: Vec<(Instant, usize, usize, BlockRef)>,
    next_stream: StreamId,
    /// Print every request, cancel and arrival (`STREAM_SIM_TRACE=1`).
    trace: bool,
}

impl Net {
    /// Seeds with these links, and no songs yet.
    pub fn new(seeds: &[SeedSpec]) -> Net {
        let now = Instant::now();
        Net {
            now,
            start: now,
            seeds: seeds
                .iter()
                .map(|spec| Seed {
                    spec: spec.clone(),
                    budget: 0.0,
                    queues: Vec::new(),
                    turn: 0,
                })
                .collect(),
            songs: Vec::new(),
            players: Vec::new(),
            wire: Vec::new(),
            next_stream: 1,
            trace: std::env::var_os("STREAM_SIM_TRACE").is_some(),
        }
    }

    /// Adds a song of `length` bytes cut in `piece_length` pieces that
    /// every seed holds; its scheduler connects to every seed. Returns its
    /// index.
    pub fn add_song(&mut self, length: u64, piece_length: u64, cfg: SwarmConfig) -> usize {
        let geometry = Geometry::new(piece_length, length);
        let song = self.songs.len();
        let sched = Scheduler::new(
            geometry,
            cfg,
            StdRng::seed_from_u64(song as u64 + 7),
            self.now,
        );
        self.songs.push(Song {
            sched,
            geometry,
            verified_at: vec![None; geometry.piece_count as usize],
            requests: Vec::new(),
            received: BTreeMap::new(),
            cancels: 0,
            verifying: Vec::new(),
        });
        let n = geometry.piece_count as usize;
        for seed in 0..self.seeds.len() {
            let lacks = self.seeds[seed].spec.lacks.clone().unwrap_or(0..0);
            let mut bits = vec![0u8; n.div_ceil(8)];
            for i in (0..n).filter(|i| !lacks.contains(&(*i as u32))) {
                bits[i / 8] |= 0x80 >> (i % 8);
            }
            self.seeds[seed].queues.push(VecDeque::new());
            let key = seed as PeerKey + 1;
            let s = &mut self.songs[song].sched;
            s.handle_peer_connected(self.now, key, None);
            s.handle_bitfield(self.now, key, &bits);
        }
        // Unchoked once every seed's pieces are known.
        self.drain(song);
        song
    }

    /// Opens a stream of `song` at `offset`, played at `byte_rate`; the
    /// player's body reads up to `buffer` of audio ahead. Returns the
    /// player's index.
    pub fn play(&mut self, song: usize, offset: u64, byte_rate: u64, buffer: Duration) -> usize {
        let id = self.next_stream;
        self.next_stream += 1;
        self.players.push(Player {
            song,
            id,
            byte_rate,
            pos: offset,
            end: self.songs[song].geometry.total_length,
            buffer,
            told: None,
            since: self.now,
            waiting: Some(self.now),
            seeking: false,
            first_byte: None,
            seeks: Vec::new(),
            stalls: 0,
            stall_time: Duration::ZERO,
            done: false,
        });
        let player = self.players.len() - 1;
        self.tell(player);
        player
    }

    /// The player jumps to `offset`: its stream closes and a new one opens
    /// there (a new GET with a Range).
    pub fn seek(&mut self, player: usize, offset: u64) {
        let now = self.now;
        let (song, old) = (self.players[player].song, self.players[player].id);
        self.songs[song].sched.handle_stream_closed(now, old);
        self.drain(song);
        let id = self.next_stream;
        self.next_stream += 1;
        let p = &mut self.players[player];
        p.id = id;
        p.pos = offset;
        p.since = now;
        p.waiting = Some(now);
        p.seeking = true;
        p.told = None;
        self.tell(player);
    }

    /// Runs `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        while self.now < until {
            self.step();
        }
    }

    /// Runs until every player is done; false if that takes over `limit`.
    pub fn run_until_played(&mut self, limit: Duration) -> bool {
        let until = self.now + limit;
        while self.now < until {
            if self.players.iter().all(|p| p.done) {
                return true;
            }
            self.step();
        }
        self.players.iter().all(|p| p.done)
    }

    /// One step of virtual time.
    pub fn step(&mut self) {
        self.now += STEP;
        self.upload();
        self.deliver();
        for song in 0..self.songs.len() {
            for piece in std::mem::take(&mut self.songs[song].verifying) {
                self.songs[song].verified_at[piece as usize] = Some(self.now);
                if self.trace {
                    eprintln!("{:?} song {song} verified {piece}", self.now - self.start);
                }
                self.songs[song]
                    .sched
                    .handle_verified(self.now, piece, true);
                self.drain(song);
            }
        }
        for player in 0..self.players.len() {
            self.advance(player);
        }
        for song in 0..self.songs.len() {
            let s = &mut self.songs[song].sched;
            if s.poll_timeout().is_some_and(|t| t <= self.now) {
                s.handle_timeout(self.now);
                self.drain(song);
            }
        }
    }

    /// Each seed sends what its link allows, its connections in turn.
    fn upload(&mut self) {
        let (now, elapsed) = (self.now, self.now - self.start);
        for (index, seed) in self.seeds.iter_mut().enumerate() {
            let rate = match seed.spec.slows {
                Some((after, slow)) if elapsed >= after => slow,
                _ => seed.spec.rate,
            };
            let step = rate * STEP.as_secs_f64();
            seed.budget = (seed.budget + step).min(step + f64::from(BLOCK_SIZE));
            let songs = seed.queues.len();
            loop {
                let ready = (0..songs)
                    .map(|k| (seed.turn + k) % songs.max(1))
                    .find(|&s| seed.queues[s].front().is_some_and(|(at, _)| *at <= now));
                let Some(song) = ready else { break };
                let Some(&(_, r)) = seed.queues[song].front() else {
                    break;
                };
                if seed.budget < f64::from(r.length) {
                    break;
                }
                seed.budget -= f64::from(r.length);
                seed.queues[song].pop_front();
                seed.turn = (song + 1) % songs;
                self.wire.push((now + seed.spec.one_way, song, index, r));
            }
        }
    }

    /// Blocks that reached us go to their songs' schedulers.
    fn deliver(&mut self) {
        let now = self.now;
        let (arrived, later): (Vec<_>, Vec<_>) =
            self.wire.drain(..).partition(|(at, ..)| *at <= now);
        self.wire = later;
        for (_, song, seed, r) in arrived {
            let key = seed as PeerKey + 1;
            let data = Bytes::from(vec![0u8; r.length as usize]);
            *self.songs[song].received.entry(key).or_default() += u64::from(r.length);
            if self.trace {
                eprintln!("{:?} song {song} got {r:?} from {key}", now - self.start);
            }
            self.songs[song]
                .sched
                .handle_block(now, key, r.index, r.begin, data);
            self.drain(song);
        }
    }

    /// Plays one step of the player's song, and has its body report a new
    /// piece.
    fn advance(&mut self, player: usize) {
        let now = self.now;
        let p = &mut self.players[player];
        let song = &self.songs[p.song];
        if p.done {
            return;
        }
        if let Some(since) = p.waiting {
            if !song.has(song.piece_at(p.pos)) {
                self.tell(player);
                return;
            }
            let waited = now - since;
            if p.first_byte.is_none() {
                p.first_byte = Some(now - p.since);
            } else if p.seeking {
                p.seeks.push(now - p.since);
            } else {
                p.stall_time += waited;
            }
            p.waiting = None;
            p.seeking = false;
        }
        let want = (p.pos + (p.byte_rate as f64 * STEP.as_secs_f64()) as u64).min(p.end);
        while p.pos < want {
            let piece = song.piece_at(p.pos);
            if !song.has(piece) {
                break;
            }
            let piece_end =
                song.geometry.piece_offset(piece) + u64::from(song.geometry.piece_len(piece));
            p.pos = want.min(piece_end);
        }
        if p.pos >= p.end {
            p.done = true;
            let (song, id) = (p.song, p.id);
            self.songs[song].sched.handle_stream_closed(now, id);
            self.drain(song);
            return;
        }
        if p.pos < want {
            p.stalls += 1;
            p.waiting = Some(now);
        }
        self.tell(player);
    }

    /// The player's body reads from the play position through verified
    /// pieces, up to its buffer; at a new piece it tells the scheduler.
    fn tell(&mut self, player: usize) {
        let p = &mut self.players[player];
        let song = &mut self.songs[p.song];
        let limit = p
            .end
            .min(p.pos + (p.byte_rate as f64 * p.buffer.as_secs_f64()) as u64);
        let mut read = p.pos;
        while read < limit && song.has(song.piece_at(read)) {
            let piece = song.piece_at(read);
            read = song.geometry.piece_offset(piece) + u64::from(song.geometry.piece_len(piece));
        }
        let read = read.min(limit).min(p.end - 1);
        let piece = song.piece_at(read);
        if p.told == Some(piece) {
            return;
        }
        p.told = Some(piece);
        song.sched
            .handle_stream_at(self.now, p.id, read, p.end, p.byte_rate);
        let song = p.song;
        self.drain(song);
    }

    /// Carries out what the song's scheduler asked for.
    fn drain(&mut self, song: usize) {
        let now = self.now;
        while let Some(out) = self.songs[song].sched.poll_output() {
            match out {
                Output::Request { peer, blocks } => {
                    let seed = &mut self.seeds[(peer - 1) as usize];
                    let at = now + seed.spec.one_way;
                    if self.trace {
                        eprintln!(
                            "{:?} song {song} asks {peer} for {blocks:?}",
                            now - self.start
                        );
                    }
                    for r in blocks {
                        self.songs[song].requests.push((now, r, peer));
                        seed.queues[song].push_back((at, r));
                    }
                }
                Output::Cancel { peer, block } => {
                    // Cancelled at once if the seed has not sent it yet (a
                    // cancel that crosses the block on the wire costs the
                    // block's bytes; that is not modelled).
                    self.songs[song].cancels += 1;
                    if self.trace {
                        eprintln!(
                            "{:?} song {song} cancels {block:?} at {peer}",
                            now - self.start
                        );
                    }
                    let seed = &mut self.seeds[(peer - 1) as usize];
                    seed.queues[song].retain(|(_, b)| *b != block);
                }
                Output::Interest {
                    peer,
                    interested: true,
                } => {
                    // Every seed unchokes every interested peer.
                    self.songs[song].sched.handle_peer_choke(now, peer, false);
                }
                Output::Verify { piece, .. } => self.songs[song].verifying.push(piece),
                Output::Disconnect { peer, .. } => {
                    self.seeds[(peer - 1) as usize].queues[song].clear();
                }
                Output::Interest { .. }
                | Output::Choke { .. }
                | Output::Have(_)
                | Output::Offer { .. }
                | Output::Complete => {}
            }
        }
        assert!(self.songs[song].sched.check_invariants());
    }
}
