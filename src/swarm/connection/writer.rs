//! The sending half of a connection: our messages, and the blocks the peer
//! asked for, served from disk on its own (it knows which pieces we have
//! and whether the peer is choked from the coordinator's commands).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use super::outbox::Outbox;
use super::{ConnectionContext, REQUEST_QUEUE};
use crate::storage::{Storage, StorageError};
use crate::swarm::pieces::PeerKey;
use crate::swarm::{PeerCommand, TorrentEvent};
use crate::wire::metadata::{self, MetadataMsg};
use crate::wire::peer::{encode_pex, BlockRef, ExtensionHandshake, Message};

/// We send a keep-alive after this long without writing.
const KEEPALIVE: Duration = Duration::from_secs(60);
/// Bytes read from disk at once when serving: one aligned window of a piece
/// (a whole piece up to 1 MiB), or, for smaller pieces, the windows of the
/// next queued requests together, in one trip to a blocking thread (one trip
/// per 16 KiB piece held the upload to a twelfth of its speed). An uploading
/// connection holds two such reads.
const READ_WINDOW: u32 = 1024 * 1024;
/// Queued requests looked at when gathering windows for one read.
const GATHER_SCAN: usize = 128;
/// Bytes queued for the socket before a write waits for room (smaller than
/// a read window, so a window's slices are all sent before it is reused).
/// Half a MiB a write: fewer writes and wake-ups than a quarter (the seeder
/// spent about a tenth less CPU per GiB, loopback, 1 MiB pieces).
const WRITE_BOUNDARY: usize = 512 * 1024;
/// Blocks served per pass of the writer's loop before it looks at its
/// commands again (a choke waits at most this many blocks).
const SERVE_BATCH: usize = 16;
/// Upload bytes reported to the coordinator at once (for the choker).
const UPLOAD_REPORT: u64 = 256 * 1024;

/// Reads `windows` (piece, offset, length) end to end into `buf`, each
/// with `read(storage, piece, offset, part)`; false as soon as one read says
/// false.
fn read_into(
    storage: &Storage,
    windows: &[(u32, u32, u32)],
    buf: &mut [u8],
    read: impl Fn(&Storage, u32, u32, &mut [u8]) -> Result<bool, StorageError>,
) -> Result<bool, StorageError> {
    let mut at = 0;
    for &(piece, start, len) in windows {
        let end = at + len as usize;
        if !read(storage, piece, start, &mut buf[at..end])? {
            return Ok(false);
        }
        at = end;
    }
    Ok(true)
}

/// What the reader forwards to the writer.
#[derive(Debug)]
pub(super) enum Upload {
    /// The peer asks for a block.
    Request(BlockRef),
    /// The peer no longer wants a block.
    Cancel(BlockRef),
    /// The peer asks for a piece of our metadata, to be answered under its
    /// `ut_metadata` id `ext_id`.
    Metadata { ext_id: u8, piece: u32 },
}

/// The sending half: our messages, and the data the peer asked for.
pub(super) struct Writer {
    /// Shared torrent context.
    ctx: Arc<ConnectionContext>,
    /// This connection's key.
    key: PeerKey,
    /// The peer set the BEP 10 bit: send our extension handshake.
    extensions: bool,
    /// Both sides announced the fast extension (BEP 6): have-all or
    /// have-none instead of a bitfield, and a reject for every request we
    /// do not serve.
    fast: bool,
    /// Frames waiting for the socket.
    sink: Outbox<OwnedWriteHalf>,
    /// Pieces we have and may serve.
    have: Vec<bool>,
    /// We choke the peer: its requests are ignored.
    choking: bool,
    /// The peer's requests, in order.
    queue: VecDeque<BlockRef>,
    /// The windows of the last read: (piece, offset in piece, bytes), all
    /// slices of `read_buf`.
    cache: Vec<(u32, u32, Bytes)>,
    /// The whole buffer of the last read.
    read_buf: Option<Bytes>,
    /// The buffer of the read before it, whose memory the next read reuses
    /// once the outbox has sent its last slice (fresh memory costs page
    /// faults).
    spare: Option<Bytes>,
    /// Uploaded bytes not yet reported to the coordinator.
    unreported: u64,
    /// The piece being served and its upload ticket.
    ticket: Option<(u32, u64)>,
}

impl Writer {
    pub(super) fn new(
        ctx: Arc<ConnectionContext>,
        key: PeerKey,
        extensions: bool,
        fast: bool,
        write_half: OwnedWriteHalf,
    ) -> Writer {
        let pieces = ctx.geometry.piece_count as usize;
        Writer {
            ctx,
            key,
            extensions,
            fast,
            sink: Outbox::new(write_half, WRITE_BOUNDARY),
            have: vec![false; pieces],
            choking: true,
            queue: VecDeque::new(),
            cache: Vec::new(),
            read_buf: None,
            spare: None,
            unreported: 0,
            ticket: None,
        }
    }

    pub(super) async fn run(
        mut self,
        mut commands: mpsc::Receiver<PeerCommand>,
        mut uploads: mpsc::Receiver<Upload>,
        token: CancellationToken,
    ) -> Result<(), String> {
        // BEP 3: the bitfield is the first message after the handshake, so
        // nothing is written until the coordinator says what we have.
        let first = tokio::select! {
            _ = token.cancelled() => return Ok(()),
            c = commands.recv() => c,
        };
        let Some(PeerCommand::Start {
            bitfield,
            streaming,
        }) = first
        else {
            return Ok(());
        };
        if let Some(bits) = bitfield {
            for i in 0..self.have.len() {
                self.have[i] = crate::geometry::bitfield_has(&bits, i as u32);
            }
            if self.fast && self.have.iter().all(|h| *h) {
                self.feed(Message::HaveAll).await?;
            } else {
                self.feed(Message::Bitfield(bits)).await?;
            }
        } else if self.fast {
            // BEP 6: one of bitfield, have-all, have-none comes first.
            self.feed(Message::HaveNone).await?;
        }
        if self.extensions {
            let metadata_size = self.ctx.info.as_ref().map(|i| i.len() as u64);
            let ext =
                ExtensionHandshake::ours(self.ctx.listen_port, REQUEST_QUEUE as u32, metadata_size)
                    .streaming(streaming);
            self.feed(Message::Extended {
                id: 0,
                payload: ext.to_bytes(),
            })
            .await?;
        }
        // One timer for the connection's life: it is re-armed only when it
        // fires, not rebuilt on every pass (a timer-wheel insert and removal
        // per served block otherwise).
        let mut last_write = Instant::now();
        let keepalive = sleep_until(last_write + KEEPALIVE);
        tokio::pin!(keepalive);
        loop {
            let idle = commands.is_empty()
                && uploads.is_empty()
                && (self.choking || self.queue.is_empty());
            if idle {
                self.sink.flush().await.map_err(|e| e.to_string())?;
                self.report();
            }
            let serve = !self.choking && !self.queue.is_empty();
            // Waiting for the upload allowance is a branch of its own: under a
            // cap it can take a while, and our own messages (requests, HAVEs)
            // must not wait behind it. Dropping the wait keeps the ticket's place.
            let (ticket, bytes) = if serve { self.next_upload() } else { (0, 0) };
            let limits = self.ctx.limits.clone();
            tokio::select! {
                biased;
                _ = token.cancelled() => break,
                c = commands.recv() => match c {
                    None => break,
                    Some(c) => self.command(c).await?,
                },
                u = uploads.recv() => match u {
                    None => break,
                    Some(u) => {
                        self.upload(u).await?;
                        // Take every request already waiting: one pass of
                        // this loop per request would cost more than serving.
                        while let Ok(u) = uploads.try_recv() {
                            self.upload(u).await?;
                        }
                    }
                },
                () = &mut keepalive => {
                    if last_write.elapsed() >= KEEPALIVE {
                        self.feed(Message::KeepAlive).await?;
                        last_write = Instant::now();
                    }
                    keepalive.as_mut().reset(last_write + KEEPALIVE);
                    continue;
                }
                _ = limits.upload(ticket, bytes), if serve => {
                    // The first block's allowance is granted. Under a cap that
                    // is one block per pass; uncapped, a batch.
                    let batch = if limits.upload_capped() { 1 } else { SERVE_BATCH };
                    for _ in 0..batch {
                        if self.choking || self.queue.is_empty() {
                            break;
                        }
                        self.serve_one().await?;
                    }
                }
            }
            last_write = Instant::now();
        }
        self.report();
        let _ = self.sink.flush().await;
        Ok(())
    }

    /// Queues, drops or answers one thing the reader forwarded.
    async fn upload(&mut self, u: Upload) -> Result<(), String> {
        match u {
            Upload::Request(r) => {
                let ok = (r.index as usize) < self.have.len() && self.have[r.index as usize];
                if !self.choking && ok && self.ctx.geometry.is_servable(&r) {
                    self.queue.push_back(r);
                } else if self.fast {
                    // Say so rather than let the peer wait out its time-out.
                    self.feed(Message::Reject(r)).await?;
                }
            }
            Upload::Cancel(r) => self.queue.retain(|q| *q != r),
            Upload::Metadata { ext_id, piece } => {
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
        }
        Ok(())
    }

    async fn feed(&mut self, m: Message) -> Result<(), String> {
        self.sink.feed(m).await.map_err(|e| e.to_string())
    }

    fn report(&mut self) {
        if self.unreported > 0 {
            let ev = TorrentEvent::Uploaded {
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
                    // BEP 6: a choke no longer drops requests silently.
                    if self.fast {
                        for r in std::mem::take(&mut self.queue) {
                            self.feed(Message::Reject(r)).await?;
                        }
                    }
                    self.queue.clear();
                    self.cache.clear();
                    self.read_buf = None;
                    self.spare = None;
                    self.feed(Message::Choke).await
                } else {
                    self.feed(Message::Unchoke).await
                }
            }
            PeerCommand::Have(pieces) => {
                for i in pieces {
                    if let Some(h) = self.have.get_mut(i as usize) {
                        *h = true;
                    }
                    self.feed(Message::Have(i)).await?;
                }
                Ok(())
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

    /// The upload ticket and size of the first queued block. One ticket per
    /// piece served: a capped upload finishes the piece it started before the
    /// next (see `rate`).
    fn next_upload(&mut self) -> (u64, usize) {
        let Some(r) = self.queue.front().copied() else {
            return (0, 0);
        };
        let ticket = match self.ticket {
            Some((piece, t)) if piece == r.index => t,
            _ => {
                let t = self.ctx.limits.ticket();
                self.ticket = Some((r.index, t));
                t
            }
        };
        (ticket, r.length as usize + 13)
    }

    /// The cached window that holds all of block `r`.
    fn window_of(&self, r: &BlockRef) -> Option<&(u32, u32, Bytes)> {
        self.cache.iter().find(|(p, start, d)| {
            *p == r.index && *start <= r.begin && (r.begin + r.length - start) as usize <= d.len()
        })
    }

    /// The aligned window of a piece that holds block `r`: (offset, length).
    fn window_for(&self, r: &BlockRef) -> (u32, u32) {
        let start = r.begin / READ_WINDOW * READ_WINDOW;
        let piece_len = self.ctx.geometry.piece_len(r.index);
        (start, READ_WINDOW.min(piece_len - start))
    }

    /// Reads the window of `first` and, while they fit in `READ_WINDOW`,
    /// those of the requests queued after it: at once when they are in
    /// memory, else in one trip to a blocking thread.
    async fn read_windows(&mut self, first: BlockRef) -> Result<(), String> {
        let mut wanted: Vec<(u32, u32, u32)> = Vec::new();
        let mut total = 0u32;
        for r in std::iter::once(&first).chain(self.queue.iter().take(GATHER_SCAN)) {
            let (start, len) = self.window_for(r);
            if wanted.iter().any(|w| (w.0, w.1) == (r.index, start)) {
                continue;
            }
            if !wanted.is_empty() && total + len > READ_WINDOW {
                break;
            }
            wanted.push((r.index, start, len));
            total += len;
        }
        // Reuse the buffer before last: by now the outbox (smaller than a
        // read) has sent every slice of it, so no allocation and no zeroing.
        self.cache.clear();
        let previous = self.read_buf.take();
        let mut buf = match std::mem::replace(&mut self.spare, previous).map(Bytes::try_into_mut) {
            Some(Ok(b)) => b,
            _ => BytesMut::new(),
        };
        let len = total as usize;
        if buf.len() >= len {
            buf.truncate(len);
        } else {
            buf.resize(len, 0);
        }
        // Data in memory is read here; only what needs the disk goes to a
        // blocking thread.
        let data = match read_into(&self.ctx.storage, &wanted, &mut buf, Storage::read_cached) {
            Ok(true) => Ok(buf.freeze()),
            Ok(false) => {
                let storage = self.ctx.storage.clone();
                let windows = wanted.clone();
                tokio::task::spawn_blocking(move || {
                    read_into(&storage, &windows, &mut buf, |s, p, at, b| {
                        s.read(p, at, b).map(|()| true)
                    })
                    .map(|_| buf.freeze())
                })
                .await
                .map_err(|e| e.to_string())?
            }
            Err(e) => Err(e),
        };
        let data = match data {
            Ok(data) => data,
            Err(e) => {
                // Not this peer's fault: the torrent's data is gone bad.
                let why = e.to_string();
                let _ = self.ctx.events.send(TorrentEvent::StorageFailed(e)).await;
                return Err(why);
            }
        };
        let mut at = 0;
        for (piece, start, len) in wanted {
            let end = at + len as usize;
            self.cache.push((piece, start, data.slice(at..end)));
            at = end;
        }
        self.read_buf = Some(data);
        Ok(())
    }

    /// Sends the first queued block (its upload allowance already granted
    /// when capped), reading its window from disk if needed.
    async fn serve_one(&mut self) -> Result<(), String> {
        let Some(r) = self.queue.pop_front() else {
            return Ok(());
        };
        if self.window_of(&r).is_none() {
            self.read_windows(r).await?;
        }
        let Some(window) = self.window_of(&r) else {
            return Ok(());
        };
        let (window_start, window) = (window.1, &window.2);
        let off = (r.begin - window_start) as usize;
        let data = window.slice(off..off + r.length as usize);
        self.feed(Message::Piece {
            index: r.index,
            begin: r.begin,
            data,
        })
        .await?;
        self.unreported += u64::from(r.length);
        self.ctx
            .uploaded
            .fetch_add(u64::from(r.length), std::sync::atomic::Ordering::Relaxed);
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
