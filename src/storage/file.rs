//! One file of a torrent: positional I/O through the process's cache of
//! open files, or zeros for a BEP 47 pad file, which is never stored.

use std::fs::File;
use std::io::{self, IoSlice};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::handles::{self, FileCache};
use super::open::Opener;

/// A regular file of the torrent, open while it is in the process's
/// [`FileCache`] and opened again, the same strict way, when it is not.
#[derive(Debug)]
pub(super) struct Handle {
    /// Its key in the cache.
    key: u64,
    /// How to open it again.
    opener: Opener,
    /// Device and inode when first opened: a reopen must find the same file.
    identity: (u64, u64),
    /// The cache (the process's; a test's own).
    cache: &'static FileCache,
}

impl Handle {
    /// Takes a file just opened by `opener`, keeping it in the cache.
    pub(super) fn new(opener: Opener, file: File) -> io::Result<Handle> {
        let meta = file.metadata()?;
        let handle = Handle {
            key: handles::new_key(),
            opener,
            identity: (meta.dev(), meta.ino()),
            cache: FileCache::global(),
        };
        handle.cache.insert(handle.key, file);
        Ok(handle)
    }

    /// The open file: from the cache, or opened again.
    pub(super) fn file(&self) -> io::Result<Arc<File>> {
        self.cache.get(self.key, || {
            let file = self.opener.open().map_err(io::Error::other)?;
            let meta = file.metadata()?;
            if (meta.dev(), meta.ino()) != self.identity {
                return Err(io::Error::other(
                    "it was replaced by another file since it was opened",
                ));
            }
            Ok(file)
        })
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.cache.remove(self.key);
    }
}

/// Where a file's bytes live.
#[derive(Debug)]
pub(super) enum Backing {
    /// A regular file (positional I/O needs no lock).
    Disk(Handle),
    /// A BEP 47 pad file: its bytes are zeros by definition, so it is
    /// never created, never required on disk, and read as zeros. A piece
    /// that verifies holds zeros there (the hash covers them), so writing
    /// it skips them.
    Zeros,
}

/// One file of the torrent. Where it lies in the torrent's byte stream is
/// the storage's [`FileSpan`](crate::geometry::FileSpan), kept there once.
#[derive(Debug)]
pub(super) struct StoredFile {
    /// Full path (data root joined with the manifest's relative path).
    pub(super) path: PathBuf,
    /// The bytes: an open file, or zeros.
    backing: Backing,
    /// The file lives in memory (tmpfs, or zeros): reading it never waits
    /// for a disk.
    in_memory: bool,
    /// Held while writing: one writer per file at a time. The kernel takes
    /// the file's lock for every buffered write anyway; a second writer
    /// would spin on it and fight over the page cache's locks (on tmpfs,
    /// 5.7 % of a leecher's CPU samples were that spinning), where here it
    /// sleeps.
    write_lock: Mutex<()>,
}

/// Most buffers one `pwritev` takes (Linux's `IOV_MAX`).
const IOV_MAX: usize = 1024;

impl StoredFile {
    pub(super) fn new(path: PathBuf, backing: Backing) -> StoredFile {
        // 0x01021994 is Linux's TMPFS_MAGIC (the literal takes the type of
        // `f_type`, which differs between targets).
        let in_memory = match &backing {
            Backing::Disk(handle) => handle
                .file()
                .is_ok_and(|f| rustix::fs::fstatfs(&*f).is_ok_and(|s| s.f_type == 0x0102_1994)),
            Backing::Zeros => true,
        };
        StoredFile {
            path,
            backing,
            in_memory,
            write_lock: Mutex::new(()),
        }
    }

    /// Reads all of `buf` from offset `at`.
    pub(super) fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        match &self.backing {
            Backing::Disk(handle) => handle.file()?.read_exact_at(buf, at),
            Backing::Zeros => {
                buf.fill(0);
                Ok(())
            }
        }
    }

    /// Reads all of `buf` from offset `at` if that needs no disk: the file
    /// is in memory, or every byte is in the page cache. `WouldBlock` when
    /// it would wait (what was read by then is left in `buf`).
    pub(super) fn read_exact_cached_at(&self, mut buf: &mut [u8], mut at: u64) -> io::Result<()> {
        let file = match &self.backing {
            Backing::Disk(handle) if !self.in_memory => handle.file()?,
            _ => return self.read_exact_at(buf, at),
        };
        use rustix::io::{Errno, ReadWriteFlags};
        while !buf.is_empty() {
            let mut slice = [io::IoSliceMut::new(buf)];
            match rustix::io::preadv2(&*file, &mut slice, at, ReadWriteFlags::NOWAIT) {
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

    /// Writes every byte of `bufs`, in order, at offset `at`, one writer at
    /// a time; nothing for a pad file.
    pub(super) fn write_all_vectored_at(
        &self,
        mut bufs: &mut [IoSlice<'_>],
        mut at: u64,
    ) -> io::Result<()> {
        let Backing::Disk(handle) = &self.backing else {
            return Ok(());
        };
        let file = handle.file()?;
        let _one_writer = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        while !bufs.is_empty() {
            let n = bufs.len().min(IOV_MAX);
            match rustix::io::pwritev(&*file, &bufs[..n], at) {
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

    /// True when the file holds at least `need` bytes now (a pad file
    /// always holds all of its own).
    pub(super) fn holds(&self, need: u64) -> bool {
        match &self.backing {
            Backing::Disk(handle) => handle
                .file()
                .and_then(|f| f.metadata())
                .is_ok_and(|m| m.len() >= need),
            Backing::Zeros => true,
        }
    }

    /// The file as it is now, for a resume record (zeros for a pad file).
    pub(super) fn stamp(&self) -> io::Result<super::resume::FileStamp> {
        let Backing::Disk(handle) = &self.backing else {
            return Ok(Default::default());
        };
        let meta = handle.file()?.metadata()?;
        Ok(super::resume::FileStamp {
            len: meta.len(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec() as u32,
            ino: meta.ino(),
        })
    }

    /// Makes what was written to the file durable (`fdatasync`; any
    /// descriptor of the file will do, so a reopened one too).
    pub(super) fn sync(&self) -> io::Result<()> {
        match &self.backing {
            Backing::Disk(handle) => handle.file()?.sync_data(),
            Backing::Zeros => Ok(()),
        }
    }

    /// Cuts the file back to `length` bytes if it is longer.
    pub(super) fn trim(&self, length: u64) -> io::Result<()> {
        match &self.backing {
            Backing::Disk(handle) => {
                let file = handle.file()?;
                match file.metadata()?.len() > length {
                    true => file.set_len(length),
                    false => Ok(()),
                }
            }
            Backing::Zeros => Ok(()),
        }
    }
}
