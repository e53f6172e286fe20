//! The super-seed's consistency check, for tests: its counts and ranking
//! agree with the peers' offers.

use std::collections::{BTreeMap, BTreeSet};

use super::{SpreadKey, SuperSeed};
use crate::swarm::pieces::PeerKey;
use crate::swarm::scheduler::peers::{Availability, Peer};

impl SuperSeed {
    /// Checks internal consistency (used by tests): the per-piece offer
    /// counts match the peers' offers, and the ranking matches the counts.
    pub(in crate::swarm::scheduler) fn check_invariants(
        &self,
        views: &BTreeMap<PeerKey, Peer>,
        avail: &Availability,
    ) -> bool {
        let n = self.offers.len();
        let (mut offers, mut pending) = (vec![0u32; n], vec![0u32; n]);
        for (key, p) in &self.peers {
            let Some(view) = views.get(key) else {
                return false;
            };
            if p.full {
                continue;
            }
            let (mut on_offer, mut unasked) = (0, 0);
            for i in 0..n {
                if p.announced[i] && !view.have[i] {
                    on_offer += 1;
                    if !p.asked[i] {
                        unasked += u64::from(self.geometry.piece_len(i as u32));
                    }
                    pending[i] += 1;
                    offers[i] += u32::from(p.unchoked);
                }
            }
            if on_offer != p.on_offer || unasked != p.unasked {
                return false;
            }
        }
        let ranked: BTreeSet<SpreadKey> = (0..avail.len()).map(|i| self.key(i, avail)).collect();
        offers == self.offers && pending == self.pending && ranked == self.by_spread
    }
}
