//! Which peers to dial and when: known addresses with back-off, and peer
//! exchange (telling each peer the addresses it has not heard of).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, warn};

use super::Coordinator;
use crate::swarm::connection;
use crate::swarm::pieces::PeerKey;
use crate::swarm::PeerCommand;

/// First retry delay of a peer address that refused or dropped us.
pub(super) const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Retry delay after a peer first broke the protocol; it doubles with each
/// further violation, up to `MAX_VIOLATION_BACKOFF`, and a good connection
/// does not reset it.
const VIOLATION_BACKOFF: Duration = Duration::from_secs(60);
/// Longest retry delay of a peer that broke the protocol.
const MAX_VIOLATION_BACKOFF: Duration = Duration::from_secs(3600);

/// Dial state of one known address.
pub(super) struct Dial {
    /// Not before this instant.
    pub(super) next: Instant,
    /// The delay after the next failure.
    pub(super) backoff: Duration,
    /// The connection dialling it or connected to it.
    pub(super) active: Option<PeerKey>,
    /// The user named it: dialled even when we have every piece.
    pub(super) named: bool,
    /// It had every piece when we did too: no use dialling it as a seed.
    pub(super) seed: bool,
    /// Times it broke the protocol.
    pub(super) strikes: u32,
}

impl Dial {
    /// A new address, due now.
    pub(super) fn new() -> Dial {
        Dial {
            next: Instant::now(),
            backoff: FIRST_BACKOFF,
            active: None,
            named: false,
            seed: false,
            strikes: 0,
        }
    }
}

impl Coordinator {
    /// A connection ended: forget it, and schedule the next dial of its
    /// address; one that broke the protocol (`violation`) waits long.
    pub(super) fn closed(&mut self, key: PeerKey, reason: &str, violation: bool) {
        let was_connected = self.links.contains_key(&key);
        debug!(key, reason, "peer closed");
        let listen = self.links.get(&key).and_then(|l| l.listen);
        let dialled = self.dialled.get(&key).copied();
        if let Some(l) = listen {
            if let Some(d) = self.known.get_mut(&l) {
                if d.active == Some(key) {
                    d.active = None;
                }
            }
        }
        if let (true, Some(link)) = (violation, self.links.get(&key)) {
            let (ip, id) = (link.addr.ip(), link.peer_id);
            let wait = self.refusals.broke_protocol(ip, id, Instant::now());
            warn!(%ip, reason, ?wait, "peer broke the protocol; its connections are refused for a while");
        }
        if violation {
            let other = dialled.filter(|a| Some(*a) != listen);
            for addr in [listen, other].into_iter().flatten() {
                if let Some(d) = self.known.get_mut(&addr) {
                    d.strikes += 1;
                    let wait = VIOLATION_BACKOFF * (1 << (d.strikes - 1).min(6));
                    let wait = wait.min(MAX_VIOLATION_BACKOFF);
                    d.next = Instant::now() + wait;
                    warn!(%addr, reason, ?wait, "peer broke the protocol; not dialled again for a while");
                }
            }
        }
        self.remove_link(key);
        self.accepting.remove(&key);
        if let Some(addr) = self.dialled.remove(&key) {
            if !was_connected && self.links.is_empty() {
                self.current.unreachable = Some(format!("{addr}: {reason}"));
            }
            if let Some(d) = self.known.get_mut(&addr) {
                if d.active == Some(key) {
                    d.active = None;
                }
                if !violation {
                    if was_connected {
                        d.backoff = FIRST_BACKOFF;
                    }
                    d.next = Instant::now() + d.backoff;
                    d.backoff = (d.backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Addresses to dial; `named`: the user named them (dialled whatever
    /// our data).
    pub(super) fn add_peers(&mut self, addrs: Vec<SocketAddr>, named: bool) {
        for a in addrs {
            if Some(a) == self.listen || self.banned.contains(&a) || a.port() == 0 {
                continue;
            }
            let d = self.known.entry(a).or_insert_with(Dial::new);
            d.named |= named;
        }
    }

    /// Dials the addresses that are due: all of them while we lack pieces;
    /// once we have every piece, those the user named that were not seeds
    /// (other leechers find a seed themselves).
    pub(super) fn dial_due(&mut self, now: Instant) {
        if self.ctx.cancel.is_cancelled() {
            return;
        }
        let complete = self.sched.is_complete();
        let due: Vec<SocketAddr> = self
            .known
            .iter()
            .filter(|(_, d)| d.active.is_none() && d.next <= now)
            .filter(|(_, d)| !complete || (d.named && !d.seed))
            .map(|(a, _)| *a)
            .collect();
        for addr in due {
            if self.slots_taken() >= self.config.max_peers {
                break;
            }
            if self.slots_of(addr.ip()) >= self.config.max_peers_per_ip {
                continue;
            }
            let key = self.new_key();
            if let Some(d) = self.known.get_mut(&addr) {
                d.active = Some(key);
            }
            self.dialled.insert(key, addr);
            self.ctx
                .tracker
                .spawn(connection::dial(self.ctx.clone(), key, addr));
        }
    }

    /// Peer exchange: tell each peer the listen addresses it has not heard of.
    pub(super) fn send_pex(&mut self, now: Instant) {
        let all: Vec<SocketAddr> = self.links.values().filter_map(|l| l.listen).collect();
        let mut dead = Vec::new();
        for (key, link) in self.links.iter_mut() {
            let Some(ext_id) = link.pex_id else { continue };
            // Other clients accept at most one message a minute.
            let every = if link.ours {
                Duration::from_secs(2)
            } else {
                Duration::from_secs(60)
            };
            if link.pex_at.is_some_and(|t| now.duration_since(t) < every) {
                continue;
            }
            let added: Vec<SocketAddr> = all
                .iter()
                .filter(|a| Some(**a) != link.listen && !link.pex_sent.contains(a))
                .take(50)
                .copied()
                .collect();
            if added.is_empty() {
                continue;
            }
            link.pex_sent.extend(added.iter().copied());
            link.pex_at = Some(now);
            if link
                .commands
                .try_send(PeerCommand::Pex { ext_id, added })
                .is_err()
            {
                dead.push(*key);
            }
        }
        for key in dead {
            self.remove_link(key);
        }
    }
}
