//! The process's open files: a bounded cache shared by every torrent.
//!
//! A library of thousands of songs cannot hold one descriptor per file: the
//! process would run out (the common soft limit is 1,024) and then fail to
//! accept peers. So a torrent's file is opened when it is read or written and
//! kept in a least-recently-used cache of [`DEFAULT_CAPACITY`] descriptors
//! (libtorrent keeps 40), whatever the number of torrents; the least recently
//! used one is closed to make room. A file is reopened the same strict way it
//! was first opened (no symbolic link, a regular file) and must still be the
//! same file (device and inode): one replaced on disk is an error, never
//! silently read. An open that fails for lack of descriptors (`EMFILE`)
//! closes half the cache and tries once more, so files give way to sockets
//! rather than failing a read.
//!
//! A descriptor in use by a read is an `Arc<File>`: eviction only drops the
//! cache's reference, and the file closes when the read is done. So the
//! number open exceeds the capacity by at most the reads in flight.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

/// Files kept open by default (libtorrent's `file_pool_size`).
pub const DEFAULT_CAPACITY: usize = 40;

/// A bounded least-recently-used set of open files.
#[derive(Debug)]
pub struct FileCache {
    /// Most files kept open.
    capacity: AtomicUsize,
    /// The open files, by key.
    inner: Mutex<Lru>,
    /// Files opened since start (first opens and reopens), for tests and
    /// benchmarks.
    opens: AtomicU64,
}

#[derive(Debug, Default)]
struct Lru {
    /// Key → the open file and when it was last used.
    open: HashMap<u64, (Arc<File>, u64)>,
    /// A counter that grows with every use: the "when" above.
    clock: u64,
}

/// The key of a file in the cache: one per opened torrent file, never reused.
pub(super) fn new_key() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

static GLOBAL: LazyLock<FileCache> = LazyLock::new(|| FileCache::new(DEFAULT_CAPACITY));

impl FileCache {
    /// An empty cache of `capacity` files (at least one).
    pub fn new(capacity: usize) -> FileCache {
        FileCache {
            capacity: AtomicUsize::new(capacity.max(1)),
            inner: Mutex::default(),
            opens: AtomicU64::new(0),
        }
    }

    /// The cache every torrent of the process shares.
    pub fn global() -> &'static FileCache {
        &GLOBAL
    }

    /// Sets the most files kept open (at least one); files beyond it are
    /// closed at the next use.
    pub fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity.max(1), Ordering::Relaxed);
        let mut lru = self.lock();
        lru.shrink_to(capacity.max(1));
    }

    /// The most files kept open.
    pub fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    /// Files the cache holds open now.
    pub fn len(&self) -> usize {
        self.lock().open.len()
    }

    /// True when no file is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Files opened since start.
    pub fn opens(&self) -> u64 {
        self.opens.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The file of `key`, opened with `open` when it is not in the cache.
    /// The open runs without the cache's lock (it may wait for a disk).
    pub(super) fn get(
        &self,
        key: u64,
        open: impl Fn() -> io::Result<File>,
    ) -> io::Result<Arc<File>> {
        if let Some(file) = self.lock().touch(key) {
            return Ok(file);
        }
        let file = match open() {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::MFILE.raw_os_error()) => {
                // Out of descriptors: give half of ours back, once.
                let half = self.capacity() / 2;
                self.lock().shrink_to(half);
                open()?
            }
            r => r?,
        };
        self.opens.fetch_add(1, Ordering::Relaxed);
        Ok(self.insert(key, file))
    }

    /// Puts a file just opened into the cache (closing the least recently
    /// used beyond the capacity); a file put there meanwhile wins.
    pub(super) fn insert(&self, key: u64, file: File) -> Arc<File> {
        let capacity = self.capacity();
        let mut lru = self.lock();
        if let Some(file) = lru.touch(key) {
            return file;
        }
        lru.clock += 1;
        let file = Arc::new(file);
        let clock = lru.clock;
        lru.open.insert(key, (file.clone(), clock));
        lru.shrink_to(capacity);
        file
    }

    /// Closes the file of `key` (its torrent is gone).
    pub(super) fn remove(&self, key: u64) {
        let closed = self.lock().open.remove(&key);
        drop(closed);
    }
}

impl Lru {
    /// The file of `key`, marked as just used.
    fn touch(&mut self, key: u64) -> Option<Arc<File>> {
        self.clock += 1;
        let clock = self.clock;
        let (file, used) = self.open.get_mut(&key)?;
        *used = clock;
        Some(file.clone())
    }

    /// Closes the least recently used files until at most `n` are open.
    fn shrink_to(&mut self, n: usize) {
        while self.open.len() > n {
            let oldest = self.open.iter().min_by_key(|(_, (_, used))| *used);
            let Some((&key, _)) = oldest else { return };
            self.open.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn keeps_the_most_recently_used_and_reopens_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<_> = (0..5)
            .map(|i| {
                let p = dir.path().join(format!("f{i}"));
                std::fs::write(&p, [i as u8]).unwrap();
                p
            })
            .collect();
        let cache = FileCache::new(2);
        let opened = Cell::new(0);
        let get = |i: usize| {
            cache
                .get(1000 + i as u64, || {
                    opened.set(opened.get() + 1);
                    File::open(&paths[i])
                })
                .unwrap()
        };
        get(0);
        get(1);
        get(0); // 0 is now more recent than 1
        get(2); // evicts 1
        assert_eq!(cache.len(), 2);
        assert_eq!(opened.get(), 3);
        get(0);
        assert_eq!(opened.get(), 3, "0 stayed open");
        get(1);
        assert_eq!(opened.get(), 4, "1 was closed and is opened again");
        cache.set_capacity(1);
        assert_eq!(cache.len(), 1);
        cache.remove(1001);
        assert!(cache.is_empty());
    }

    #[test]
    fn evicted_files_are_really_closed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(3);
        let mut weak = Vec::new();
        for i in 0..50u64 {
            let p = dir.path().join(format!("f{i}"));
            std::fs::write(&p, b"x").unwrap();
            weak.push(Arc::downgrade(&cache.get(i, || File::open(&p)).unwrap()));
        }
        // A file whose last reference is gone is closed.
        let open = weak.iter().filter(|w| w.upgrade().is_some()).count();
        assert_eq!(open, 3);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.opens(), 50);
    }
}
