//! The task per peer connection.
//!
//! After the handshake a connection is two halves. The reader decodes frames
//! and publishes [`TorrentEvent`]s to the coordinator; requests for our data go
//! straight to the writer, which serves them from disk on its own, knowing
//! which pieces we have and whether the peer is choked from the coordinator's
//! [`PeerCommand`](crate::swarm::PeerCommand)s. Keeping reads and writes in separate tasks means two
//! peers that upload to each other can never both block on a full socket.
//! The writer lives in `writer.rs`, its send queue in `outbox.rs`; `socket.rs`
//! fits the socket's send buffer to the path once the handshakes are done.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, Instrument};

use crate::geometry::{bitfield_has, bitfield_len, bitfield_set, Geometry};
use crate::id::Id;
use crate::storage::Storage;
use crate::swarm::pieces::PeerKey;
use crate::swarm::rate::RateLimits;
use crate::swarm::TorrentEvent;
use crate::wire::handshake::{self, Handshake, HandshakeError};
use crate::wire::metadata::{self, MetadataMsg};
use crate::wire::peer::{
    parse_pex, ExtensionHandshake, Message, PeerCodec, PeerWireError, UT_PEX_ID,
};
use writer::{Upload, Writer};

mod outbox;
mod socket;
mod writer;

/// Time allowed to connect and exchange handshakes.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A peer silent this long is gone (it must send a keep-alive every 2 min).
const IDLE_TIMEOUT: Duration = Duration::from_secs(180);
/// Requests we queue per peer (what we advertise as `reqq`); more is abuse.
pub const REQUEST_QUEUE: usize = 1024;
/// Socket buffer size asked of the kernel: long fast paths want large ones
/// (a short path gets a smaller send buffer after the handshake, see `socket`).
pub const SOCKET_BUFFER: u32 = 4 * 1024 * 1024;

/// What every connection of one torrent shares.
#[derive(Debug)]
pub struct ConnectionContext {
    /// The torrent.
    pub info_hash: Id,
    /// Our peer id.
    pub peer_id: [u8; 20],
    /// Piece layout (bitfield size, request bounds).
    pub geometry: Geometry,
    /// The torrent's data, for serving requests.
    pub storage: Arc<Storage>,
    /// The coordinator's inbox.
    pub events: mpsc::Sender<TorrentEvent>,
    /// Process-wide rate caps.
    pub limits: Arc<RateLimits>,
    /// Our listen port, told to peers in the extension handshake.
    pub listen_port: Option<u16>,
    /// The torrent's raw `info` dictionary, served to peers that fetch the
    /// metadata (BEP 9); None when we do not have it.
    pub info: Option<Bytes>,
    /// Depth of each connection's command queue.
    pub command_queue: usize,
    /// We announce the fast extension (BEP 6) in our handshakes.
    pub fast: bool,
    /// Piece payload bytes sent to peers, counted by the writers as they
    /// send (the stats read it: exact, not as of the last report).
    pub uploaded: AtomicU64,
    /// Piece payload bytes received from peers, counted by the readers.
    pub downloaded: AtomicU64,
    /// Cancelled when the torrent (or process) shuts down.
    pub cancel: CancellationToken,
    /// Tracks the writer tasks for a clean shutdown.
    pub tracker: TaskTracker,
}

/// Dials `addr`, exchanges handshakes and runs the connection.
pub async fn dial(ctx: Arc<ConnectionContext>, key: PeerKey, addr: SocketAddr) {
    let span = tracing::debug_span!("peer", %addr, key, out = true);
    async {
        match connect_and_handshake(&ctx, addr).await {
            Ok((stream, theirs)) => run(ctx, key, stream, addr, theirs, true).await,
            Err(reason) => closed(&ctx, key, reason).await,
        }
    }
    .instrument(span)
    .await
}

/// Connects and exchanges handshakes, all within [`HANDSHAKE_TIMEOUT`].
async fn connect_and_handshake(
    ctx: &ConnectionContext,
    addr: SocketAddr,
) -> Result<(TcpStream, Handshake), String> {
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| e.to_string())?;
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let mut stream = timeout_at(deadline, socket.connect(addr))
        .await
        .map_err(|_| HandshakeError::TimedOut.to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let ours = Handshake::new(ctx.info_hash, ctx.peer_id).with_fast(ctx.fast);
    let left = deadline.saturating_duration_since(Instant::now());
    let theirs = handshake::exchange(&mut stream, &ours, left)
        .await
        .map_err(|e| e.to_string())?;
    Ok((stream, theirs))
}

/// Answers an incoming connection whose handshake the listener already read.
pub async fn accept(
    ctx: Arc<ConnectionContext>,
    key: PeerKey,
    mut stream: TcpStream,
    theirs: Handshake,
) {
    let addr = match stream.peer_addr() {
        Ok(a) => a,
        Err(e) => return closed(&ctx, key, e.to_string()).await,
    };
    let span = tracing::debug_span!("peer", %addr, key, out = false);
    async {
        let _ = stream.set_nodelay(true);
        let ours = Handshake::new(ctx.info_hash, ctx.peer_id).with_fast(ctx.fast);
        if let Err(e) = handshake::write_ours(&mut stream, &ours, HANDSHAKE_TIMEOUT).await {
            return closed(&ctx, key, e.to_string()).await;
        }
        run(ctx, key, stream, addr, theirs, false).await
    }
    .instrument(span)
    .await
}

async fn closed(ctx: &ConnectionContext, key: PeerKey, reason: String) {
    ended(ctx, key, Ending::gone(reason)).await;
}

/// Why a connection ended.
struct Ending {
    /// For the log.
    reason: String,
    /// The peer broke the protocol.
    violation: bool,
}

impl Ending {
    fn gone(reason: impl Into<String>) -> Ending {
        Ending {
            reason: reason.into(),
            violation: false,
        }
    }

    fn broke(reason: impl Into<String>) -> Ending {
        Ending {
            reason: reason.into(),
            violation: true,
        }
    }
}

async fn ended(ctx: &ConnectionContext, key: PeerKey, end: Ending) {
    let Ending { reason, violation } = end;
    debug!(%reason, violation, "connection closed");
    let closed = TorrentEvent::Closed {
        key,
        reason,
        violation,
    };
    let _ = ctx.events.send(closed).await;
}

async fn run(
    ctx: Arc<ConnectionContext>,
    key: PeerKey,
    stream: TcpStream,
    addr: SocketAddr,
    theirs: Handshake,
    outgoing: bool,
) {
    // A capped upload is paced already: nothing piles up at the peer.
    if !ctx.limits.upload_capped() {
        let rtt = socket::fit_send_buffer(&stream);
        debug!(?rtt, "round trip after the handshakes");
    }
    let (read_half, write_half) = stream.into_split();
    let (cmd_tx, cmd_rx) = mpsc::channel(ctx.command_queue);
    let (up_tx, up_rx) = mpsc::channel(REQUEST_QUEUE);
    let connected = TorrentEvent::Connected {
        key,
        addr,
        peer_id: theirs.peer_id,
        outgoing,
        commands: cmd_tx,
    };
    if ctx.events.send(connected).await.is_err() {
        return;
    }
    // Either half ending ends the other.
    let conn_token = ctx.cancel.child_token();
    // BEP 6 holds only when both handshakes announce it.
    let fast = ctx.fast && theirs.supports_fast();
    let writer = Writer::new(
        ctx.clone(),
        key,
        theirs.supports_extensions(),
        fast,
        write_half,
    );
    let wtoken = conn_token.clone();
    ctx.tracker.spawn(
        async move {
            let result = writer.run(cmd_rx, up_rx, wtoken.clone()).await;
            if let Err(e) = result {
                debug!(error = %e, "writer stopped");
            }
            wtoken.cancel();
        }
        .in_current_span(),
    );
    let end = read_loop(&ctx, key, fast, read_half, up_tx, &conn_token).await;
    conn_token.cancel();
    ended(&ctx, key, end).await;
}

async fn read_loop(
    ctx: &ConnectionContext,
    key: PeerKey,
    fast: bool,
    read_half: OwnedReadHalf,
    up_tx: mpsc::Sender<Upload>,
    token: &CancellationToken,
) -> Ending {
    let mut frames = FramedRead::with_capacity(
        read_half,
        PeerCodec::new(ctx.geometry.piece_count),
        256 * 1024,
    );
    // The id the peer wants its `ut_metadata` messages under (its handshake).
    let mut their_metadata_id: Option<u8> = None;
    // Pieces the peer asked for a block of: the coordinator hears of each
    // once (a super-seed offers a lone leecher more as it asks).
    let mut asked = vec![0u8; bitfield_len(ctx.geometry.piece_count)];
    loop {
        let next = tokio::select! {
            _ = token.cancelled() => return Ending::gone("closed by us"),
            next = timeout(IDLE_TIMEOUT, frames.next()) => next,
        };
        let message = match next {
            Err(_) => return Ending::gone("idle for too long"),
            Ok(None) => return Ending::gone("peer closed the connection"),
            Ok(Some(Err(PeerWireError::Io(e)))) => return Ending::gone(format!("i/o error: {e}")),
            Ok(Some(Err(e))) => return Ending::broke(format!("protocol error: {e}")),
            Ok(Some(Ok(m))) => m,
        };
        if message.is_fast_extension() && !fast {
            return Ending::broke("fast extension message without the fast extension");
        }
        let event = match message {
            Message::KeepAlive | Message::Port(_) | Message::Unknown { .. } => continue,
            Message::HaveAll | Message::HaveNone => {
                let n = ctx.geometry.piece_count;
                let mut bits = vec![0u8; bitfield_len(n)];
                if message == Message::HaveAll {
                    for i in 0..n {
                        bitfield_set(&mut bits, i);
                    }
                }
                TorrentEvent::Message {
                    key,
                    message: Message::Bitfield(Bytes::from(bits)),
                }
            }
            Message::Request(r) => {
                if up_tx.try_send(Upload::Request(r)).is_err() {
                    return Ending::broke("peer exceeded the request queue");
                }
                // The writer refuses a piece that does not exist.
                if r.index >= ctx.geometry.piece_count || bitfield_has(&asked, r.index) {
                    continue;
                }
                bitfield_set(&mut asked, r.index);
                TorrentEvent::Requested {
                    key,
                    piece: r.index,
                }
            }
            Message::Cancel(r) => {
                let _ = up_tx.try_send(Upload::Cancel(r));
                continue;
            }
            Message::Extended { id: 0, payload } => match ExtensionHandshake::parse(&payload) {
                Ok(handshake) => {
                    their_metadata_id = handshake.id_of(metadata::EXTENSION_NAME);
                    TorrentEvent::Extension {
                        key,
                        handshake: Box::new(handshake),
                    }
                }
                Err(e) => return Ending::broke(e.to_string()),
            },
            Message::Extended {
                id: metadata::OUR_ID,
                payload,
            } => {
                if let (Some(ext_id), Ok(MetadataMsg::Request { piece })) =
                    (their_metadata_id, MetadataMsg::decode(&payload))
                {
                    if up_tx.try_send(Upload::Metadata { ext_id, piece }).is_err() {
                        return Ending::broke("peer exceeded the request queue");
                    }
                }
                continue;
            }
            Message::Extended {
                id: UT_PEX_ID,
                payload,
            } => match parse_pex(&payload) {
                Ok(added) => TorrentEvent::Pex { key, added },
                Err(_) => continue,
            },
            Message::Extended { .. } => continue,
            m @ Message::Piece { .. } => {
                if let Message::Piece { data, .. } = &m {
                    ctx.downloaded
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                    ctx.limits.download(data.len() + 13).await;
                }
                TorrentEvent::Message { key, message: m }
            }
            m => TorrentEvent::Message { key, message: m },
        };
        if ctx.events.send(event).await.is_err() {
            return Ending::gone("torrent stopped");
        }
    }
}
