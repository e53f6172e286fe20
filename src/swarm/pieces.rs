//! Piece and block bookkeeping: plain data, no I/O.
//!
//! Invariant: each piece is in exactly one [`PieceState`]. A piece moves
//! `Missing → Partial → Verifying → Have`, and back to `Missing` when its
//! hash check fails or every block of a partial piece is given up. Inside a
//! `Partial` piece each block is `Free`, `Requested` (by one or more peers:
//! more than one only in endgame) or `Received` (its bytes held here until the
//! piece is complete, so nothing is written to disk unverified).

use bytes::Bytes;

use crate::geometry::{bitfield_len, bitfield_set, BlockRef, Geometry, BLOCK_SIZE};

/// Identifies one peer connection inside a torrent.
pub type PeerKey = u64;

/// One block of a partial piece.
#[derive(Clone, Debug)]
pub enum BlockState {
    /// Nobody has been asked for it.
    Free,
    /// Asked of this many peers (1, or more in endgame).
    Requested(u8),
    /// Its bytes have arrived.
    Received(Bytes),
}

/// A piece being downloaded.
#[derive(Clone, Debug)]
pub struct Partial {
    /// One entry per block.
    pub blocks: Vec<BlockState>,
    /// Number of `Received` blocks.
    pub received: u32,
    /// Number of `Free` blocks.
    pub free: u32,
    /// Peers that delivered blocks of this piece (blamed on a hash failure).
    pub contributors: Vec<PeerKey>,
    /// After a hash failure with several contributors, the one peer allowed
    /// to fetch this piece, so the next failure has a single culprit.
    pub exclusive: Option<PeerKey>,
    /// True when this piece failed its hash check before.
    pub suspect: bool,
}

/// Where one piece stands.
#[derive(Clone, Debug)]
pub enum PieceState {
    /// Not started.
    Missing,
    /// Some blocks requested or received (boxed: few pieces are partial at
    /// once, and every piece of a library's every song has a state).
    Partial(Box<Partial>),
    /// All blocks received; hashing and writing in progress.
    Verifying,
    /// Verified and on disk.
    Have,
}

/// What happened to an arriving block.
#[derive(Debug)]
pub enum BlockOutcome {
    /// We were not expecting it (piece not in progress, or bad bounds).
    Unexpected,
    /// We already had it (endgame duplicate).
    Duplicate,
    /// Stored; the piece still misses blocks.
    Stored,
    /// Stored and the piece is complete, to be verified.
    Complete {
        /// The piece's blocks in order.
        blocks: Vec<Bytes>,
        /// Peers that delivered them.
        contributors: Vec<PeerKey>,
    },
}

/// The state of every piece of one torrent.
#[derive(Clone, Debug)]
pub struct Pieces {
    /// Piece layout.
    pub geometry: Geometry,
    /// One state per piece.
    states: Vec<PieceState>,
    /// Number of pieces in `Have`.
    have: u32,
    /// Number of pieces in `Missing`.
    missing: u32,
    /// Suspect pieces (failed once) that went back to `Missing`.
    suspect: Vec<bool>,
}

impl Pieces {
    /// All pieces missing.
    pub fn new(geometry: Geometry) -> Pieces {
        let n = geometry.piece_count as usize;
        Pieces {
            geometry,
            states: vec![PieceState::Missing; n],
            have: 0,
            missing: geometry.piece_count,
            suspect: vec![false; n],
        }
    }

    /// The state of piece `index`.
    pub fn state(&self, index: u32) -> &PieceState {
        &self.states[index as usize]
    }

    /// The piece layout.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Number of pieces.
    pub fn count(&self) -> u32 {
        self.geometry.piece_count
    }

    /// Number of verified pieces.
    pub fn have_count(&self) -> u32 {
        self.have
    }

    /// Number of pieces not started.
    pub fn missing_count(&self) -> u32 {
        self.missing
    }

    /// True when every piece is verified.
    pub fn is_complete(&self) -> bool {
        self.have == self.geometry.piece_count
    }

    /// True when piece `index` is verified.
    pub fn has(&self, index: u32) -> bool {
        matches!(self.states.get(index as usize), Some(PieceState::Have))
    }

    /// True when piece `index` is neither verified nor being verified.
    pub fn wants(&self, index: u32) -> bool {
        matches!(
            self.states.get(index as usize),
            Some(PieceState::Missing | PieceState::Partial(_))
        )
    }

    /// Marks a piece verified at start-up (resume) or after hashing.
    pub fn set_have(&mut self, index: u32) {
        let s = &mut self.states[index as usize];
        match s {
            PieceState::Have => return,
            PieceState::Missing => self.missing -= 1,
            _ => {}
        }
        *s = PieceState::Have;
        self.have += 1;
    }

    /// The have-bitfield, high bit first.
    pub fn bitfield(&self) -> Vec<u8> {
        let mut bits = vec![0u8; bitfield_len(self.count())];
        for (i, s) in self.states.iter().enumerate() {
            if matches!(s, PieceState::Have) {
                bitfield_set(&mut bits, i as u32);
            }
        }
        bits
    }

    /// Moves a missing piece to `Partial` with every block free.
    pub fn start(&mut self, index: u32) -> &mut Partial {
        let n = self.geometry.block_count(index);
        let s = &mut self.states[index as usize];
        if matches!(s, PieceState::Missing) {
            self.missing -= 1;
            *s = PieceState::Partial(Box::new(Partial {
                blocks: vec![BlockState::Free; n as usize],
                received: 0,
                free: n,
                contributors: Vec::new(),
                exclusive: None,
                suspect: self.suspect[index as usize],
            }));
        }
        match s {
            PieceState::Partial(p) => p,
            _ => unreachable!("start() is only called on missing or partial pieces"),
        }
    }

    /// The partial state of piece `index`, if it is partial.
    pub fn partial_mut(&mut self, index: u32) -> Option<&mut Partial> {
        match self.states.get_mut(index as usize) {
            Some(PieceState::Partial(p)) => Some(p),
            _ => None,
        }
    }

    /// The partial state of piece `index`, if it is partial.
    pub fn partial(&self, index: u32) -> Option<&Partial> {
        match self.states.get(index as usize) {
            Some(PieceState::Partial(p)) => Some(p),
            _ => None,
        }
    }

    /// Records that one more peer was asked for block `r`.
    pub fn mark_requested(&mut self, r: &BlockRef) {
        if let Some(p) = self.partial_mut(r.index) {
            let b = &mut p.blocks[(r.begin / BLOCK_SIZE) as usize];
            match b {
                BlockState::Free => {
                    p.free -= 1;
                    *b = BlockState::Requested(1);
                }
                BlockState::Requested(n) => *n = n.saturating_add(1),
                BlockState::Received(_) => {}
            }
        }
    }

    /// One requester of block `r` gave up (time-out, choke, disconnect).
    /// A partial piece left with nothing requested or received goes back to
    /// `Missing`, so it does not pin memory or an exclusive owner.
    pub fn release(&mut self, r: &BlockRef) {
        let index = r.index;
        let Some(p) = self.partial_mut(index) else {
            return;
        };
        let b = &mut p.blocks[(r.begin / BLOCK_SIZE) as usize];
        if let BlockState::Requested(n) = b {
            if *n <= 1 {
                *b = BlockState::Free;
                p.free += 1;
            } else {
                *n -= 1;
            }
        }
        if p.received == 0 && p.free as usize == p.blocks.len() {
            self.states[index as usize] = PieceState::Missing;
            self.missing += 1;
        }
    }

    /// Drops every block of a partial piece (its data came partly from a
    /// peer found lying); the piece is fetched again from scratch.
    pub fn reset(&mut self, index: u32) {
        if matches!(self.states[index as usize], PieceState::Partial(_)) {
            self.states[index as usize] = PieceState::Missing;
            self.missing += 1;
        }
    }

    /// Stores an arriving block from `peer`.
    pub fn receive(&mut self, peer: PeerKey, r: &BlockRef, data: Bytes) -> BlockOutcome {
        if !self.geometry.is_valid_block(r) || data.len() != r.length as usize {
            return BlockOutcome::Unexpected;
        }
        let index = r.index;
        let Some(p) = self.partial_mut(index) else {
            return BlockOutcome::Unexpected;
        };
        let b = &mut p.blocks[(r.begin / BLOCK_SIZE) as usize];
        match b {
            BlockState::Received(_) => return BlockOutcome::Duplicate,
            BlockState::Free => p.free -= 1,
            BlockState::Requested(_) => {}
        }
        *b = BlockState::Received(data);
        p.received += 1;
        if !p.contributors.contains(&peer) {
            p.contributors.push(peer);
        }
        if p.received as usize != p.blocks.len() {
            return BlockOutcome::Stored;
        }
        let PieceState::Partial(p) =
            std::mem::replace(&mut self.states[index as usize], PieceState::Verifying)
        else {
            unreachable!("checked partial above")
        };
        let blocks = p
            .blocks
            .into_iter()
            .map(|b| match b {
                BlockState::Received(d) => d,
                _ => Bytes::new(),
            })
            .collect();
        BlockOutcome::Complete {
            blocks,
            contributors: p.contributors,
        }
    }

    /// The hash check of a `Verifying` piece finished.
    pub fn verified(&mut self, index: u32, ok: bool) {
        if !matches!(self.states[index as usize], PieceState::Verifying) {
            return;
        }
        if ok {
            self.states[index as usize] = PieceState::Have;
            self.have += 1;
        } else {
            self.states[index as usize] = PieceState::Missing;
            self.suspect[index as usize] = true;
            self.missing += 1;
        }
    }

    /// Checks the counters against the states (used by tests).
    pub fn check_invariant(&self) -> bool {
        let have = self
            .states
            .iter()
            .filter(|s| matches!(s, PieceState::Have))
            .count() as u32;
        let missing = self
            .states
            .iter()
            .filter(|s| matches!(s, PieceState::Missing))
            .count() as u32;
        let partial_ok = self.states.iter().all(|s| match s {
            PieceState::Partial(p) => {
                let free = p
                    .blocks
                    .iter()
                    .filter(|b| matches!(b, BlockState::Free))
                    .count() as u32;
                let recv = p
                    .blocks
                    .iter()
                    .filter(|b| matches!(b, BlockState::Received(_)))
                    .count() as u32;
                free == p.free && recv == p.received
            }
            _ => true,
        });
        have == self.have && missing == self.missing && partial_ok
    }
}
