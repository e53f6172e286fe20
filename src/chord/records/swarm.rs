//! Swarm lists: for each info-hash, who shares it, as a state-based CRDT.
//!
//! A list maps peer address → [`Entry`] (expiry on the holding replica's own
//! clock, role, and whether it is a removal). Entries are totally ordered by
//! (expiry, removed, role) and merge keeps the greater one, so merging is
//! commutative, associative and idempotent: read repair, hand-off and
//! anti-entropy can run in any order and never lose an announce.
//!
//! A removal is a tombstone that expires like an announce. It lives
//! [`TOMBSTONE_MARGIN`] longer than an announce made at the same moment, so
//! it beats every announce made up to that long before it, even when the
//! two reach a replica by paths of different speed (the time left travels in
//! whole milliseconds, and the removal's lookup may be the slower one). The
//! cost: an announce made within the margin *after* a removal of the same
//! peer loses too, until the peer's next re-announce. Once both have expired
//! both are dropped.
//!
//! On the wire an expiry travels as the time left, and the receiver adds it to
//! its own clock: replicas never compare clocks.
//!
//! Caps: at most `max_items_per_key` peers per list, and at most
//! `max_items_per_source` entries per announced IP address over all lists;
//! a received entry lives at most the announce TTL (`max_ttl`).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::chord::records::{Limits, Quota, RecordKind};
use crate::wire::chord::message::{Kind, Role, WireEntry, WireRecord, SWARM_LIST};

/// True if `a` and `b` are the same address (an IPv4 address and its
/// IPv6-mapped form are the same).
pub fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// How much longer a removal lives than an announce made at the same moment.
pub const TOMBSTONE_MARGIN: Duration = Duration::from_secs(1);

/// One peer's state in one swarm list, on the holding replica's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// When this entry stops counting (announce) or stops suppressing (removal).
    pub expiry: Instant,
    /// Seeder or leecher, as last announced.
    pub role: Role,
    /// A tombstone: the peer left; hides older announces until it expires.
    pub removed: bool,
}

impl Entry {
    /// True if `self` wins a merge against `other` (a total order).
    fn beats(&self, other: &Entry) -> bool {
        (self.expiry, self.removed, self.role) > (other.expiry, other.removed, other.role)
    }
}

/// The swarm list of one info-hash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SwarmList {
    /// Peer address → its winning entry. BTreeMap: deterministic order.
    entries: BTreeMap<SocketAddr, Entry>,
}

impl SwarmList {
    /// A list holding one entry.
    pub fn single(peer: SocketAddr, entry: Entry) -> SwarmList {
        SwarmList {
            entries: BTreeMap::from([(peer, entry)]),
        }
    }

    /// The announce of `peer` as `role`, made at `now`, living `ttl`.
    pub fn announce(peer: SocketAddr, role: Role, now: Instant, ttl: Duration) -> SwarmList {
        let entry = Entry {
            expiry: now + ttl,
            role,
            removed: false,
        };
        SwarmList::single(peer, entry)
    }

    /// The removal of `peer` made at `now`, where announces live `ttl`: a
    /// tombstone that outlives them by [`TOMBSTONE_MARGIN`].
    pub fn removal(peer: SocketAddr, now: Instant, ttl: Duration) -> SwarmList {
        let entry = Entry {
            expiry: now + ttl + TOMBSTONE_MARGIN,
            role: Role::Leecher,
            removed: true,
        };
        SwarmList::single(peer, entry)
    }

    /// Number of entries, tombstones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if there are no entries at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry of `peer`, if any.
    pub fn get(&self, peer: &SocketAddr) -> Option<&Entry> {
        self.entries.get(peer)
    }

    /// All entries, in address order.
    pub fn iter(&self) -> impl Iterator<Item = (&SocketAddr, &Entry)> {
        self.entries.iter()
    }

    /// Merge one entry; returns true if it was new or won.
    pub fn merge_entry(&mut self, peer: SocketAddr, entry: Entry) -> bool {
        match self.entries.get_mut(&peer) {
            Some(old) if !entry.beats(old) => false,
            Some(old) => {
                *old = entry;
                true
            }
            None => {
                self.entries.insert(peer, entry);
                true
            }
        }
    }

    /// The entry that expires first among those whose peer satisfies `f`.
    fn soonest(&self, f: impl Fn(&SocketAddr) -> bool) -> Option<(SocketAddr, Entry)> {
        self.entries
            .iter()
            .filter(|(p, _)| f(p))
            .min_by_key(|(_, e)| e.expiry)
            .map(|(p, e)| (*p, *e))
    }

    /// The peers currently sharing: unexpired and not removed.
    pub fn live(&self, now: Instant) -> Vec<(SocketAddr, Role)> {
        self.entries
            .iter()
            .filter(|(_, e)| !e.removed && e.expiry > now)
            .map(|(p, e)| (*p, e.role))
            .collect()
    }

    /// The entries as they travel, with time left measured at `now`.
    pub fn entries_at(&self, now: Instant) -> Vec<WireEntry> {
        self.entries
            .iter()
            .filter(|(_, e)| e.expiry > now)
            .map(|(peer, e)| WireEntry {
                peer: *peer,
                ttl_ms: e.expiry.duration_since(now).as_millis() as u64,
                role: e.role,
                removed: e.removed,
            })
            .collect()
    }

    /// Entries received at `now`; time left is capped at `max_ttl` (plus
    /// [`TOMBSTONE_MARGIN`] for a removal) so a lying node cannot plant an
    /// entry that never expires.
    pub fn from_entries(now: Instant, entries: &[WireEntry], max_ttl: Duration) -> SwarmList {
        let mut list = SwarmList::default();
        for w in entries.iter().filter(|w| w.ttl_ms > 0) {
            let cap = if w.removed {
                max_ttl + TOMBSTONE_MARGIN
            } else {
                max_ttl
            };
            let ttl = Duration::from_millis(w.ttl_ms).min(cap);
            let entry = Entry {
                expiry: now + ttl,
                role: w.role,
                removed: w.removed,
            };
            list.merge_entry(w.peer, entry);
        }
        list
    }
}

impl RecordKind for SwarmList {
    const KIND: Kind = SWARM_LIST;

    fn merge(&mut self, other: &SwarmList) {
        for (peer, entry) in &other.entries {
            self.merge_entry(*peer, *entry);
        }
    }

    /// A new peer takes room in this list and in its address's quota; an
    /// update of a known one is always taken. A full list keeps the
    /// freshest: it drops the entry that expires first to take a newcomer
    /// that expires later, but an address at its share of the list
    /// (`max_items_per_key_per_source`) can only replace its own entries.
    fn merge_capped(&mut self, incoming: &SwarmList, limits: &Limits, quota: &mut Quota) -> bool {
        let mut all_taken = true;
        for (peer, entry) in incoming.iter() {
            if self.get(peer).is_some() {
                self.merge_entry(*peer, *entry);
                continue;
            }
            let ip = peer.ip();
            let share = self.entries.keys().filter(|p| same_ip(p.ip(), ip)).count();
            let full = self.len() >= limits.max_items_per_key;
            let victim = if share >= limits.max_items_per_key_per_source {
                self.soonest(|p| same_ip(p.ip(), ip))
            } else if full {
                self.soonest(|_| true)
            } else {
                None
            };
            let must_go = full || share >= limits.max_items_per_key_per_source;
            let own_victim = victim.is_some_and(|(v, _)| same_ip(v.ip(), ip));
            if !own_victim && quota.held(ip) >= limits.max_items_per_source {
                all_taken = false;
                continue;
            }
            let room = match victim {
                Some((v, e)) if must_go && e.expiry < entry.expiry => Some(v),
                _ if must_go => {
                    all_taken = false;
                    continue;
                }
                _ => None,
            };
            // The victim's quota is released before the newcomer is charged:
            // a source replacing its own entry at its cap is no newcomer.
            if let Some(v) = room {
                self.entries.remove(&v);
                quota.release(v.ip());
            }
            if !quota.try_charge(ip, limits.max_items_per_source) {
                all_taken = false;
                continue;
            }
            self.entries.insert(*peer, *entry);
        }
        all_taken
    }

    fn soonest_of(&self, source: IpAddr) -> Option<Instant> {
        self.soonest(|p| same_ip(p.ip(), source)).map(|(_, e)| e.expiry)
    }

    fn evict_soonest_of(&mut self, source: IpAddr, quota: &mut Quota) {
        if let Some((peer, _)) = self.soonest(|p| same_ip(p.ip(), source)) {
            self.entries.remove(&peer);
            quota.release(peer.ip());
        }
    }

    /// A node announces and removes only peers at its own IP address.
    fn keep_own(&mut self, source: IpAddr) -> bool {
        let before = self.entries.len();
        self.entries.retain(|peer, _| same_ip(peer.ip(), source));
        self.entries.len() == before
    }

    fn drop_peer(&mut self, peer: SocketAddr, quota: &mut Quota) -> bool {
        let held = self.entries.remove(&peer).is_some();
        if held {
            quota.release(peer.ip());
        }
        held
    }

    /// Drops every entry (announce or tombstone) whose expiry has passed.
    fn expire(&mut self, now: Instant, quota: &mut Quota) {
        self.entries.retain(|peer, e| {
            let live = e.expiry > now;
            if !live {
                quota.release(peer.ip());
            }
            live
        });
    }

    fn release(&self, quota: &mut Quota) {
        for peer in self.entries.keys() {
            quota.release(peer.ip());
        }
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True if `self` lacks something `other` has: a missing peer, or an
    /// entry that loses to `other`'s by more than `slack` (transfer delays
    /// shift expiries a little, which is not worth a repair).
    fn version(&self, now: Instant) -> super::Version {
        let mut v = super::VersionOf::new(now, 0);
        for (peer, e) in &self.entries {
            v.bytes(peer.to_string().as_bytes()).bytes(&[e.removed as u8, e.role as u8]);
            v.item(Some(e.expiry));
        }
        v.done()
    }

    fn is_behind(&self, other: &SwarmList, slack: Duration) -> bool {
        other
            .entries
            .iter()
            .any(|(peer, theirs)| match self.entries.get(peer) {
                None => true,
                Some(mine) => {
                    theirs.beats(mine)
                        && ((theirs.removed, theirs.role) != (mine.removed, mine.role)
                            || theirs.expiry > mine.expiry + slack)
                }
            })
    }

    fn to_wire(&self, now: Instant) -> WireRecord {
        WireRecord::Swarm(self.entries_at(now))
    }

    fn from_wire(now: Instant, wire: &WireRecord, limits: &Limits) -> Option<SwarmList> {
        match wire {
            WireRecord::Swarm(entries) => Some(SwarmList::from_entries(now, entries, limits.max_ttl)),
            WireRecord::Tagged { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests;
