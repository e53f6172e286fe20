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

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Instant;

use super::{Node, OpId};
use crate::chord::message::{Message, Role};
use crate::chord::probes::Verdict;
use crate::chord::records::{same_ip, RecordKind, SwarmList};
use crate::chord::ChordError;
use crate::id::Id;
use crate::wire::chord::message::{WireEntry, WireRecord};

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
            self.store.drop_peer(info_hash, SwarmList::KIND, peer);
        }
    }

    /// Probes asked and not answered yet (tests and diagnostics).
    pub fn probes_in_flight(&self) -> usize {
        self.probes.outstanding()
    }

    /// Screen `value`, relayed by `from` for `key`: a swarm list loses the
    /// announces of peers found gone (unless `from` is at the peer's own
    /// IP, which lifts the denial). Also returns the third-party announces
    /// not held here yet. Other kinds pass as they are.
    pub(super) fn screen<'a>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        key: Id,
        value: &'a WireRecord,
    ) -> (Cow<'a, WireRecord>, Fresh) {
        let WireRecord::Swarm(entries) = value else {
            return (Cow::Borrowed(value), Fresh::new());
        };
        let mut fresh = Fresh::new();
        let mut denied = false;
        for e in entries.iter().filter(|e| !e.removed && e.ttl_ms > 0) {
            if same_ip(e.peer.ip(), from.ip()) {
                self.probes.lift(e.peer, key);
            } else if self.probes.denied(now, e.peer, key) {
                denied = true;
            } else if !self.holds_announce(key, e.peer) {
                fresh.push(e.peer);
            }
        }
        if !denied {
            return (Cow::Borrowed(value), fresh);
        }
        let kept: Vec<WireEntry> = entries
            .iter()
            .filter(|e| {
                e.removed
                    || same_ip(e.peer.ip(), from.ip())
                    || !self.probes.denied(now, e.peer, key)
            })
            .cloned()
            .collect();
        (Cow::Owned(WireRecord::Swarm(kept)), fresh)
    }

    /// [`Node::screen`] of every record of a hand-off page, in place.
    pub(super) fn screen_page(
        &mut self,
        now: Instant,
        from: SocketAddr,
        msg: Message,
    ) -> (Message, Vec<(Id, Fresh)>) {
        let Message::HandoffData { req, keys, next } = msg else {
            return (msg, Vec::new());
        };
        let mut all = Vec::new();
        let mut screened = Vec::with_capacity(keys.len());
        for (key, value) in keys {
            let (screened_value, fresh) = self.screen(now, from, key, &value);
            let replaced = match screened_value {
                Cow::Owned(v) => Some(v),
                Cow::Borrowed(_) => None,
            };
            let value = replaced.unwrap_or(value);
            if !fresh.is_empty() {
                all.push((key, fresh));
            }
            screened.push((key, value));
        }
        let msg = Message::HandoffData {
            req,
            keys: screened,
            next,
        };
        (msg, all)
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
