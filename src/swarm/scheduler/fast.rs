//! The fast extension's hints (BEP 6) as the scheduler takes them: a
//! peer's suggested pieces are preferred among pieces as rare (the picker
//! stays rarest first), and its allowed-fast pieces are asked for while it
//! chokes us.

use std::time::Instant;

use super::peers::{MAX_ALLOWED_FAST, MAX_SUGGESTED};
use super::Scheduler;
use crate::swarm::pieces::PeerKey;

impl Scheduler {
    /// The peer suggests we fetch `piece` (it has it at hand).
    pub fn handle_suggest(&mut self, now: Instant, peer: PeerKey, piece: u32) {
        if piece >= self.pieces().count() {
            self.drop_peer(now, peer, false, "suggest for a piece that does not exist");
            return;
        }
        let Some(view) = self.peers.get_mut(&peer) else {
            return;
        };
        view.suggested.retain(|&i| i != piece);
        view.suggested.push_front(piece);
        view.suggested.truncate(MAX_SUGGESTED);
        self.fill(now, peer);
    }

    /// The peer lets us fetch `piece` while it chokes us.
    pub fn handle_allowed_fast(&mut self, now: Instant, peer: PeerKey, piece: u32) {
        if piece >= self.pieces().count() {
            self.drop_peer(
                now,
                peer,
                false,
                "allowed fast for a piece that does not exist",
            );
            return;
        }
        let Some(view) = self.peers.get_mut(&peer) else {
            return;
        };
        if view.allowed_fast.contains(&piece) || view.allowed_fast.len() >= MAX_ALLOWED_FAST {
            return;
        }
        view.allowed_fast.push(piece);
        self.fill(now, peer);
    }
}
