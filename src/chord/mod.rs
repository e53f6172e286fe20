//! The Chord ring that replaces the tracker (DESIGN.md §4).
//!
//! `node`, `lookup`, `records` and `quorum` are pure: no tokio, no
//! clock, no global randomness. `driver` is the async shell that moves their
//! inputs and outputs over TCP, and `client` talks to a node from outside.
//!
//! - [`node`]: the ring state machine (`handle_*` in, `poll_*` out).
//! - [`ops`]: announces, reads, replication and hand-off on top of the ring.
//! - [`lookup`]: one iterative lookup.
//! - [`records`]: swarm lists as a CRDT.
//! - [`quorum`]: in-flight quorum reads and writes.
//! - [`message`]: the node-to-node protocol as plain data, defined with its
//!   codec in [`crate::wire::chord`] (the ring imports from `wire`, never the
//!   reverse).

use std::net::SocketAddr;

use crate::id::Id;

pub mod client;
pub mod connection;
pub mod driver;
pub mod lookup;
pub mod node;
pub mod ops;
pub mod quorum;
pub mod records;
pub mod ring;
pub mod routing;

/// The node-to-node protocol as plain data; it lives with its codec in
/// [`crate::wire::chord`], and the ring only speaks it.
pub use crate::wire::chord::message;
pub use crate::wire::chord::{LookupInfo, RingInfo, Role};

/// A ring member as others see it: its advertised address and the id derived from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Peer {
    /// SHA-1 of `addr` as `ip:port`.
    pub id: Id,
    /// The advertised address.
    pub addr: SocketAddr,
}

impl Peer {
    /// The peer advertised at `addr`.
    pub fn new(addr: SocketAddr) -> Peer {
        Peer {
            id: Id::of_addr(addr),
            addr,
        }
    }
}

/// Why a ring operation failed.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChordError {
    /// The node has not joined a ring yet.
    #[error("this node has not joined a ring yet")]
    NotJoined,
    /// No owner found within the hop limit, or every candidate was dead.
    #[error("lookup of {key} failed after {hops} hops")]
    LookupFailed {
        /// The key looked up.
        key: Id,
        /// Questions asked before giving up.
        hops: u32,
    },
    /// Too few replicas answered.
    #[error("quorum not reached: {got} of {needed} replicas answered")]
    QuorumFailed {
        /// Replicas that answered well.
        got: usize,
        /// Replicas needed (W or R).
        needed: usize,
    },
    /// The node is shutting down.
    #[error("the node is shutting down")]
    Shutdown,
    /// Talking to a remote node failed (client side).
    #[error("cannot reach the node: {0}")]
    Unreachable(String),
    /// The remote node reported an error (client side).
    #[error("the node answered: {0}")]
    Remote(String),
}
