//! One task per Chord TCP connection.
//!
//! A node connection carries node messages both ways: whatever arrives is
//! published to the node task as `Command::Inbound`, whatever the node
//! task queues on the connection's channel is written out. A client
//! connection carries requests that are answered on the same connection.
//! Any decoding error closes that one connection, with the reason logged.

use std::net::{IpAddr, SocketAddr};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::chord::handle::{ChordHandle, Command};
use crate::chord::message::Message;
use crate::chord::records::{same_ip, MAX_VALUE_TTL};
use crate::chord::{catalog, ChordError, Peer};
use crate::wire::chord::{ChordCodec, ClientReply, ClientRequest, Frame};

/// Messages queued per connection before the node task treats it as stuck.
pub(crate) const CONN_QUEUE: usize = 256;

/// Dial `to`, introduce ourselves, then run the connection. Reports a
/// failed dial to the node task as [`Command::DialFailed`], saying whether
/// it is evidence that `to` is gone.
pub(crate) async fn dial(
    handle: ChordHandle,
    to: SocketAddr,
    conn_id: u64,
    rx: mpsc::Receiver<Message>,
) {
    let span = tracing::debug_span!("chord_out", peer = %to);
    async move {
        let framed = match open(&handle, to).await {
            Ok(framed) => framed,
            Err((gone, why)) => {
                tracing::debug!("dial failed: {why}");
                let failed = Command::DialFailed {
                    addr: to,
                    conn_id,
                    gone,
                };
                let _ = handle.tx.send(failed).await;
                return;
            }
        };
        run_node_conn(handle, framed, to, conn_id, rx).await;
    }
    .instrument(span)
    .await
}

/// True if `e` is evidence that the other side is gone: nothing listens
/// there, it reset the connection, or no route leads to it. A time-out or
/// a shortage of our own (descriptors, ports, memory) says nothing of it.
pub(crate) fn is_gone(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionReset | ConnectionAborted | BrokenPipe | HostUnreachable
    )
}

/// Connect to `to` from `ip`, our advertised address, so that the far side
/// sees the address we claim (on a host with several addresses, or a node
/// on 127.0.0.2, the kernel would otherwise pick another source). Where
/// `ip` is not one of this host's (unspecified, or a forwarded public
/// address), the kernel picks.
pub(crate) async fn connect_from(ip: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = match to {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if !ip.is_unspecified() && ip.is_ipv4() == to.is_ipv4() {
        // A failed bind (not an address of ours) leaves the kernel to choose.
        let _ = socket.bind(SocketAddr::new(ip, 0));
    }
    socket.connect(to).await
}

/// Connect to `to` and introduce ourselves. An error says whether `to`
/// is gone (see [`is_gone`]) and why.
async fn open(
    handle: &ChordHandle,
    to: SocketAddr,
) -> Result<Framed<TcpStream, ChordCodec>, (bool, String)> {
    let timeout = handle.config.rpc_timeout;
    let stream = tokio::time::timeout(timeout, connect_from(handle.addr.ip(), to))
        .await
        .map_err(|_| (false, "connect timed out".to_string()))?
        .map_err(|e| (is_gone(&e), format!("connect: {e}")))?;
    let _ = stream.set_nodelay(true);
    let mut framed = Framed::new(stream, ChordCodec::new(handle.config.max_frame));
    let me = Peer::new(handle.addr);
    let hello = Frame::Hello {
        id: me.id,
        addr: Some(me.addr),
    };
    framed.send(hello).await.map_err(|e| match e {
        crate::wire::chord::ChordCodecError::Io(io) => (is_gone(&io), format!("hello: {io}")),
        other => (true, format!("hello: {other}")),
    })?;
    Ok(framed)
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
                // A node is its advertised address, and what it writes is
                // bound to that address's IP: it must be where it calls from.
                if !same_ip(addr.ip(), remote.ip()) {
                    tracing::info!(claimed = %addr, "closing: a node calls from another address than it claims");
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
            Ok(Some(Ok(Frame::Hello { addr: None, .. }))) => {
                run_client_conn(handle, framed, remote).await
            }
            Ok(Some(Ok(other))) => tracing::info!("closing: expected a hello, got {other:?}"),
            Ok(Some(Err(e))) => tracing::info!("closing: {e}"),
            Ok(None) => {}
            Err(_) => tracing::info!("closing: no hello in time"),
        }
    }
    .instrument(span)
    .await
}

/// Move node messages both ways until error, shutdown, or a graceful close.
///
/// A close is graceful so that no message in flight is lost: the side that
/// stops sending (the node task dropped our sender on eviction, or the
/// connection sat idle) writes what is queued and shuts down its write half,
/// but reads on until the other side does the same. The side that reads the
/// end of the stream tells the node task first, so that new messages take a
/// new connection, then writes what is still queued and shuts down too. An
/// accepted connection the node task did not register (it already had one
/// to that node: both dialed at once) is read until its dialer closes it.
async fn run_node_conn(
    handle: ChordHandle,
    mut framed: Framed<TcpStream, ChordCodec>,
    peer: SocketAddr,
    conn_id: u64,
    mut rx: mpsc::Receiver<Message>,
) {
    let idle = handle.config.idle_timeout;
    let token = handle.conn_token.clone();
    // The node task may still queue messages here.
    let mut sending = true;
    // The other side has shut down its write half.
    let mut peer_done = false;
    // The node task was told this connection is gone.
    let mut reported = false;
    // When a half-closed connection is dropped anyway.
    let mut grace: Option<tokio::time::Instant> = None;
    let mut failed = false;
    let report = |failed: bool| {
        handle.tx.send(Command::Closed {
            addr: peer,
            conn_id,
            failed,
        })
    };
    loop {
        // One timer: the end of the grace period once closing, else idleness.
        let wake = grace.unwrap_or_else(|| tokio::time::Instant::now() + idle);
        tokio::select! {
            _ = token.cancelled() => break,
            out = rx.recv(), if sending => match out {
                Some(msg) => {
                    if let Err(e) = framed.send(Frame::Node(msg)).await {
                        tracing::debug!("write failed: {e}");
                        failed = true;
                        break;
                    }
                }
                None => {
                    sending = false;
                    if peer_done || framed.close().await.is_err() {
                        break;
                    }
                    grace = Some(tokio::time::Instant::now() + handle.config.rpc_timeout);
                }
            },
            frame = framed.next(), if !peer_done => match frame {
                Some(Ok(Frame::Node(msg))) => {
                    // Answers to our own requests always pass.
                    if msg.answer_to().is_none() && !handle.admit(peer.ip()) {
                        continue;
                    }
                    let features = framed.codec().peer_features();
                    let inbound = Command::Inbound { from: peer, msg, features };
                    if handle.tx.send(inbound).await.is_err() {
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
                None => {
                    peer_done = true;
                    if !sending {
                        break;
                    }
                    if !reported {
                        reported = true;
                        if report(false).await.is_err() {
                            break;
                        }
                    }
                    grace = Some(tokio::time::Instant::now() + handle.config.rpc_timeout);
                }
            },
            _ = tokio::time::sleep_until(wake) => {
                if grace.is_some() {
                    break;
                }
                // Quiet both ways: stop taking messages, then close gracefully.
                reported = true;
                if report(false).await.is_err() {
                    break;
                }
                grace = Some(tokio::time::Instant::now() + handle.config.rpc_timeout);
            }
        }
    }
    if !reported || failed {
        let _ = report(failed).await;
    }
}

/// Answer client requests one at a time on this connection, from `remote`.
async fn run_client_conn(
    handle: ChordHandle,
    mut framed: Framed<TcpStream, ChordCodec>,
    remote: SocketAddr,
) {
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
        let reply = if handle.admit(remote.ip()) {
            answer(&handle, body, remote.ip()).await
        } else {
            ClientReply::Error("too many requests from this address: try again later".into())
        };
        if let Err(e) = framed.send(Frame::Reply { req, body: reply }).await {
            tracing::debug!("client write failed: {e}");
            return;
        }
    }
}

/// Most hits one search answers with.
const MAX_HITS: usize = 200;

/// Most torrents one page of a node's library holds.
const MAX_LIBRARY_PAGE: usize = 100;

/// A client may announce or remove only a peer at its own address (as an
/// HTTP tracker takes the address an announce comes from).
fn own_peer(peer: SocketAddr, source_ip: IpAddr) -> Result<(), ChordError> {
    if same_ip(peer.ip(), source_ip) {
        Ok(())
    } else {
        Err(ChordError::NotYourAddress { peer, source_ip })
    }
}

async fn answer(handle: &ChordHandle, body: ClientRequest, source: IpAddr) -> ClientReply {
    let err = |e: ChordError| ClientReply::Error(e.to_string());
    match body {
        ClientRequest::Announce { peer, .. } | ClientRequest::Remove { peer, .. }
            if own_peer(peer, source).is_err() =>
        {
            own_peer(peer, source).map_or_else(err, |_| ClientReply::Ok)
        }
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
        ClientRequest::Put { key, value } => handle
            .put_wire(key, value)
            .await
            .map_or_else(err, |_| ClientReply::Ok),
        ClientRequest::Get { key, kind } => handle
            .get_wire(key, kind)
            .await
            .map_or_else(err, ClientReply::Record),
        ClientRequest::Ring => match handle.ring_info().await {
            Ok(info) => ClientReply::Ring(info),
            Err(e) => err(e),
        },
        ClientRequest::Search { query, limit } => {
            let limit = (limit as usize).min(MAX_HITS);
            catalog::search(handle, &query, limit)
                .await
                .map_or_else(err, ClientReply::Hits)
        }
        ClientRequest::Library { after, limit } => {
            let limit = (limit as usize).clamp(1, MAX_LIBRARY_PAGE);
            match handle.library_page(after, limit).await {
                Ok((songs, next)) => ClientReply::Songs { songs, next },
                Err(e) => err(e),
            }
        }
        ClientRequest::PutValue { value } => catalog::put_value(handle, value, MAX_VALUE_TTL)
            .await
            .map_or_else(err, |_| ClientReply::Ok),
        ClientRequest::GetValue { key } => catalog::get_value(handle, key)
            .await
            .map_or_else(err, ClientReply::Value),
    }
}
