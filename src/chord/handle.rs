//! The handle of a running Chord node, and what it sends the node task.
//!
//! Every clone of a [`ChordHandle`] talks to the same node task (the
//! driver's) over one channel of `Command`s: client operations,
//! snapshots, and what its connections report. The handle spawns nothing
//! itself, so this file depends on neither the driver nor the connections,
//! and both depend on it.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::chord::message::Message;
use crate::chord::metrics::RingMetrics;
use crate::chord::node::{Node, OpId, OpOutcome};
use crate::chord::records::{Record, Song};
use crate::chord::{ChordError, LookupInfo, RingInfo, Role};
use crate::config::ChordConfig;
use crate::id::Id;
use crate::wire::chord::message::{Kind, WireRecord};

/// Starts a client operation on the node, returning its handle.
pub(crate) type StartOp = Box<dyn FnOnce(&mut Node, Instant) -> OpId + Send>;

/// Inputs of the node task.
pub(crate) enum Command {
    /// An accepted stream that the process's listener routed to Chord: the
    /// node task starts its connection task.
    Accept {
        stream: TcpStream,
        remote: SocketAddr,
    },
    /// A node message arrived from the node advertised at `from`, with
    /// the feature bits its frame carried (see `wire::chord::FEATURES`).
    Inbound {
        from: SocketAddr,
        msg: Message,
        features: u64,
    },
    /// An accepted node connection: replies to `addr` may use it.
    Register {
        addr: SocketAddr,
        conn_id: u64,
        tx: mpsc::Sender<Message>,
    },
    /// Dialing `addr` failed; `gone`: refused or reset (evidence that it
    /// is gone), not a time-out or a shortage of our own.
    DialFailed {
        addr: SocketAddr,
        conn_id: u64,
        gone: bool,
    },
    /// A connection ended (`failed`: by an error, a reset or a broken
    /// frame, rather than a close).
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
    /// What a probe of `peer` for `info_hash` found (see `prober`).
    Probed {
        peer: SocketAddr,
        info_hash: Id,
        verdict: crate::chord::probes::Verdict,
    },
    /// A snapshot of the node's view.
    Ring { reply: oneshot::Sender<RingInfo> },
    /// One page of the songs whose metadata the node owns.
    Library {
        after: Option<Id>,
        limit: usize,
        reply: oneshot::Sender<LibraryPage>,
    },
}

/// One page of a node's songs, and the cursor of the next page, if any.
pub type LibraryPage = (Vec<Song>, Option<Id>);

/// The per-source request limiter of a node with `config`.
pub(crate) fn limiter(config: &ChordConfig) -> Arc<DefaultKeyedRateLimiter<IpAddr>> {
    let rate = NonZeroU32::new(config.max_requests_per_source).unwrap_or(NonZeroU32::MIN);
    Arc::new(RateLimiter::keyed(Quota::per_second(rate)))
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
    pub(crate) token: CancellationToken,
    /// Cancelled by the node task once it has left (or by `kill`): closes
    /// every connection, and the listener of a process that is only a node.
    pub(crate) conn_token: CancellationToken,
    /// Every task of this node; `leave` and `kill` wait for them.
    pub(crate) tracker: TaskTracker,
    /// Connection ids (to tell a closed connection from its replacement).
    pub(crate) conn_ids: Arc<AtomicU64>,
    /// The node's counters, shared with the driver, read by `/metrics`.
    pub(crate) metrics: RingMetrics,
    /// Requests per source address (nodes and clients alike), so that no
    /// one address can keep the node busy: beyond its rate, requests go
    /// unanswered.
    pub(crate) limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl ChordHandle {
    /// Our advertised address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The node's counters (lookups, hops, quorum operations).
    pub fn metrics(&self) -> &RingMetrics {
        &self.metrics
    }

    /// Serve an accepted stream whose first byte was peeked (not consumed)
    /// and is not a BitTorrent handshake's. Fails once the node has stopped
    /// (the stream is then dropped, which closes it).
    pub async fn serve_inbound(&self, stream: TcpStream) -> Result<(), ChordError> {
        let remote = stream.peer_addr().unwrap_or(self.addr);
        self.tx
            .send(Command::Accept { stream, remote })
            .await
            .map_err(|_| ChordError::Shutdown)
    }

    /// True if `source` may make one more request now.
    pub(crate) fn admit(&self, source: IpAddr) -> bool {
        // Forget idle sources now and then: the map stays small.
        if self.limiter.len() > 4096 {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&source.to_canonical()).is_ok()
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
        let result = self
            .op(move |n, now| n.announce(now, info_hash, peer, role))
            .await;
        self.metrics.quorum(true, &result);
        result.map(|_| ())
    }

    /// Remove `peer` from `info_hash` (e.g. when it stops seeding).
    pub async fn remove(&self, info_hash: Id, peer: SocketAddr) -> Result<(), ChordError> {
        let result = self.op(move |n, now| n.remove(now, info_hash, peer)).await;
        self.metrics.quorum(true, &result);
        result.map(|_| ())
    }

    /// The live peers of `info_hash`, merged from R replicas.
    pub async fn peers(&self, info_hash: Id) -> Result<Vec<(SocketAddr, Role)>, ChordError> {
        let result = self.op(move |n, now| n.peers(now, info_hash)).await;
        self.metrics.quorum(false, &result);
        match result? {
            OpOutcome::Peers(p) => Ok(p),
            other => Err(ChordError::Remote(format!("unexpected outcome {other:?}"))),
        }
    }

    /// Merge the record `value` (as it travels) into `key`'s replicas; Ok
    /// once W stored it.
    pub async fn put_wire(&self, key: Id, value: WireRecord) -> Result<(), ChordError> {
        let result = self.op(move |n, now| n.put_wire(now, key, &value)).await;
        self.metrics.quorum(true, &result);
        result.map(|_| ())
    }

    /// The record of `kind` at `key`, merged from R replicas (those behind
    /// are repaired), as it travels. Swarm lists are read with [`Self::peers`].
    pub async fn get_wire(&self, key: Id, kind: Kind) -> Result<WireRecord, ChordError> {
        let result = self.op(move |n, now| n.get(now, key, kind)).await;
        self.metrics.quorum(false, &result);
        match result? {
            OpOutcome::Record(record) => Ok(record.to_wire(Instant::now())),
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

    /// Merge the record `make(now)` into the one of its kind at `key`; Ok
    /// once W replicas stored it. (`now` is the node's clock, which
    /// expiries are measured on.)
    pub async fn put(
        &self,
        key: Id,
        make: impl FnOnce(Instant) -> Record + Send + 'static,
    ) -> Result<(), ChordError> {
        let result = self.op(move |n, now| n.put(now, key, make(now))).await;
        self.metrics.quorum(true, &result);
        result.map(|_| ())
    }

    /// The record of `kind` at `key`, merged from R replicas (empty if
    /// none holds one). Not for swarm lists: see [`ChordHandle::peers`].
    pub async fn get(&self, key: Id, kind: Kind) -> Result<Record, ChordError> {
        let result = self.op(move |n, now| n.get(now, key, kind)).await;
        self.metrics.quorum(false, &result);
        match result? {
            OpOutcome::Record(r) => Ok(r),
            other => Err(ChordError::Remote(format!("unexpected outcome {other:?}"))),
        }
    }

    /// One page of the songs whose metadata this node owns, after `after`.
    pub async fn library_page(
        &self,
        after: Option<Id>,
        limit: usize,
    ) -> Result<LibraryPage, ChordError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Library {
            after,
            limit,
            reply,
        };
        self.tx.send(cmd).await.map_err(|_| ChordError::Shutdown)?;
        rx.await.map_err(|_| ChordError::Shutdown)
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

    /// Runs `task` as one of this node's tasks: `leave` and `kill` return
    /// only once it has ended, so it should end once [`Self::stopped`] is
    /// cancelled.
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// Cancelled once the node task has ended, left or killed.
    pub(crate) fn stopped(&self) -> CancellationToken {
        self.conn_token.clone()
    }
}
