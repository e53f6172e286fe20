//! Opening a torrent's files beneath its data root, never through a symbolic
//! link and never anything but a regular file.
//!
//! A manifest's paths are already safe (no `..`, nothing absolute), but a
//! link found inside `--out` or `--data` could still send a write anywhere:
//! over a file outside, or into a device. So nothing below the root is
//! resolved through a link: reading uses `openat2` with `RESOLVE_NO_SYMLINKS
//! | RESOLVE_BENEATH` where the kernel has it (Linux 5.6), else one `openat`
//! per component with `O_NOFOLLOW`; creating walks the components the same
//! way, making each directory and holding it open so none can be swapped for
//! a link on the way. A link found is refused with an error that names it
//! (never removed: it is the user's); so is anything that is not a regular
//! file (a device, a FIFO), opened non-blocking so a FIFO cannot hang us.
//! The root itself is a path the user typed and is followed like any other.
//!
//! BEP 47 pad files are not opened at all: their bytes are zeros.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::file::{Backing, Handle, StoredFile};
use super::{Storage, StorageError};
use crate::manifest::Manifest;

/// Whether a file is only read (seeding) or may be created and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Access {
    /// Open an existing file read-only.
    Read,
    /// Open read-write, creating the file and its directories as needed.
    Create,
    /// Open an existing file read-write (a reopen: the file was created).
    Write,
}

/// A directory under which a torrent's files are opened.
struct Root {
    /// The directory, opened once (following links: the user chose it).
    dir: OwnedFd,
    /// Its path, for messages.
    path: PathBuf,
}

/// How a file of a torrent is opened again after the cache of open files
/// closed it: exactly as the first time.
#[derive(Debug)]
pub(super) enum Opener {
    /// `rel` beneath the data root `root`, through no link.
    Beneath {
        /// The data root (shared by the torrent's files).
        root: Arc<Path>,
        /// The manifest's path of the file.
        rel: PathBuf,
        /// Read-only, or read-write.
        access: Access,
    },
    /// The file the user named (`--data` as the song itself).
    User(PathBuf),
}

impl Opener {
    /// Opens the file again (a file that is missing now is not created
    /// again: it was there, so its absence is an error).
    pub(super) fn open(&self) -> Result<File, StorageError> {
        match self {
            Opener::User(path) => open_user_file(path),
            Opener::Beneath { root, rel, access } => {
                let dir = Root::open_dir(root).map_err(|e| StorageError::Io {
                    path: root.to_path_buf(),
                    source: e.into(),
                })?;
                let access = match access {
                    Access::Create => Access::Write,
                    other => *other,
                };
                dir.open_file(rel, access)
            }
        }
    }
}

/// Wraps a file just opened in its cached handle.
fn cached(opener: Opener, file: File, path: &Path) -> Result<Backing, StorageError> {
    Handle::new(opener, file)
        .map(Backing::Disk)
        .map_err(|source| StorageError::Io {
            path: path.to_path_buf(),
            source,
        })
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
        let dir = match root_is_file {
            true => None,
            false => Some(Root::open(root, manifest)?),
        };
        let shared: Arc<Path> = Arc::from(root);
        let mut files = Vec::new();
        for (f, pad) in manifest.files.iter().zip(manifest.pad_files()) {
            if pad {
                files.push(StoredFile::new(root.join(&f.path), Backing::Zeros));
                continue;
            }
            let (path, file, opener) = match &dir {
                None => (
                    root.to_path_buf(),
                    open_user_file(root)?,
                    Opener::User(root.to_path_buf()),
                ),
                Some(dir) => (
                    dir.path.join(&f.path),
                    dir.open_file(&f.path, Access::Read)?,
                    Opener::Beneath {
                        root: shared.clone(),
                        rel: f.path.clone(),
                        access: Access::Read,
                    },
                ),
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
            let backing = cached(opener, file, &path)?;
            files.push(StoredFile::new(path, backing));
        }
        Ok(Storage::assemble(manifest, files))
    }

    /// Opens (creating as needed) the files a download writes to. Existing
    /// contents are kept so a restarted download can resume. Pad files are
    /// never created.
    pub fn open_or_create(root: &Path, manifest: &Manifest) -> Result<Storage, StorageError> {
        std::fs::create_dir_all(root).map_err(|source| StorageError::Io {
            path: root.to_path_buf(),
            source,
        })?;
        let dir = Root::open(root, manifest)?;
        let shared: Arc<Path> = Arc::from(root);
        let mut files = Vec::new();
        for (f, pad) in manifest.files.iter().zip(manifest.pad_files()) {
            let path = root.join(&f.path);
            let backing = match pad {
                true => Backing::Zeros,
                false => {
                    let file = dir.open_file(&f.path, Access::Create)?;
                    let opener = Opener::Beneath {
                        root: shared.clone(),
                        rel: f.path.clone(),
                        access: Access::Create,
                    };
                    cached(opener, file, &path)?
                }
            };
            files.push(StoredFile::new(path, backing));
        }
        Ok(Storage::assemble(manifest, files))
    }
}

/// Opens a file the user named (`--data` as the song itself): links are
/// followed, but it must be a regular file.
fn open_user_file(path: &Path) -> Result<File, StorageError> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| match e {
        Errno::NOENT => StorageError::Missing {
            path: path.to_path_buf(),
        },
        e => StorageError::Io {
            path: path.to_path_buf(),
            source: e.into(),
        },
    })?;
    regular(fd, path)
}

impl Root {
    /// Opens the data root; a missing root is reported as the torrent's
    /// first file missing, which says which directory was expected.
    fn open(path: &Path, manifest: &Manifest) -> Result<Root, StorageError> {
        match Root::open_dir(path) {
            Ok(root) => Ok(root),
            Err(Errno::NOENT) => Err(StorageError::Missing {
                path: manifest
                    .files
                    .first()
                    .map_or_else(|| path.to_path_buf(), |f| path.join(&f.path)),
            }),
            Err(e) => Err(StorageError::Io {
                path: path.to_path_buf(),
                source: e.into(),
            }),
        }
    }

    /// Opens the directory `path` (following links: the user chose it).
    fn open_dir(path: &Path) -> rustix::io::Result<Root> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        Ok(Root {
            dir: rustix::fs::open(path, flags, Mode::empty())?,
            path: path.to_path_buf(),
        })
    }

    /// Opens `rel` (a manifest path: plain components only) beneath the
    /// root, through no link, and checks that it is a regular file.
    fn open_file(&self, rel: &Path, access: Access) -> Result<File, StorageError> {
        let full = self.path.join(rel);
        let mut flags = OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        flags |= match access {
            Access::Read => OFlags::RDONLY,
            Access::Write => OFlags::RDWR,
            Access::Create => OFlags::RDWR | OFlags::CREATE,
        };
        let opened = match access {
            Access::Read => {
                let how = ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH;
                match rustix::fs::openat2(&self.dir, rel, flags, Mode::empty(), how) {
                    // No openat2 (an old kernel, or a sandbox that hides
                    // it), or a rename raced the lookup: walk instead.
                    Err(Errno::NOSYS | Errno::PERM | Errno::AGAIN) => self.walk(rel, flags, access),
                    r => r,
                }
            }
            Access::Write | Access::Create => self.walk(rel, flags, access),
        };
        let fd = opened.map_err(|e| self.explain(rel, e, access))?;
        regular(fd, &full)
    }

    /// Opens `rel` one component at a time, each with `O_NOFOLLOW`, holding
    /// every directory open; with [`Access::Create`], makes the directories
    /// that are missing.
    fn walk(&self, rel: &Path, flags: OFlags, access: Access) -> rustix::io::Result<OwnedFd> {
        let parts: Vec<&OsStr> = rel
            .components()
            .map(|c| match c {
                Component::Normal(name) => Ok(name),
                // Manifest paths are validated; anything else is refused.
                _ => Err(Errno::INVAL),
            })
            .collect::<Result<_, _>>()?;
        let (name, dirs) = parts.split_last().ok_or(Errno::INVAL)?;
        let mut parent: Option<OwnedFd> = None;
        for dir in dirs {
            let at = parent.as_ref().map_or(self.dir.as_fd(), OwnedFd::as_fd);
            if access == Access::Create {
                match rustix::fs::mkdirat(at, *dir, Mode::from_raw_mode(0o777)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e),
                }
            }
            let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            parent = Some(rustix::fs::openat(at, *dir, dir_flags, Mode::empty())?);
        }
        let at: BorrowedFd<'_> = parent.as_ref().map_or(self.dir.as_fd(), OwnedFd::as_fd);
        rustix::fs::openat(at, *name, flags, Mode::from_raw_mode(0o666))
    }

    /// Turns a failed open of `rel` into an error that says what is wrong,
    /// naming the link when a link is in the way.
    fn explain(&self, rel: &Path, e: Errno, access: Access) -> StorageError {
        // O_NOFOLLOW and RESOLVE_NO_SYMLINKS say ELOOP; a link where a
        // directory should be says ENOTDIR; RESOLVE_BENEATH says EXDEV.
        if matches!(e, Errno::LOOP | Errno::NOTDIR | Errno::XDEV) {
            if let Some(path) = self.first_link(rel) {
                return StorageError::Link { path };
            }
        }
        let path = self.path.join(rel);
        match (e, access) {
            (Errno::NOENT, Access::Read | Access::Write) => StorageError::Missing { path },
            (e, _) => StorageError::Io {
                path,
                source: e.into(),
            },
        }
    }

    /// The first component of `rel` that is a symbolic link, as a full path.
    fn first_link(&self, rel: &Path) -> Option<PathBuf> {
        let mut prefix = PathBuf::new();
        for part in rel.components() {
            prefix.push(part);
            let stat = rustix::fs::statat(&self.dir, &prefix, AtFlags::SYMLINK_NOFOLLOW).ok()?;
            if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink {
                return Some(self.path.join(&prefix));
            }
        }
        None
    }
}

/// Checks that `fd` is a regular file and turns it into a blocking `File`.
fn regular(fd: OwnedFd, path: &Path) -> Result<File, StorageError> {
    let io_err = |e: Errno| StorageError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    };
    let stat = rustix::fs::fstat(&fd).map_err(io_err)?;
    let kind = FileType::from_raw_mode(stat.st_mode);
    if kind != FileType::RegularFile {
        return Err(StorageError::NotRegular {
            path: path.to_path_buf(),
            kind: describe(kind),
        });
    }
    let flags = rustix::fs::fcntl_getfl(&fd).map_err(io_err)?;
    rustix::fs::fcntl_setfl(&fd, flags.difference(OFlags::NONBLOCK)).map_err(io_err)?;
    Ok(File::from(fd))
}

fn describe(kind: FileType) -> &'static str {
    match kind {
        FileType::Directory => "a directory",
        FileType::CharacterDevice | FileType::BlockDevice => "a device",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        _ => "not a regular file",
    }
}

#[cfg(test)]
mod tests;
