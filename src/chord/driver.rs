//! The async shell around [`Node`]: one task owns the node, feeds it
//! messages, commands and time-outs, and carries out its outputs; one task
//! per connection moves bytes (see [`crate::chord::connection`]).
//!
//! Run-loop contract: after every input, drain `poll_output` until only
//! `poll_timeout` is left, then wait for the next input or that instant.
//! Shutdown: cancelling the handle's token makes the node hand its keys to
//! its successors, then the connections close and every task ends; the
//! `TaskTracker` tells when.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::chord::connection::{self, leave_grace, CONN_QUEUE};
use crate::chord::message::Message;
use crate::chord::node::{Node, OpId, OpOutcome, Output};
use crate::chord::{ChordError, LookupInfo, RingInfo, Role};
use crate::config::ChordConfig;
use crate::id::Id;

/// First byte of a BitTorrent handshake (the length of "BitTorrent protocol").
pub const BITTORRENT_FIRST_BYTE: u8 = 0x13;

/// Starts a client operation on the node, returning its handle.
pub(crate) type StartOp = Box<dyn FnOnce(&mut Node, Instant) -> OpId + Send>;

/// Inputs of the node task.
pub(crate) enum Command {
    /// A node message arrived from the node advertised at `from`.
    Inbound { from: SocketAddr, msg: Message },
    /// An accepted node connection: replies to `addr` may use it.
    Register {
        addr: SocketAddr,
        conn_id: u64,
        tx: mpsc::Sender<Message>,
    },
    /// Dialing `addr` failed.
    DialFailed { addr: SocketAddr, conn_id: u64 },
    /// A connection ended (`failed`: by an error rather than idleness).
    Closed {
        addr: SocketAddr,
        conn_id: u64,
        failed: bool,
    },
    /// A client operation; the node's result goes to `reply`.
    Op {
        start: StartOp,
        reply: oneshot::Sender<Result<OpOutcome, ChordError>>,
    },
    /// A snapshot of the node's view.
    Ring { reply: oneshot::Sender<RingInfo> },
}

/// A running node; cheap to clone, every clone talks to the same node.
#[derive(Clone)]
pub struct ChordHandle {
    /// Input of the node task.
    pub(crate) tx: mpsc::Sender<Command>,
    /// Our advertised address.
    pub(crate) addr: SocketAddr,
    /// Tunables shared with the connection tasks.
    pub(crate) config: Arc<ChordConfig>,
    /// Cancelled to leave the ring.
    token: CancellationToken,
    /// Cancelled by the node task once it has left: closes every connection.
    pub(crate) conn_token: CancellationToken,
    /// Every task of this node.
    tracker: TaskTracker,
    /// Connection ids (to tell a closed connection from its replacement).
    conn_ids: Arc<AtomicU64>,
}

/// Starting a node.
pub struct Driver;

impl Driver {
    /// Start a node advertised at `advertise` inside a process that owns the
    /// listener: feed it Chord streams with [`ChordHandle::serve_inbound`].
    /// Joins through `bootstrap`, or founds a ring if it is empty.
    pub fn start(
        config: ChordConfig,
        advertise: SocketAddr,
        bootstrap: Vec<SocketAddr>,
        rng_seed: u64,
    ) -> ChordHandle {
        let (tx, rx) = mpsc::channel(4096);
        let handle = ChordHandle {
            tx,
            addr: advertise,
            config: Arc::new(config.clone()),
            token: CancellationToken::new(),
            conn_token: CancellationToken::new(),
            tracker: TaskTracker::new(),
            conn_ids: Arc::new(AtomicU64::new(1)),
        };
        let mut node = Node::new(advertise, config, rng_seed, Instant::now());
        node.start(Instant::now(), bootstrap);
        let task = NodeTask {
            node,
            handle: handle.clone(),
            pool: HashMap::new(),
            ops: HashMap::new(),
            use_clock: 0,
        };
        handle.tracker.spawn(task.run(rx));
        handle
    }

    /// Bind `listen`, start a node advertised at `advertise` (default: the
    /// bound address) and serve Chord connections on it. Streams that start
    /// like a BitTorrent handshake are closed: this listener is Chord only.
    pub async fn bind(
        config: ChordConfig,
        listen: SocketAddr,
        advertise: Option<SocketAddr>,
        bootstrap: Vec<SocketAddr>,
        rng_seed: u64,
    ) -> std::io::Result<ChordHandle> {
        let listener = TcpListener::bind(listen).await?;
        let advertise = advertise.unwrap_or(listener.local_addr()?);
        let handle = Driver::start(config, advertise, bootstrap, rng_seed);
        let h = handle.clone();
        handle.tracker.spawn(async move {
            loop {
                tokio::select! {
                    _ = h.conn_token.cancelled() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            let h2 = h.clone();
                            h.tracker.spawn(async move { h2.route_inbound(stream).await });
                        }
                        Err(e) => {
                            // Out of descriptors, usually: back off a little.
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                    },
                }
            }
        });
        Ok(handle)
    }
}

impl ChordHandle {
    /// Our advertised address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serve an accepted stream whose first byte was peeked (not consumed)
    /// and is not 0x13.
    pub fn serve_inbound(&self, stream: TcpStream) {
        let remote = stream.peer_addr().unwrap_or(self.addr);
        let h = self.clone();
        self.tracker
            .spawn(async move { connection::serve(h, stream, remote).await });
    }

    async fn route_inbound(self, stream: TcpStream) {
        let mut first = [0u8; 1];
        let peeked = tokio::time::timeout(self.config.rpc_timeout, stream.peek(&mut first)).await;
        match peeked {
            Ok(Ok(1)) if first[0] != BITTORRENT_FIRST_BYTE => {
                let remote = stream.peer_addr().unwrap_or(self.addr);
                connection::serve(self, stream, remote).await
            }
            Ok(Ok(1)) => {
                tracing::debug!("closing a BitTorrent connection on a Chord-only listener")
            }
            _ => {}
        }
    }

    pub(crate) fn next_conn_id(&self) -> u64 {
        self.conn_ids.fetch_add(1, Ordering::Relaxed)
    }

    async fn op(
        &self,
        start: impl FnOnce(&mut Node, Instant) -> OpId + Send + 'static,
    ) -> Result<OpOutcome, ChordError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Op {
            start: Box::new(start),
            reply,
        };
        self.tx.send(cmd).await.map_err(|_| ChordError::Shutdown)?;
        rx.await.map_err(|_| ChordError::Shutdown)?
    }

    /// Announce `peer` for `info_hash`; Ok once W replicas stored it.
    pub async fn announce(
        &self,
        info_hash: Id,
        peer: SocketAddr,
        role: Role,
    ) -> Result<(), ChordError> {
        self.op(move |n, now| n.announce(now, info_hash, peer, role))
            .await
            .map(|_| ())
    }

    /// Remove `peer` from `info_hash` (e.g. when it stops seeding).
    pub async fn remove(&self, info_hash: Id, peer: SocketAddr) -> Result<(), ChordError> {
        self.op(move |n, now| n.remove(now, info_hash, peer))
            .await
            .map(|_| ())
    }

    /// The live peers of `info_hash`, merged from R replicas.
    pub async fn peers(&self, info_hash: Id) -> Result<Vec<(SocketAddr, Role)>, ChordError> {
        match self.op(move |n, now| n.peers(now, info_hash)).await? {
            OpOutcome::Peers(p) => Ok(p),
            other => Err(ChordError::Remote(format!("unexpected outcome {other:?}"))),
        }
    }

    /// Owner, replica set and hop count of `key`.
    pub async fn lookup(&self, key: Id) -> Result<LookupInfo, ChordError> {
        match self.op(move |n, now| n.lookup(now, key)).await? {
            OpOutcome::Located(info) => Ok(info),
            other => Err(ChordError::Remote(format!("unexpected outcome {other:?}"))),
        }
    }

    /// This node's view of the ring.
    pub async fn ring_info(&self) -> Result<RingInfo, ChordError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Ring { reply })
            .await
            .map_err(|_| ChordError::Shutdown)?;
        rx.await.map_err(|_| ChordError::Shutdown)
    }

    /// Leave the ring cleanly and wait until every task of this node ended.
    pub async fn leave(&self) {
        self.token.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Stop at once, as if the process died (tests and benchmarks use this
    /// to kill nodes): no hand-over, connections dropped.
    pub async fn kill(&self) {
        self.conn_token.cancel();
        self.token.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// The token whose cancellation makes this node leave.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.token.clone()
    }
}

/// One open (or opening) connection of the pool.
struct PoolEntry {
    /// Tells a connection from its replacement in `Closed` reports.
    conn_id: u64,
    /// Queue of the connection task.
    tx: mpsc::Sender<Message>,
    /// Last use, for least-recently-used eviction.
    last_used: u64,
    /// True if we dialed it. Only dialed connections count against the
    /// limit: every connection has exactly one dialer, so capping dialed
    /// ones caps them all, and evicting an accepted one would only make
    /// its dialer reconnect.
    dialed: bool,
}

/// The task that owns the node.
struct NodeTask {
    /// The state machine.
    node: Node,
    /// Shared pieces (config, tokens, tracker).
    handle: ChordHandle,
    /// Connections by peer address.
    pool: HashMap<SocketAddr, PoolEntry>,
    /// Client operations waiting for their result.
    ops: HashMap<OpId, oneshot::Sender<Result<OpOutcome, ChordError>>>,
    /// Logical clock for `last_used`.
    use_clock: u64,
}

impl NodeTask {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let token = self.handle.token.clone();
        let mut leaving_until: Option<Instant> = None;
        loop {
            self.drain();
            if let Some(until) = leaving_until {
                if self.node.leave_settled() || Instant::now() >= until {
                    break;
                }
            }
            let wake = match (self.node.poll_timeout(), leaving_until) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a
                    .or(b)
                    .unwrap_or_else(|| Instant::now() + self.handle.config.stabilize_interval),
            };
            tokio::select! {
                _ = token.cancelled(), if leaving_until.is_none() => {
                    if self.handle.conn_token.is_cancelled() {
                        break; // killed, not leaving
                    }
                    self.node.leave(Instant::now());
                    leaving_until = Some(Instant::now() + leave_grace(self.handle.config.rpc_timeout));
                }
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle_command(cmd),
                    None => break,
                },
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                    self.node.handle_timeout(Instant::now());
                }
            }
        }
        for (_, reply) in self.ops.drain() {
            let _ = reply.send(Err(ChordError::Shutdown));
        }
        self.handle.conn_token.cancel();
    }

    fn handle_command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Inbound { from, msg } => self.node.handle_message(now, from, msg),
            Command::Register { addr, conn_id, tx } => {
                // One connection per pair of nodes. A newer accepted one
                // replaces an older (its dialer dropped that one). When
                // both dialed at once, the lower address's dial wins on
                // both sides. The loser is closed gracefully (see
                // `connection::run_node_conn`), losing no message.
                let replace = match self.pool.get(&addr) {
                    None => true,
                    Some(entry) => !entry.dialed || addr < self.handle.addr,
                };
                if replace {
                    self.use_clock += 1;
                    let last_used = self.use_clock;
                    self.pool.insert(
                        addr,
                        PoolEntry {
                            conn_id,
                            tx,
                            last_used,
                            dialed: false,
                        },
                    );
                }
            }
            Command::DialFailed { addr, conn_id } => {
                if self.pool.get(&addr).is_some_and(|e| e.conn_id == conn_id) {
                    self.pool.remove(&addr);
                }
                self.node.handle_unreachable(now, addr);
            }
            Command::Closed {
                addr,
                conn_id,
                failed,
            } => {
                if self.pool.get(&addr).is_some_and(|e| e.conn_id == conn_id) {
                    self.pool.remove(&addr);
                }
                if failed {
                    self.node.handle_unreachable(now, addr);
                }
            }
            Command::Op { start, reply } => {
                let op = start(&mut self.node, now);
                self.ops.insert(op, reply);
            }
            Command::Ring { reply } => {
                let _ = reply.send(self.node.ring_info());
            }
        }
    }

    fn drain(&mut self) {
        while let Some(out) = self.node.poll_output() {
            match out {
                Output::Send { to, msg } => self.send(to, msg),
                Output::Done { op, result } => {
                    if let Some(reply) = self.ops.remove(&op) {
                        let _ = reply.send(result);
                    }
                }
            }
        }
    }

    /// Queue `msg` on the connection to `to`, dialing one if needed. Never
    /// waits: a connection whose queue is full is stuck and gets replaced.
    fn send(&mut self, to: SocketAddr, msg: Message) {
        self.use_clock += 1;
        let clock = self.use_clock;
        let msg = match self.pool.get_mut(&to) {
            Some(entry) => match entry.tx.try_send(msg) {
                Ok(()) => {
                    entry.last_used = clock;
                    return;
                }
                Err(mpsc::error::TrySendError::Full(m))
                | Err(mpsc::error::TrySendError::Closed(m)) => {
                    self.pool.remove(&to);
                    m
                }
            },
            None => msg,
        };
        let (tx, rx) = mpsc::channel(CONN_QUEUE);
        let _ = tx.try_send(msg);
        let conn_id = self.handle.next_conn_id();
        self.pool.insert(
            to,
            PoolEntry {
                conn_id,
                tx,
                last_used: clock,
                dialed: true,
            },
        );
        let h = self.handle.clone();
        self.handle
            .tracker
            .spawn(connection::dial(h, to, conn_id, rx));
        self.evict();
    }

    /// Close least recently used dialed connections beyond the limit,
    /// sparing those an answer is awaited on: closing one would lose the
    /// answer and make a live node look dead. The limit is soft: it may be
    /// exceeded while every dialed connection carries a request.
    fn evict(&mut self) {
        loop {
            let dialed = self.pool.values().filter(|e| e.dialed).count();
            if dialed <= self.handle.config.max_connections {
                return;
            }
            let node = &self.node;
            let oldest = self
                .pool
                .iter()
                .filter(|(a, e)| e.dialed && !node.awaits_answer_from(**a))
                .min_by_key(|(_, e)| e.last_used)
                .map(|(a, _)| *a);
            match oldest {
                // Dropping the sender ends that connection's task.
                Some(a) => self.pool.remove(&a),
                None => return,
            };
        }
    }
}
