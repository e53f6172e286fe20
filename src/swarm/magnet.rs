//! Leeching by info-hash alone: fetching the `info` dictionary from peers of
//! the swarm with BEP 9 (`ut_metadata`) before the download can start.
//!
//! One short-lived connection per peer: handshake, extension handshake,
//! requests for every metadata piece, and the answers fed to an
//! [`Assembler`] that accepts only bytes that hash to the info-hash. Until
//! the metadata is known the piece count is not, so frames are read with
//! [`PeerCodec::before_metadata`] and everything but extension messages is
//! skipped.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_util::codec::Framed;
use tracing::debug;

use crate::id::Id;
use crate::swarm::metadata::Assembler;
use crate::wire::handshake::{self, Handshake};
use crate::wire::metadata::{self, MetadataMsg};
use crate::wire::peer::{ExtensionHandshake, Message, PeerCodec};

/// Why no metadata could be had.
#[derive(Debug, thiserror::Error)]
pub enum MagnetError {
    /// The ring listed nobody for this info-hash.
    #[error("no peer shares {0} (nobody announced it in the ring)")]
    NoPeers(Id),
    /// The metadata hashed right but is not a manifest we can use.
    #[error("the swarm's metadata is not usable: {0}")]
    Unusable(crate::manifest::ManifestError),
    /// Every peer failed; the reasons, one per peer.
    #[error("no peer gave the metadata of {info_hash}: {reasons}")]
    NoMetadata {
        /// The torrent.
        info_hash: Id,
        /// What went wrong with each peer.
        reasons: String,
    },
}

/// Asks `peers` in turn for the metadata of `info_hash`; returns the raw
/// `info` bytes, verified against the info-hash, and the peer that served
/// them (a peer of the swarm, known to be reachable).
pub async fn fetch(
    peers: &[SocketAddr],
    info_hash: Id,
    peer_id: [u8; 20],
    per_peer: Duration,
) -> Result<(Vec<u8>, SocketAddr), MagnetError> {
    if peers.is_empty() {
        return Err(MagnetError::NoPeers(info_hash));
    }
    let mut reasons = Vec::new();
    for &addr in peers {
        match timeout(per_peer, fetch_from(addr, info_hash, peer_id, per_peer)).await {
            Ok(Ok(info)) => return Ok((info, addr)),
            Ok(Err(reason)) => reasons.push(format!("{addr}: {reason}")),
            Err(_) => reasons.push(format!("{addr}: timed out")),
        }
        debug!(%addr, reason = reasons.last().map(String::as_str), "metadata fetch failed");
    }
    Err(MagnetError::NoMetadata {
        info_hash,
        reasons: reasons.join("; "),
    })
}

/// The whole exchange with one peer (its handshake within `within`).
async fn fetch_from(
    addr: SocketAddr,
    info_hash: Id,
    peer_id: [u8; 20],
    within: Duration,
) -> Result<Vec<u8>, String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let ours = Handshake::new(info_hash, peer_id);
    let theirs = handshake::exchange(&mut stream, &ours, within)
        .await
        .map_err(|e| e.to_string())?;
    if !theirs.supports_extensions() {
        return Err("does not speak the extension protocol".into());
    }
    let mut frames = Framed::new(stream, PeerCodec::before_metadata());
    let ours = ExtensionHandshake {
        m: vec![(metadata::EXTENSION_NAME.to_string(), metadata::OUR_ID)],
        v: Some(format!("songswarm {}", env!("CARGO_PKG_VERSION"))),
        ..ExtensionHandshake::default()
    };
    frames
        .send(extended(0, ours.to_bytes()))
        .await
        .map_err(|e| e.to_string())?;
    let mut assembler: Option<Assembler> = None;
    while let Some(frame) = frames.next().await {
        let frame = frame.map_err(|e| format!("frame: {e}"))?;
        // Keep-alives and every non-extended message are of no use here.
        let Message::Extended { id: ext, payload } = frame else {
            continue;
        };
        if ext == 0 {
            let hs = ExtensionHandshake::parse(&payload).map_err(|e| e.to_string())?;
            let their_id = hs
                .id_of(metadata::EXTENSION_NAME)
                .ok_or("does not offer ut_metadata")?;
            let size = hs.metadata_size.ok_or("no metadata_size")?;
            let asm = Assembler::new(info_hash, size).map_err(|e| e.to_string())?;
            for piece in 0..metadata::piece_count(size) {
                let request = MetadataMsg::Request { piece }.encode();
                frames
                    .feed(extended(their_id, Bytes::from(request)))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            SinkExt::<Message>::flush(&mut frames)
                .await
                .map_err(|e| e.to_string())?;
            assembler = Some(asm);
        } else if ext == metadata::OUR_ID {
            let asm = assembler.as_mut().ok_or("metadata before handshake")?;
            match MetadataMsg::decode(&payload).map_err(|e| e.to_string())? {
                MetadataMsg::Data {
                    piece,
                    total_size,
                    data,
                } => {
                    let done = asm
                        .handle_data(piece, total_size, &data)
                        .map_err(|e| e.to_string())?;
                    if let Some(info) = done {
                        return Ok(info);
                    }
                }
                MetadataMsg::Reject { piece } => {
                    return Err(format!("refused metadata piece {piece}"))
                }
                MetadataMsg::Request { .. } => {} // we have nothing to give yet
            }
        }
    }
    Err("closed the connection".into())
}

/// A BEP 10 extended message under extension id `ext`.
fn extended(ext: u8, payload: Bytes) -> Message {
    Message::Extended { id: ext, payload }
}
