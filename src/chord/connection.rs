//! One task per Chord TCP connection.
//!
//! A node connection carries node messages both ways: whatever arrives is
//! published to the node task as `Command::Inbound`, whatever the node
//! task queues on the connection's channel is written out. A client
//! connection carries requests that are answered on the same connection.
//! Any decoding error closes that one connection, with the reason logged.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::chord::driver::{ChordHandle, Command};
use crate::chord::message::Message;
use crate::chord::{ChordError, Peer};
use crate::wire::chord::{ChordCodec, ClientReply, ClientRequest, Frame};

/// Messages queued per connection before the node task treats it as stuck.
pub(crate) const CONN_QUEUE: usize = 256;

/// Dial `to`, introduce ourselves, then run the connection. Reports a
/// failed dial to the node task as [`Command::DialFailed`].
pub(crate) async fn dial(
    handle: ChordHandle,
    to: SocketAddr,
    conn_id: u64,
    rx: mpsc::Receiver<Message>,
) {
    let span = tracing::debug_span!("chord_out", peer = %to);
    async move {
        let timeout = handle.config.rpc_timeout;
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(to)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!("connect failed: {e}");
                let _ = handle
                    .tx
                    .send(Command::DialFailed { addr: to, conn_id })
                    .await;
                return;
            }
            Err(_) => {
                tracing::debug!("connect timed out");
                let _ = handle
                    .tx
                    .send(Command::DialFailed { addr: to, conn_id })
                    .await;
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let mut framed = Framed::new(stream, ChordCodec::new(handle.config.max_frame));
        let me = Peer::new(handle.addr);
        let hello = Frame::Hello {
            id: me.id,
            addr: Some(me.addr),
        };
        if let Err(e) = framed.send(hello).await {
            tracing::debug!("hello failed: {e}");
            let _ = handle
                .tx
                .send(Command::DialFailed { addr: to, conn_id })
                .await;
            return;
        }
        run_node_conn(handle, framed, to, conn_id, rx).await;
    }
    .instrument(span)
    .await
}

/// Serve an accepted stream: the first frame says whether a node or a
/// client is calling.
pub(crate) async fn serve(handle: ChordHandle, stream: TcpStream, remote: SocketAddr) {
    let span = tracing::debug_span!("chord_in", remote = %remote);
    async move {
        let _ = stream.set_nodelay(true);
        let mut framed = Framed::new(stream, ChordCodec::new(handle.config.max_frame));
        let first = tokio::time::timeout(handle.config.rpc_timeout, framed.next()).await;
        match first {
            Ok(Some(Ok(Frame::Hello {
                addr: Some(addr), ..
            }))) => {
                if addr == handle.addr {
                    tracing::info!("closing: a peer claims our own address");
                    return;
                }
                let (tx, rx) = mpsc::channel(CONN_QUEUE);
                let conn_id = handle.next_conn_id();
                let register = Command::Register { addr, conn_id, tx };
                if handle.tx.send(register).await.is_err() {
                    return;
                }
                run_node_conn(handle, framed, addr, conn_id, rx).await;
            }
            Ok(Some(Ok(Frame::Hello { addr: None, .. }))) => run_client_conn(handle, framed).await,
            Ok(Some(Ok(other))) => tracing::info!("closing: expected a hello, got {other:?}"),
            Ok(Some(Err(e))) => tracing::info!("closing: {e}"),
            Ok(None) => {}
            Err(_) => tracing::info!("closing: no hello in time"),
        }
    }
    .instrument(span)
    .await
}

/// Move node messages both ways until error, idle time-out, eviction
/// (the node task drops our sender) or shutdown.
async fn run_node_conn(
    handle: ChordHandle,
    mut framed: Framed<TcpStream, ChordCodec>,
    peer: SocketAddr,
    conn_id: u64,
    mut rx: mpsc::Receiver<Message>,
) {
    let idle = handle.config.idle_timeout;
    let token = handle.conn_token.clone();
    let mut failed = false;
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            out = rx.recv() => match out {
                Some(msg) => {
                    if let Err(e) = framed.send(Frame::Node(msg)).await {
                        tracing::debug!("write failed: {e}");
                        failed = true;
                        break;
                    }
                }
                None => break,
            },
            frame = framed.next() => match frame {
                Some(Ok(Frame::Node(msg))) => {
                    if handle.tx.send(Command::Inbound { from: peer, msg }).await.is_err() {
                        break;
                    }
                }
                Some(Ok(other)) => {
                    tracing::info!("closing: unexpected frame {other:?}");
                    break;
                }
                Some(Err(e)) => {
                    tracing::info!("closing: {e}");
                    failed = true;
                    break;
                }
                None => break,
            },
            _ = tokio::time::sleep(idle) => break,
        }
    }
    let _ = handle
        .tx
        .send(Command::Closed {
            addr: peer,
            conn_id,
            failed,
        })
        .await;
}

/// Answer client requests one at a time on this connection.
async fn run_client_conn(handle: ChordHandle, mut framed: Framed<TcpStream, ChordCodec>) {
    let token: CancellationToken = handle.conn_token.clone();
    loop {
        let frame = tokio::select! {
            _ = token.cancelled() => return,
            f = framed.next() => f,
            _ = tokio::time::sleep(handle.config.idle_timeout) => return,
        };
        let (req, body) = match frame {
            Some(Ok(Frame::Request { req, body })) => (req, body),
            Some(Ok(other)) => {
                tracing::info!("closing client: unexpected frame {other:?}");
                return;
            }
            Some(Err(e)) => {
                tracing::info!("closing client: {e}");
                return;
            }
            None => return,
        };
        let reply = answer(&handle, body).await;
        if let Err(e) = framed.send(Frame::Reply { req, body: reply }).await {
            tracing::debug!("client write failed: {e}");
            return;
        }
    }
}

async fn answer(handle: &ChordHandle, body: ClientRequest) -> ClientReply {
    let err = |e: ChordError| ClientReply::Error(e.to_string());
    match body {
        ClientRequest::Announce { key, peer, role } => handle
            .announce(key, peer, role)
            .await
            .map_or_else(err, |_| ClientReply::Ok),
        ClientRequest::Remove { key, peer } => handle
            .remove(key, peer)
            .await
            .map_or_else(err, |_| ClientReply::Ok),
        ClientRequest::Peers { key } => {
            handle.peers(key).await.map_or_else(err, ClientReply::Peers)
        }
        ClientRequest::Lookup { key } => handle
            .lookup(key)
            .await
            .map_or_else(err, ClientReply::Lookup),
        ClientRequest::Ring => match handle.ring_info().await {
            Ok(info) => ClientReply::Ring(info),
            Err(e) => err(e),
        },
    }
}

/// How long a leaving node waits for its hand-over pushes at most.
pub(crate) fn leave_grace(rpc_timeout: Duration) -> Duration {
    rpc_timeout + Duration::from_millis(100)
}
