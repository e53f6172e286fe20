//! Super-seeding (after BEP 16), used by a peer that starts with every piece.
//!
//! A seed that shows its whole bitfield lets leechers that pick at the same
//! moment fetch the same piece from it, and its capped upload is the swarm's
//! bottleneck until one full copy is out. Instead it announces pieces one
//! peer at a time (HAVE messages, no bitfield), always the piece least spread
//! so far (held by the fewest peers plus offered to the fewest), keeping each
//! peer a window of offered pieces sized to its rate. Leechers then trade the
//! pieces among themselves. Any BitTorrent client follows HAVE messages, so
//! this needs nothing from the other side.
//!
//! It helps only where several leechers could trade among themselves, and
//! it relies on each peer announcing (HAVE) the pieces it completes, which
//! BEP 3 lets a peer skip towards one that already has them. So it is
//! decided per peer: a peer may be *full* (it got every piece announced, by
//! bitfield at the start or by HAVEs later) and is then served as by any
//! seed. In `auto` mode a peer that arrives while no other leecher is
//! there starts full, and every peer becomes full once at most one leecher
//! is left, except in a new seed's first [`AUTO_WAIT`]: leechers waiting
//! for a seed arrive together, a few milliseconds apart, and the first of
//! them is not alone (a bitfield to it cost the swarm benchmark a tenth of
//! its efficiency, the seed sending 1.2 copies instead of 1.05). In either
//! mode a peer that took all it was offered and
//! announces nothing for [`FALLBACK_AFTER`] becomes full. A peer that says
//! it plays the torrent while it downloads (the `stream` key of its
//! extension handshake) becomes full at once, in any mode: the piece a
//! player waits for is the one at its play position, and super-seeding
//! must never delay it. Among pieces spread alike the first and the last go
//! first, which every player needs before anything else. A super-seeded
//! peer that is the only leecher is offered pieces as it asks for them,
//! ahead of its requests (see `offer`): a client that stops looking once
//! it has nothing left to ask for then never runs dry.
//!
//! [`SuperSeed`] owns every offer and what it knows of each peer's offers;
//! the scheduler tells it what changed (a peer's pieces, our choking of it,
//! a piece's holders) and asks it to top offers up.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::peers::{Availability, Peer};
use crate::geometry::Geometry;
use crate::swarm::pieces::PeerKey;

mod check;
mod full;
mod offer;
mod window;

use full::AUTO_WAIT;

/// A peer with no new piece for this long may be offered pieces others have.
const STALL: Duration = Duration::from_secs(2);

/// Offer window of a new peer (grows per completed piece until measured).
/// Two, so that an unchoked peer still wants a piece from us while it
/// completes the other: libtorrent that runs out of pieces to want ends its
/// request slow start and keeps two requests in flight for a second.
const FIRST_WINDOW: u32 = 2;

/// A piece's offer rank: (holders plus unchoked offers, all offers, random
/// rank (0 for the first and last piece), piece).
type SpreadKey = (u32, u32, u32, u32);

/// What the super-seed keeps about one peer.
#[derive(Debug)]
struct Offered {
    /// Pieces we announced to it.
    announced: Vec<bool>,
    /// Announced pieces it does not have yet.
    on_offer: u32,
    /// Its offer window before its rate is measured.
    window: u32,
    /// We do not choke it (only its offers count as on their way).
    unchoked: bool,
    /// When we last unchoked it.
    unchoked_at: Option<Instant>,
    /// Bytes uploaded to it since we last unchoked it (its rate before the
    /// first tick measures one).
    taken_since_unchoke: u64,
    /// When it last announced a new piece (a stalled peer may get a second
    /// copy of a piece).
    last_have_at: Instant,
    /// Every piece was (or will be) announced to it: it takes what it
    /// wants, outside every count here.
    full: bool,
    /// Bytes of the pieces on offer to it.
    offered_bytes: u64,
    /// Bytes uploaded to it not yet accounted for by a HAVE of an offered
    /// piece.
    unreported: u64,
    /// Since when it has had every byte on offer without announcing them.
    all_taken_at: Option<Instant>,
    /// Pieces it asked for a block of (a request shows before the data
    /// goes, a HAVE only after the piece is done, if ever).
    asked: Vec<bool>,
    /// Bytes of the pieces on offer it has not asked for yet.
    unasked: u64,
}

/// The super-seed policy of one torrent.
#[derive(Debug)]
pub(super) struct SuperSeed {
    /// Piece sizes (windows are sized in bytes).
    geometry: Geometry,
    /// Super-seed only while several leechers are there (else every peer
    /// is full).
    auto: bool,
    /// In `auto` mode, from when a peer may be called lone.
    lone_from: Instant,
    /// Per piece: unchoked peers holding an offer of it not yet taken.
    offers: Vec<u32>,
    /// Per piece: peers holding an offer of it not yet taken, choked or not.
    pending: Vec<u32>,
    /// Every piece by its offer rank, least spread first; kept in step with
    /// the holders and the two counts above, so an offer need not look at
    /// every piece and every peer.
    by_spread: BTreeSet<SpreadKey>,
    /// Per connected peer: its offers.
    peers: BTreeMap<PeerKey, Offered>,
    /// Bytes a lone leecher is kept on offer beyond what it asked for.
    lead: u64,
}

impl SuperSeed {
    /// Starts super-seeding the pieces of `geometry`, none offered, for a
    /// seed that started at `started` and uploads at most `cap` bytes a
    /// second; `auto`: only while several leechers are there.
    pub(super) fn new(
        geometry: Geometry,
        auto: bool,
        started: Instant,
        cap: Option<u64>,
        avail: &Availability,
    ) -> SuperSeed {
        let n = avail.len() as usize;
        let mut seed = SuperSeed {
            geometry,
            auto,
            lone_from: started + AUTO_WAIT,
            offers: vec![0; n],
            pending: vec![0; n],
            by_spread: BTreeSet::new(),
            peers: BTreeMap::new(),
            lead: offer::lead_bytes(cap),
        };
        seed.by_spread = (0..avail.len()).map(|i| seed.key(i, avail)).collect();
        seed
    }

    /// Piece `i`'s offer rank.
    fn key(&self, i: u32, avail: &Availability) -> SpreadKey {
        self.key_with(i, avail.holders(i), avail)
    }

    /// Piece `i`'s offer rank were it held by `holders` peers. Among
    /// pieces spread alike, the first and the last go first: every player
    /// needs them before anything else (the first byte; tags and seek
    /// tables), and a player that does not say it streams still gets them
    /// early from a super-seed.
    fn key_with(&self, i: u32, holders: u32, avail: &Availability) -> SpreadKey {
        let u = i as usize;
        let ends = i == 0 || u + 1 == self.offers.len();
        let rank = if ends {
            0
        } else {
            avail.rank(i).saturating_add(1)
        };
        (holders + self.offers[u], self.pending[u], rank, i)
    }

    /// A peer connected at `now` (to a torrent of `pieces` pieces), while
    /// `leechers` other peers want our pieces: it is super-seeded unless
    /// it is alone in `auto` mode.
    pub(super) fn add_peer(&mut self, peer: PeerKey, pieces: usize, leechers: usize, now: Instant) {
        let full = self.auto && leechers == 0 && now >= self.lone_from;
        self.peers.insert(
            peer,
            Offered {
                announced: vec![full; pieces],
                on_offer: 0,
                window: FIRST_WINDOW,
                unchoked: false,
                unchoked_at: None,
                taken_since_unchoke: 0,
                last_have_at: now,
                full,
                offered_bytes: 0,
                unreported: 0,
                all_taken_at: None,
                asked: vec![false; pieces],
                unasked: 0,
            },
        );
    }

    /// The peer left: its offers count no more.
    pub(super) fn remove_peer(&mut self, peer: PeerKey, have: &[bool], avail: &Availability) {
        self.count_offers(peer, have, false, avail);
        self.peers.remove(&peer);
    }

    /// Piece `i` had `before` holders and now has what `avail` says.
    pub(super) fn holders_changed(&mut self, i: u32, before: u32, avail: &Availability) {
        self.by_spread.remove(&self.key_with(i, before, avail));
        self.by_spread.insert(self.key(i, avail));
    }

    /// Adds (`add`) or removes the peer's outstanding offers (announced,
    /// not in `have`) from the per-piece counts, around a change of its
    /// have-set; adding also sets the peer's own count of them.
    pub(super) fn count_offers(
        &mut self,
        peer: PeerKey,
        have: &[bool],
        add: bool,
        avail: &Availability,
    ) {
        let Some(p) = self.peers.get_mut(&peer).filter(|p| !p.full) else {
            return;
        };
        let unchoked = u32::from(p.unchoked);
        let held: Vec<u32> = (p.announced.iter().zip(have))
            .enumerate()
            .filter(|(_, (a, h))| **a && !**h)
            .map(|(i, _)| i as u32)
            .collect();
        if add {
            let len = |i: &u32| u64::from(self.geometry.piece_len(*i));
            p.on_offer = held.len() as u32;
            p.offered_bytes = held.iter().map(len).sum();
            p.unasked = held
                .iter()
                .filter(|&&i| !p.asked[i as usize])
                .map(len)
                .sum();
        }
        for i in held {
            self.by_spread.remove(&self.key(i, avail));
            let u = i as usize;
            if add {
                self.pending[u] += 1;
                self.offers[u] += unchoked;
            } else {
                self.pending[u] -= 1;
                self.offers[u] -= unchoked;
            }
            self.by_spread.insert(self.key(i, avail));
        }
    }

    /// We choked (or unchoked) the peer at `now`: its offers move between
    /// the counts.
    pub(super) fn set_unchoked(
        &mut self,
        now: Instant,
        peer: PeerKey,
        unchoked: bool,
        have: &[bool],
        avail: &Availability,
    ) {
        self.count_offers(peer, have, false, avail);
        if let Some(p) = self.peers.get_mut(&peer) {
            p.unchoked = unchoked;
            if unchoked {
                p.unchoked_at = Some(now);
                p.taken_since_unchoke = 0;
            }
        }
        self.count_offers(peer, have, true, avail);
    }

    /// We sent `bytes` of piece data to the peer at `now`.
    pub(super) fn uploaded(&mut self, now: Instant, peer: PeerKey, bytes: u64) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.taken_since_unchoke += bytes;
            p.unreported += bytes;
            if !p.full && p.offered_bytes > 0 && p.unreported >= p.offered_bytes {
                p.all_taken_at.get_or_insert(now);
            }
        }
    }

    /// The peer announced `piece` at `now` (`view` already has it): if we
    /// offered it, the offer was taken.
    pub(super) fn handle_have(
        &mut self,
        now: Instant,
        peer: PeerKey,
        piece: u32,
        view: &Peer,
        avail: &Availability,
    ) {
        let most = self.max_window();
        let piece_len = u64::from(self.geometry.piece_len(piece));
        let Some(p) = self.peers.get_mut(&peer).filter(|p| !p.full) else {
            return;
        };
        p.last_have_at = now;
        if !p.announced[piece as usize] {
            return;
        }
        p.on_offer -= 1;
        p.offered_bytes = p.offered_bytes.saturating_sub(piece_len);
        if !p.asked[piece as usize] {
            p.unasked -= piece_len;
        }
        p.unreported = p.unreported.saturating_sub(piece_len);
        p.all_taken_at = None;
        let unchoked = p.unchoked;
        if unchoked && !view.up.measured {
            p.window = (p.window + 1).min(most);
        }
        self.by_spread.remove(&self.key(piece, avail));
        self.pending[piece as usize] -= 1;
        self.offers[piece as usize] -= u32::from(unchoked);
        self.by_spread.insert(self.key(piece, avail));
    }
}
