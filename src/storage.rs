//! A torrent's bytes on disk: positional reads and writes, SHA-1 checks.
//!
//! The torrent is one byte stream cut into pieces; on disk it is a list of
//! files under a data root (a piece may span files). Every call here but
//! [`Storage::read_cached`] may wait for a disk: the async code runs them on
//! `spawn_blocking` threads.
//!
//! Layout: `open` opens the files beneath the data root, never through a
//! symbolic link and never a device or FIFO; `file` is one file's I/O, or
//! zeros for a BEP 47 pad file, which is never stored.

use std::io::{self, IoSlice};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;

use crate::manifest::Manifest;
use crate::piece_hash;
use crate::swarm::pieces::Geometry;

mod file;
mod open;

use file::StoredFile;

/// Errors of opening and checking a torrent's data.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A file of the torrent is not there.
    #[error("{path} is missing: is --data pointing at the directory that holds it?")]
    Missing {
        /// The full path looked at.
        path: PathBuf,
    },
    /// `--data` names a file, but the torrent is a directory of files.
    #[error("{path} is a file, but this torrent is the directory {name} of {count} files: give --data the directory that holds {name}")]
    DataIsFile {
        /// What `--data` named.
        path: PathBuf,
        /// The torrent's directory name.
        name: String,
        /// How many files the torrent has.
        count: usize,
    },
    /// A file exists but has the wrong size.
    #[error(
        "{path} is {actual} bytes but the manifest says {expected}: wrong file or wrong --data?"
    )]
    WrongSize {
        /// The full path.
        path: PathBuf,
        /// Size on disk.
        actual: u64,
        /// Size in the manifest.
        expected: u64,
    },
    /// The data does not hash to the manifest's piece hashes.
    #[error("{path}: {bad} of {total} pieces do not match the manifest (first bad piece: {first}); the file was changed or belongs to another manifest")]
    Mismatch {
        /// The first file whose data fails.
        path: PathBuf,
        /// How many pieces fail.
        bad: u32,
        /// How many pieces there are.
        total: u32,
        /// The first failing piece.
        first: u32,
    },
    /// The disk (or the user's quota on it) is full.
    #[error("{path}: {source}; the download needs {total} bytes in all: free some space or choose another --out, then run the same command again to resume (verified pieces are kept)")]
    Full {
        /// The file being written.
        path: PathBuf,
        /// Bytes of the whole torrent.
        total: u64,
        /// The OS error.
        source: io::Error,
    },
    /// Data checked at start-up can no longer be read: the file was
    /// shortened, replaced or became unreadable while the process ran.
    #[error("{path}: cannot read piece {piece} ({source}): the file changed on disk after it was checked; put the right file back and start again")]
    Unreadable {
        /// The file read from.
        path: PathBuf,
        /// The piece asked for.
        piece: u32,
        /// The OS error.
        source: io::Error,
    },
    /// A symbolic link stands where a file (or one of its directories) of
    /// the torrent goes: it could lead anywhere, so it is never followed.
    #[error("{path} is a symbolic link: songswarm never opens a torrent's files through links (one could lead outside the directory, or into a device); remove it, or put the real file or directory there")]
    Link {
        /// The link.
        path: PathBuf,
    },
    /// Something other than a regular file stands where a file goes.
    #[error("{path} is {kind}, not a regular file: songswarm keeps songs only in regular files; move it away or choose another directory")]
    NotRegular {
        /// The full path.
        path: PathBuf,
        /// What it is instead ("a device", "a FIFO", ...).
        kind: &'static str,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// A torrent's files, opened, with its piece hashes.
#[derive(Debug)]
pub struct Storage {
    /// Piece layout.
    geometry: Geometry,
    /// Expected SHA-1 of each piece.
    hashes: Vec<[u8; 20]>,
    /// Files in torrent order.
    files: Vec<StoredFile>,
}

/// The parts of `blocks`, laid end to end, that fall in `range`.
fn slices_of(blocks: &[Bytes], range: Range<usize>) -> Vec<IoSlice<'_>> {
    let mut out = Vec::with_capacity(blocks.len());
    let mut pos = 0;
    for b in blocks {
        let (lo, hi) = (range.start.max(pos), range.end.min(pos + b.len()));
        if lo < hi {
            out.push(IoSlice::new(&b[lo - pos..hi - pos]));
        }
        pos += b.len();
    }
    out
}

/// Bytes each thread of [`Storage::verify_all`] reads ahead to hash pieces
/// together (four 4 MiB pieces; pieces of 16 MiB are hashed one by one).
const VERIFY_BUFFER: u64 = 16 << 20;

impl Storage {
    fn assemble(manifest: &Manifest, files: Vec<StoredFile>) -> Storage {
        Storage {
            geometry: Geometry::new(manifest.piece_length, manifest.total_length),
            hashes: manifest.pieces.clone(),
            files,
        }
    }

    /// Piece layout.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Calls `f(file, offset_in_file, range_in_buffer)` for each file segment
    /// of `len` bytes starting at torrent offset `start`.
    fn segments(
        &self,
        start: u64,
        len: usize,
        mut f: impl FnMut(&StoredFile, u64, Range<usize>) -> io::Result<()>,
    ) -> io::Result<()> {
        let end = start + len as u64;
        let first = self
            .files
            .partition_point(|file| file.offset + file.length <= start);
        for file in &self.files[first..] {
            if file.offset >= end {
                break;
            }
            if file.length == 0 {
                continue;
            }
            let s = start.max(file.offset);
            let e = end.min(file.offset + file.length);
            f(
                file,
                s - file.offset,
                (s - start) as usize..(e - start) as usize,
            )?;
        }
        Ok(())
    }

    /// Cuts every file that is longer than the manifest says back to its
    /// length: a download into a file that held something longer must not
    /// keep the old tail once every piece is verified.
    pub fn trim_excess(&self) -> Result<(), StorageError> {
        for f in &self.files {
            let io_err = |source| StorageError::Io {
                path: f.path.clone(),
                source,
            };
            f.trim().map_err(io_err)?;
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes of piece `piece` from byte `begin` (of a
    /// piece already verified on disk).
    pub fn read(&self, piece: u32, begin: u32, buf: &mut [u8]) -> Result<(), StorageError> {
        self.read_with(piece, begin, buf, StoredFile::read_exact_at)
    }

    /// [`Storage::read`] of data that needs no disk (a file in memory, or
    /// pages in the page cache), without blocking: false, with `buf` partly
    /// filled, when some of it would wait for a disk. The async code calls
    /// this first and goes to a blocking thread only when it says false (a
    /// trip there and back for every 1 MiB served cost a seed a fifth of its
    /// CPU per GiB, loopback, and left the socket idle meanwhile).
    pub fn read_cached(
        &self,
        piece: u32,
        begin: u32,
        buf: &mut [u8],
    ) -> Result<bool, StorageError> {
        match self.read_with(piece, begin, buf, StoredFile::read_exact_cached_at) {
            Ok(()) => Ok(true),
            Err(StorageError::Unreadable { source, .. })
                if source.kind() == io::ErrorKind::WouldBlock =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads with `read_at(file, buf, offset)` on each file segment.
    fn read_with(
        &self,
        piece: u32,
        begin: u32,
        buf: &mut [u8],
        read_at: impl Fn(&StoredFile, &mut [u8], u64) -> io::Result<()>,
    ) -> Result<(), StorageError> {
        let start = self.geometry.piece_offset(piece) + u64::from(begin);
        let mut failed = None;
        self.segments(start, buf.len(), |file, at, range| {
            read_at(file, &mut buf[range], at).inspect_err(|_| failed = Some(file.path.clone()))
        })
        .map_err(|source| StorageError::Unreadable {
            path: failed.unwrap_or_else(|| self.path_of(start)),
            piece,
            source: match source.kind() {
                io::ErrorKind::UnexpectedEof => {
                    io::Error::new(source.kind(), "it is shorter than the manifest says")
                }
                _ => source,
            },
        })
    }

    /// Writes a whole piece given as its blocks in order: one vectored write
    /// per file the piece touches, not one write per block (a sixth less CPU
    /// per piece on tmpfs, and the file's lock is taken once).
    pub fn write_blocks(&self, piece: u32, blocks: &[Bytes]) -> Result<(), StorageError> {
        let start = self.geometry.piece_offset(piece);
        let len = blocks.iter().map(Bytes::len).sum();
        let mut failed = None;
        self.segments(start, len, |file, at, range| {
            let mut slices = slices_of(blocks, range);
            file.write_all_vectored_at(&mut slices, at)
                .inspect_err(|_| {
                    failed = Some(file.path.clone());
                })
        })
        .map_err(|source| {
            let path = failed.unwrap_or_else(|| self.path_of(start));
            match source.kind() {
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => StorageError::Full {
                    path,
                    total: self.geometry.total_length,
                    source,
                },
                _ => StorageError::Io { path, source },
            }
        })
    }

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

    /// The path of the file holding torrent offset `at` (for messages).
    fn path_of(&self, at: u64) -> PathBuf {
        let i = self
            .files
            .partition_point(|f| f.offset + f.length <= at)
            .min(self.files.len().saturating_sub(1));
        self.files
            .get(i)
            .map(|f| f.path.clone())
            .unwrap_or_default()
    }

    /// True when piece `piece` is fully inside the files' current sizes (a
    /// download writes pieces in any order, so a shorter file lacks the tail).
    fn present(&self, piece: u32) -> bool {
        let start = self.geometry.piece_offset(piece);
        let end = start + u64::from(self.geometry.piece_len(piece));
        self.files
            .iter()
            .filter(|f| f.length > 0 && f.offset < end && f.offset + f.length > start)
            .all(|f| {
                let need = (end.min(f.offset + f.length) - f.offset).min(f.length);
                f.len_now().is_ok_and(|len| len >= need)
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
