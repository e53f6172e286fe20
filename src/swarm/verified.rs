//! Which pieces have passed their SHA-1 check and are on disk: the set a
//! stream waits on before it reads a piece.
//!
//! The coordinator owns the only `watch::Sender<VerifiedPieces>` and sets a
//! bit with `send_modify` when a piece's hash matched and it was written
//! (resumed pieces are set at start); a failed hash check never sets one.
//! Readers wait with `wait_for(|v| v.has(piece))`.

/// A compact set of verified pieces: one bit per piece.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifiedPieces {
    /// Bit `i % 64` of word `i / 64` is set when piece `i` is verified.
    words: Vec<u64>,
    /// Number of pieces of the torrent (bits past it are never set).
    pieces: u32,
    /// Number of set bits, kept so `count` is O(1).
    count: u32,
}

impl VerifiedPieces {
    /// An empty set for a torrent of `pieces` pieces.
    pub fn new(pieces: u32) -> VerifiedPieces {
        VerifiedPieces {
            words: vec![0; (pieces as usize).div_ceil(64)],
            pieces,
            count: 0,
        }
    }

    /// True when piece `piece` is verified and on disk.
    pub fn has(&self, piece: u32) -> bool {
        piece < self.pieces && self.words[(piece / 64) as usize] & (1 << (piece % 64)) != 0
    }

    /// Number of verified pieces.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Number of pieces of the torrent.
    pub fn piece_count(&self) -> u32 {
        self.pieces
    }

    /// True when every piece is verified.
    pub fn is_complete(&self) -> bool {
        self.count == self.pieces
    }

    /// Marks `piece` verified; false when it was already (or is out of range).
    pub fn set(&mut self, piece: u32) -> bool {
        if piece >= self.pieces || self.has(piece) {
            return false;
        }
        self.words[(piece / 64) as usize] |= 1 << (piece % 64);
        self.count += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_set_once_and_counted() {
        let mut v = VerifiedPieces::new(130);
        assert!(!v.has(0) && !v.has(129) && !v.has(130));
        assert!(v.set(0) && v.set(64) && v.set(129));
        assert!(!v.set(64), "a second set changes nothing");
        assert!(!v.set(130), "past the end");
        assert!(v.has(0) && v.has(64) && v.has(129) && !v.has(1) && !v.has(130));
        assert_eq!(v.count(), 3);
        assert!(!v.is_complete());
        for i in 0..130 {
            v.set(i);
        }
        assert!(v.is_complete());
        assert_eq!(v.count(), 130);
    }
}
