//! Keeping a seeded torrent in the ring's library: once the torrent is
//! complete, its metadata and postings are published
//! ([`catalog::publish`]) and published again at half their life, for as
//! long as the torrent is served.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::Ring;
use crate::chord::catalog;
use crate::chord::driver::ChordHandle;
use crate::manifest::Manifest;
use crate::swarm::coordinator::TorrentHandle;

impl Ring {
    /// Publishes `manifest`'s songs in the ring's library once `torrent`
    /// is complete, and keeps them there until [`Ring::leave`].
    pub fn publish(&self, manifest: Arc<Manifest>, torrent: TorrentHandle) {
        let publisher = Publisher {
            chord: self.chord.clone(),
            manifest,
            torrent,
            ttl: self.chord.config.announce_ttl,
            retry: self.announce.retry,
        };
        self.tasks.spawn(publisher.run(self.cancel.child_token()));
    }
}

/// One torrent's songs in the library.
struct Publisher {
    /// Our node.
    chord: ChordHandle,
    /// The torrent published.
    manifest: Arc<Manifest>,
    /// Its progress: only a complete torrent is published.
    torrent: TorrentHandle,
    /// Life of what is published; it is published again at half of it.
    ttl: Duration,
    /// Wait before trying again after a failure.
    retry: Duration,
}

impl Publisher {
    async fn run(mut self, cancel: CancellationToken) {
        let info_hash = self.manifest.info_hash;
        loop {
            if !self.torrent.stats.borrow().complete {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    changed = self.torrent.stats.changed() => {
                        if changed.is_err() {
                            return; // the torrent stopped
                        }
                        continue;
                    }
                }
            }
            let next = match catalog::publish(&self.chord, &self.manifest, self.ttl).await {
                Ok(()) => {
                    debug!(%info_hash, "published in the library");
                    Instant::now() + self.ttl / 2
                }
                Err(e) => {
                    debug!(%info_hash, error = %e, "publishing failed; retrying");
                    Instant::now() + self.retry
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(next) => {}
            }
        }
    }
}
