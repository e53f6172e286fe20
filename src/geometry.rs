//! Piece and block geometry: the ground floor every piece-aware room stands
//! on (manifests, storage, the peer wire codec, the swarm).
//!
//! A torrent is one byte stream of `total_length` bytes, cut into pieces of
//! `piece_length` bytes (the last may be shorter), each cut into blocks of
//! [`BLOCK_SIZE`] (the last block of a piece may be shorter). Files lie end
//! to end in that stream ([`FileSpan`]). Have-bitfields number pieces high
//! bit first. Plain arithmetic: no I/O, nothing imported from the crate.

use std::ops::Range;

/// The block size every request uses (the last block of a piece may be shorter).
pub const BLOCK_SIZE: u32 = 16 * 1024;

/// One block of one piece: what `request` and `cancel` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockRef {
    /// Piece index.
    pub index: u32,
    /// Byte offset inside the piece.
    pub begin: u32,
    /// Length in bytes (≤ 16 KiB).
    pub length: u32,
}

/// Number of pieces of `piece_length` bytes that hold `total_length` bytes.
pub fn piece_count(total_length: u64, piece_length: u64) -> u64 {
    total_length.div_ceil(piece_length.max(1))
}

/// The piece layout of a torrent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Nominal piece length in bytes.
    pub piece_length: u64,
    /// Total bytes of the torrent.
    pub total_length: u64,
    /// Number of pieces.
    pub piece_count: u32,
}

impl Geometry {
    /// The layout of `total_length` bytes cut into `piece_length` pieces.
    pub fn new(piece_length: u64, total_length: u64) -> Geometry {
        Geometry {
            piece_length,
            total_length,
            piece_count: piece_count(total_length, piece_length) as u32,
        }
    }

    /// Length of piece `index` (the last one may be shorter; zero past the end).
    pub fn piece_len(&self, index: u32) -> u32 {
        let start = self.piece_offset(index);
        (self.total_length.saturating_sub(start)).min(self.piece_length) as u32
    }

    /// Byte offset of piece `index` in the torrent's byte stream.
    pub fn piece_offset(&self, index: u32) -> u64 {
        u64::from(index).saturating_mul(self.piece_length)
    }

    /// Number of 16 KiB blocks of piece `index`.
    pub fn block_count(&self, index: u32) -> u32 {
        self.piece_len(index).div_ceil(BLOCK_SIZE)
    }

    /// Block number `block` of piece `index`.
    pub fn block(&self, index: u32, block: u32) -> BlockRef {
        let begin = block * BLOCK_SIZE;
        let length = (self.piece_len(index) - begin).min(BLOCK_SIZE);
        BlockRef {
            index,
            begin,
            length,
        }
    }

    /// True when `r` names an exact block boundary of an existing piece.
    pub fn is_valid_block(&self, r: &BlockRef) -> bool {
        r.index < self.piece_count
            && r.begin.is_multiple_of(BLOCK_SIZE)
            && r.begin < self.piece_len(r.index)
            && *r == self.block(r.index, r.begin / BLOCK_SIZE)
    }

    /// True when `r` lies inside piece `r.index` and is at most one block
    /// long: what we serve (other clients may request unaligned ranges).
    pub fn is_servable(&self, r: &BlockRef) -> bool {
        r.index < self.piece_count
            && r.length > 0
            && r.length <= BLOCK_SIZE
            && u64::from(r.begin) + u64::from(r.length) <= u64::from(self.piece_len(r.index))
    }

    /// Bytes of this torrent's have-bitfield.
    pub fn bitfield_len(&self) -> usize {
        bitfield_len(self.piece_count)
    }
}

/// Bytes of a have-bitfield of `piece_count` pieces.
pub fn bitfield_len(piece_count: u32) -> usize {
    (piece_count as usize).div_ceil(8)
}

/// True when bit `index` (high bit of byte 0 first) is set in `bits`.
pub fn bitfield_has(bits: &[u8], index: u32) -> bool {
    let byte = (index / 8) as usize;
    byte < bits.len() && bits[byte] & (0x80 >> (index % 8)) != 0
}

/// Sets bit `index` (high bit of byte 0 first) of `bits`.
pub fn bitfield_set(bits: &mut [u8], index: u32) {
    bits[(index / 8) as usize] |= 0x80 >> (index % 8);
}

/// Where one file lies in the torrent's byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileSpan {
    /// Offset of the file's first byte in the stream.
    pub offset: u64,
    /// Length of the file in bytes.
    pub length: u64,
}

impl FileSpan {
    /// Offset just past the file's last byte.
    pub fn end(&self) -> u64 {
        self.offset + self.length
    }
}

/// The parts of the stream range `start..start + len` in each file it
/// touches, in order: (file index, offset inside the file, range inside a
/// buffer holding the stream range). `files` lie end to end, in stream
/// order; empty files are skipped.
pub fn file_segments(
    files: &[FileSpan],
    start: u64,
    len: usize,
) -> impl Iterator<Item = (usize, u64, Range<usize>)> + '_ {
    let end = start + len as u64;
    let first = files.partition_point(|f| f.end() <= start);
    files[first..]
        .iter()
        .enumerate()
        .take_while(move |(_, f)| f.offset < end)
        .filter(|(_, f)| f.length > 0)
        .map(move |(i, f)| {
            let s = start.max(f.offset);
            let e = end.min(f.end());
            (
                first + i,
                s - f.offset,
                (s - start) as usize..(e - start) as usize,
            )
        })
}

/// The index of the file holding stream offset `at` (the last file when
/// `at` is past the end; 0 when there are no files).
pub fn file_at(files: &[FileSpan], at: u64) -> usize {
    files
        .partition_point(|f| f.end() <= at)
        .min(files.len().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_piece_and_last_block_are_short() {
        let g = Geometry::new(40_000, 100_000);
        assert_eq!(g.piece_count, 3);
        assert_eq!(g.piece_len(2), 20_000);
        assert_eq!(g.piece_len(3), 0);
        assert_eq!(g.block_count(0), 3);
        assert_eq!(g.block(0, 2).length, 40_000 - 2 * BLOCK_SIZE);
        assert!(g.is_valid_block(&g.block(2, 1)));
        let unaligned = BlockRef {
            index: 0,
            begin: 1,
            length: 100,
        };
        assert!(!g.is_valid_block(&unaligned));
        assert!(g.is_servable(&unaligned));
    }

    #[test]
    fn bitfields_are_high_bit_first() {
        let mut bits = vec![0u8; bitfield_len(10)];
        assert_eq!(bits.len(), 2);
        bitfield_set(&mut bits, 0);
        bitfield_set(&mut bits, 9);
        assert_eq!(bits, [0x80, 0x40]);
        assert!(bitfield_has(&bits, 9) && !bitfield_has(&bits, 8));
        assert!(!bitfield_has(&bits, 100));
    }

    #[test]
    fn segments_cross_files_and_skip_empty_ones() {
        let files = [
            FileSpan {
                offset: 0,
                length: 10,
            },
            FileSpan {
                offset: 10,
                length: 0,
            },
            FileSpan {
                offset: 10,
                length: 5,
            },
            FileSpan {
                offset: 15,
                length: 20,
            },
        ];
        let got: Vec<_> = file_segments(&files, 8, 10).collect();
        assert_eq!(got, [(0, 8, 0..2), (2, 0, 2..7), (3, 0, 7..10)]);
        assert_eq!(file_at(&files, 12), 2);
        assert_eq!(file_at(&files, 99), 3);
        assert_eq!(file_at(&[], 0), 0);
    }
}
