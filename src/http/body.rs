//! A song's body: bytes of the torrent's byte stream, read from pieces that
//! passed their SHA-1 check and from nowhere else.
//!
//! The stream waits on the torrent's verified set for each piece it needs
//! and tells the coordinator where it is (`StreamAt`) when it opens and at
//! each new piece, so the scheduler fetches what the player needs next; it
//! says `StreamClosed` when it is dropped, whether it finished or the
//! client went away (hyper drops a body whose connection closed). It holds
//! one chunk of at most [`CHUNK`] bytes at a time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use bytes::Bytes;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::metrics::StreamMetrics;
use crate::geometry::Geometry;
use crate::storage::Storage;
use crate::swarm::coordinator::Inbox;
use crate::swarm::verified::VerifiedPieces;
use crate::swarm::{StreamId, TorrentEvent};

/// Most bytes a stream reads and holds at once.
pub const CHUNK: u64 = 128 * 1024;

/// Stream ids, unique in the process (every torrent's streams alike).
static NEXT_STREAM: AtomicU64 = AtomicU64::new(1);

/// A fresh stream id.
pub fn new_stream_id() -> StreamId {
    NEXT_STREAM.fetch_add(1, Ordering::Relaxed)
}

/// What one body streams.
pub struct BodyParams {
    /// The torrent's coordinator inbox (`StreamAt`, `StreamClosed`).
    pub events: Inbox,
    /// The torrent's verified pieces.
    pub verified: watch::Receiver<VerifiedPieces>,
    /// The torrent's files.
    pub storage: Arc<Storage>,
    /// First byte to send, in the torrent's byte stream.
    pub start: u64,
    /// One past the last byte to send (the end of the range or the file).
    pub end: u64,
    /// The song's bytes per second of play.
    pub byte_rate: u64,
    /// The request asked for a place other than the song's start.
    pub seek: bool,
    /// When the request arrived (its first byte's latency is measured).
    pub requested: Instant,
    /// Where latencies and stalls are counted.
    pub metrics: StreamMetrics,
    /// The process's stop: the body ends (unfinished) with it.
    pub cancel: CancellationToken,
}

/// The body of `params` as an HTTP body.
pub fn song_body(params: BodyParams) -> Body {
    let stream = SongStream::new(params);
    Body::from_stream(futures_util::stream::unfold(stream, |mut s| async move {
        let chunk = s.next_chunk().await?;
        if chunk.is_err() {
            s.done = true;
        }
        Some((chunk, s))
    }))
}

/// Why a body ended before its last byte (hyper then closes the connection:
/// the client sees a short body, never wrong bytes).
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The process is stopping.
    #[error("the process is stopping")]
    Stopping,
    /// The torrent stopped (its coordinator ended).
    #[error("the torrent stopped")]
    TorrentStopped,
    /// Verified data could not be read back.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

/// Says `StreamClosed` (and counts the stream out) when dropped.
struct OpenGuard {
    /// The stream.
    id: StreamId,
    /// The coordinator's inbox.
    events: Inbox,
    /// Streams open now.
    open: Gauge,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.open.dec();
        let closed = TorrentEvent::StreamClosed { id: self.id };
        if let Err(mpsc::error::TrySendError::Full(closed)) = self.events.try_send(closed) {
            // A full inbox only delays the news; a dropped one would leave
            // the scheduler chasing a stream nobody reads.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let events = self.events.clone();
                rt.spawn(async move {
                    let _ = events.send(closed).await;
                });
            }
        }
    }
}

/// The state of one body.
struct SongStream {
    /// Our id, in `StreamAt` and `StreamClosed`.
    id: StreamId,
    /// See [`BodyParams`].
    events: Inbox,
    /// See [`BodyParams`].
    verified: watch::Receiver<VerifiedPieces>,
    /// See [`BodyParams`].
    storage: Arc<Storage>,
    /// The torrent's piece layout.
    geometry: Geometry,
    /// Next byte to send.
    pos: u64,
    /// One past the last byte to send.
    end: u64,
    /// See [`BodyParams`].
    byte_rate: u64,
    /// The piece the coordinator last heard we are at.
    told: Option<u32>,
    /// When the request arrived, until the first byte is out.
    waiting_since: Option<Instant>,
    /// See [`BodyParams`].
    seek: bool,
    /// See [`BodyParams`].
    metrics: StreamMetrics,
    /// See [`BodyParams`].
    cancel: CancellationToken,
    /// Set after an error: the next poll ends the body.
    done: bool,
    /// Says `StreamClosed` when the body is dropped.
    _open: OpenGuard,
}

impl SongStream {
    fn new(p: BodyParams) -> SongStream {
        let id = new_stream_id();
        p.metrics.open.inc();
        SongStream {
            id,
            _open: OpenGuard {
                id,
                events: p.events.clone(),
                open: p.metrics.open.clone(),
            },
            geometry: p.storage.geometry(),
            events: p.events,
            verified: p.verified,
            storage: p.storage,
            pos: p.start,
            end: p.end,
            byte_rate: p.byte_rate,
            told: None,
            waiting_since: Some(p.requested),
            seek: p.seek,
            metrics: p.metrics,
            cancel: p.cancel,
            done: false,
        }
    }

    /// The next chunk, once its piece is verified; None at the end.
    async fn next_chunk(&mut self) -> Option<Result<Bytes, BodyError>> {
        if self.done || self.pos >= self.end {
            return None;
        }
        let piece = (self.pos / self.geometry.piece_length) as u32;
        // Looked at before the coordinator hears of the piece, so a wait
        // that follows is one the piece was missing for when we asked.
        let ready = self.verified.borrow().has(piece);
        if self.told != Some(piece) {
            self.told = Some(piece);
            self.tell_position().await;
        }
        if !ready {
            if let Err(e) = self.wait_verified(piece).await {
                return Some(Err(e));
            }
        }
        let piece_start = self.geometry.piece_offset(piece);
        let piece_end = piece_start + u64::from(self.geometry.piece_len(piece));
        let upto = self.end.min(piece_end).min(self.pos + CHUNK);
        let begin = (self.pos - piece_start) as u32;
        let chunk = match self.read(piece, begin, (upto - self.pos) as usize).await {
            Ok(chunk) => chunk,
            Err(e) => return Some(Err(e)),
        };
        self.pos = upto;
        if let Some(since) = self.waiting_since.take() {
            let latency = if self.seek {
                &self.metrics.seek
            } else {
                &self.metrics.first_byte
            };
            latency.observe(since.elapsed().as_secs_f64());
        }
        self.metrics.bytes.inc_by(chunk.len() as u64);
        Some(Ok(chunk))
    }

    /// `StreamAt` from here to the end. A coordinator that has stopped
    /// cannot hear it; verified pieces are still served.
    async fn tell_position(&self) {
        let at = TorrentEvent::StreamAt {
            id: self.id,
            offset: self.pos,
            end: self.end,
            byte_rate: self.byte_rate,
        };
        tokio::select! {
            _ = self.cancel.cancelled() => {}
            _ = self.events.send(at) => {}
        }
    }

    /// Waits until `piece`, found missing, has passed its hash check; a wait
    /// after the first byte is a stall, counted with its length.
    async fn wait_verified(&mut self, piece: u32) -> Result<(), BodyError> {
        let stall_from = self.waiting_since.is_none().then(Instant::now);
        tokio::select! {
            _ = self.cancel.cancelled() => return Err(BodyError::Stopping),
            r = self.verified.wait_for(|v| v.has(piece)) => {
                r.map_err(|_| BodyError::TorrentStopped)?;
            }
        }
        if let Some(from) = stall_from {
            self.metrics.stalls.inc();
            self.metrics
                .stall_seconds
                .observe(from.elapsed().as_secs_f64());
        }
        Ok(())
    }

    /// Reads `len` bytes of verified `piece` from `begin`: from memory when
    /// the pages are there, else on a blocking thread.
    async fn read(&self, piece: u32, begin: u32, len: usize) -> Result<Bytes, BodyError> {
        let mut buf = vec![0u8; len];
        if self.storage.read_cached(piece, begin, &mut buf)? {
            return Ok(Bytes::from(buf));
        }
        let storage = self.storage.clone();
        tokio::task::spawn_blocking(move || {
            storage.read(piece, begin, &mut buf)?;
            Ok(Bytes::from(buf))
        })
        .await
        .map_err(|_| BodyError::Stopping)?
    }
}
