//! One task per torrent keeps it in the ring: it announces us (as
//! leecher, then seeder once complete) and re-announces at half the TTL;
//! it looks the swarm up every few seconds and hands new addresses to the
//! coordinator; when a lookup does not list us (replicas lost, a partition
//! healed) it announces again at once; a seeded torrent's songs are
//! published in the ring's library ([`catalog::publish`]) once complete and
//! again at half their life; and on a clean exit it removes us.
//!
//! Every ring write and lookup of the process takes a turn of one budget
//! ([`Pace`]): announces, lookups, removals and each write of a publish
//! alike. A library of 10,000 songs holds 10,000 of these tasks, so a
//! sleeping one is kept small: what every torrent shares is behind one
//! pointer, and the ring operations' futures (large, and live only while
//! they run) are boxed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::super::pace::{jittered, Pace};
use super::Ring;
use crate::chord::catalog;
use crate::chord::driver::ChordHandle;
use crate::chord::Role;
use crate::config::AnnounceConfig;
use crate::id::Id;
use crate::manifest::Manifest;
use crate::swarm::coordinator::TorrentHandle;
use crate::swarm::TorrentEvent;

/// What every announcer of a process shares.
pub(super) struct Announcing {
    /// Our node.
    pub(super) chord: ChordHandle,
    /// The peer address we announce.
    pub(super) me: SocketAddr,
    /// Periods.
    pub(super) config: AnnounceConfig,
    /// The process's budget of ring operations.
    pub(super) pace: Pace,
    /// Cancelled at [`Ring::leave`]: announcers then remove us and end.
    pub(super) cancel: CancellationToken,
}

impl Ring {
    /// Keeps `torrent` announced, and its coordinator fed with the swarm's
    /// peers, until [`Ring::leave`]. `looked_up`: when the swarm was last
    /// looked up (the first lookup then waits one period), or None to look
    /// it up at once.
    pub fn track(&self, torrent: TorrentHandle, looked_up: Option<Instant>) {
        self.spawn_announcer(torrent, looked_up, None);
    }

    /// [`Ring::track`], and publishes `manifest`'s songs in the ring's
    /// library once `torrent` is complete, keeping them there until
    /// [`Ring::leave`].
    pub fn track_published(
        &self,
        torrent: TorrentHandle,
        looked_up: Option<Instant>,
        manifest: Arc<Manifest>,
    ) {
        self.spawn_announcer(torrent, looked_up, Some(manifest));
    }

    fn spawn_announcer(
        &self,
        torrent: TorrentHandle,
        looked_up: Option<Instant>,
        published: Option<Arc<Manifest>>,
    ) {
        let announcer = Announcer {
            shared: self.announcing.clone(),
            torrent,
            looked_up,
            published,
        };
        self.tasks.spawn(announcer.run());
    }
}

/// One torrent's presence in the ring.
struct Announcer {
    /// What every announcer shares.
    shared: Arc<Announcing>,
    /// The torrent's coordinator and progress.
    torrent: TorrentHandle,
    /// When the swarm was last looked up before we started (None: never).
    looked_up: Option<Instant>,
    /// The manifest whose songs are published once complete, if any.
    published: Option<Arc<Manifest>>,
}

impl Announcer {
    async fn run(mut self) {
        let shared = self.shared.clone();
        let cancel = &shared.cancel;
        let info_hash = self.torrent.info_hash;
        let now = Instant::now();
        let mut next_announce = now;
        let mut next_query = self
            .looked_up
            .map_or(now, |at| (at + self.requery_period()).max(now));
        // When the songs are next published (None: not yet complete, or
        // nothing to publish).
        let mut next_publish: Option<Instant> = None;
        let mut announced: Option<Role> = None;
        let mut rng = StdRng::from_entropy();
        loop {
            let role = self.role();
            if announced != Some(role) {
                next_announce = Instant::now();
            }
            if role == Role::Seeder && self.published.is_some() && next_publish.is_none() {
                next_publish = Some(Instant::now());
            }
            let next = next_announce.min(next_query);
            let next = next_publish.map_or(next, |p| p.min(next));
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep_until(next) => {}
                changed = self.torrent.stats.changed() => {
                    if changed.is_err() {
                        break; // the torrent stopped
                    }
                    continue;
                }
            }
            let now = Instant::now();
            if now >= next_announce {
                if !self.turns(1).await {
                    break;
                }
                let announce = shared.chord.announce(info_hash, shared.me, role);
                match Box::pin(announce).await {
                    Ok(()) => {
                        debug!(%info_hash, ?role, "announced");
                        announced = Some(role);
                        next_announce = now + jittered(self.ttl() / 2, &mut rng);
                    }
                    Err(e) => {
                        debug!(%info_hash, error = %e, "announce failed; retrying");
                        next_announce = now + shared.config.retry;
                    }
                }
            }
            if now >= next_query {
                if !self.turns(1).await {
                    break;
                }
                match Box::pin(self.query()).await {
                    Some(listed) => {
                        next_query = now + jittered(self.requery_period(), &mut rng);
                        if !listed && announced.is_some() {
                            // Our entry is gone (replicas lost, or the other
                            // side of a healed partition): announce again now.
                            announced = None;
                        }
                    }
                    None => next_query = now + shared.config.retry,
                }
            }
            if next_publish.is_some_and(|p| now >= p) {
                match Box::pin(self.publish()).await {
                    Some(next) => next_publish = Some(next),
                    None => break,
                }
            }
        }
        Box::pin(self.remove(info_hash)).await;
    }

    /// Life of an announce (and of what is published) on the replicas.
    fn ttl(&self) -> Duration {
        self.shared.chord.config.announce_ttl
    }

    /// Waits for `n` turns of the process's budget (every announcer shares
    /// one); false when cancelled meanwhile.
    async fn turns(&self, n: usize) -> bool {
        for _ in 0..n {
            tokio::select! {
                _ = self.shared.cancel.cancelled() => return false,
                _ = self.shared.pace.ready() => {}
            }
        }
        true
    }

    /// Publishes the songs, one turn of the budget per write (the metadata
    /// and each posting); returns when to publish them again, or None when
    /// cancelled.
    async fn publish(&self) -> Option<Instant> {
        let manifest = self.published.as_ref()?;
        let info_hash = manifest.info_hash;
        let writes = 1 + catalog::postings_of(manifest).len();
        if !self.turns(writes).await {
            return None;
        }
        let ttl = self.ttl();
        let publish = catalog::publish(&self.shared.chord, manifest, ttl);
        Some(match Box::pin(publish).await {
            Ok(()) => {
                debug!(%info_hash, "published in the library");
                Instant::now() + ttl / 2
            }
            Err(e) => {
                debug!(%info_hash, error = %e, "publishing failed; retrying");
                Instant::now() + self.shared.config.retry
            }
        })
    }

    /// Looks the swarm up and hands the peers to the coordinator. Returns
    /// whether we are listed, or None when the lookup failed.
    async fn query(&self) -> Option<bool> {
        let info_hash = self.torrent.info_hash;
        let me = self.shared.me;
        let peers = match self.shared.chord.peers(info_hash).await {
            Ok(peers) => peers,
            Err(e) => {
                debug!(%info_hash, error = %e, "swarm lookup failed; retrying");
                return None;
            }
        };
        let listed = peers.iter().any(|&(addr, _)| addr == me);
        let others: Vec<SocketAddr> = peers
            .into_iter()
            .map(|(addr, _)| addr)
            .filter(|&addr| addr != me)
            .collect();
        debug!(%info_hash, peers = others.len(), listed, "swarm lookup");
        if !others.is_empty() {
            // The coordinator ignores peers it already knows; a full inbox
            // only delays these to the next lookup.
            let _ = self.torrent.events.try_send(TorrentEvent::AddPeers(others));
        }
        Some(listed)
    }

    fn requery_period(&self) -> Duration {
        match self.role() {
            Role::Seeder => self.shared.config.requery_seeding,
            Role::Leecher => self.shared.config.requery_leeching,
        }
    }

    /// Takes us off the swarm list (a clean exit). Removals share the
    /// budget of announces, and every announcer of the process stops at
    /// once, so all of them are done within `remove_timeout` of the stop:
    /// a removal whose turn does not come by then is left to expire with
    /// the entry's TTL (10,000 songs do not send 10,000 removals in the
    /// same second, and the exit stays bounded).
    async fn remove(&self, info_hash: Id) {
        let until = Instant::now() + self.shared.config.remove_timeout;
        let turn = tokio::time::timeout_at(until, self.shared.pace.ready()).await;
        if turn.is_err() {
            debug!(%info_hash, "no turn to remove us before the exit: the entry expires instead");
            return;
        }
        let removal = self.shared.chord.remove(info_hash, self.shared.me);
        match tokio::time::timeout_at(until, removal).await {
            Ok(Ok(())) => debug!(%info_hash, "removed from the swarm list"),
            Ok(Err(e)) => warn!(%info_hash, error = %e, "could not remove us from the swarm list"),
            Err(_) => warn!(%info_hash, "removal from the swarm list timed out"),
        }
    }

    fn role(&self) -> Role {
        if self.torrent.stats.borrow().complete {
            Role::Seeder
        } else {
            Role::Leecher
        }
    }
}
