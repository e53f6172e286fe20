//! What a hash check's result does to the picker: a good piece is one
//! fewer wanted from every peer that has it; a bad one is blamed on the
//! peers that contributed to it.

use std::collections::{BTreeMap, VecDeque};

use super::Picker;
use crate::swarm::pieces::PeerKey;
use crate::swarm::scheduler::output::Output;
use crate::swarm::scheduler::peers::{Availability, Peer};

impl Picker {
    /// The hash check of `piece` finished (`ok`: it matched and is on
    /// disk); returns the peers that contributed to it.
    pub(in crate::swarm::scheduler) fn verified(
        &mut self,
        piece: u32,
        ok: bool,
        avail: &Availability,
    ) -> Vec<PeerKey> {
        let contributors = self.verifying.remove(&piece).unwrap_or_default();
        self.pieces.verified(piece, ok);
        self.relist(piece, avail);
        contributors
    }

    /// `piece` is ours now: peers that have it have one piece fewer we want.
    pub(in crate::swarm::scheduler) fn piece_verified(
        &mut self,
        piece: u32,
        views: &BTreeMap<PeerKey, Peer>,
        out: &mut VecDeque<Output>,
    ) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            if !views.get(&key).is_some_and(|v| v.have[piece as usize]) {
                continue;
            }
            if let Some(p) = self.peers.get_mut(&key) {
                p.interesting = p.interesting.saturating_sub(1);
            }
            self.update_interest(key, out);
        }
    }

    /// A piece made of `contributors`' blocks failed its hash check: the
    /// peers to ban. A lone contributor is the culprit. With several, each
    /// gets a strike (two and it is out) and the piece is re-fetched from
    /// one peer only (see `Partial::exclusive`). The piece is wanted again,
    /// but it never left the peers' counts of interesting pieces, so
    /// interest stands as it was.
    pub(in crate::swarm::scheduler) fn blame(&mut self, contributors: &[PeerKey]) -> Vec<PeerKey> {
        let lone = contributors.len() == 1;
        // A piece mixed with a peer already banned says nothing about the others.
        if contributors.iter().any(|k| self.banned.contains(k)) {
            return Vec::new();
        }
        let mut culprits = Vec::new();
        for key in contributors {
            let Some(p) = self.peers.get_mut(key) else {
                continue;
            };
            p.strikes += 1;
            if lone || p.strikes >= 2 {
                culprits.push(*key);
            }
        }
        culprits
    }

    /// Bans the peer: its blocks in unfinished pieces are suspect too, so
    /// those pieces start over.
    pub(in crate::swarm::scheduler) fn ban(&mut self, peer: PeerKey, avail: &Availability) {
        self.banned.insert(peer);
        for idx in 0..self.partials.len() {
            let i = self.partials[idx];
            if self
                .pieces
                .partial(i)
                .is_some_and(|p| p.contributors.contains(&peer))
            {
                self.pieces.reset(i);
                self.dups.retain(|b| b.index != i);
                self.relist(i, avail);
            }
        }
    }
}
