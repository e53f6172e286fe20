//! Fetching a torrent's `info` dictionary from peers (BEP 9, `ut_metadata`).
//!
//! With only an info-hash, a leecher asks peers for the metadata in 16 KiB
//! pieces over the extension protocol (BEP 10), assembles them, and accepts
//! the result only if its SHA-1 is the info-hash: a peer cannot make us
//! download the wrong thing, only waste a little of our time.
//!
//! This module is pure: the assembler. The messages are
//! [`crate::wire::metadata`]'s; the connection task and `magnet` move the
//! bytes.

use crate::id::Id;
use crate::manifest::MAX_METAINFO_BYTES;
use crate::wire::metadata::{piece_count, PIECE_SIZE};

/// Why metadata pieces could not be assembled.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetadataError {
    #[error("metadata size {0} is zero or above the {MAX_METAINFO_BYTES}-byte limit")]
    BadSize(u64),
    #[error("metadata piece {piece} has {got} bytes, expected {expected}")]
    BadPieceLength {
        piece: u32,
        got: usize,
        expected: usize,
    },
    #[error("metadata piece {0} is out of range")]
    BadPiece(u32),
    #[error("assembled metadata does not hash to the info-hash")]
    HashMismatch,
}

/// Collects metadata pieces for one info-hash until they hash right.
///
/// Invariant: `received[i]` is true exactly when bytes of piece `i` are in
/// `buffer`. Any number of peers may feed it; pieces are requested in order
/// of `next_wanted`.
#[derive(Debug)]
pub struct Assembler {
    /// What the assembled bytes must hash to.
    info_hash: Id,
    /// The metadata being assembled, `size` bytes.
    buffer: Vec<u8>,
    /// Which pieces are in `buffer`.
    received: Vec<bool>,
}

impl Assembler {
    /// Starts assembling metadata of `size` bytes, as a peer announced in its
    /// extension handshake (`metadata_size`).
    pub fn new(info_hash: Id, size: u64) -> Result<Assembler, MetadataError> {
        if size == 0 || size > MAX_METAINFO_BYTES {
            return Err(MetadataError::BadSize(size));
        }
        Ok(Assembler {
            info_hash,
            buffer: vec![0; size as usize],
            received: vec![false; piece_count(size) as usize],
        })
    }

    /// Total size being assembled.
    pub fn size(&self) -> u64 {
        self.buffer.len() as u64
    }

    /// The first piece not received yet, at or after `from` (wrapping), so
    /// that several peers can be asked for different pieces.
    pub fn next_wanted(&self, from: u32) -> Option<u32> {
        let n = self.received.len();
        (0..n)
            .map(|i| (from as usize + i) % n)
            .find(|&i| !self.received[i])
            .map(|i| i as u32)
    }

    /// Takes piece `piece`. Returns the whole metadata once every piece is
    /// in and the SHA-1 matches; on a mismatch everything is discarded (we
    /// cannot tell which peer lied) and the error says so.
    pub fn handle_data(
        &mut self,
        piece: u32,
        total_size: u64,
        data: &[u8],
    ) -> Result<Option<Vec<u8>>, MetadataError> {
        if total_size != self.size() {
            return Err(MetadataError::BadSize(total_size));
        }
        let index = piece as usize;
        if index >= self.received.len() {
            return Err(MetadataError::BadPiece(piece));
        }
        let start = index * PIECE_SIZE;
        let expected = (self.buffer.len() - start).min(PIECE_SIZE);
        if data.len() != expected {
            return Err(MetadataError::BadPieceLength {
                piece,
                got: data.len(),
                expected,
            });
        }
        self.buffer[start..start + expected].copy_from_slice(data);
        self.received[index] = true;
        if self.received.iter().any(|r| !r) {
            return Ok(None);
        }
        if Id::hash(&self.buffer) == self.info_hash {
            return Ok(Some(std::mem::take(&mut self.buffer)));
        }
        self.received.iter_mut().for_each(|r| *r = false);
        Err(MetadataError::HashMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::metadata::{answer, piece_count, MetadataMsg, PIECE_SIZE};

    fn assemble_from(info: &[u8], hash: Id) -> Result<Option<Vec<u8>>, MetadataError> {
        let mut asm = Assembler::new(hash, info.len() as u64)?;
        let mut last = Ok(None);
        // Fetch in an odd order, as several peers would.
        let n = piece_count(info.len() as u64);
        for piece in (0..n).rev() {
            let MetadataMsg::Data {
                total_size, data, ..
            } = answer(info, piece)
            else {
                panic!("piece {piece} in range must be answered");
            };
            last = asm.handle_data(piece, total_size, &data);
        }
        last
    }

    #[test]
    fn assembles_and_verifies() {
        let info: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let got = assemble_from(&info, Id::hash(&info)).unwrap();
        assert_eq!(got, Some(info));
    }

    #[test]
    fn lying_metadata_is_refused_and_can_be_retried() {
        let info = vec![5u8; 20_000];
        let wrong = Id::hash(b"something else");
        assert_eq!(
            assemble_from(&info, wrong),
            Err(MetadataError::HashMismatch)
        );
        let mut asm = Assembler::new(wrong, info.len() as u64).unwrap();
        asm.handle_data(0, 20_000, &info[..PIECE_SIZE]).unwrap();
        assert_eq!(asm.next_wanted(0), Some(1));
        assert_eq!(
            asm.handle_data(1, 20_000, &info[PIECE_SIZE..]),
            Err(MetadataError::HashMismatch)
        );
        // Everything is wanted again after a mismatch.
        assert_eq!(asm.next_wanted(1), Some(1));
        assert_eq!(asm.next_wanted(0), Some(0));
    }

    #[test]
    fn sizes_and_lengths_are_checked() {
        let hash = Id::hash(b"x");
        assert!(Assembler::new(hash, 0).is_err());
        assert!(Assembler::new(hash, MAX_METAINFO_BYTES + 1).is_err());
        let mut asm = Assembler::new(hash, 20_000).unwrap();
        assert!(asm.handle_data(0, 30_000, &[0; PIECE_SIZE]).is_err());
        assert!(asm.handle_data(2, 20_000, &[0; 10]).is_err());
        assert!(asm.handle_data(1, 20_000, &[0; 10]).is_err());
        assert_eq!(asm.next_wanted(0), Some(0));
        assert_eq!(answer(&[0; 10], 1), MetadataMsg::Reject { piece: 1 });
    }
}
