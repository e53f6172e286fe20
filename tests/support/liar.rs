//! A peer that lies: it claims every piece and serves every block with a
//! flipped byte, counting what happens to it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use songswarm::manifest::Manifest;
use songswarm::wire::peer::{encode_message, Handshake, Message, PeerCodec, HANDSHAKE_LEN};
use tokio_util::codec::Decoder;

/// Counters of the corrupting peer.
#[derive(Default)]
pub struct LiarStats {
    /// Connections accepted.
    pub connections: AtomicUsize,
    /// Corrupt blocks sent.
    pub served: AtomicUsize,
    /// Connections the leecher closed.
    pub closed: AtomicUsize,
}

/// A peer that claims every piece and serves every block with a flipped byte.
pub fn corrupting_peer(manifest: &Manifest, data: Vec<u8>) -> (String, Arc<LiarStats>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stats = Arc::new(LiarStats::default());
    let (info_hash, pieces, piece_length) = (
        manifest.info_hash,
        manifest.piece_count(),
        manifest.piece_length,
    );
    let st = stats.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            st.connections.fetch_add(1, Ordering::SeqCst);
            let (st, data) = (st.clone(), data.clone());
            std::thread::spawn(move || {
                let mut hs = [0u8; HANDSHAKE_LEN];
                if s.read_exact(&mut hs).is_err() {
                    return;
                }
                let ours = Handshake {
                    reserved: [0; 8],
                    info_hash,
                    peer_id: *b"-XX0001-liarliarliar",
                };
                let mut out = BytesMut::from(&ours.to_bytes()[..]);
                let mut bits = vec![0u8; (pieces as usize).div_ceil(8)];
                for i in 0..pieces as usize {
                    bits[i / 8] |= 0x80 >> (i % 8);
                }
                encode_message(&Message::Bitfield(Bytes::from(bits)), &mut out);
                encode_message(&Message::Unchoke, &mut out);
                if s.write_all(&out).is_err() {
                    return;
                }
                let mut codec = PeerCodec::new(pieces);
                let mut buf = BytesMut::new();
                let mut chunk = [0u8; 65536];
                loop {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => {
                            st.closed.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    while let Ok(Some(m)) = codec.decode(&mut buf) {
                        if let Message::Request(r) = m {
                            let start = r.index as usize * piece_length as usize + r.begin as usize;
                            let mut block = data[start..start + r.length as usize].to_vec();
                            block[0] ^= 0x55;
                            let mut out = BytesMut::new();
                            let piece = Message::Piece {
                                index: r.index,
                                begin: r.begin,
                                data: Bytes::from(block),
                            };
                            encode_message(&piece, &mut out);
                            if s.write_all(&out).is_err() {
                                st.closed.fetch_add(1, Ordering::SeqCst);
                                return;
                            }
                            st.served.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            });
        }
    });
    (addr, stats)
}
