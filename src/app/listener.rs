//! The process's one front door: a single TCP listener for every protocol
//! the process speaks, and the router that tells them apart by their first
//! byte.
//!
//! A BitTorrent handshake starts with 0x13 (the length of "BitTorrent
//! protocol") and goes, by its info-hash, to that torrent's coordinator;
//! anything else goes to the process's Chord node, whose codec checks its
//! own preamble. A protocol added later (HTTP) is one more [`Protocol`] and
//! one more arm in [`Router::route`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use dashmap::DashMap;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tracing::debug;

use super::shutdown::Shutdown;
use super::AppError;
use crate::chord::driver::ChordHandle;
use crate::id::Id;
use crate::swarm::connection::SOCKET_BUFFER;
use crate::swarm::coordinator::TorrentHandle;
use crate::swarm::TorrentEvent;
use crate::wire::handshake::{self, HandshakeError};

/// First byte of a BitTorrent handshake: the length of its protocol string.
pub const PEER_WIRE_FIRST_BYTE: u8 = handshake::FIRST_BYTE;

/// Time an incoming connection has to send its first bytes and, for the
/// peer wire, its whole handshake.
const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(10);

/// Most incoming connections whose first bytes are awaited at once; more
/// are closed at once (silent connections cannot pile up).
const MAX_HALF_OPEN: usize = 512;
/// The same for one remote IP address.
const MAX_HALF_OPEN_PER_IP: usize = 64;

/// Pause after a failed accept (out of file descriptors and the like).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The protocols one port serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// The BitTorrent peer wire (BEP 3), to a torrent's coordinator.
    PeerWire,
    /// Chord RPC frames, to the process's ring node.
    Chord,
}

impl Protocol {
    /// The protocol of a connection whose first byte is `byte`.
    pub fn of_first_byte(byte: u8) -> Protocol {
        if byte == PEER_WIRE_FIRST_BYTE {
            Protocol::PeerWire
        } else {
            Protocol::Chord
        }
    }
}

/// Why an incoming connection was closed without being handed on (logged).
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// Nothing arrived within the time-out.
    #[error("no data")]
    Silent,
    /// The other side closed before sending anything.
    #[error("closed at once")]
    Closed,
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The handshake did not arrive whole and well-formed within the time-out.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// The process serves no torrent at all (a bare ring node).
    #[error("BitTorrent, and this process serves no torrents")]
    NoTorrents,
    /// No torrent of ours has that info-hash.
    #[error("unknown info-hash {0}")]
    UnknownTorrent(Id),
    /// The torrent's coordinator has stopped.
    #[error("torrent stopped")]
    TorrentStopped,
    /// The process runs no Chord node (`--no-ring`).
    #[error("not BitTorrent, and this process runs no Chord node")]
    NoChord,
    /// The process's Chord node has stopped (it is shutting down).
    #[error("the Chord node has stopped")]
    ChordStopped,
}

/// Where accepted connections go; shared by the accept loop and the [`App`](super::App).
#[derive(Clone, Default)]
pub struct Router {
    /// Running torrents by info-hash: handshakes go to their coordinators.
    pub(crate) torrents: Arc<DashMap<Id, TorrentHandle>>,
    /// The Chord node, once joined (set once): every other protocol.
    pub(crate) chord: Arc<OnceLock<ChordHandle>>,
}

impl Router {
    /// Reads the first bytes of an incoming connection and hands it on.
    pub async fn route(&self, stream: TcpStream) -> Result<(), RouteError> {
        let deadline = tokio::time::Instant::now() + FIRST_BYTES_TIMEOUT;
        let mut first = [0u8; 1];
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut first))
            .await
            .map_err(|_| RouteError::Silent)??;
        if n == 0 {
            return Err(RouteError::Closed);
        }
        match Protocol::of_first_byte(first[0]) {
            Protocol::PeerWire => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                self.to_torrent(stream, left).await
            }
            Protocol::Chord => match self.chord.get() {
                Some(node) => node
                    .serve_inbound(stream)
                    .await
                    .map_err(|_| RouteError::ChordStopped),
                None => Err(RouteError::NoChord),
            },
        }
    }

    /// Reads the handshake (within `within`) and gives the stream to the
    /// torrent it names.
    async fn to_torrent(&self, mut stream: TcpStream, within: Duration) -> Result<(), RouteError> {
        if self.torrents.is_empty() {
            // A bare ring node: no handshake can name a torrent here.
            return Err(RouteError::NoTorrents);
        }
        let handshake = handshake::read_theirs(&mut stream, within).await?;
        let events = self
            .torrents
            .get(&handshake.info_hash)
            .map(|h| h.events.clone())
            .ok_or(RouteError::UnknownTorrent(handshake.info_hash))?;
        events
            .send(TorrentEvent::Incoming {
                stream,
                handshake: Box::new(handshake),
            })
            .await
            .map_err(|_| RouteError::TorrentStopped)
    }
}

/// Counts the incoming connections being routed, in all and per remote IP.
#[derive(Clone, Default)]
struct HalfOpen(Arc<Mutex<HalfOpenCounts>>);

#[derive(Default)]
struct HalfOpenCounts {
    /// Connections being routed.
    total: usize,
    /// The same per remote IP (entries at zero are removed).
    per_ip: HashMap<IpAddr, usize>,
}

/// One connection being routed; dropping it ends its count.
struct HalfOpenGuard {
    /// The counts it is in.
    counts: HalfOpen,
    /// Its remote IP.
    ip: IpAddr,
}

impl HalfOpen {
    /// Counts a new connection from `ip`, or None when the limits are reached.
    fn enter(&self, ip: IpAddr) -> Option<HalfOpenGuard> {
        let mut c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let of_ip = c.per_ip.get(&ip).copied().unwrap_or(0);
        if c.total >= MAX_HALF_OPEN || of_ip >= MAX_HALF_OPEN_PER_IP {
            return None;
        }
        c.total += 1;
        c.per_ip.insert(ip, of_ip + 1);
        Some(HalfOpenGuard {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for HalfOpenGuard {
    fn drop(&mut self) {
        let mut c = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

/// The bound listening socket, before its accept loop runs.
pub struct Listener {
    /// The socket.
    listener: TcpListener,
    /// Its address (the real port when port 0 was asked for).
    local_addr: SocketAddr,
}

impl Listener {
    /// Binds `listen` with large socket buffers (accepted sockets inherit
    /// them: fast transfers need them).
    pub fn bind(listen: SocketAddr) -> Result<Listener, AppError> {
        let listen_err = |source| AppError::Listen {
            addr: listen,
            source,
        };
        let socket = if listen.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(listen_err)?;
        socket.set_reuseaddr(true).map_err(listen_err)?;
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
        socket.bind(listen).map_err(listen_err)?;
        let listener = socket.listen(1024).map_err(listen_err)?;
        let local_addr = listener.local_addr().map_err(listen_err)?;
        Ok(Listener {
            listener,
            local_addr,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The accept loop: one task per incoming connection routes it, until
    /// the process stops (which also drops connections still being routed).
    /// Connections beyond the limits of half-open ones are closed at once.
    pub async fn run(self, router: Router, shutdown: Shutdown) {
        let cancel = shutdown.token();
        let half_open = HalfOpen::default();
        loop {
            let accepted = tokio::select! {
                _ = cancel.cancelled() => return,
                a = self.listener.accept() => a,
            };
            match accepted {
                Ok((stream, addr)) => {
                    let Some(guard) = half_open.enter(addr.ip()) else {
                        debug!(%addr, "incoming connection dropped: too many half-open");
                        continue;
                    };
                    let (router, cancel) = (router.clone(), cancel.clone());
                    // Routing waits for the first bytes; at shutdown a
                    // connection still being routed is simply dropped.
                    shutdown.spawn(async move {
                        let _guard = guard;
                        tokio::select! {
                            _ = cancel.cancelled() => {}
                            routed = router.route(stream) => if let Err(reason) = routed {
                                debug!(%addr, %reason, "incoming connection dropped");
                            },
                        }
                    });
                }
                Err(e) => {
                    debug!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;
    use tokio::sync::{mpsc, watch};

    use super::*;
    use crate::manifest::{build, BuildOptions};
    use crate::storage::Storage;
    use crate::swarm::coordinator::TorrentStats;
    use crate::swarm::verified::VerifiedPieces;
    use crate::wire::handshake::Handshake;

    #[test]
    fn the_first_byte_tells_the_protocols_apart() {
        assert_eq!(PEER_WIRE_FIRST_BYTE, 0x13);
        let handshake = Handshake::new(Id::hash(b"x"), [1; 20]).to_bytes();
        assert_eq!(Protocol::of_first_byte(handshake[0]), Protocol::PeerWire);
        let chord = crate::wire::chord::PREAMBLE[0];
        assert_eq!(Protocol::of_first_byte(chord), Protocol::Chord);
    }

    /// A connection on loopback: the accepted end, and the dialing end.
    async fn connection() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dialer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        (accepted, dialer)
    }

    /// Routes one connection whose dialer sent `bytes`.
    async fn route(router: &Router, bytes: &[u8]) -> Result<(), RouteError> {
        let (accepted, mut dialer) = connection().await;
        dialer.write_all(bytes).await.unwrap();
        router.route(accepted).await
    }

    #[tokio::test]
    async fn a_handshake_goes_to_its_torrent_and_nowhere_else() {
        let router = Router::default();
        let song = Id::hash(b"song");
        let handshake = Handshake::new(song, [7; 20]).to_bytes();
        let r = route(&router, &handshake).await;
        assert!(matches!(r, Err(RouteError::NoTorrents)), "{r:?}");

        let (events, mut inbox) = mpsc::channel(1);
        let (_stats_tx, stats) = watch::channel(TorrentStats::default());
        let (_verified_tx, verified) = watch::channel(VerifiedPieces::new(1));
        let files = tempfile::tempdir().unwrap();
        let song_file = files.path().join("song.mp3");
        std::fs::write(&song_file, b"a song").unwrap();
        let manifest = build(&[song_file], &BuildOptions::default()).unwrap();
        let storage = Arc::new(Storage::open_or_create(files.path(), &manifest).unwrap());
        let torrent = TorrentHandle {
            info_hash: song,
            events: events.into(),
            stats,
            verified,
            storage,
        };
        router.torrents.insert(song, torrent);
        let other = Handshake::new(Id::hash(b"other"), [7; 20]).to_bytes();
        let r = route(&router, &other).await;
        assert!(matches!(r, Err(RouteError::UnknownTorrent(h)) if h == Id::hash(b"other")));
        route(&router, &handshake).await.unwrap();
        match inbox.try_recv() {
            Ok(TorrentEvent::Incoming { handshake, .. }) => {
                assert_eq!(handshake.info_hash, song);
                assert_eq!(handshake.peer_id, [7; 20]);
            }
            _ => panic!("the torrent got no incoming connection"),
        }
    }

    #[tokio::test]
    async fn anything_else_needs_a_chord_node() {
        let router = Router::default();
        let r = route(&router, crate::wire::chord::PREAMBLE).await;
        assert!(matches!(r, Err(RouteError::NoChord)), "{r:?}");
        let (accepted, dialer) = connection().await;
        drop(dialer);
        let r = router.route(accepted).await;
        assert!(matches!(r, Err(RouteError::Closed)), "{r:?}");
    }
}
