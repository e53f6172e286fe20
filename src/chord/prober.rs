//! The driver's side of asking the source (see [`probes`]): one task per
//! probe asks the peer a relayed swarm entry names whether it shares the
//! info-hash, with the project's one BitTorrent handshake
//! ([`handshake::exchange`]), and reports the [`Verdict`] to the node
//! task. At most `max_outstanding_probes` run at once over the node; a
//! probe with no room is reported silent (which keeps the entry).
//!
//! [`probes`]: crate::chord::probes

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::chord::connection::{connect_from, is_gone};
use crate::chord::handle::{ChordHandle, Command};
use crate::chord::probes::Verdict;
use crate::id::Id;
use crate::wire::handshake::{self, Handshake, HandshakeError};

/// Start the probe of `peer` for `info_hash` on `handle`'s tracker, within
/// the permits of `room`.
pub(crate) fn spawn(handle: &ChordHandle, room: &Arc<Semaphore>, peer: SocketAddr, info_hash: Id) {
    let Ok(permit) = room.clone().try_acquire_owned() else {
        let cmd = Command::Probed {
            peer,
            info_hash,
            verdict: Verdict::Silent,
        };
        // The node task is the one calling: never wait on its own queue.
        let _ = handle.tx.try_send(cmd);
        return;
    };
    let h = handle.clone();
    handle.tracker.spawn(async move {
        let within = h.config.probe_timeout;
        let token = h.conn_token.clone();
        let verdict = tokio::select! {
            _ = token.cancelled() => return,
            v = probe(h.addr, peer, info_hash, within) => v,
        };
        drop(permit);
        tracing::debug!(%peer, %info_hash, ?verdict, "probed a relayed swarm entry");
        let _ =
            h.tx.send(Command::Probed {
                peer,
                info_hash,
                verdict,
            })
            .await;
    });
}

/// Ask `peer` whether it shares `info_hash`: connect (from our advertised
/// address `me`), send a BEP 3 handshake, read its answer, all within
/// `within`.
pub async fn probe(me: SocketAddr, peer: SocketAddr, info_hash: Id, within: Duration) -> Verdict {
    let deadline = tokio::time::Instant::now() + within;
    let connect = tokio::time::timeout_at(deadline, connect_from(me.ip(), peer)).await;
    let mut stream = match connect {
        Err(_) => return Verdict::Silent,
        Ok(Err(e)) if is_gone(&e) => return Verdict::Gone,
        Ok(Err(_)) => return Verdict::Silent, // a shortage of our own
        Ok(Ok(stream)) => stream,
    };
    let ours = Handshake::new(info_hash, probe_peer_id(me));
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    match handshake::exchange(&mut stream, &ours, left).await {
        Ok(_) => Verdict::Serving,
        Err(e) => verdict_of(&e),
    }
}

/// What a failed handshake says of the peer.
fn verdict_of(e: &HandshakeError) -> Verdict {
    match e {
        HandshakeError::TimedOut => Verdict::Silent,
        HandshakeError::OtherTorrent | HandshakeError::NotBitTorrent => Verdict::Gone,
        // Closed (or reset) before a whole handshake came back.
        HandshakeError::Read(io) | HandshakeError::Send(io)
            if is_gone(io) || io.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            Verdict::Gone
        }
        HandshakeError::Read(_) | HandshakeError::Send(_) => Verdict::Silent,
    }
}

/// The peer id a probe introduces itself with: the client prefix of
/// [`crate::app::new_peer_id`]'s kind and a tail fixed by our address,
/// so the peer can tell probes of one node apart from downloads.
fn probe_peer_id(me: SocketAddr) -> [u8; 20] {
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(b"-SW0100-");
    id[8..].copy_from_slice(&Id::of_addr(me).0[..12]);
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    const WITHIN: Duration = Duration::from_secs(5);

    /// A listener on loopback whose one connection `answer` handles.
    async fn peer_that<F, Fut>(answer: F) -> SocketAddr
    where
        F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            answer(stream).await;
        });
        addr
    }

    fn me() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    #[tokio::test]
    async fn a_peer_answering_for_the_info_hash_is_serving() {
        let song = Id::hash(b"song");
        let peer = peer_that(move |mut s| async move {
            let theirs = handshake::read_theirs(&mut s, WITHIN).await.unwrap();
            assert_eq!(theirs.info_hash, song);
            let ours = Handshake::new(song, [9; 20]);
            handshake::write_ours(&mut s, &ours, WITHIN).await.unwrap();
        })
        .await;
        assert_eq!(probe(me(), peer, song, WITHIN).await, Verdict::Serving);
    }

    #[tokio::test]
    async fn another_torrent_a_close_and_a_refusal_are_gone() {
        let song = Id::hash(b"song");
        let other = peer_that(|mut s| async move {
            let _ = handshake::read_theirs(&mut s, WITHIN).await;
            let ours = Handshake::new(Id::hash(b"other"), [9; 20]);
            let _ = handshake::write_ours(&mut s, &ours, WITHIN).await;
        })
        .await;
        assert_eq!(probe(me(), other, song, WITHIN).await, Verdict::Gone);

        let closes = peer_that(|mut s| async move {
            let _ = handshake::read_theirs(&mut s, WITHIN).await;
            let _ = s.shutdown().await;
        })
        .await;
        assert_eq!(probe(me(), closes, song, WITHIN).await, Verdict::Gone);

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let nobody = listener.local_addr().unwrap();
        drop(listener);
        assert_eq!(probe(me(), nobody, song, WITHIN).await, Verdict::Gone);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_never_answers_is_silent() {
        let song = Id::hash(b"song");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let silent = peer_that(|s| async move {
            let _open = s; // holds the connection open, says nothing
            let _ = rx.await;
        })
        .await;
        let verdict = probe(me(), silent, song, Duration::from_secs(3)).await;
        drop(tx);
        assert_eq!(verdict, Verdict::Silent);
    }
}
