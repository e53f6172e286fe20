//! The one task per torrent: sole owner of the download state.
//!
//! It receives every [`PeerEvent`] of the torrent on one channel, feeds them
//! to the pure [`Scheduler`], and carries out its outputs: commands to peers
//! (always `try_send`: a peer whose queue is full is too slow and is dropped),
//! piece verification on blocking threads, dialling peers with back-off.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn, Instrument};

use crate::config::SwarmConfig;
use crate::id::Id;
use crate::storage::Storage;
use crate::swarm::connection::{self, ConnectionContext};
use crate::swarm::pieces::PeerKey;
use crate::swarm::rate::RateLimits;
use crate::swarm::scheduler::{Output, Scheduler};
use crate::swarm::{PeerCommand, PeerEvent};
use crate::wire::peer::Message;

/// How often the scheduler ticks (rates, time-outs, choking, dialling).
const TICK: Duration = Duration::from_millis(500);
/// First retry delay of a peer address that refused or dropped us.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
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
    /// Peers connected now.
    pub peers: usize,
    /// Distinct peers we exchanged handshakes with.
    pub peers_seen: usize,
    /// Every piece is verified and on disk.
    pub complete: bool,
    /// A fatal error stopped the torrent (e.g. the disk is full).
    pub error: Option<String>,
}

/// The application's handle on a running torrent.
#[derive(Clone, Debug)]
pub struct TorrentHandle {
    /// The torrent.
    pub info_hash: Id,
    /// The coordinator's inbox (incoming connections, peer addresses).
    pub events: mpsc::Sender<PeerEvent>,
    /// Progress, updated every tick and on completion.
    pub stats: watch::Receiver<TorrentStats>,
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
}

/// Dial state of one known address.
struct Dial {
    /// Not before this instant.
    next: Instant,
    /// The delay after the next failure.
    backoff: Duration,
    /// The connection dialling it or connected to it.
    active: Option<PeerKey>,
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
    inbox: mpsc::Receiver<PeerEvent>,
    /// Connected peers.
    links: HashMap<PeerKey, Link>,
    /// Addresses we know and may dial.
    known: HashMap<SocketAddr, Dial>,
    /// Outgoing connection keys → the address dialled.
    dialled: HashMap<PeerKey, SocketAddr>,
    /// Addresses that sent corrupt data.
    banned: HashSet<SocketAddr>,
    /// Peer ids we ever completed a handshake with.
    seen: HashSet<[u8; 20]>,
    /// Next connection key.
    next_key: PeerKey,
    /// Our listen address.
    listen: Option<SocketAddr>,
    /// Requests collected while draining a batch of events, sent at its end.
    pending_requests: HashMap<PeerKey, Vec<crate::wire::peer::BlockRef>>,
    /// Published progress.
    stats: watch::Sender<TorrentStats>,
    /// Progress being built.
    current: TorrentStats,
}

/// Starts the coordinator task of one torrent.
pub fn spawn(params: CoordinatorParams) -> TorrentHandle {
    let (tx, rx) = mpsc::channel(INBOX);
    let geometry = params.storage.geometry();
    let now = Instant::now();
    let mut sched = Scheduler::new(
        geometry,
        params.config.clone(),
        StdRng::seed_from_u64(params.rng_seed),
        now.into_std(),
    );
    let mut resumed = 0;
    for (i, ok) in params.have.iter().enumerate() {
        if *ok {
            sched.set_have(i as u32);
            resumed += 1;
        }
    }
    let current = TorrentStats {
        piece_count: geometry.piece_count,
        have_pieces: resumed,
        resumed_pieces: resumed,
        total_bytes: geometry.total_length,
        complete: sched.is_complete(),
        ..Default::default()
    };
    let (stats_tx, stats_rx) = watch::channel(current.clone());
    let ctx = Arc::new(ConnectionContext {
        info_hash: params.info_hash,
        peer_id: params.peer_id,
        geometry,
        storage: params.storage,
        events: tx.clone(),
        limits: params.limits,
        listen_port: params.listen.map(|a| a.port()),
        info: params.info,
        command_queue: params.config.peer_queue,
        cancel: params.cancel.clone(),
        tracker: params.tracker.clone(),
    });
    let coordinator = Coordinator {
        ctx,
        config: params.config,
        sched,
        inbox: rx,
        links: HashMap::new(),
        known: HashMap::new(),
        dialled: HashMap::new(),
        banned: HashSet::new(),
        seen: HashSet::new(),
        next_key: 1,
        listen: params.listen,
        pending_requests: HashMap::new(),
        stats: stats_tx,
        current,
    };
    let span = tracing::info_span!("torrent", info_hash = %params.info_hash.to_hex()[..8]);
    let cancel = params.cancel;
    params
        .tracker
        .spawn(coordinator.run(cancel).instrument(span));
    TorrentHandle {
        info_hash: params.info_hash,
        events: tx,
        stats: stats_rx,
    }
}

impl Coordinator {
    async fn run(mut self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
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
                _ = tick.tick() => {
                    let now = Instant::now();
                    self.sched.handle_tick(now.into_std());
                    self.drain_outputs();
                    self.dial_due(now);
                    self.send_pex(now);
                    self.publish();
                }
            }
            self.flush_requests();
            if self.current.error.is_some() {
                self.publish();
                break;
            }
        }
        self.links.clear();
    }

    fn publish(&mut self) {
        self.current.have_pieces = self.sched.pieces().have_count();
        self.current.peers = self.links.len();
        self.current.peers_seen = self.seen.len();
        self.current.complete = self.sched.is_complete();
        self.stats.send_replace(self.current.clone());
    }

    fn handle_event(&mut self, ev: PeerEvent) {
        let now = Instant::now().into_std();
        match ev {
            PeerEvent::Connected {
                key,
                addr,
                peer_id,
                outgoing,
                commands,
            } => self.connected(key, addr, peer_id, outgoing, commands),
            PeerEvent::Extension { key, handshake } => {
                let Some(link) = self.links.get_mut(&key) else {
                    return;
                };
                link.pex_id = handshake.id_of("ut_pex");
                link.ours = handshake
                    .v
                    .as_deref()
                    .is_some_and(|v| v.starts_with("songswarm"));
                if let Some(p) = handshake.p.filter(|p| *p != 0) {
                    let listen = SocketAddr::new(link.addr.ip(), p);
                    link.listen = Some(listen);
                    // Do not dial a peer that is already connected to us.
                    self.known
                        .entry(listen)
                        .or_insert(Dial {
                            next: Instant::now(),
                            backoff: FIRST_BACKOFF,
                            active: None,
                        })
                        .active = Some(key);
                }
                if let Some(q) = handshake.reqq {
                    self.sched.handle_peer_reqq(now, key, q);
                }
            }
            PeerEvent::Message { key, message } => {
                if !self.links.contains_key(&key) {
                    return;
                }
                match message {
                    Message::Bitfield(bits) => self.sched.handle_bitfield(now, key, &bits),
                    Message::Have(i) => self.sched.handle_have(now, key, i),
                    Message::Choke => self.sched.handle_peer_choke(now, key, true),
                    Message::Unchoke => self.sched.handle_peer_choke(now, key, false),
                    Message::Interested => self.sched.handle_peer_interest(now, key, true),
                    Message::NotInterested => self.sched.handle_peer_interest(now, key, false),
                    Message::Piece { index, begin, data } => {
                        self.current.downloaded_bytes += data.len() as u64;
                        self.sched.handle_block(now, key, index, begin, data);
                    }
                    _ => {}
                }
            }
            PeerEvent::Uploaded { key, bytes } => {
                self.current.uploaded_bytes += bytes;
                self.sched.handle_uploaded(now, key, bytes);
            }
            PeerEvent::Pex { key: _, added } => self.add_peers(added),
            PeerEvent::Closed { key, reason } => self.closed(key, &reason),
            PeerEvent::Incoming { stream, handshake } => {
                let remote = stream.peer_addr().ok();
                if self.links.len() + self.dialled.len() >= self.config.max_peers
                    || remote.is_some_and(|a| self.banned.contains(&a))
                {
                    return;
                }
                let key = self.new_key();
                self.ctx.tracker.spawn(connection::accept(
                    self.ctx.clone(),
                    key,
                    stream,
                    handshake,
                ));
            }
            PeerEvent::AddPeers(addrs) => {
                self.add_peers(addrs);
                self.dial_due(Instant::now());
            }
            PeerEvent::Verified { piece, result } => match result {
                Ok(ok) => {
                    if ok {
                        debug!(piece, "piece verified");
                    } else {
                        warn!(piece, "piece failed its hash check");
                    }
                    self.sched.handle_verified(now, piece, ok);
                }
                Err(e) => self.current.error = Some(e.to_string()),
            },
            PeerEvent::StreamWindow(w) => self.sched.handle_stream_window(now, w),
        }
        self.drain_outputs();
    }

    fn new_key(&mut self) -> PeerKey {
        let k = self.next_key;
        self.next_key += 1;
        k
    }

    fn connected(
        &mut self,
        key: PeerKey,
        addr: SocketAddr,
        peer_id: [u8; 20],
        outgoing: bool,
        commands: mpsc::Sender<PeerCommand>,
    ) {
        if peer_id == self.ctx.peer_id {
            // We dialled ourselves: forget that address for good.
            if let Some(a) = self.dialled.get(&key) {
                self.known.remove(a);
            }
            return;
        }
        if self.banned.contains(&addr) || self.links.len() >= self.config.max_peers {
            return;
        }
        // Two connections to one peer (both dialled at once): both sides keep
        // the one opened by the smaller peer id, so they agree which survives.
        let initiator = |out: bool, theirs: [u8; 20]| if out { self.ctx.peer_id } else { theirs };
        let new_init = initiator(outgoing, peer_id);
        let dup = self
            .links
            .iter()
            .find(|(_, l)| l.peer_id == peer_id)
            .map(|(k, l)| (*k, initiator(l.outgoing, l.peer_id)));
        if let Some((old_key, old_init)) = dup {
            if old_init <= new_init {
                return;
            }
            self.remove_link(old_key);
        }
        self.seen.insert(peer_id);
        let bitfield = self.sched.bitfield_for_new_peer().map(Bytes::from);
        if commands.try_send(PeerCommand::Start { bitfield }).is_err() {
            return;
        }
        let listen = self.dialled.get(&key).copied();
        if let Some(a) = listen {
            if let Some(d) = self.known.get_mut(&a) {
                d.backoff = FIRST_BACKOFF;
            }
        }
        debug!(%addr, key, outgoing, "peer connected");
        self.links.insert(
            key,
            Link {
                addr,
                peer_id,
                outgoing,
                commands,
                listen,
                pex_id: None,
                pex_sent: HashSet::new(),
                pex_at: None,
                ours: false,
            },
        );
        self.sched
            .handle_peer_connected(Instant::now().into_std(), key, None);
    }

    fn remove_link(&mut self, key: PeerKey) {
        if self.links.remove(&key).is_some() {
            self.pending_requests.remove(&key);
            self.sched.handle_peer_gone(Instant::now().into_std(), key);
        }
    }

    fn closed(&mut self, key: PeerKey, reason: &str) {
        let was_connected = self.links.contains_key(&key);
        debug!(key, reason, "peer closed");
        if let Some(link) = self.links.get(&key) {
            if let Some(l) = link.listen {
                if let Some(d) = self.known.get_mut(&l) {
                    if d.active == Some(key) {
                        d.active = None;
                    }
                }
            }
        }
        self.remove_link(key);
        if let Some(addr) = self.dialled.remove(&key) {
            if let Some(d) = self.known.get_mut(&addr) {
                if d.active == Some(key) {
                    d.active = None;
                }
                if was_connected {
                    d.backoff = FIRST_BACKOFF;
                }
                d.next = Instant::now() + d.backoff;
                d.backoff = (d.backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    fn add_peers(&mut self, addrs: Vec<SocketAddr>) {
        for a in addrs {
            if Some(a) == self.listen || self.banned.contains(&a) || a.port() == 0 {
                continue;
            }
            self.known.entry(a).or_insert(Dial {
                next: Instant::now(),
                backoff: FIRST_BACKOFF,
                active: None,
            });
        }
    }

    fn dial_due(&mut self, now: Instant) {
        if self.sched.is_complete() || self.ctx.cancel.is_cancelled() {
            return;
        }
        let due: Vec<SocketAddr> = self
            .known
            .iter()
            .filter(|(_, d)| d.active.is_none() && d.next <= now)
            .map(|(a, _)| *a)
            .collect();
        for addr in due {
            if self.links.len() + self.dialled.len() >= self.config.max_peers {
                break;
            }
            let key = self.new_key();
            if let Some(d) = self.known.get_mut(&addr) {
                d.active = Some(key);
            }
            self.dialled.insert(key, addr);
            self.ctx
                .tracker
                .spawn(connection::dial(self.ctx.clone(), key, addr));
        }
    }

    /// Peer exchange: tell each peer the listen addresses it has not heard of.
    fn send_pex(&mut self, now: Instant) {
        let all: Vec<SocketAddr> = self.links.values().filter_map(|l| l.listen).collect();
        let mut dead = Vec::new();
        for (key, link) in self.links.iter_mut() {
            let Some(ext_id) = link.pex_id else { continue };
            // Other clients accept at most one message a minute.
            let every = if link.ours {
                Duration::from_secs(2)
            } else {
                Duration::from_secs(60)
            };
            if link.pex_at.is_some_and(|t| now.duration_since(t) < every) {
                continue;
            }
            let added: Vec<SocketAddr> = all
                .iter()
                .filter(|a| Some(**a) != link.listen && !link.pex_sent.contains(a))
                .take(50)
                .copied()
                .collect();
            if added.is_empty() {
                continue;
            }
            link.pex_sent.extend(added.iter().copied());
            link.pex_at = Some(now);
            if link
                .commands
                .try_send(PeerCommand::Pex { ext_id, added })
                .is_err()
            {
                dead.push(*key);
            }
        }
        for key in dead {
            self.remove_link(key);
        }
    }

    fn send(&mut self, key: PeerKey, cmd: PeerCommand) {
        let Some(link) = self.links.get(&key) else {
            return;
        };
        if link.commands.try_send(cmd).is_err() {
            info!(
                key,
                "peer too slow to keep up with its command queue, dropping it"
            );
            self.remove_link(key);
        }
    }

    fn flush_requests(&mut self) {
        for (key, blocks) in std::mem::take(&mut self.pending_requests) {
            self.send(key, PeerCommand::Request(blocks));
        }
        self.drain_outputs();
    }

    fn drain_outputs(&mut self) {
        while let Some(out) = self.sched.poll_output() {
            match out {
                Output::Request { peer, blocks } => self
                    .pending_requests
                    .entry(peer)
                    .or_default()
                    .extend(blocks),
                Output::Cancel { peer, block } => {
                    let pending = self.pending_requests.get_mut(&peer);
                    match pending.and_then(|p| p.iter().position(|b| *b == block).map(|i| (p, i))) {
                        Some((p, i)) => {
                            p.remove(i);
                        }
                        None => self.send(peer, PeerCommand::Send(Message::Cancel(block))),
                    }
                }
                Output::Interest { peer, interested } => {
                    let m = if interested {
                        Message::Interested
                    } else {
                        Message::NotInterested
                    };
                    self.send(peer, PeerCommand::Send(m));
                }
                Output::Choke { peer, choke } => self.send(peer, PeerCommand::Choke(choke)),
                Output::Have(piece) => {
                    let keys: Vec<PeerKey> = self.links.keys().copied().collect();
                    for key in keys {
                        self.send(key, PeerCommand::Have(piece));
                    }
                }
                Output::Offer { peer, piece } => {
                    debug!(peer, piece, "offering piece");
                    self.send(peer, PeerCommand::Have(piece));
                }
                Output::Verify { piece, blocks } => self.verify(piece, blocks),
                Output::Disconnect { peer, ban, reason } => {
                    if let Some(link) = self.links.get(&peer) {
                        if ban {
                            warn!(addr = %link.addr, reason, "banning peer");
                            self.banned.insert(link.addr);
                            if let Some(l) = link.listen {
                                self.banned.insert(l);
                                self.known.remove(&l);
                            }
                        } else {
                            debug!(addr = %link.addr, reason, "disconnecting peer");
                        }
                    }
                    // The scheduler already forgot it; dropping the command
                    // sender stops its writer, which stops its reader.
                    self.links.remove(&peer);
                    self.pending_requests.remove(&peer);
                }
                Output::Complete => {
                    info!("download complete");
                    self.publish();
                }
            }
        }
    }

    fn verify(&mut self, piece: u32, blocks: Vec<Bytes>) {
        let storage = self.ctx.storage.clone();
        let events = self.ctx.events.clone();
        self.ctx.tracker.spawn(async move {
            let result =
                tokio::task::spawn_blocking(move || storage.verify_and_write(piece, &blocks)).await;
            let result = match result {
                Ok(r) => r,
                Err(e) => Err(crate::storage::StorageError::Io {
                    path: Default::default(),
                    source: std::io::Error::other(e.to_string()),
                }),
            };
            let _ = events.send(PeerEvent::Verified { piece, result }).await;
        });
    }
}
