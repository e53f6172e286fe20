//! SHA-1 checks: complete pieces held in memory before they are written,
//! and the data already on disk (resume, and a seed's check of its files).

use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;

use super::{Storage, StorageError};
use crate::piece_hash;

/// Bytes each thread of [`Storage::verify_all`] reads ahead to hash pieces
/// together (four 4 MiB pieces; pieces of 16 MiB are hashed one by one).
const VERIFY_BUFFER: u64 = 16 << 20;

impl Storage {
    /// Hashes complete pieces held in memory (piece index, its blocks in
    /// order), up to [`piece_hash::LANES`] at a time, and writes each one
    /// that matches its expected hash. One result per piece, in order:
    /// whether it matched, or the write error.
    pub fn verify_and_write(
        &self,
        pieces: &[(u32, Vec<Bytes>)],
    ) -> Vec<Result<bool, StorageError>> {
        let messages: Vec<&[Bytes]> = pieces.iter().map(|(_, blocks)| &blocks[..]).collect();
        let digests = piece_hash::digests(&messages);
        pieces
            .iter()
            .zip(digests)
            .map(|((piece, blocks), digest)| {
                if digest != self.hashes[*piece as usize] {
                    return Ok(false);
                }
                self.write_blocks(*piece, blocks)?;
                Ok(true)
            })
            .collect()
    }

    /// True when piece `piece` is fully inside the files' current sizes (a
    /// download writes pieces in any order, so a shorter file lacks the
    /// tail); pad files, never stored, always hold their zeros.
    fn present(&self, piece: u32) -> bool {
        let start = self.geometry.piece_offset(piece);
        let end = start + u64::from(self.geometry.piece_len(piece));
        self.files
            .iter()
            .zip(&self.spans)
            .filter(|(_, s)| s.length > 0 && s.offset < end && s.end() > start)
            .all(|(f, s)| {
                let need = (end.min(s.end()) - s.offset).min(s.length);
                f.holds(need)
            })
    }

    /// Re-hashes every piece on disk, in parallel on `threads` threads, each
    /// hashing up to [`piece_hash::LANES`] pieces together (with at most
    /// `VERIFY_BUFFER` bytes read ahead). Returns one flag per piece: true
    /// when the data there is verified.
    pub fn verify_all(&self, threads: usize) -> Vec<bool> {
        let n = self.geometry.piece_count;
        let piece_length = self.geometry.piece_length.max(1);
        let lanes = (VERIFY_BUFFER / piece_length).clamp(1, piece_hash::LANES as u64) as u32;
        let next = AtomicU32::new(0);
        let results: Vec<std::sync::atomic::AtomicBool> =
            (0..n).map(|_| Default::default()).collect();
        std::thread::scope(|s| {
            for _ in 0..threads.max(1) {
                s.spawn(|| {
                    let mut bufs = vec![Vec::new(); lanes as usize];
                    loop {
                        let first = next.fetch_add(lanes, Ordering::Relaxed);
                        if first >= n {
                            break;
                        }
                        let (mut read, mut data) = (Vec::new(), Vec::new());
                        for (i, buf) in (first..n.min(first + lanes)).zip(&mut bufs) {
                            buf.resize(self.geometry.piece_len(i) as usize, 0);
                            if self.present(i) && self.read(i, 0, buf).is_ok() {
                                read.push(i as usize);
                                data.push(&buf[..]);
                            }
                        }
                        for (i, digest) in read.into_iter().zip(piece_hash::digests_of(&data)) {
                            if digest == self.hashes[i] {
                                results[i].store(true, Ordering::Relaxed);
                            }
                        }
                    }
                });
            }
        });
        results.into_iter().map(|r| r.into_inner()).collect()
    }

    /// Checks seeding data: every piece must verify, or a clear error names
    /// the first file whose data is wrong.
    pub fn check_complete(&self, threads: usize) -> Result<(), StorageError> {
        let ok = self.verify_all(threads);
        let bad: Vec<u32> = ok
            .iter()
            .enumerate()
            .filter(|(_, ok)| !**ok)
            .map(|(i, _)| i as u32)
            .collect();
        match bad.first() {
            None => Ok(()),
            Some(&first) => Err(StorageError::Mismatch {
                path: self.path_of(self.geometry.piece_offset(first)),
                bad: bad.len() as u32,
                total: self.geometry.piece_count,
                first,
            }),
        }
    }
}
