//! SHA-1 checks: complete pieces held in memory before they are written,
//! and the data already on disk (resume, and a seed's check of its files).

use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;

use super::resume::{FileStamp, ResumeRecord};
use super::{Storage, StorageError};
use crate::piece_hash;

/// What a start found on disk: the verified pieces, and how many of them
/// had to be read to know.
#[derive(Clone, Debug)]
pub struct Resumed {
    /// One flag per piece: verified.
    pub verified: Vec<bool>,
    /// Pieces read and hashed (the rest were trusted from the record).
    pub checked: u32,
}

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
        let all: Vec<u32> = (0..self.geometry.piece_count).collect();
        self.verify_pieces(&all, threads)
    }

    /// Re-hashes the pieces `which` (in increasing order) like
    /// [`Storage::verify_all`]; one flag per piece of the torrent, false for
    /// pieces not in `which`.
    pub fn verify_pieces(&self, which: &[u32], threads: usize) -> Vec<bool> {
        let n = which.len() as u32;
        let piece_length = self.geometry.piece_length.max(1);
        let lanes = (VERIFY_BUFFER / piece_length).clamp(1, piece_hash::LANES as u64) as u32;
        let next = AtomicU32::new(0);
        let results: Vec<std::sync::atomic::AtomicBool> = (0..self.geometry.piece_count)
            .map(|_| Default::default())
            .collect();
        let work = || {
            let mut bufs = vec![Vec::new(); lanes as usize];
            loop {
                let first = next.fetch_add(lanes, Ordering::Relaxed);
                if first >= n {
                    break;
                }
                let (mut read, mut data) = (Vec::new(), Vec::new());
                let batch = &which[first as usize..n.min(first + lanes) as usize];
                for (&i, buf) in batch.iter().zip(&mut bufs) {
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
        };
        // No thread when there is nothing to hash: a restart of 10,000
        // unchanged songs started (and joined) a thread per song for none.
        // (Hashing on the calling thread when one thread is asked for was
        // tried: the same CPU, but a first start of 2,000 songs took 2.3x
        // as long on the loaded machine, where the short-lived hashing
        // threads got more of the cores than two long-lived ones.)
        if n > 0 {
            let threads = threads.clamp(1, n.div_ceil(lanes) as usize);
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(work);
                }
            });
        }
        results.into_iter().map(|r| r.into_inner()).collect()
    }

    /// Each file as it is now (size, time, inode), for a resume record.
    pub fn file_stamps(&self) -> Result<Vec<FileStamp>, StorageError> {
        self.files
            .iter()
            .map(|f| {
                f.stamp().map_err(|source| StorageError::Io {
                    path: f.path.clone(),
                    source,
                })
            })
            .collect()
    }

    /// Makes every write so far durable (`fdatasync` of each file).
    pub fn sync(&self) -> Result<(), StorageError> {
        for f in &self.files {
            f.sync().map_err(|source| StorageError::Io {
                path: f.path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// A resume record of `verified` for the files as they are now. Call
    /// [`Storage::sync`] between taking `verified` and this.
    pub fn record(
        &self,
        info_hash: [u8; 20],
        verified: Vec<bool>,
    ) -> Result<ResumeRecord, StorageError> {
        Ok(ResumeRecord {
            info_hash,
            verified,
            files: self.file_stamps()?,
        })
    }

    /// The verified pieces at start: a piece whose files are all as
    /// `record` saw them is what the record says, unread; every piece that
    /// touches a changed file (or all, without a record, or with one of
    /// another shape) is read and hashed.
    pub fn resume(&self, record: Option<&ResumeRecord>, threads: usize) -> Resumed {
        let n = self.geometry.piece_count;
        let now: Vec<Option<FileStamp>> = self.files.iter().map(|f| f.stamp().ok()).collect();
        let record =
            record.filter(|r| r.verified.len() == n as usize && r.files.len() == self.files.len());
        let Some(record) = record else {
            return Resumed {
                verified: self.verify_all(threads),
                checked: n,
            };
        };
        let unchanged: Vec<bool> = now
            .iter()
            .zip(&record.files)
            .map(|(now, then)| now.as_ref() == Some(then))
            .collect();
        let mut verified = vec![false; n as usize];
        let mut check = Vec::new();
        for piece in 0..n {
            let start = self.geometry.piece_offset(piece);
            let end = start + u64::from(self.geometry.piece_len(piece));
            let trusted = self
                .spans
                .iter()
                .zip(&unchanged)
                .filter(|(s, _)| s.length > 0 && s.offset < end && s.end() > start)
                .all(|(_, same)| *same);
            match trusted {
                true => verified[piece as usize] = record.verified[piece as usize],
                false => check.push(piece),
            }
        }
        let checked = self.verify_pieces(&check, threads);
        for &piece in &check {
            verified[piece as usize] = checked[piece as usize];
        }
        Resumed {
            verified,
            checked: check.len() as u32,
        }
    }

    /// Checks seeding data: every piece must verify, or a clear error names
    /// the first file whose data is wrong.
    pub fn check_complete(&self, threads: usize) -> Result<(), StorageError> {
        self.check_resumed(&self.verify_all(threads))
    }

    /// Fails, naming the first file whose data is wrong, unless every piece
    /// of `ok` is verified.
    pub fn check_resumed(&self, ok: &[bool]) -> Result<(), StorageError> {
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
