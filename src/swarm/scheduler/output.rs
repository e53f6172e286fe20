//! What the scheduler asks its driver to do.

use bytes::Bytes;

use crate::geometry::BlockRef;
use crate::swarm::pieces::PeerKey;

/// An action for the coordinator to carry out.
#[derive(Debug)]
pub enum Output {
    /// Send these requests to the peer.
    Request {
        /// Whom to ask.
        peer: PeerKey,
        /// Blocks, in order.
        blocks: Vec<BlockRef>,
    },
    /// Send a cancel (endgame: another peer delivered the block first).
    Cancel {
        /// Whom to tell.
        peer: PeerKey,
        /// The block no longer wanted.
        block: BlockRef,
    },
    /// Send interested / not interested.
    Interest {
        /// Whom to tell.
        peer: PeerKey,
        /// New state.
        interested: bool,
    },
    /// Send choke / unchoke.
    Choke {
        /// Whom to tell.
        peer: PeerKey,
        /// True to choke.
        choke: bool,
    },
    /// Hash piece `piece` (its blocks in order) and write it if it matches.
    Verify {
        /// Piece index.
        piece: u32,
        /// The piece's blocks in order.
        blocks: Vec<Bytes>,
    },
    /// A piece was verified: announce it to every peer.
    Have(u32),
    /// Super-seeding: announce this piece to this one peer.
    Offer {
        /// Whom to tell.
        peer: PeerKey,
        /// The piece offered.
        piece: u32,
    },
    /// Close this connection.
    Disconnect {
        /// Which one.
        peer: PeerKey,
        /// True when it sent corrupt data: never connect to it again.
        ban: bool,
        /// Why, for the log.
        reason: &'static str,
    },
    /// Every piece is verified.
    Complete,
}
