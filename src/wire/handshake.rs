//! The 68-byte record that opens every peer wire connection (BEP 3), and
//! the one place that writes ours and reads theirs.
//!
//! A dialler [`exchange`]s handshakes: it writes its own, then reads the
//! peer's and checks that it is about the same torrent. An accepting side
//! reads the peer's first ([`read_theirs`]: its info-hash says which torrent
//! the connection is for), then answers ([`write_ours`]). Each takes the
//! time it may spend from its caller.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

use crate::id::Id;

/// The protocol string of the handshake.
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";
/// The first byte of every peer wire connection: the protocol string's
/// length (what tells a peer connection from a Chord one).
pub const FIRST_BYTE: u8 = PROTOCOL.len() as u8;
/// Length of the handshake record in bytes.
pub const HANDSHAKE_LEN: usize = 68;

/// Why a handshake exchange failed. Any of them closes the connection.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The record does not start with the BitTorrent protocol string.
    #[error("not a BitTorrent handshake")]
    NotBitTorrent,
    /// Writing ours failed.
    #[error("send handshake: {0}")]
    Send(std::io::Error),
    /// Reading theirs failed (or the peer closed the connection first).
    #[error("read handshake: {0}")]
    Read(std::io::Error),
    /// The time the caller allowed ran out.
    #[error("handshake timed out")]
    TimedOut,
    /// The peer answered for another info-hash than ours.
    #[error("peer answered with another info-hash")]
    OtherTorrent,
}

/// The 68-byte opening record of every connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// The 8 reserved bytes (bit 0x10 of byte 5 announces BEP 10, bit 0x04
    /// of byte 7 BEP 6).
    pub reserved: [u8; 8],
    /// The torrent this connection is about.
    pub info_hash: Id,
    /// The sender's peer id.
    pub peer_id: [u8; 20],
}

impl Handshake {
    /// Our handshake for `info_hash`, with the extension protocol bit set.
    pub fn new(info_hash: Id, peer_id: [u8; 20]) -> Handshake {
        let mut reserved = [0u8; 8];
        reserved[5] |= 0x10;
        Handshake {
            reserved,
            info_hash,
            peer_id,
        }
    }

    /// True when the sender supports the BEP 10 extension protocol.
    pub fn supports_extensions(&self) -> bool {
        self.reserved[5] & 0x10 != 0
    }

    /// The same handshake announcing the fast extension (BEP 6: bit 0x04
    /// of the last reserved byte) when `fast` is true.
    pub fn with_fast(mut self, fast: bool) -> Handshake {
        if fast {
            self.reserved[7] |= 0x04;
        }
        self
    }

    /// True when the sender supports the fast extension (BEP 6).
    pub fn supports_fast(&self) -> bool {
        self.reserved[7] & 0x04 != 0
    }

    /// The record as sent on the wire.
    pub fn to_bytes(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[0] = FIRST_BYTE;
        out[1..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved);
        out[28..48].copy_from_slice(&self.info_hash.0);
        out[48..68].copy_from_slice(&self.peer_id);
        out
    }

    /// Parses a handshake; `Ok(None)` when fewer than 68 bytes are there.
    pub fn parse(buf: &[u8]) -> Result<Option<Handshake>, HandshakeError> {
        if !buf.is_empty() && buf[0] != FIRST_BYTE {
            return Err(HandshakeError::NotBitTorrent);
        }
        let prefix = buf.len().min(20);
        if prefix > 1 && buf[1..prefix] != PROTOCOL[..prefix - 1] {
            return Err(HandshakeError::NotBitTorrent);
        }
        if buf.len() < HANDSHAKE_LEN {
            return Ok(None);
        }
        let mut reserved = [0u8; 8];
        reserved.copy_from_slice(&buf[20..28]);
        let mut hash = [0u8; 20];
        hash.copy_from_slice(&buf[28..48]);
        let mut peer_id = [0u8; 20];
        peer_id.copy_from_slice(&buf[48..68]);
        Ok(Some(Handshake {
            reserved,
            info_hash: Id(hash),
            peer_id,
        }))
    }
}

/// Writes our handshake, within `within`.
pub async fn write_ours<S: AsyncWrite + Unpin>(
    stream: &mut S,
    ours: &Handshake,
    within: Duration,
) -> Result<(), HandshakeError> {
    timeout(within, stream.write_all(&ours.to_bytes()))
        .await
        .map_err(|_| HandshakeError::TimedOut)?
        .map_err(HandshakeError::Send)
}

/// Reads and parses the peer's handshake, within `within`.
pub async fn read_theirs<S: AsyncRead + Unpin>(
    stream: &mut S,
    within: Duration,
) -> Result<Handshake, HandshakeError> {
    timeout(within, read_record(stream))
        .await
        .map_err(|_| HandshakeError::TimedOut)?
}

async fn read_record<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Handshake, HandshakeError> {
    let mut buf = [0u8; HANDSHAKE_LEN];
    stream
        .read_exact(&mut buf)
        .await
        .map_err(HandshakeError::Read)?;
    // A whole record is there, so parsing says yes or no, never "more".
    Handshake::parse(&buf)?.ok_or(HandshakeError::NotBitTorrent)
}

/// The dialler's side: writes our handshake, reads the peer's and checks it
/// is about `ours.info_hash`, all within `within`.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    ours: &Handshake,
    within: Duration,
) -> Result<Handshake, HandshakeError> {
    let both = async {
        stream
            .write_all(&ours.to_bytes())
            .await
            .map_err(HandshakeError::Send)?;
        read_record(stream).await
    };
    let theirs = timeout(within, both)
        .await
        .map_err(|_| HandshakeError::TimedOut)??;
    if theirs.info_hash != ours.info_hash {
        return Err(HandshakeError::OtherTorrent);
    }
    Ok(theirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exchange_writes_ours_and_reads_theirs() {
        let (mut a, mut b) = tokio::io::duplex(256);
        let torrent = Id::hash(b"torrent");
        let ours = Handshake::new(torrent, [1; 20]);
        let theirs = Handshake::new(torrent, [2; 20]);
        let peer = async {
            let got = read_theirs(&mut b, Duration::from_secs(5)).await?;
            write_ours(&mut b, &theirs, Duration::from_secs(5)).await?;
            Ok::<_, HandshakeError>(got)
        };
        let (mine, at_peer) = tokio::join!(exchange(&mut a, &ours, Duration::from_secs(5)), peer);
        assert_eq!(mine.unwrap(), theirs);
        assert_eq!(at_peer.unwrap(), ours);
    }

    #[tokio::test]
    async fn another_torrent_silence_and_garbage_are_errors() {
        let ours = Handshake::new(Id::hash(b"one"), [1; 20]);
        let (mut a, mut b) = tokio::io::duplex(256);
        let other = Handshake::new(Id::hash(b"two"), [2; 20]);
        b.write_all(&other.to_bytes()).await.unwrap();
        let got = exchange(&mut a, &ours, Duration::from_secs(5)).await;
        assert!(matches!(got, Err(HandshakeError::OtherTorrent)), "{got:?}");

        let (mut a, _b) = tokio::io::duplex(256);
        let got = exchange(&mut a, &ours, Duration::from_millis(20)).await;
        assert!(matches!(got, Err(HandshakeError::TimedOut)), "{got:?}");

        let (mut a, mut b) = tokio::io::duplex(256);
        b.write_all(&[b'G'; HANDSHAKE_LEN]).await.unwrap();
        let got = read_theirs(&mut a, Duration::from_secs(5)).await;
        assert!(matches!(got, Err(HandshakeError::NotBitTorrent)), "{got:?}");
    }
}
