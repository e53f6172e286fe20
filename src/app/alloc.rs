//! The heap's settings for a songswarm process, set before any thread exists.

/// Keeps freed buffers in the heap instead of giving them back to the
/// kernel. The peer wire reads into 256 KiB buffers that live until their
/// piece is hashed and written, so a download frees and allocates them at
/// its own rate. glibc's defaults return such memory at once and fault it
/// in again zeroed: two thirds of a leecher's page faults and a few per
/// cent of its CPU at 1 GB/s. Memory is still bounded by what is in flight.
///
/// And one heap for all threads: a connection's reader allocates on
/// whichever worker thread runs it, hashing threads free, and with glibc's
/// heap per thread each worker's heap grew to hold its own peak of the
/// buffers in flight. A 1 GiB leech peaked at 57 MiB RSS with them and at
/// 34 MiB with one heap, no slower (alternating runs).
///
/// Call it first thing in `main`, before any other thread is started.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune() {
    /// Allocations below this come from the heap, not their own mapping.
    const MMAP_THRESHOLD: libc::c_int = 4 << 20;
    /// Free memory at the top of a heap kept before it is returned.
    const TRIM_THRESHOLD: libc::c_int = 64 << 20;
    // SAFETY: mallopt only sets allocator parameters, under glibc's own
    // lock; it is called before any other thread exists, so that every
    // heap is made with them.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Other allocators keep their defaults.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() {}
