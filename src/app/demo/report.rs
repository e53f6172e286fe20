//! What the demo shows: per leecher, the listener's song, the ring, and
//! the report's text.

use std::net::SocketAddr;

pub use super::play::PlayReport;

/// One leecher's outcome.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LeecherReport {
    /// Its advertised address.
    pub addr: SocketAddr,
    /// Seconds from its start to its last verified piece.
    pub seconds: f64,
    /// Average download rate, bytes per second.
    pub rate: f64,
    /// Peers it traded with.
    pub peers: usize,
    /// Bytes it uploaded to the others.
    pub uploaded: u64,
    /// Hops its node needed to find the swarm's owner in the ring.
    pub hops: u32,
    /// Every file byte-identical to the original.
    pub verified: bool,
}

/// What the demo shows.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DemoReport {
    /// The torrent.
    pub name: String,
    /// Its info-hash.
    pub info_hash: String,
    /// Bytes of content.
    pub bytes: u64,
    /// Bare Chord nodes started (the seeder and the leechers join the ring
    /// too, so a whole ring has this many members plus theirs).
    pub bare_nodes: usize,
    /// Members of the ring, walked along successor pointers.
    pub ring_size: usize,
    /// Peers the ring lists for the torrent.
    pub swarm_size: usize,
    /// Seconds from the first leecher's start to the last one's end.
    pub seconds: f64,
    /// Per leecher.
    pub leechers: Vec<LeecherReport>,
    /// The listener's song over HTTP.
    pub play: PlayReport,
}

impl DemoReport {
    /// True when every leecher ended with the right bytes.
    pub fn all_verified(&self) -> bool {
        self.leechers.iter().all(|l| l.verified) && self.play.verified
    }

    /// The human-readable report. Sizes and rates are in decimal MB, as
    /// in the progress bars and the `leech` summary.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "songswarm demo: {} ({:.1} MB, info-hash {})\n\
             ring: {} members walked along successors ({} bare Chord nodes + the seeder \
             + {} leechers + the listener); swarm list: {} peers\n",
            self.name,
            self.bytes as f64 / 1e6,
            self.info_hash,
            self.ring_size,
            self.bare_nodes,
            self.leechers.len(),
            self.swarm_size
        );
        for (i, l) in self.leechers.iter().enumerate() {
            out.push_str(&format!(
                "  leecher {i} {:<21} {:>6.2} s {:>6.2} MB/s  {} peers  uploaded {:>5.2} MB  lookup {} hops  {}\n",
                l.addr.to_string(),
                l.seconds,
                l.rate / 1e6,
                l.peers,
                l.uploaded as f64 / 1e6,
                l.hops,
                if l.verified { "verified OK" } else { "MISMATCH" }
            ));
        }
        let p = &self.play;
        out.push_str(&format!(
            "  listener plays {} ({:.2} MB) over HTTP from none of it: first byte in {:.0} ms; \
             seek to {:.0} % ({}): first byte in {:.0} ms; {}\n",
            p.file,
            p.bytes as f64 / 1e6,
            p.first_byte_ms,
            p.seek_to as f64 * 100.0 / p.bytes.max(1) as f64,
            if p.seek_was_local {
                "already downloaded"
            } else {
                "not yet downloaded"
            },
            p.seek_ms,
            if p.verified {
                "bytes verified OK"
            } else {
                "MISMATCH"
            }
        ));
        out.push_str(&format!(
            "all {} leechers done in {:.2} s: {}\n",
            self.leechers.len(),
            self.seconds,
            if self.all_verified() {
                "every file verified OK"
            } else {
                "VERIFICATION FAILED"
            }
        ));
        out
    }
}
