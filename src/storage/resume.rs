//! Resume records: which pieces were verified, and the files as they were
//! then, so a restart trusts unchanged files without reading them.
//!
//! One small file per torrent, `.songswarm-resume/<info-hash>.resume`
//! inside the data root (`--out`, `--data`; next to the file when `--data`
//! is the song itself). It holds the info-hash, one bit per verified piece,
//! and each file's size, modification time and inode, and ends with a SHA-1
//! of all that (a record cut short or damaged is ignored, never half used).
//!
//! A record is only ever a promise about data already durable: the caller
//! takes the set of verified pieces first, then `fsync`s the files, then
//! writes the record to a temporary file, `fsync`s it and renames it over
//! the old one (and `fsync`s the directory). A crash at any moment leaves
//! the old record or the new one, each true of what is on disk. A file
//! whose size, time or inode differs from its record is re-verified at the
//! next start (only the pieces it touches).
//!
//! The directory and the record are opened through no symbolic link, like
//! the songs.

use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use sha1::{Digest, Sha1};

/// The directory of the records, inside the data root.
pub const RESUME_DIR: &str = ".songswarm-resume";

/// The first bytes of a record (and its format's version).
const MAGIC: &[u8; 8] = b"SWRESUM1";

/// A file as it was when the record was written (all zeros for a pad file,
/// which is never stored).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileStamp {
    /// Its size in bytes.
    pub len: u64,
    /// Its modification time: seconds since the epoch.
    pub mtime: i64,
    /// And nanoseconds.
    pub mtime_nsec: u32,
    /// Its inode (a file replaced by a copy with the same time is caught).
    pub ino: u64,
}

/// What a torrent had verified, and its files then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumeRecord {
    /// The torrent.
    pub info_hash: [u8; 20],
    /// One flag per piece: verified and durable on disk.
    pub verified: Vec<bool>,
    /// One stamp per file of the manifest, in order.
    pub files: Vec<FileStamp>,
}

impl ResumeRecord {
    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&self.info_hash);
        out.extend_from_slice(&(self.verified.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.files.len() as u32).to_le_bytes());
        for f in &self.files {
            out.extend_from_slice(&f.len.to_le_bytes());
            out.extend_from_slice(&f.mtime.to_le_bytes());
            out.extend_from_slice(&f.mtime_nsec.to_le_bytes());
            out.extend_from_slice(&f.ino.to_le_bytes());
        }
        let mut bits = vec![0u8; self.verified.len().div_ceil(8)];
        for (i, _) in self.verified.iter().enumerate().filter(|(_, v)| **v) {
            bits[i / 8] |= 0x80 >> (i % 8);
        }
        out.extend_from_slice(&bits);
        let sum = Sha1::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// Reads a record; None for anything that is not one, whole and intact.
    pub fn decode(bytes: &[u8]) -> Option<ResumeRecord> {
        let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(20)?)?;
        if Sha1::digest(body).as_slice() != sum {
            return None;
        }
        let mut r = Reader(body);
        if r.take(8)? != MAGIC {
            return None;
        }
        let info_hash: [u8; 20] = r.take(20)?.try_into().ok()?;
        let pieces = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
        let count = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
        // Each stamp is 28 bytes: a count the body cannot hold is a lie.
        if count > r.0.len() / 28 || pieces.div_ceil(8) > r.0.len() {
            return None;
        }
        let mut files = Vec::with_capacity(count);
        for _ in 0..count {
            files.push(FileStamp {
                len: u64::from_le_bytes(r.take(8)?.try_into().ok()?),
                mtime: i64::from_le_bytes(r.take(8)?.try_into().ok()?),
                mtime_nsec: u32::from_le_bytes(r.take(4)?.try_into().ok()?),
                ino: u64::from_le_bytes(r.take(8)?.try_into().ok()?),
            });
        }
        let bits = r.take(pieces.div_ceil(8))?;
        if !r.0.is_empty() {
            return None;
        }
        let verified = (0..pieces)
            .map(|i| bits[i / 8] & (0x80 >> (i % 8)) != 0)
            .collect();
        Some(ResumeRecord {
            info_hash,
            verified,
            files,
        })
    }
}

/// The unread rest of a record.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
}

/// Where a torrent's record is kept.
#[derive(Clone, Debug)]
pub struct ResumeDir {
    /// The directory that holds [`RESUME_DIR`].
    parent: PathBuf,
}

impl ResumeDir {
    /// The records of torrents whose data root is `root` (a directory, or
    /// the song itself: then its directory). None when the torrent's own
    /// name is the records' directory (its files would be mixed with them).
    pub fn for_root(root: &Path, torrent_name: &str) -> Option<ResumeDir> {
        if torrent_name == RESUME_DIR {
            return None;
        }
        let parent = match std::fs::metadata(root) {
            Ok(m) if m.is_file() => root.parent()?.to_path_buf(),
            _ => root.to_path_buf(),
        };
        let parent = match parent.as_os_str().is_empty() {
            true => PathBuf::from("."),
            false => parent,
        };
        Some(ResumeDir { parent })
    }

    /// The path of the directory of records (for messages and docs).
    pub fn path(&self) -> PathBuf {
        self.parent.join(RESUME_DIR)
    }

    fn file_name(info_hash: &[u8; 20]) -> String {
        let hex: String = info_hash.iter().map(|b| format!("{b:02x}")).collect();
        format!("{hex}.resume")
    }

    /// Opens the records' directory through no link, making it if `create`.
    fn open_dir(&self, create: bool) -> io::Result<OwnedFd> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let parent = rustix::fs::open(&self.parent, flags, Mode::empty())?;
        if create {
            match rustix::fs::mkdirat(&parent, RESUME_DIR, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        Ok(rustix::fs::openat(
            &parent,
            RESUME_DIR,
            flags,
            Mode::empty(),
        )?)
    }

    /// The torrent's record, if there is one that is whole and its own.
    pub fn load(&self, info_hash: &[u8; 20]) -> Option<ResumeRecord> {
        let dir = self.open_dir(false).ok()?;
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&dir, Self::file_name(info_hash), flags, Mode::empty()).ok()?;
        let stat = rustix::fs::fstat(&fd).ok()?;
        // A record is a few KiB; anything else there is not one.
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile
            || stat.st_size > 64 << 20
        {
            return None;
        }
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut std::fs::File::from(fd), &mut bytes).ok()?;
        ResumeRecord::decode(&bytes).filter(|r| r.info_hash == *info_hash)
    }

    /// Writes the record atomically: a temporary file, `fsync`, rename over
    /// the old record, `fsync` of the directory.
    pub fn save(&self, record: &ResumeRecord) -> io::Result<()> {
        let dir = self.open_dir(true)?;
        let name = Self::file_name(&record.info_hash);
        let tmp = format!("{name}.tmp");
        let flags = OFlags::WRONLY
            | OFlags::CREATE
            | OFlags::TRUNC
            | OFlags::NOFOLLOW
            | OFlags::NONBLOCK
            | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&dir, &tmp, flags, Mode::from_raw_mode(0o644))?;
        let stat = rustix::fs::fstat(&fd)?;
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(io::Error::other(format!(
                "{} is not a regular file",
                self.path().join(&tmp).display()
            )));
        }
        let mut file = std::fs::File::from(fd);
        file.write_all(&record.encode())?;
        file.sync_all()?;
        rustix::fs::renameat(&dir, &tmp, &dir, &name)?;
        rustix::fs::fsync(&dir)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ResumeRecord {
        ResumeRecord {
            info_hash: [7; 20],
            verified: (0..21).map(|i| i % 3 == 0).collect(),
            files: vec![
                FileStamp {
                    len: 5,
                    mtime: -3,
                    mtime_nsec: 999,
                    ino: 42,
                },
                FileStamp::default(),
            ],
        }
    }

    #[test]
    fn a_record_reads_back_as_written_and_only_whole() {
        let r = record();
        let bytes = r.encode();
        assert_eq!(ResumeRecord::decode(&bytes), Some(r));
        for cut in 0..bytes.len() {
            assert_eq!(ResumeRecord::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 1;
            assert_eq!(ResumeRecord::decode(&damaged), None, "byte {i} flipped");
        }
    }

    #[test]
    fn saved_records_load_and_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let place = ResumeDir::for_root(dir.path(), "song.flac").unwrap();
        let r = record();
        assert_eq!(place.load(&r.info_hash), None);
        place.save(&r).unwrap();
        place.save(&r).unwrap();
        assert_eq!(place.load(&r.info_hash), Some(r.clone()));
        assert_eq!(place.load(&[8; 20]), None);
        // The records' directory replaced by a link: neither read nor written.
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::rename(place.path(), elsewhere.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path().join("moved"), place.path()).unwrap();
        assert_eq!(place.load(&r.info_hash), None);
        assert!(place.save(&r).is_err());
        assert!(ResumeDir::for_root(dir.path(), RESUME_DIR).is_none());
    }
}
