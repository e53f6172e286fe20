//! The node's side of binding swarm entries to their source: its own
//! announces and removals are for its own IP address only, and swarm
//! entries relayed to this replica are checked with their source
//! (see [`probes`](crate::chord::probes)): screened against the peers
//! found gone, the third-party ones new here probed once taken, and the
//! driver's verdicts applied.
//!
//! An entry is the relaying node's own when its peer is at the node's IP
//! address: it was announced directly (announces are bound to their
//! source), so it is never probed, and it lifts a denial.

use std::net::SocketAddr;
use std::time::Instant;

use super::{Node, OpId};
use crate::chord::message::{Message, Role};
use crate::chord::probes::Verdict;
use crate::chord::records::{same_ip, RecordKind, SwarmList};
use crate::chord::ChordError;
use crate::id::Id;
use crate::wire::chord::message::WireRecord;

/// Third-party announces relayed for one key and not held here before:
/// to probe once merged.
pub(super) type Fresh = Vec<SocketAddr>;

impl Node {
    /// Announce `peer` for `key`; done once W replicas stored it. `peer`
    /// must be at this node's own IP address: replicas store a node's
    /// announces only for the address it writes from.
    pub fn announce(&mut self, now: Instant, key: Id, peer: SocketAddr, role: Role) -> OpId {
        let ttl = self.config.announce_ttl;
        self.put_own(now, key, peer, SwarmList::announce(peer, role, now, ttl))
    }

    /// Remove `peer` from `key` (a tombstone that outlives the announce);
    /// `peer` must be at this node's own IP address, as for an announce.
    pub fn remove(&mut self, now: Instant, key: Id, peer: SocketAddr) -> OpId {
        let ttl = self.config.announce_ttl;
        self.put_own(now, key, peer, SwarmList::removal(peer, now, ttl))
    }

    /// Write `list`, about `peer`, if `peer` is at our own address.
    fn put_own(&mut self, now: Instant, key: Id, peer: SocketAddr, list: SwarmList) -> OpId {
        let source_ip = self.me.addr.ip();
        if !same_ip(peer.ip(), source_ip) {
            let op = self.ops.new_op();
            let err = ChordError::NotYourAddress { peer, source_ip };
            self.rpcs.done(op, Err(err));
            return op;
        }
        self.store.lift(key, peer); // its own word
        self.put(now, key, list.into())
    }

    /// What the probe of `peer` for `info_hash` (an [`Output::Probe`])
    /// found. `Gone` drops its entry here and refuses relays of it until
    /// the entry would have expired; `Serving` and `Silent` keep it.
    /// Verdicts on probes this node did not ask (or gave up on) are
    /// ignored.
    ///
    /// [`Output::Probe`]: crate::chord::node::Output::Probe
    pub fn on_probe(&mut self, now: Instant, peer: SocketAddr, info_hash: Id, verdict: Verdict) {
        if self.probes.verdict(now, peer, info_hash, verdict) {
            let until = now + self.config.announce_ttl;
            let max = self.config.max_probe_verdicts;
            self.store
                .deny(info_hash, SwarmList::KIND, peer, until, max);
        }
    }

    /// Probes asked and not answered yet (tests and diagnostics).
    pub fn probes_in_flight(&self) -> usize {
        self.probes.outstanding()
    }

    /// Screen the swarm entries `from` relays for `key` in `value`: those
    /// at `from`'s own IP lift their peers' denials (a node speaks for its
    /// own address); the third-party announces not held here yet are
    /// returned, to probe once merged. (Denied peers are left out by the
    /// store's merge.)
    pub(super) fn screen(&mut self, from: SocketAddr, key: Id, value: &WireRecord) -> Fresh {
        let WireRecord::Swarm(entries) = value else {
            return Fresh::new();
        };
        let mut fresh = Fresh::new();
        for e in entries.iter().filter(|e| !e.removed && e.ttl_ms > 0) {
            if same_ip(e.peer.ip(), from.ip()) {
                self.store.lift(key, e.peer);
            } else if !self.holds_announce(key, e.peer) {
                fresh.push(e.peer);
            }
        }
        fresh
    }

    /// [`Node::screen`] of every record of a hand-off page.
    pub(super) fn screen_page(&mut self, from: SocketAddr, msg: &Message) -> Vec<(Id, Fresh)> {
        let Message::HandoffData { keys, .. } = msg else {
            return Vec::new();
        };
        keys.iter()
            .map(|(key, value)| (*key, self.screen(from, *key, value)))
            .filter(|(_, fresh)| !fresh.is_empty())
            .collect()
    }

    /// Probe those of `fresh` that were taken into `key`'s list, within
    /// the probes' bounds.
    pub(super) fn probe_fresh(&mut self, now: Instant, key: Id, fresh: Fresh) {
        for peer in fresh {
            if self.holds_announce(key, peer) && self.probes.want(now, peer, key) {
                self.rpcs.probe(peer, key);
            }
        }
    }

    /// True if `key`'s list here holds an announce (not a removal) of `peer`.
    fn holds_announce(&self, key: Id, peer: SocketAddr) -> bool {
        self.store
            .get(key, SwarmList::KIND)
            .and_then(|r| <&SwarmList>::try_from(r).ok())
            .and_then(|list| list.get(&peer))
            .is_some_and(|e| !e.removed)
    }
}

#[cfg(test)]
mod tests;
