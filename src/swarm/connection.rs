//! The task per peer connection.
//!
//! After the handshake a connection is two halves. The reader decodes frames
//! and publishes [`PeerEvent`]s to the coordinator; requests for our data go
//! straight to the writer, which serves them from disk on its own, knowing
//! which pieces we have and whether the peer is choked from the coordinator's
//! [`PeerCommand`]s. Keeping reads and writes in separate tasks means two
//! peers that upload to each other can never both block on a full socket.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, Instrument};

use crate::id::Id;
use crate::storage::Storage;
use crate::swarm::metadata::{self, MetadataMsg};
use crate::swarm::pieces::{Geometry, PeerKey};
use crate::swarm::rate::RateLimits;
use crate::swarm::{PeerCommand, PeerEvent};
use crate::wire::peer::{
    encode_pex, parse_pex, BlockRef, ExtensionHandshake, Handshake, Message, PeerCodec,
    HANDSHAKE_LEN, UT_PEX_ID,
};

/// Time allowed to connect and exchange handshakes.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A peer silent this long is gone (it must send a keep-alive every 2 min).
const IDLE_TIMEOUT: Duration = Duration::from_secs(180);
/// We send a keep-alive after this long without writing.
const KEEPALIVE: Duration = Duration::from_secs(60);
/// Requests we queue per peer (what we advertise as `reqq`); more is abuse.
pub const REQUEST_QUEUE: usize = 1024;
/// Bytes read from disk at once when serving (one aligned window of a piece).
const READ_WINDOW: u32 = 512 * 1024;
/// Socket buffer size asked of the kernel: loopback transfers want large ones.
pub const SOCKET_BUFFER: u32 = 4 * 1024 * 1024;
/// Upload bytes reported to the coordinator at once (for the choker).
const UPLOAD_REPORT: u64 = 256 * 1024;

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
    pub events: mpsc::Sender<PeerEvent>,
    /// Process-wide rate caps.
    pub limits: Arc<RateLimits>,
    /// Our listen port, told to peers in the extension handshake.
    pub listen_port: Option<u16>,
    /// The torrent's raw `info` dictionary, served to peers that fetch the
    /// metadata (BEP 9); None when we do not have it.
    pub info: Option<Bytes>,
    /// Depth of each connection's command queue.
    pub command_queue: usize,
    /// Cancelled when the torrent (or process) shuts down.
    pub cancel: CancellationToken,
    /// Tracks the writer tasks for a clean shutdown.
    pub tracker: TaskTracker,
}

/// What the reader forwards to the writer.
#[derive(Debug)]
enum Upload {
    /// The peer asks for a block.
    Request(BlockRef),
    /// The peer no longer wants a block.
    Cancel(BlockRef),
    /// The peer asks for a piece of our metadata, to be answered under its
    /// `ut_metadata` id `ext_id`.
    Metadata { ext_id: u8, piece: u32 },
}

/// Dials `addr`, exchanges handshakes and runs the connection.
pub async fn dial(ctx: Arc<ConnectionContext>, key: PeerKey, addr: SocketAddr) {
    let span = tracing::debug_span!("peer", %addr, key, out = true);
    async {
        match timeout(HANDSHAKE_TIMEOUT, connect_and_handshake(&ctx, addr)).await {
            Ok(Ok((stream, theirs))) => run(ctx, key, stream, addr, theirs, true).await,
            Ok(Err(reason)) => closed(&ctx, key, reason).await,
            Err(_) => closed(&ctx, key, "handshake timed out".into()).await,
        }
    }
    .instrument(span)
    .await
}

async fn connect_and_handshake(
    ctx: &ConnectionContext,
    addr: SocketAddr,
) -> Result<(TcpStream, Handshake), String> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| e.to_string())?;
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let mut stream = socket
        .connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let ours = Handshake::new(ctx.info_hash, ctx.peer_id);
    stream
        .write_all(&ours.to_bytes())
        .await
        .map_err(|e| format!("send handshake: {e}"))?;
    let mut buf = [0u8; HANDSHAKE_LEN];
    stream
        .read_exact(&mut buf)
        .await
        .map_err(|e| format!("read handshake: {e}"))?;
    let theirs = Handshake::parse(&buf)
        .map_err(|e| e.to_string())?
        .ok_or("short handshake")?;
    if theirs.info_hash != ctx.info_hash {
        return Err("peer answered with another info-hash".into());
    }
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
        let ours = Handshake::new(ctx.info_hash, ctx.peer_id);
        if let Err(e) = stream.write_all(&ours.to_bytes()).await {
            return closed(&ctx, key, format!("send handshake: {e}")).await;
        }
        run(ctx, key, stream, addr, theirs, false).await
    }
    .instrument(span)
    .await
}

async fn closed(ctx: &ConnectionContext, key: PeerKey, reason: String) {
    debug!(%reason, "connection closed");
    let _ = ctx.events.send(PeerEvent::Closed { key, reason }).await;
}

async fn run(
    ctx: Arc<ConnectionContext>,
    key: PeerKey,
    stream: TcpStream,
    addr: SocketAddr,
    theirs: Handshake,
    outgoing: bool,
) {
    let (read_half, write_half) = stream.into_split();
    let (cmd_tx, cmd_rx) = mpsc::channel(ctx.command_queue);
    let (up_tx, up_rx) = mpsc::channel(REQUEST_QUEUE);
    let connected = PeerEvent::Connected {
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
    let writer = Writer {
        ctx: ctx.clone(),
        key,
        extensions: theirs.supports_extensions(),
        sink: FramedWrite::new(write_half, PeerCodec::new(ctx.geometry.piece_count)),
        have: vec![false; ctx.geometry.piece_count as usize],
        choking: true,
        queue: VecDeque::new(),
        cache: None,
        unreported: 0,
    };
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
    let reason = read_loop(&ctx, key, read_half, up_tx, &conn_token).await;
    conn_token.cancel();
    closed(&ctx, key, reason).await;
}

async fn read_loop(
    ctx: &ConnectionContext,
    key: PeerKey,
    read_half: OwnedReadHalf,
    up_tx: mpsc::Sender<Upload>,
    token: &CancellationToken,
) -> String {
    let mut frames = FramedRead::with_capacity(
        read_half,
        PeerCodec::new(ctx.geometry.piece_count),
        256 * 1024,
    );
    // The id the peer wants its `ut_metadata` messages under (its handshake).
    let mut their_metadata_id: Option<u8> = None;
    loop {
        let next = tokio::select! {
            _ = token.cancelled() => return "closed by us".into(),
            next = timeout(IDLE_TIMEOUT, frames.next()) => next,
        };
        let message = match next {
            Err(_) => return "idle for too long".into(),
            Ok(None) => return "peer closed the connection".into(),
            Ok(Some(Err(e))) => return format!("protocol error: {e}"),
            Ok(Some(Ok(m))) => m,
        };
        let event = match message {
            Message::KeepAlive | Message::Port(_) | Message::Unknown { .. } => continue,
            Message::Request(r) => {
                if up_tx.try_send(Upload::Request(r)).is_err() {
                    return "peer exceeded the request queue".into();
                }
                continue;
            }
            Message::Cancel(r) => {
                let _ = up_tx.try_send(Upload::Cancel(r));
                continue;
            }
            Message::Extended { id: 0, payload } => match ExtensionHandshake::parse(&payload) {
                Ok(handshake) => {
                    their_metadata_id = handshake.id_of(metadata::EXTENSION_NAME);
                    PeerEvent::Extension { key, handshake }
                }
                Err(e) => return e.to_string(),
            },
            Message::Extended {
                id: metadata::OUR_ID,
                payload,
            } => {
                if let (Some(ext_id), Ok(MetadataMsg::Request { piece })) =
                    (their_metadata_id, MetadataMsg::decode(&payload))
                {
                    if up_tx.try_send(Upload::Metadata { ext_id, piece }).is_err() {
                        return "peer exceeded the request queue".into();
                    }
                }
                continue;
            }
            Message::Extended {
                id: UT_PEX_ID,
                payload,
            } => match parse_pex(&payload) {
                Ok(added) => PeerEvent::Pex { key, added },
                Err(_) => continue,
            },
            Message::Extended { .. } => continue,
            m @ Message::Piece { .. } => {
                if let Message::Piece { data, .. } = &m {
                    ctx.limits.download(data.len() + 13).await;
                }
                PeerEvent::Message { key, message: m }
            }
            m => PeerEvent::Message { key, message: m },
        };
        if ctx.events.send(event).await.is_err() {
            return "torrent stopped".into();
        }
    }
}

/// The sending half: our messages, and the data the peer asked for.
struct Writer {
    /// Shared torrent context.
    ctx: Arc<ConnectionContext>,
    /// This connection's key.
    key: PeerKey,
    /// The peer set the BEP 10 bit: send our extension handshake.
    extensions: bool,
    /// Encoded frames go here.
    sink: FramedWrite<OwnedWriteHalf, PeerCodec>,
    /// Pieces we have and may serve.
    have: Vec<bool>,
    /// We choke the peer: its requests are ignored.
    choking: bool,
    /// The peer's requests, in order.
    queue: VecDeque<BlockRef>,
    /// The last window read from disk: (piece, offset in piece, bytes).
    cache: Option<(u32, u32, Bytes)>,
    /// Uploaded bytes not yet reported to the coordinator.
    unreported: u64,
}

impl Writer {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<PeerCommand>,
        mut uploads: mpsc::Receiver<Upload>,
        token: CancellationToken,
    ) -> Result<(), String> {
        self.sink.set_backpressure_boundary(256 * 1024);
        // BEP 3: the bitfield is the first message after the handshake, so
        // nothing is written until the coordinator says what we have.
        let first = tokio::select! {
            _ = token.cancelled() => return Ok(()),
            c = commands.recv() => c,
        };
        let Some(PeerCommand::Start { bitfield }) = first else {
            return Ok(());
        };
        if let Some(bits) = bitfield {
            for i in 0..self.have.len() {
                self.have[i] = crate::wire::peer::bitfield_has(&bits, i as u32);
            }
            self.feed(Message::Bitfield(bits)).await?;
        }
        if self.extensions {
            let metadata_size = self.ctx.info.as_ref().map(|i| i.len() as u64);
            let ext =
                ExtensionHandshake::ours(self.ctx.listen_port, REQUEST_QUEUE as u32, metadata_size);
            self.feed(Message::Extended {
                id: 0,
                payload: ext.to_bytes(),
            })
            .await?;
        }
        let mut last_write = Instant::now();
        loop {
            let idle = commands.is_empty()
                && uploads.is_empty()
                && (self.choking || self.queue.is_empty());
            if idle {
                self.sink.flush().await.map_err(|e| e.to_string())?;
                self.report();
            }
            let serve = !self.choking && !self.queue.is_empty();
            tokio::select! {
                biased;
                _ = token.cancelled() => break,
                c = commands.recv() => match c {
                    None => break,
                    Some(c) => self.command(c).await?,
                },
                u = uploads.recv() => match u {
                    None => break,
                    Some(Upload::Request(r)) => {
                        let ok = (r.index as usize) < self.have.len() && self.have[r.index as usize];
                        if !self.choking && ok && self.ctx.geometry.is_servable(&r) {
                            self.queue.push_back(r);
                        }
                    }
                    Some(Upload::Cancel(r)) => self.queue.retain(|q| *q != r),
                    Some(Upload::Metadata { ext_id, piece }) => {
                        let answer = match &self.ctx.info {
                            Some(info) => metadata::answer(info, piece),
                            None => MetadataMsg::Reject { piece },
                        };
                        self.feed(Message::Extended {
                            id: ext_id,
                            payload: Bytes::from(answer.encode()),
                        })
                        .await?;
                    }
                },
                _ = sleep_until(last_write + KEEPALIVE) => self.feed(Message::KeepAlive).await?,
                _ = std::future::ready(()), if serve => self.serve_one().await?,
            }
            last_write = Instant::now();
        }
        self.report();
        let _ = self.sink.flush().await;
        Ok(())
    }

    async fn feed(&mut self, m: Message) -> Result<(), String> {
        self.sink.feed(m).await.map_err(|e| e.to_string())
    }

    fn report(&mut self) {
        if self.unreported > 0 {
            let ev = PeerEvent::Uploaded {
                key: self.key,
                bytes: self.unreported,
            };
            // Only the choker reads this; a full inbox just delays the report.
            if self.ctx.events.try_send(ev).is_ok() {
                self.unreported = 0;
            }
        }
    }

    async fn command(&mut self, c: PeerCommand) -> Result<(), String> {
        match c {
            PeerCommand::Start { .. } => Ok(()),
            PeerCommand::Request(blocks) => {
                for r in blocks {
                    self.feed(Message::Request(r)).await?;
                }
                Ok(())
            }
            PeerCommand::Send(m) => self.feed(m).await,
            PeerCommand::Choke(choke) => {
                if choke == self.choking {
                    return Ok(());
                }
                self.choking = choke;
                if choke {
                    self.queue.clear();
                    self.cache = None;
                    self.feed(Message::Choke).await
                } else {
                    self.feed(Message::Unchoke).await
                }
            }
            PeerCommand::Have(i) => {
                if let Some(h) = self.have.get_mut(i as usize) {
                    *h = true;
                }
                self.feed(Message::Have(i)).await
            }
            PeerCommand::Pex { ext_id, added } => {
                self.feed(Message::Extended {
                    id: ext_id,
                    payload: encode_pex(&added),
                })
                .await
            }
        }
    }

    /// Sends the first queued block, reading its window from disk if needed.
    async fn serve_one(&mut self) -> Result<(), String> {
        let Some(r) = self.queue.pop_front() else {
            return Ok(());
        };
        self.ctx.limits.upload(r.length as usize + 13).await;
        let window_start = r.begin / READ_WINDOW * READ_WINDOW;
        let cached = matches!(&self.cache, Some((p, s, d)) if *p == r.index && *s == window_start
            && (r.begin + r.length - window_start) as usize <= d.len());
        if !cached {
            let piece_len = self.ctx.geometry.piece_len(r.index);
            let len = READ_WINDOW.min(piece_len - window_start) as usize;
            let storage = self.ctx.storage.clone();
            let index = r.index;
            // Reuse the previous window's memory once every slice of it has
            // been encoded (no allocation and no zeroing per window).
            let mut buf = match self.cache.take().map(|(_, _, b)| b.try_into_mut()) {
                Some(Ok(b)) => b,
                _ => BytesMut::new(),
            };
            let data = tokio::task::spawn_blocking(move || {
                if buf.len() >= len {
                    buf.truncate(len);
                } else {
                    buf.resize(len, 0);
                }
                storage
                    .read(index, window_start, &mut buf)
                    .map(|_| buf.freeze())
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("reading piece {index}: {e}"))?;
            self.cache = Some((r.index, window_start, data));
        }
        let Some((_, _, window)) = &self.cache else {
            return Ok(());
        };
        let off = (r.begin - window_start) as usize;
        let data = window.slice(off..off + r.length as usize);
        self.feed(Message::Piece {
            index: r.index,
            begin: r.begin,
            data,
        })
        .await?;
        self.unreported += u64::from(r.length);
        if self.ctx.limits.upload_capped() {
            // Under a cap each block waits for tokens: do not let finished
            // blocks sit in our buffer meanwhile.
            self.sink.flush().await.map_err(|e| e.to_string())?;
        }
        if self.unreported >= UPLOAD_REPORT {
            self.report();
        }
        Ok(())
    }
}
