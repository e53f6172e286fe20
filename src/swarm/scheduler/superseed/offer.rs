//! Which piece a super-seeded peer is offered next, and when: its window's
//! worth of the least spread pieces, topped up as it reports pieces; and a
//! peer that is the only leecher is kept a lead of offers ahead of its
//! requests ([`LEAD_BYTES`], less under an upload cap), so that it never
//! runs out of pieces to ask for.
//!
//! The lead is for clients that do not look again once they have nothing
//! to ask for: rqbit, out of pieces, waits 5 s before it looks at the
//! HAVEs it got meanwhile, and it sends a seed no HAVE of its own. A
//! request shows before the data goes, so an offer made when the peer asks
//! for a piece reaches it while it still has blocks in flight; one made
//! when it reports the piece (or when a time-out says it never will)
//! comes after it ran dry. Only for a lone leecher: beside others the
//! window keeps the pieces spread one peer at a time, which is the point
//! of super-seeding, and a songswarm or libtorrent leecher asks for
//! seconds of data ahead, so a lead there would announce it everything.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::full::FALLBACK_AFTER;
use super::{SuperSeed, STALL};
use crate::swarm::pieces::PeerKey;
use crate::swarm::scheduler::output::Output;
use crate::swarm::scheduler::peers::{Availability, Peer};

/// Bytes on offer to a lone leecher that it has not asked for yet: more
/// than it takes while its request becomes our HAVE, which reaches it
/// behind the data already queued for it (rqbit keeps 128 blocks, 2 MiB,
/// in flight and asks for a new 1 MiB piece every 0.7 ms at 1.5 GB/s; a
/// 4 MiB lead still let it run dry one time in three).
const LEAD_BYTES: u64 = 16 << 20;

/// Under an upload cap, the lead is what the cap lets a peer take in this
/// time (at least a piece): a capped peer cannot run through more before
/// our HAVE reaches it, and a first leecher that was alone for a moment
/// then holds no more pieces than it needs while the others arrive.
const LEAD_TIME: Duration = Duration::from_millis(250);

/// The lead of a seed whose upload is capped at `cap` bytes a second, if
/// it is.
pub(super) fn lead_bytes(cap: Option<u64>) -> u64 {
    cap.map_or(LEAD_BYTES, |cap| {
        ((cap as f64 * LEAD_TIME.as_secs_f64()) as u64).min(LEAD_BYTES)
    })
}

impl SuperSeed {
    /// Tops up every peer's offers.
    pub(in crate::swarm::scheduler) fn offer_all(
        &mut self,
        now: Instant,
        views: &BTreeMap<PeerKey, Peer>,
        avail: &Availability,
        out: &mut VecDeque<Output>,
    ) {
        for (key, view) in views {
            self.offer(now, *key, view, avail, out);
        }
    }

    /// Tops up the peer's offers to its window.
    pub(in crate::swarm::scheduler) fn offer(
        &mut self,
        now: Instant,
        peer: PeerKey,
        view: &Peer,
        avail: &Availability,
        out: &mut VecDeque<Output>,
    ) {
        let Some(p) = self.peers.get(&peer).filter(|p| !p.full) else {
            return;
        };
        if p.all_taken_at
            .is_some_and(|t| now.saturating_duration_since(t) >= FALLBACK_AFTER)
        {
            // It does not report the pieces it completes.
            self.fall_back(peer, view, avail, out);
            return;
        }
        let window = self.window(now, p, view);
        // A peer that announced nothing new for a while may be stuck: maybe
        // nobody else serves it.
        let stalled = now.saturating_duration_since(p.last_have_at) >= STALL;
        while self.peers[&peer].on_offer < window
            && self.announce_next(peer, view, avail, stalled, out)
        {}
    }

    /// The peer asked for a block of `piece`; `lone`: no other leecher is
    /// there, and it is kept the lead's worth of offers ahead of its
    /// requests.
    pub(in crate::swarm::scheduler) fn requested(
        &mut self,
        peer: PeerKey,
        piece: u32,
        lone: bool,
        view: &Peer,
        avail: &Availability,
        out: &mut VecDeque<Output>,
    ) {
        let i = piece as usize;
        let piece_len = u64::from(self.geometry.piece_len(piece));
        let Some(p) = self.peers.get_mut(&peer).filter(|p| !p.full) else {
            return;
        };
        if i >= p.asked.len() || !p.announced[i] || p.asked[i] {
            return;
        }
        p.asked[i] = true;
        if !view.have[i] {
            p.unasked -= piece_len;
        }
        self.lead(peer, lone, view, avail, out);
    }

    /// Tops a lone (`lone`) super-seeded peer's offers up to the lead's
    /// worth it has not asked for.
    fn lead(
        &mut self,
        peer: PeerKey,
        lone: bool,
        view: &Peer,
        avail: &Availability,
        out: &mut VecDeque<Output>,
    ) {
        if !lone || self.peers.get(&peer).is_none_or(|p| p.full) {
            return;
        }
        while self.peers[&peer].unasked < self.lead
            && self.announce_next(peer, view, avail, false, out)
        {}
    }

    /// Announces to the peer the least spread piece it lacks and was not
    /// offered, if there is one it may get now (`stalled`: it may get a
    /// piece another peer holds or was offered).
    fn announce_next(
        &mut self,
        peer: PeerKey,
        view: &Peer,
        avail: &Availability,
        stalled: bool,
        out: &mut VecDeque<Output>,
    ) -> bool {
        let p = &self.peers[&peer];
        // Pieces are offered least spread first, so a piece nobody has and
        // nobody was offered comes before any second copy. A second copy
        // waits until every piece has reached some peer: before that it
        // would delay the last new pieces, which the whole swarm waits
        // for. Then a piece held by one peer only shortens the swarm's
        // tail; beyond that the peers trade among themselves, and only a
        // peer that has stalled gets more. Either kind, one at a time.
        // Ties go to the piece offered to the fewest choked peers, then
        // at random.
        let most = match (p.on_offer, stalled, avail.unspread() == 0) {
            (0, true, _) => u32::MAX,
            (0, false, true) => 1,
            _ => 0,
        };
        let best = self
            .by_spread
            .range(..=(most, u32::MAX, u32::MAX, u32::MAX))
            .map(|k| k.3)
            .find(|&i| !view.have[i as usize] && !p.announced[i as usize]);
        let Some(piece) = best else {
            return false;
        };
        let i = piece as usize;
        self.by_spread.remove(&self.key(piece, avail));
        let piece_len = u64::from(self.geometry.piece_len(piece));
        let unchoked = if let Some(p) = self.peers.get_mut(&peer) {
            p.announced[i] = true;
            p.on_offer += 1;
            p.offered_bytes += piece_len;
            if !p.asked[i] {
                p.unasked += piece_len;
            }
            p.all_taken_at = None;
            p.unchoked
        } else {
            false
        };
        self.pending[i] += 1;
        self.offers[i] += u32::from(unchoked);
        self.by_spread.insert(self.key(piece, avail));
        out.push_back(Output::Offer { peer, piece });
        true
    }
}
