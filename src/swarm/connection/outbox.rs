//! The frames a connection has yet to send, written with vectored writes.
//!
//! A codec-based sink copies every frame into one write buffer; for piece
//! messages that is a copy of all the data we upload. Here a piece payload
//! stays the slice of the disk read it came from: its 13-byte header goes
//! into a small buffer and both are handed to `writev` as separate slices.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::wire::peer::{encode_message, piece_header, Message, PIECE_HEADER_LEN};

/// Payloads shorter than this are copied next to their header: a separate
/// slice costs more than copying a few bytes.
const COPY_BELOW: usize = 1024;
/// Most slices given to one `writev` (well under Linux's `IOV_MAX`; 64 slices
/// of 16 KiB blocks already fill a loopback socket's buffer).
const MAX_SLICES: usize = 64;

/// Encoded frames waiting for the socket.
pub(super) struct Outbox<W> {
    /// The socket's write half.
    io: W,
    /// Ready chunks in send order: runs of small encoded frames, and piece
    /// payloads shared with the read buffer they came from.
    chunks: VecDeque<Bytes>,
    /// Where small frames and piece headers are encoded until the next
    /// payload (or a write) seals them into `chunks`.
    scratch: BytesMut,
    /// Bytes in `chunks` plus `scratch`.
    queued: usize,
    /// `feed` writes to the socket once this many bytes are queued.
    boundary: usize,
}

impl<W: AsyncWrite + Unpin> Outbox<W> {
    /// An empty outbox over `io` that holds up to about `boundary` bytes.
    pub(super) fn new(io: W, boundary: usize) -> Outbox<W> {
        Outbox {
            io,
            chunks: VecDeque::new(),
            scratch: BytesMut::with_capacity(4096),
            queued: 0,
            boundary,
        }
    }

    /// Queues `m`, writing first if the outbox is full.
    pub(super) async fn feed(&mut self, m: Message) -> io::Result<()> {
        self.push(m);
        while self.queued >= self.boundary {
            self.write_some().await?;
        }
        Ok(())
    }

    /// Writes everything queued.
    pub(super) async fn flush(&mut self) -> io::Result<()> {
        while self.queued > 0 {
            self.write_some().await?;
        }
        self.io.flush().await
    }

    fn push(&mut self, m: Message) {
        let before = self.scratch.len();
        match m {
            Message::Piece { index, begin, data } if data.len() >= COPY_BELOW => {
                self.scratch
                    .extend_from_slice(&piece_header(index, begin, data.len()));
                self.seal();
                self.queued += PIECE_HEADER_LEN + data.len();
                self.chunks.push_back(data);
                return;
            }
            m => encode_message(&m, &mut self.scratch),
        }
        self.queued += self.scratch.len() - before;
    }

    /// Moves the encoded bytes of `scratch` to the end of `chunks`.
    fn seal(&mut self) {
        if !self.scratch.is_empty() {
            self.chunks.push_back(self.scratch.split().freeze());
        }
    }

    /// One vectored write of the first chunks.
    async fn write_some(&mut self) -> io::Result<()> {
        self.seal();
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let mut count = 0;
        for (slot, chunk) in slices.iter_mut().zip(&self.chunks) {
            *slot = IoSlice::new(chunk);
            count += 1;
        }
        let written = self.io.write_vectored(&slices[..count]).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.queued -= written;
        let mut left = written;
        while left > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            if front.len() > left {
                front.advance(left);
                break;
            }
            left -= front.len();
            self.chunks.pop_front();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::peer::{BlockRef, PeerCodec};
    use futures_util::StreamExt;
    use tokio_util::codec::FramedRead;

    /// Messages written through a small pipe (many short writes) decode
    /// back to the same messages in the same order.
    #[tokio::test]
    async fn frames_arrive_whole_and_in_order_through_short_writes() {
        let (a, b) = tokio::io::duplex(777);
        let payload: Vec<u8> = (0..40_000u32).map(|i| (i * 7) as u8).collect();
        let window = Bytes::from(payload);
        let sent = vec![
            Message::Unchoke,
            Message::Piece {
                index: 3,
                begin: 0,
                data: window.slice(0..16384),
            },
            Message::Have(9),
            Message::Piece {
                index: 3,
                begin: 16384,
                data: window.slice(16384..32768),
            },
            Message::Piece {
                index: 4,
                begin: 0,
                data: window.slice(32768..33000),
            },
            Message::Request(BlockRef {
                index: 1,
                begin: 2,
                length: 3,
            }),
        ];
        let expected = sent.clone();
        let writer = tokio::spawn(async move {
            let mut out = Outbox::new(a, 20_000);
            for m in sent {
                out.feed(m).await.unwrap();
            }
            out.flush().await.unwrap();
        });
        let mut frames = FramedRead::new(b, PeerCodec::new(16));
        let mut got = Vec::new();
        while got.len() < expected.len() {
            got.push(frames.next().await.unwrap().unwrap());
        }
        writer.await.unwrap();
        assert_eq!(got, expected);
    }
}
