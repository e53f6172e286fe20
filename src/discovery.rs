//! Finding a Chord ring on the local network by UDP multicast.
//!
//! A process that has no bootstrap address sends one query to a multicast
//! group and collects the answers for a short while; every running node
//! listens on the group and answers, by unicast, with the address it
//! advertises. Nobody answering means there is no ring here yet, and the
//! caller starts one.
//!
//! The datagrams are one short line of ASCII:
//!
//! ```text
//! songswarm-discover 1 <nonce: 16 hex digits>
//! songswarm-here 1 <nonce> <advertised ip:port>
//! ```
//!
//! The nonce ties answers to the query, so a stray or replayed answer is
//! ignored. Anything that does not parse is dropped silently: the group is
//! shared with whoever else is on the network.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Default group: administratively scoped (RFC 2365), so routers do not
/// carry it off the site.
pub const DEFAULT_GROUP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 255, 77, 77), 47077);

/// Largest datagram we read; real ones are under 100 bytes.
const MAX_DATAGRAM: usize = 256;

/// Where and how long to look for a ring.
#[derive(Clone, Debug)]
pub struct DiscoveryConfig {
    /// Multicast group and port shared by all songswarm processes.
    pub group: SocketAddrV4,
    /// Interface to send and join on; UNSPECIFIED lets the routing table
    /// choose. Tests use 127.0.0.1 to stay on the loopback interface.
    pub interface: Ipv4Addr,
    /// How long a query waits for answers.
    pub wait: Duration,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            group: DEFAULT_GROUP,
            interface: Ipv4Addr::UNSPECIFIED,
            wait: Duration::from_millis(1500),
        }
    }
}

impl DiscoveryConfig {
    /// The interface that matches an advertised address: its own IPv4
    /// address when it has a specific one, otherwise the routing table's choice.
    pub fn interface_for(mut self, advertise: SocketAddr) -> Self {
        if let SocketAddr::V4(v4) = advertise {
            if !v4.ip().is_unspecified() {
                self.interface = *v4.ip();
            }
        }
        self
    }
}

/// A datagram of the discovery protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Datagram {
    Query { nonce: u64 },
    Answer { nonce: u64, addr: SocketAddr },
}

impl Datagram {
    fn encode(&self) -> String {
        match self {
            Datagram::Query { nonce } => format!("songswarm-discover 1 {nonce:016x}"),
            Datagram::Answer { nonce, addr } => format!("songswarm-here 1 {nonce:016x} {addr}"),
        }
    }

    fn decode(bytes: &[u8]) -> Option<Datagram> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut words = text.trim_end().split(' ');
        let kind = words.next()?;
        if words.next()? != "1" {
            return None;
        }
        let nonce = u64::from_str_radix(words.next()?, 16).ok()?;
        let datagram = match kind {
            "songswarm-discover" => Datagram::Query { nonce },
            "songswarm-here" => Datagram::Answer {
                nonce,
                addr: words.next()?.parse().ok()?,
            },
            _ => return None,
        };
        words.next().is_none().then_some(datagram)
    }
}

/// A bound member of the group that answers queries.
///
/// Binding and answering are separate steps so that a caller knows the
/// responder is listening before anyone queries it.
pub struct Responder {
    /// Bound to the group port, joined to the group; dropped when `run` ends.
    socket: UdpSocket,
}

impl Responder {
    /// Joins the group. Several processes on one host may do so at once: the
    /// socket is bound with SO_REUSEADDR, and every member gets each query.
    pub fn bind(config: &DiscoveryConfig) -> io::Result<Responder> {
        Ok(Responder {
            socket: group_socket(config)?,
        })
    }

    /// Answers queries with `advertise` until `token` is cancelled.
    pub async fn run(self, advertise: SocketAddr, token: CancellationToken) -> io::Result<()> {
        let mut buf = [0u8; MAX_DATAGRAM];
        loop {
            let (len, from) = tokio::select! {
                _ = token.cancelled() => return Ok(()),
                received = self.socket.recv_from(&mut buf) => received?,
            };
            if let Some(Datagram::Query { nonce }) = Datagram::decode(&buf[..len]) {
                let answer = Datagram::Answer {
                    nonce,
                    addr: advertise,
                };
                // A failed answer only costs that querier one reply.
                if let Err(e) = self.socket.send_to(answer.encode().as_bytes(), from).await {
                    tracing::debug!(%from, error = %e, "discovery answer not sent");
                }
            }
        }
    }
}

/// Asks the group for running nodes and returns every distinct address that
/// answered within `config.wait`, leaving out `own` (our own responder).
pub async fn discover(
    config: &DiscoveryConfig,
    own: Option<SocketAddr>,
) -> io::Result<Vec<SocketAddr>> {
    let socket = query_socket(config)?;
    let nonce: u64 = rand::random();
    socket
        .send_to(
            Datagram::Query { nonce }.encode().as_bytes(),
            SocketAddr::V4(config.group),
        )
        .await?;
    let deadline = Instant::now() + config.wait;
    let mut found = Vec::new();
    let mut buf = [0u8; MAX_DATAGRAM];
    loop {
        let received = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await;
        let Ok(received) = received else {
            return Ok(found);
        };
        let (len, _from) = received?;
        if let Some(Datagram::Answer { nonce: n, addr }) = Datagram::decode(&buf[..len]) {
            if n == nonce && Some(addr) != own && !found.contains(&addr) {
                found.push(addr);
            }
        }
    }
}

/// The socket that listens on the group: bound to the group port on all
/// addresses, sharing the port with other processes, joined on the interface.
fn group_socket(config: &DiscoveryConfig) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, config.group.port());
    socket.bind(&SocketAddr::V4(any).into())?;
    socket.join_multicast_v4(config.group.ip(), &config.interface)?;
    set_multicast_interface(&socket, config.interface)?;
    UdpSocket::from_std(socket.into())
}

/// The socket a query goes out on and its answers come back to.
fn query_socket(config: &DiscoveryConfig) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).into())?;
    set_multicast_interface(&socket, config.interface)?;
    UdpSocket::from_std(socket.into())
}

fn set_multicast_interface(socket: &Socket, interface: Ipv4Addr) -> io::Result<()> {
    // Loop back our own datagrams so that processes on one host find each other.
    socket.set_multicast_loop_v4(true)?;
    socket.set_multicast_ttl_v4(1)?;
    if !interface.is_unspecified() {
        socket.set_multicast_if_v4(&interface)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_round_trip() {
        let query = Datagram::Query { nonce: 0xdead_beef };
        assert_eq!(Datagram::decode(query.encode().as_bytes()), Some(query));
        let answer = Datagram::Answer {
            nonce: 7,
            addr: "10.1.2.3:6881".parse().unwrap(),
        };
        assert_eq!(Datagram::decode(answer.encode().as_bytes()), Some(answer));
    }

    #[test]
    fn garbage_is_ignored() {
        for bad in [
            &b""[..],
            b"songswarm-discover",
            b"songswarm-discover 2 0000000000000001",
            b"songswarm-discover 1 zz",
            b"songswarm-here 1 0000000000000001",
            b"songswarm-here 1 0000000000000001 not-an-addr",
            b"songswarm-here 1 0000000000000001 1.2.3.4:5 extra",
            b"\xff\xfe",
        ] {
            assert_eq!(Datagram::decode(bad), None, "{bad:?}");
        }
    }
}
