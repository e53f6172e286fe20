//! A torrent's bytes on disk: positional reads and writes, SHA-1 checks.
//!
//! The torrent is one byte stream cut into pieces; on disk it is a list of
//! files under a data root (a piece may span files). Every call here but
//! [`Storage::read_cached`] may wait for a disk: the async code runs them on
//! `spawn_blocking` threads. The SHA-1 checks live in `verify`.
//!
//! Layout: `open` opens the files beneath the data root, never through a
//! symbolic link and never a device or FIFO; `file` is one file's I/O, or
//! zeros for a BEP 47 pad file, which is never stored; where each file lies
//! in the torrent's byte stream is the manifest's [`FileSpan`]s; `handles`
//! is the process's bounded cache of open files; `resume` the records that
//! let a restart trust unchanged files without reading them.

use std::io::{self, IoSlice};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use crate::geometry::{file_at, file_segments, FileSpan, Geometry};
use crate::manifest::Manifest;

mod file;
pub mod handles;
mod open;
pub mod resume;
mod verify;

use file::StoredFile;
pub use handles::FileCache;
pub use resume::{ResumeDir, ResumeRecord};
pub use verify::Resumed;

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
    /// Expected SHA-1 of each piece (the manifest's list, shared).
    hashes: Arc<[[u8; 20]]>,
    /// Files in torrent order.
    files: Vec<StoredFile>,
    /// Where each file of `files` lies in the torrent's byte stream.
    spans: Vec<FileSpan>,
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

impl Storage {
    fn assemble(manifest: &Manifest, files: Vec<StoredFile>) -> Storage {
        Storage {
            geometry: manifest.geometry(),
            hashes: manifest.pieces.clone(),
            files,
            spans: manifest.file_spans(),
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
        for (i, at, range) in file_segments(&self.spans, start, len) {
            f(&self.files[i], at, range)?;
        }
        Ok(())
    }

    /// Cuts every file that is longer than the manifest says back to its
    /// length: a download into a file that held something longer must not
    /// keep the old tail once every piece is verified.
    pub fn trim_excess(&self) -> Result<(), StorageError> {
        for (f, span) in self.files.iter().zip(&self.spans) {
            let io_err = |source| StorageError::Io {
                path: f.path.clone(),
                source,
            };
            f.trim(span.length).map_err(io_err)?;
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

    /// The path of the file holding torrent offset `at` (for messages).
    fn path_of(&self, at: u64) -> PathBuf {
        self.files
            .get(file_at(&self.spans, at))
            .map(|f| f.path.clone())
            .unwrap_or_default()
    }
}
