//! How a peer's socket is tuned once its handshake is done: the send buffer
//! fits the path.
//!
//! A large send buffer (the listener's and the dialler's [`SOCKET_BUFFER`])
//! is what a long, fast path needs: its round trip times its rate is what
//! must be in flight. On a short path (the same host, or a fast LAN) the
//! link outruns the peer, and a large buffer only lets megabytes pile up
//! unread at the peer after each burst of requests we answer; libtorrent
//! then reads them in a few large gulps and sends its next requests only
//! after each, so its pipeline runs dry in between. With 256 KiB on
//! loopback a libtorrent leecher took 64 MiB from us at 1.15–1.19× the
//! rate a libtorrent seeder gave it, against mostly 0.71–0.83× with 4 MiB
//! (medians of alternating runs, same machine); a songswarm leecher was
//! faster too (256 MiB: 833 MB/s against 589). A capped upload
//! keeps its large buffer: it is paced already, and the swarm benchmark's
//! capped super-seed is measured as before.
//!
//! [`SOCKET_BUFFER`]: super::SOCKET_BUFFER

use std::time::Duration;

use tokio::net::TcpStream;

/// A round trip shorter than this makes a path short.
const SHORT_PATH_RTT: Duration = Duration::from_millis(1);

/// Send buffer asked for on a short path (the kernel doubles it for its
/// bookkeeping): at a round trip of 1 ms it still carries 250 MB/s.
pub(super) const SHORT_PATH_SEND_BUFFER: usize = 256 * 1024;

/// The send buffer a path with round trip `rtt` should have, if not the one
/// the socket was made with.
pub(super) fn send_buffer_for(rtt: Option<Duration>) -> Option<usize> {
    rtt.filter(|r| *r < SHORT_PATH_RTT)
        .map(|_| SHORT_PATH_SEND_BUFFER)
}

/// The kernel's smoothed round-trip time of the connection (after the
/// handshakes it has a few samples), where the platform tells it.
pub(super) fn round_trip(stream: &TcpStream) -> Option<Duration> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: `tcp_info` is plain old data, zeroed is a valid value,
        // and the kernel writes at most `len` bytes of it.
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: a valid socket descriptor, and a buffer of `len` bytes.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut libc::tcp_info).cast(),
                &mut len,
            )
        };
        // A reply too short to hold the round trip says nothing.
        let needed = std::mem::offset_of!(libc::tcp_info, tcpi_rttvar) as libc::socklen_t;
        (rc == 0 && len >= needed && info.tcpi_rtt > 0)
            .then(|| Duration::from_micros(u64::from(info.tcpi_rtt)))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = stream;
        None
    }
}

/// Fits the connection's send buffer to its path; returns the round trip
/// it went by (for the log).
pub(super) fn fit_send_buffer(stream: &TcpStream) -> Option<Duration> {
    let rtt = round_trip(stream);
    if let Some(size) = send_buffer_for(rtt) {
        let _ = socket2::SockRef::from(stream).set_send_buffer_size(size);
    }
    rtt
}

#[cfg(test)]
mod tests;
