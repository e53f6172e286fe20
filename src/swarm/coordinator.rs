//! The one task per torrent: sole owner of the download state.
//!
//! It receives every [`TorrentEvent`] of the torrent on one channel and
//! handles it (`inbox`), feeding the pure [`Scheduler`], and carries out its
//! outputs (`outputs`: commands to peers, piece verification); it sleeps
//! until the scheduler's next time-out or its own housekeeping, whichever
//! is sooner. A torrent with no peer and nothing to do sleeps until an
//! event: thousands of idle songs cost no wake-ups. It dials peers with
//! back-off and runs peer exchange (`dial`). The task itself is started by
//! the torrent's first event (`start`): until then a torrent is its handle.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::SwarmConfig;
use crate::id::Id;
use crate::storage::Storage;
use crate::swarm::connection::ConnectionContext;
use crate::swarm::pieces::PeerKey;
use crate::swarm::rate::RateLimits;
use crate::swarm::scheduler::Scheduler;
use crate::swarm::verified::VerifiedPieces;
use crate::swarm::{PeerCommand, TorrentEvent};

mod dial;
mod idle;
mod inbox;
mod outputs;
mod refusals;
mod slots;
mod start;

use dial::Dial;
use refusals::Refusals;
use start::Dormant;
pub use start::Inbox;

/// How often the coordinator dials the peers that are due, sends peer
/// exchange and publishes progress (the scheduler says when it needs to run).
const HOUSEKEEPING: Duration = Duration::from_millis(500);
/// Depth of the coordinator's inbox.
const INBOX: usize = 4096;

/// What a torrent reports to the application (progress bar, JSON summary).
#[derive(Clone, Debug, Default)]
pub struct TorrentStats {
    /// Number of pieces.
    pub piece_count: u32,
    /// Verified pieces.
    pub have_pieces: u32,
    /// Pieces found verified on disk at start.
    pub resumed_pieces: u32,
    /// Total bytes of the torrent.
    pub total_bytes: u64,
    /// Piece payload received from peers (including discarded duplicates).
    pub downloaded_bytes: u64,
    /// Piece payload sent to peers.
    pub uploaded_bytes: u64,
    /// Pieces that failed their SHA-1 check (their data was thrown away).
    pub failed_pieces: u64,
    /// Peers connected now.
    pub peers: usize,
    /// Connected peers that unchoke us now (may be asked for data).
    pub unchoked_by: usize,
    /// Distinct peers we exchanged handshakes with.
    pub peers_seen: usize,
    /// Every piece is verified and on disk.
    pub complete: bool,
    /// A fatal error stopped the torrent (e.g. the disk is full).
    pub error: Option<String>,
    /// While no peer is connected: the last dial that failed, as
    /// `address: reason` (what a user waiting for peers wants to know).
    pub unreachable: Option<String>,
    /// Pieces a stream needed before they verified (its first piece after
    /// an open or a seek, and one per stall).
    pub late_pieces: u64,
    /// Streams' critical blocks asked of a second, quicker peer because
    /// the first was late.
    pub rescued_blocks: u64,
}

/// The application's handle on a running torrent.
#[derive(Clone, Debug)]
pub struct TorrentHandle {
    /// The torrent.
    pub info_hash: Id,
    /// The coordinator's inbox (incoming connections, peer addresses); the
    /// first event sent starts the coordinator.
    pub events: Inbox,
    /// Progress, updated every half second and on completion.
    pub stats: watch::Receiver<TorrentStats>,
    /// Which pieces have passed their SHA-1 check and are on disk, published by
    /// the coordinator as they verify (a stream waits here for its next piece).
    pub verified: watch::Receiver<VerifiedPieces>,
    /// The torrent's opened files: a stream reads verified pieces from here.
    pub storage: Arc<Storage>,
}

/// Everything a coordinator starts from.
pub struct CoordinatorParams {
    /// The torrent.
    pub info_hash: Id,
    /// Opened data files.
    pub storage: Arc<Storage>,
    /// Tunables.
    pub config: SwarmConfig,
    /// Per piece: already verified on disk.
    pub have: Vec<bool>,
    /// Our peer id.
    pub peer_id: [u8; 20],
    /// Our listen address (never dialled; told to peers).
    pub listen: Option<SocketAddr>,
    /// Process-wide rate caps.
    pub limits: Arc<RateLimits>,
    /// Cancelled at shutdown.
    pub cancel: CancellationToken,
    /// Tracks every task for a clean shutdown.
    pub tracker: TaskTracker,
    /// Seed of the scheduler's randomness.
    pub rng_seed: u64,
    /// The raw `info` dictionary, served to metadata fetchers (BEP 9).
    pub info: Option<bytes::Bytes>,
}

/// One connected peer.
struct Link {
    /// Remote socket address.
    addr: SocketAddr,
    /// Its peer id.
    peer_id: [u8; 20],
    /// We dialled it.
    outgoing: bool,
    /// Its writer's queue.
    commands: mpsc::Sender<PeerCommand>,
    /// Its listen address (from BEP 10 `p`, or the dialled address).
    listen: Option<SocketAddr>,
    /// Its `ut_pex` id, if it speaks peer exchange.
    pex_id: Option<u8>,
    /// Listen addresses already told to it by peer exchange.
    pex_sent: HashSet<SocketAddr>,
    /// When we last sent it peer exchange.
    pex_at: Option<Instant>,
    /// It runs songswarm (may get peer exchange more often).
    ours: bool,
    /// It sent an extension handshake (BEP 10): it takes another.
    extended: bool,
}

/// The coordinator task's state.
pub struct Coordinator {
    /// Shared with every connection of the torrent.
    ctx: Arc<ConnectionContext>,
    /// Tunables.
    config: SwarmConfig,
    /// The pure picker and choker.
    sched: Scheduler,
    /// Inbox.
    inbox: mpsc::Receiver<TorrentEvent>,
    /// Connected peers.
    links: HashMap<PeerKey, Link>,
    /// Addresses we know and may dial.
    known: HashMap<SocketAddr, Dial>,
    /// Outgoing connection keys → the address dialled.
    dialled: HashMap<PeerKey, SocketAddr>,
    /// Incoming connections admitted and not yet connected (our handshake
    /// is on its way) → the remote IP: they hold a slot.
    accepting: HashMap<PeerKey, IpAddr>,
    /// Addresses that sent corrupt data.
    banned: HashSet<SocketAddr>,
    /// Peers (IP and peer id) whose incoming connections are refused:
    /// liars for good, protocol breakers for a while.
    refusals: Refusals,
    /// Peer ids we ever completed a handshake with.
    seen: HashSet<[u8; 20]>,
    /// Next connection key.
    next_key: PeerKey,
    /// Our listen address.
    listen: Option<SocketAddr>,
    /// Complete pieces waiting for a hashing job, with their blocks.
    to_verify: VecDeque<(u32, Vec<Bytes>)>,
    /// Hashing jobs running.
    hashing: usize,
    /// Requests collected while draining a batch of events, sent at its end.
    pending_requests: HashMap<PeerKey, Vec<crate::wire::peer::BlockRef>>,
    /// Pieces verified during the batch, announced to every peer at its end.
    pending_haves: Vec<u32>,
    /// Pieces a super-seed offers each peer, sent at the batch's end: one
    /// command per peer per batch, not one per HAVE it answers (with 16 KiB
    /// pieces a burst of HAVEs filled a fast peer's command queue, and the
    /// seed dropped it as too slow).
    pending_offers: BTreeMap<PeerKey, Vec<u32>>,
    /// When dialling, peer exchange and progress are next due.
    housekeeping_at: Instant,
    /// Published progress.
    stats: watch::Sender<TorrentStats>,
    /// Progress being built.
    current: TorrentStats,
    /// Verified pieces, published as they pass their hash check (streams
    /// wait on it).
    verified: watch::Sender<VerifiedPieces>,
    /// Peers were told (extension handshake `stream`) that we play the
    /// torrent while it downloads.
    told_streaming: bool,
}

/// Makes the handle of one torrent. Its coordinator task starts with the
/// first event sent to it (see [`Inbox`]): until then the torrent is its
/// handle alone.
pub fn spawn(params: CoordinatorParams) -> TorrentHandle {
    let geometry = params.storage.geometry();
    let mut verified = VerifiedPieces::new(geometry.piece_count);
    for (i, _) in params.have.iter().enumerate().filter(|(_, ok)| **ok) {
        verified.set(i as u32);
    }
    let resumed = verified.count();
    let (verified_tx, verified_rx) = watch::channel(verified);
    let current = TorrentStats {
        piece_count: geometry.piece_count,
        have_pieces: resumed,
        resumed_pieces: resumed,
        total_bytes: geometry.total_length,
        complete: resumed == geometry.piece_count,
        ..Default::default()
    };
    let (stats_tx, stats_rx) = watch::channel(current);
    let storage = params.storage.clone();
    let info_hash = params.info_hash;
    TorrentHandle {
        info_hash,
        events: Inbox::dormant(Dormant {
            params,
            stats: stats_tx,
            verified: verified_tx,
        }),
        stats: stats_rx,
        verified: verified_rx,
        storage,
    }
}

impl Coordinator {
    async fn run(mut self: Box<Self>, cancel: CancellationToken) {
        let timer = tokio::time::sleep_until(self.next_wake());
        tokio::pin!(timer);
        loop {
            let wake = self.next_wake();
            if timer.deadline() != wake {
                timer.as_mut().reset(wake);
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                ev = self.inbox.recv() => {
                    let Some(ev) = ev else { break };
                    self.handle_event(ev);
                    // Drain what is already queued before flushing requests,
                    // so one command carries many of them.
                    for _ in 0..256 {
                        match self.inbox.try_recv() {
                            Ok(ev) => self.handle_event(ev),
                            Err(_) => break,
                        }
                    }
                }
                () = &mut timer => self.handle_timers(Instant::now()),
            }
            self.flush_commands();
            self.park_or_wake(Instant::now());
            if self.current.error.is_some() {
                break;
            }
        }
        // The last word: what the torrent moved, to the byte.
        self.publish();
        self.links.clear();
    }

    /// The sooner of the scheduler's next time-out and our housekeeping.
    fn next_wake(&self) -> Instant {
        match self.sched.poll_timeout() {
            Some(t) => Instant::from_std(t).min(self.housekeeping_at),
            None => self.housekeeping_at,
        }
    }

    /// Runs what is due at `now`: the scheduler's time-out, then dialling,
    /// peer exchange and progress. Each moves its deadline past `now`.
    fn handle_timers(&mut self, now: Instant) {
        if self
            .sched
            .poll_timeout()
            .is_some_and(|t| t <= now.into_std())
        {
            self.sched.handle_timeout(now.into_std());
            self.drain_outputs();
        }
        if self.housekeeping_at <= now {
            self.housekeeping_at = now + HOUSEKEEPING;
            self.dial_due(now);
            self.send_pex(now);
            self.publish();
        }
    }

    fn publish(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.current.uploaded_bytes = self.ctx.uploaded.load(Relaxed);
        self.current.downloaded_bytes = self.ctx.downloaded.load(Relaxed);
        self.current.have_pieces = self.sched.pieces().have_count();
        self.current.peers = self.links.len();
        self.current.unchoked_by = self.sched.unchoked_by();
        if self.current.peers > 0 {
            self.current.unreachable = None;
        }
        self.current.peers_seen = self.seen.len();
        self.current.complete = self.sched.is_complete();
        self.current.late_pieces = self.sched.late_pieces();
        self.current.rescued_blocks = self.sched.rescued_blocks();
        self.stats.send_replace(self.current.clone());
    }
}
