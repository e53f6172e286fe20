//! The async shell around [`Node`]: one task owns the node, feeds it
//! messages, commands and time-outs, and carries out its outputs; one task
//! per connection moves bytes (see [`crate::chord::connection`]). Clients
//! of the node hold a [`ChordHandle`].
//!
//! Run-loop contract: after every input, drain `poll_output` until only
//! `poll_timeout` is left, then wait for the next input or that instant.
//! Shutdown: cancelling the handle's token makes the node hand its keys to
//! its successors, then the connections close and every task ends; the
//! `TaskTracker` tells when.
//!
//! Time is tokio's clock (as in the swarm's coordinator), so a test with
//! paused time drives real nodes on real sockets through virtual minutes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::chord::connection::{self, CONN_QUEUE};
use crate::chord::handle::Command;
use crate::chord::message::Message;
use crate::chord::node::{Node, OpId, OpOutcome, Output};
use crate::chord::prober;
use crate::chord::ChordError;
use crate::config::ChordConfig;

pub use crate::chord::handle::ChordHandle;

/// Now, on tokio's clock: virtual under paused time, like every timer here.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// How long a leaving node waits for its hand-over pushes at most.
fn leave_grace(rpc_timeout: Duration) -> Duration {
    rpc_timeout + Duration::from_millis(100)
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
            metrics: Default::default(),
            limiter: crate::chord::handle::limiter(&config),
        };
        let mut node = Node::new(advertise, config, rng_seed, now());
        node.start(now(), bootstrap);
        let task = NodeTask {
            node,
            handle: handle.clone(),
            pool: HashMap::new(),
            ops: HashMap::new(),
            use_clock: 0,
            probes: Arc::new(Semaphore::new(handle.config.max_outstanding_probes)),
        };
        handle.tracker.spawn(task.run(rx));
        handle
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
    /// Room for probes running at once (see `prober`).
    probes: Arc<Semaphore>,
}

impl NodeTask {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let token = self.handle.token.clone();
        let mut leaving_until: Option<Instant> = None;
        loop {
            self.drain();
            if let Some(until) = leaving_until {
                if self.node.leave_settled() || now() >= until {
                    break;
                }
            }
            let wake = match (self.node.poll_timeout(), leaving_until) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a
                    .or(b)
                    .unwrap_or_else(|| now() + self.handle.config.stabilize_interval),
            };
            tokio::select! {
                _ = token.cancelled(), if leaving_until.is_none() => {
                    if self.handle.conn_token.is_cancelled() {
                        break; // killed, not leaving
                    }
                    self.node.leave(now());
                    leaving_until = Some(now() + leave_grace(self.handle.config.rpc_timeout));
                }
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle_command(cmd),
                    None => break,
                },
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                    self.node.handle_timeout(now());
                }
            }
        }
        for (_, reply) in self.ops.drain() {
            let _ = reply.send(Err(ChordError::Shutdown));
        }
        self.handle.conn_token.cancel();
    }

    fn handle_command(&mut self, cmd: Command) {
        let now = now();
        match cmd {
            Command::Accept { stream, remote } => {
                let h = self.handle.clone();
                self.handle
                    .tracker
                    .spawn(connection::serve(h, stream, remote));
            }
            Command::Inbound {
                from,
                msg,
                features,
            } => {
                if matches!(msg, Message::Found { .. }) {
                    self.handle.metrics.lookups.inc();
                }
                self.node.handle_features(from, features);
                self.node.handle_message(now, from, msg)
            }
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
            Command::DialFailed {
                addr,
                conn_id,
                gone,
            } => {
                if self.pool.get(&addr).is_some_and(|e| e.conn_id == conn_id) {
                    self.pool.remove(&addr);
                }
                // A dial that timed out may have met a loaded host: its
                // requests time out and are retried as the node sees fit.
                if gone {
                    self.node.handle_unreachable(now, addr);
                }
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
            Command::Probed {
                peer,
                info_hash,
                verdict,
            } => {
                self.node.on_probe(now, peer, info_hash, verdict);
                self.handle.metrics.probed(verdict);
            }
            Command::Ring { reply } => {
                let _ = reply.send(self.node.ring_info());
            }
            Command::Library {
                after,
                limit,
                reply,
            } => {
                let _ = reply.send(self.node.library_page(after, limit));
            }
        }
    }

    fn drain(&mut self) {
        while let Some(out) = self.node.poll_output() {
            match out {
                Output::Send { to, msg } => {
                    if matches!(msg, Message::FindSuccessor { .. }) {
                        self.handle.metrics.lookup_hops.inc();
                    }
                    self.send(to, msg)
                }
                Output::Done { op, result } => {
                    if let Some(reply) = self.ops.remove(&op) {
                        let _ = reply.send(result);
                    }
                }
                Output::Probe { peer, info_hash } => {
                    prober::spawn(&self.handle, &self.probes, peer, info_hash)
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
    /// sparing those an answer is awaited on while the pool is under twice
    /// the limit: past that, they go too, so that slow answers (waited for
    /// long: see `lookups`) cannot pile connections up until the process
    /// runs out of descriptors. A close is graceful (see `connection`): an
    /// answer still comes, on it or on a connection the other side dials.
    fn evict(&mut self) {
        let limit = self.handle.config.max_connections;
        loop {
            let dialed = self.pool.values().filter(|e| e.dialed).count();
            if dialed <= limit {
                return;
            }
            let node = &self.node;
            let any = dialed > 2 * limit;
            let oldest = self
                .pool
                .iter()
                .filter(|(a, e)| e.dialed && (any || !node.awaits_answer_from(**a)))
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
