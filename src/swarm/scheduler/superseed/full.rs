//! Peers that get every piece announced, as from a normal seed: a leecher
//! alone in `auto` mode, a peer that does not report (HAVE) the pieces
//! it completes, which super-seeding would leave waiting for ever, and a
//! peer that plays the song while it downloads, which needs the pieces at
//! its play position, not the least spread ones.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::SuperSeed;
use crate::swarm::pieces::PeerKey;
use crate::swarm::scheduler::output::Output;
use crate::swarm::scheduler::peers::{Availability, Peer};

/// How long a new seed super-seeds every peer in `auto` mode before it
/// calls a leecher lone.
pub(super) const AUTO_WAIT: Duration = Duration::from_secs(2);

/// A peer that took every byte it was offered and announced none of those
/// pieces for this long does not report what it completes: it gets every
/// piece announced, as from a normal seed (else it would wait for ever).
pub(super) const FALLBACK_AFTER: Duration = Duration::from_millis(1500);

impl SuperSeed {
    /// True when the peer is super-seeded (gets no bitfield at the start).
    pub(in crate::swarm::scheduler) fn is_offering(&self, peer: PeerKey) -> bool {
        self.peers.get(&peer).is_some_and(|p| !p.full)
    }

    /// In `auto` mode, with at most one leecher left: every peer gets every
    /// piece announced (never super-seed a lone leecher).
    pub(in crate::swarm::scheduler) fn few_leechers(
        &mut self,
        now: Instant,
        leechers: usize,
        views: &BTreeMap<PeerKey, Peer>,
        avail: &Availability,
        out: &mut VecDeque<Output>,
    ) {
        if !self.auto || leechers > 1 || now < self.lone_from {
            return;
        }
        let offering: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.full)
            .map(|(k, _)| *k)
            .collect();
        for key in offering {
            if let Some(view) = views.get(&key) {
                self.fall_back(key, view, avail, out);
            }
        }
    }

    /// The peer plays the torrent while it downloads (it said so in its
    /// extension handshake): it gets every piece at once, in any mode.
    pub(in crate::swarm::scheduler) fn streams(
        &mut self,
        peer: PeerKey,
        view: &Peer,
        avail: &Availability,
        out: &mut VecDeque<Output>,
    ) {
        if self.is_offering(peer) {
            self.fall_back(peer, view, avail, out);
        }
    }

    /// The peer becomes full: every piece not yet announced to it is.
    pub(super) fn fall_back(
        &mut self,
        peer: PeerKey,
        view: &Peer,
        avail: &Availability,
        out: &mut VecDeque<Output>,
    ) {
        self.count_offers(peer, &view.have, false, avail);
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.full = true;
        p.on_offer = 0;
        for (i, announced) in p.announced.iter_mut().enumerate() {
            if !*announced && !view.have[i] {
                out.push_back(Output::Offer {
                    peer,
                    piece: i as u32,
                });
            }
            *announced = true;
        }
    }
}
