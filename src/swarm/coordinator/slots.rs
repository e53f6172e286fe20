//! Who gets a peer slot: the cap per torrent (`max_peers`) and per remote IP
//! address (`max_peers_per_ip`), and the eviction of an idle peer when every
//! slot is taken and a new connection arrives, so that connections that
//! only send keep-alives cannot lock real peers out.

use std::net::IpAddr;

use tokio::time::Instant;
use tracing::debug;

use super::Coordinator;
use crate::swarm::pieces::PeerKey;

impl Coordinator {
    /// Slots taken: connected peers, and connections being dialled or
    /// answered (each counted once).
    pub(super) fn slots_taken(&self) -> usize {
        let pending = self
            .dialled
            .keys()
            .chain(self.accepting.keys())
            .filter(|k| !self.links.contains_key(k))
            .count();
        self.links.len() + pending
    }

    /// Slots taken by connections with `ip`, the same way.
    pub(super) fn slots_of(&self, ip: IpAddr) -> usize {
        let linked = self.links.values().filter(|l| l.addr.ip() == ip).count();
        let dialled = self
            .dialled
            .iter()
            .filter(|(k, a)| a.ip() == ip && !self.links.contains_key(k))
            .count();
        let accepting = self
            .accepting
            .iter()
            .filter(|(k, a)| **a == ip && !self.links.contains_key(k))
            .count();
        linked + dialled + accepting
    }

    /// Whether a new connection from `ip` may have a slot: never beyond
    /// the cap per IP; beyond the cap per torrent only by taking the slot
    /// of an idle peer, which is disconnected here.
    pub(super) fn admit(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.slots_of(ip) >= self.config.max_peers_per_ip {
            debug!(%ip, "refused: too many connections from this address");
            return false;
        }
        self.make_room(now)
    }

    /// True when a slot is free, or was freed by disconnecting the idlest
    /// peer that may lose its slot.
    pub(super) fn make_room(&mut self, now: Instant) -> bool {
        if self.slots_taken() < self.config.max_peers {
            return true;
        }
        match self.sched.evict_candidate(now.into_std()) {
            Some(key) => {
                self.evict(key);
                true
            }
            None => {
                debug!("refused: every peer slot is taken by a peer in use");
                false
            }
        }
    }

    fn evict(&mut self, key: PeerKey) {
        if let Some(link) = self.links.get(&key) {
            debug!(addr = %link.addr, key, "idle peer gives its slot to a new connection");
        }
        self.remove_link(key);
    }
}
