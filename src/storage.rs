//! A torrent's bytes on disk: positional reads and writes, SHA-1 checks.
//!
//! The torrent is one byte stream cut into pieces; on disk it is a list of
//! files under a data root (a piece may span files). Every call here but
//! [`Storage::read_cached`] may wait for a disk: the async code runs them on
//! `spawn_blocking` threads. The SHA-1 checks live in `verify`.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;

use crate::geometry::{file_at, file_segments, FileSpan, Geometry};
use crate::manifest::Manifest;

mod verify;

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
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// One file of the torrent on disk.
#[derive(Debug)]
struct StoredFile {
    /// Full path (data root joined with the manifest's relative path).
    path: PathBuf,
    /// Open handle (positional I/O needs no lock).
    file: File,
    /// The file lives in memory (tmpfs): reading it never waits for a disk.
    in_memory: bool,
    /// Held while writing: one writer per file at a time. The kernel takes
    /// the file's lock for every buffered write anyway; a second writer
    /// would spin on it and fight over the page cache's locks (on tmpfs,
    /// 5.7 % of a leecher's CPU samples were that spinning), where here it
    /// sleeps.
    write_lock: Mutex<()>,
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
    /// Where each file of `files` lies in the torrent's byte stream.
    spans: Vec<FileSpan>,
}

impl StoredFile {
    fn new(path: PathBuf, file: File) -> StoredFile {
        // 0x01021994 is Linux's TMPFS_MAGIC (the literal takes the type of
        // `f_type`, which differs between targets).
        let in_memory = rustix::fs::fstatfs(&file).is_ok_and(|s| s.f_type == 0x0102_1994);
        StoredFile {
            path,
            file,
            in_memory,
            write_lock: Mutex::new(()),
        }
    }

    /// Reads all of `buf` from offset `at` if that needs no disk: the file
    /// is in memory, or every byte is in the page cache. `WouldBlock` when
    /// it would wait (what was read by then is left in `buf`).
    fn read_exact_cached_at(&self, mut buf: &mut [u8], mut at: u64) -> io::Result<()> {
        if self.in_memory {
            return self.file.read_exact_at(buf, at);
        }
        use rustix::io::{Errno, ReadWriteFlags};
        while !buf.is_empty() {
            let mut slice = [io::IoSliceMut::new(buf)];
            match rustix::io::preadv2(&self.file, &mut slice, at, ReadWriteFlags::NOWAIT) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    at += n as u64;
                }
                Err(Errno::INTR) => {}
                // Not cached, or a file system that cannot tell.
                Err(Errno::AGAIN | Errno::OPNOTSUPP) => {
                    return Err(io::ErrorKind::WouldBlock.into())
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
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

/// Most buffers one `pwritev` takes (Linux's `IOV_MAX`).
const IOV_MAX: usize = 1024;

/// Writes every byte of `bufs`, in order, at offset `at` of `file`.
fn write_all_vectored_at(file: &File, mut bufs: &mut [IoSlice<'_>], mut at: u64) -> io::Result<()> {
    while !bufs.is_empty() {
        let n = bufs.len().min(IOV_MAX);
        match rustix::io::pwritev(file, &bufs[..n], at) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => {
                at += written as u64;
                IoSlice::advance_slices(&mut bufs, written);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl Storage {
    /// Opens existing data for seeding: every file must exist with its size.
    /// `root` is the directory that holds the torrent's name or, for a
    /// single-file torrent, may be the file itself (under any name).
    pub fn open_existing(root: &Path, manifest: &Manifest) -> Result<Storage, StorageError> {
        let root_is_file = std::fs::metadata(root).is_ok_and(|m| m.is_file());
        let single =
            manifest.files.len() == 1 && manifest.files[0].path == Path::new(&manifest.name);
        if root_is_file && !single {
            return Err(StorageError::DataIsFile {
                path: root.to_path_buf(),
                name: manifest.name.clone(),
                count: manifest.files.len(),
            });
        }
        let mut files = Vec::new();
        for f in &manifest.files {
            let path = if root_is_file {
                root.to_path_buf()
            } else {
                root.join(&f.path)
            };
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(StorageError::Missing { path })
                }
                Err(source) => return Err(StorageError::Io { path, source }),
            };
            let actual = file
                .metadata()
                .map_err(|source| StorageError::Io {
                    path: path.clone(),
                    source,
                })?
                .len();
            if actual != f.length {
                return Err(StorageError::WrongSize {
                    path,
                    actual,
                    expected: f.length,
                });
            }
            files.push(StoredFile::new(path, file));
        }
        Ok(Storage::assemble(manifest, files))
    }

    /// Opens (creating as needed) the files a download writes to. Existing
    /// contents are kept so a restarted download can resume.
    pub fn open_or_create(root: &Path, manifest: &Manifest) -> Result<Storage, StorageError> {
        let mut files = Vec::new();
        for f in &manifest.files {
            let path = root.join(&f.path);
            let io_err = |source| StorageError::Io {
                path: path.clone(),
                source,
            };
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io_err)?;
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io_err)?;
            files.push(StoredFile::new(path, file));
        }
        Ok(Storage::assemble(manifest, files))
    }

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
            if f.file.metadata().map_err(io_err)?.len() > span.length {
                f.file.set_len(span.length).map_err(io_err)?;
            }
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes of piece `piece` from byte `begin` (of a
    /// piece already verified on disk).
    pub fn read(&self, piece: u32, begin: u32, buf: &mut [u8]) -> Result<(), StorageError> {
        self.read_with(piece, begin, buf, |file, buf, at| {
            file.file.read_exact_at(buf, at)
        })
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
            let _one_writer = file.write_lock.lock().unwrap_or_else(|e| e.into_inner());
            write_all_vectored_at(&file.file, &mut slices, at).inspect_err(|_| {
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
