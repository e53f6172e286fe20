//! The process's file descriptors: peer sockets and song files share one
//! limit, so neither may take it all.
//!
//! At start the soft open-file limit is raised to the hard one (the common
//! soft limit, 1,024, is low for a library seeded to many peers, and the
//! hard limit is there to be asked for). Song files then get at most a
//! quarter of the limit, through the bounded cache of open files
//! ([`FileCache`]); the rest is left to sockets, the ring and the rest of the
//! process.

use rustix::process::{getrlimit, setrlimit, Resource};

use crate::storage::FileCache;

/// The share of the open-file limit song files may hold: one in this many.
const FILE_SHARE: u64 = 4;

/// Raises the soft open-file limit to the hard limit; returns the limit in
/// force (None: unlimited or unknown).
pub fn raise_open_file_limit() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    if limit.current != limit.maximum && setrlimit(Resource::Nofile, raised).is_ok() {
        return limit.maximum;
    }
    limit.current
}

/// Raises the open-file limit and sizes the process's cache of open song
/// files: `wanted`, or a quarter of the limit if that is less (at least 4).
/// Returns the cache's size.
pub fn size_file_cache(wanted: usize) -> usize {
    let capacity = match raise_open_file_limit() {
        Some(limit) => wanted.min((limit / FILE_SHARE).max(4) as usize),
        None => wanted,
    };
    FileCache::global().set_capacity(capacity);
    capacity
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_reaches_the_hard_one() {
        raise_open_file_limit();
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(limit.current, limit.maximum);
    }
}
