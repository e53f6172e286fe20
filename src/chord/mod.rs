//! The Chord ring that replaces the tracker (DESIGN.md §4).
//!
//! [`node`] is a pure state machine: no tokio, no clock, no global
//! randomness (so are the parts below it). It is a small dispatcher over
//! parts that own their state, each in its own file with private fields,
//! a narrow interface and its own unit tests:
//!
//! - `neighbours`: successor list, predecessor (`neighbours/predecessor`),
//!   life cycle (Zave's rules);
//! - `contacts`: bootstrap nodes and past contacts (partition healing);
//! - `lookups`: routing and lookups in flight, over `lookup` (one iterative
//!   lookup) and `fingers` (the finger table);
//! - `store` over [`records`]: the records held here, of typed kinds
//!   (swarm lists first), each a CRDT with its own validation, expiry and
//!   caps;
//! - `ops`: client writes and reads in flight, over [`quorum`] (the quorum
//!   arithmetic);
//! - `replication`: anti-entropy, hand-off, a joiner's key range;
//! - [`probes`]: relayed swarm entries of third parties checked with
//!   their addresses (asking the source), within rate limits;
//! - `vouch`: postings from other nodes waiting until their songs'
//!   metadata, read from the ring once and cached, vouches for them;
//! - `rpc`, `rtt`, `timers`: requests in flight and their time-outs, the
//!   output queue, periodic tasks.
//!
//! [`catalog`] publishes songs and searches them through a running node.
//!
//! [`driver`] is the async shell that moves the node's inputs and outputs
//! over TCP ([`connection`]: one task per connection; [`prober`]: one
//! task per probe), and [`client`] talks
//! to a node from outside.
//!
//! [`message`] is the node-to-node protocol as plain data, defined with its
//! codec in [`crate::wire::chord`] (the ring imports from `wire`, never the
//! reverse).

use std::net::SocketAddr;

use crate::id::Id;

pub mod catalog;
pub mod client;
pub mod connection;
mod contacts;
pub mod driver;
mod fingers;
pub mod handle;
mod lookup;
mod lookups;
pub mod metrics;
mod neighbours;
pub mod node;
mod ops;
pub mod placement;
pub mod prober;
pub mod probes;
pub mod quorum;
pub mod records;
mod replication;
mod rpc;
mod rtt;
mod store;
mod timers;
mod vouch;

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

/// Where the node is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Created, not started.
    Idle,
    /// Looking up its own id through bootstrap nodes.
    Joining,
    /// Has a successor: part of the ring (or an appendage about to be).
    Member,
    /// Handing its keys over before it stops.
    Leaving,
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
    /// A read of a record kind this node does not know.
    #[error("unknown record kind {0}")]
    UnknownKind(crate::wire::chord::message::Kind),
    /// A record that does not parse or validate under its key (e.g. a
    /// signed item with a bad signature): no replica would store it.
    #[error("the record of kind {kind} does not parse or validate under key {key}")]
    Invalid {
        /// The key written.
        key: Id,
        /// The record's kind.
        kind: crate::wire::chord::message::Kind,
    },
    /// An announce or removal for an address that is not the announcer's
    /// own: the ring stores a peer only for the IP address it comes from.
    #[error(
        "refused: {peer} is not at {source_ip}, the address this request comes from \
         (announces are bound to their source: announce your own address, from its host)"
    )]
    NotYourAddress {
        /// The peer announced.
        peer: std::net::SocketAddr,
        /// Where the request came from.
        source_ip: std::net::IpAddr,
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

/// Helpers for the parts' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::net::SocketAddr;

    use super::Peer;

    /// `n` nodes on loopback, sorted by id: each one's successor is the next.
    pub(crate) fn ring(n: u16) -> Vec<Peer> {
        let mut ring: Vec<Peer> = (1..=n)
            .map(|port| Peer::new(SocketAddr::from(([127, 0, 0, 1], port))))
            .collect();
        ring.sort_by_key(|p| p.id);
        ring
    }
}
