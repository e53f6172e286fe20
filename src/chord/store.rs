//! The records one replica holds, of every kind, within its caps.
//!
//! A record is addressed by its key and its kind: kinds never share a record,
//! so a value of one kind cannot squat the key of another. Records are kept
//! in key order (hand-off pages, deterministic simulations). The store knows
//! nothing of kinds beyond [`Record`]'s methods.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

use crate::chord::records::{Limits, Quota, Record};
use crate::id::Id;
use crate::wire::chord::message::{Kind, WireRecord};

/// Every record held here.
#[derive(Debug)]
pub(crate) struct Store {
    /// (key, kind) → record; never an empty record.
    records: BTreeMap<(Id, Kind), Record>,
    /// Items held per source over all records, for the per-source cap.
    quota: Quota,
    /// The caps applied on every merge.
    limits: Limits,
    /// False while a joiner is still receiving its key range: until then
    /// its answers to reads must not count.
    ready: bool,
}

impl Store {
    /// An empty store with the given caps, not ready.
    pub(crate) fn new(limits: Limits) -> Store {
        Store {
            records: BTreeMap::new(),
            quota: Quota::new(limits.max_items),
            limits,
            ready: false,
        }
    }

    /// True once this store holds its whole key range.
    pub(crate) fn is_ready(&self) -> bool {
        self.ready
    }

    /// Mark the key range complete (or, on joining, not yet).
    pub(crate) fn set_ready(&mut self, ready: bool) {
        self.ready = ready;
    }

    /// Items held in all (for the caps).
    pub(crate) fn items(&self) -> usize {
        self.quota.total()
    }

    /// Items held for `source` (for the caps).
    pub(crate) fn items_of(&self, source: IpAddr) -> usize {
        self.quota.held(source)
    }

    /// Number of records held.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// The record of `kind` at `key`.
    pub(crate) fn get(&self, key: Id, kind: Kind) -> Option<&Record> {
        self.records.get(&(key, kind))
    }

    /// Every record at `key`, by kind.
    pub(crate) fn at(&self, key: Id) -> impl Iterator<Item = &Record> {
        self.records
            .range((key, Kind::MIN)..=(key, Kind::MAX))
            .map(|(_, r)| r)
    }

    /// True if a record of any kind is held at `key`.
    pub(crate) fn holds(&self, key: Id) -> bool {
        self.at(key).next().is_some()
    }

    /// Every record held, with its key, in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Id, &Record)> {
        self.records.iter().map(|(&(key, _), r)| (key, r))
    }

    /// Every key held (once, whatever its kinds), in order.
    pub(crate) fn keys(&self) -> Vec<Id> {
        self.keys_after(None, usize::MAX, |_| true)
    }

    /// Keys after `after` (exclusive) that satisfy `keep`, at most `limit`.
    pub(crate) fn keys_after(
        &self,
        after: Option<Id>,
        limit: usize,
        keep: impl Fn(Id) -> bool,
    ) -> Vec<Id> {
        let mut keys: Vec<Id> = Vec::new();
        for &(key, _) in self.records.keys() {
            if keys.len() == limit && keys.last() != Some(&key) {
                break;
            }
            if after.is_none_or(|a| key > a) && keep(key) && keys.last() != Some(&key) {
                keys.push(key);
            }
        }
        keys
    }

    /// Parse a record received at `now` within this store's caps; None if
    /// its kind is unknown here, it does not parse, or it is not valid under
    /// `key`.
    pub(crate) fn decode(&self, now: Instant, key: Id, wire: &WireRecord) -> Option<Record> {
        Record::from_wire(now, wire, &self.limits).filter(|r| r.validate(&key))
    }

    /// Merge `incoming` into the record of its kind at `key`, within the
    /// caps. Returns false if the record is invalid under `key` or anything
    /// was left out.
    pub(crate) fn merge(&mut self, key: Id, incoming: &Record) -> bool {
        if !incoming.validate(&key) {
            return false;
        }
        let mut taken = self.merge_once(key, incoming);
        // Full: make room by the rule of [`Quota`], one item at a time.
        while let Some(wanting) = self.quota.take_wanted() {
            if !self.evict_for(wanting) {
                break;
            }
            taken = self.merge_once(key, incoming);
        }
        taken
    }

    /// Drop the soonest-expiring item of the heaviest source, if it holds
    /// more than `wanting`; false if none may give way.
    fn evict_for(&mut self, wanting: IpAddr) -> bool {
        let Some(heaviest) = self.quota.heaviest_above(wanting) else {
            return false;
        };
        let soonest = self
            .records
            .iter()
            .filter_map(|(at, r)| r.soonest_of(heaviest).map(|t| (t, *at)))
            .min();
        let Some((_, at)) = soonest else {
            return false;
        };
        if let Some(record) = self.records.get_mut(&at) {
            record.evict_soonest_of(heaviest, &mut self.quota);
            if record.is_empty() {
                self.records.remove(&at);
            }
        }
        true
    }

    /// [`Store::merge`] without making room.
    fn merge_once(&mut self, key: Id, incoming: &Record) -> bool {
        let address = (key, incoming.kind());
        let Some(record) = self.records.get_mut(&address) else {
            let Some(mut record) = Record::empty(incoming.kind()) else {
                return false;
            };
            let taken = record.merge_capped(incoming, &self.limits, &mut self.quota);
            if !record.is_empty() {
                self.records.insert(address, record);
            }
            return taken;
        };
        let taken = record.merge_capped(incoming, &self.limits, &mut self.quota);
        if record.is_empty() {
            self.records.remove(&address);
        }
        taken
    }

    /// Parse and merge a record received at `now` (see [`Store::decode`]).
    /// With `bound`, the record was written by the node at that address for
    /// itself, not relayed: only what that address may write is taken (see
    /// [`Record::keep_own`]). Returns false if anything was left out.
    pub(crate) fn merge_wire(
        &mut self,
        now: Instant,
        key: Id,
        wire: &WireRecord,
        bound: Option<IpAddr>,
    ) -> bool {
        let Some(mut record) = self.decode(now, key, wire) else {
            return false;
        };
        let own = bound.is_none_or(|ip| record.keep_own(ip));
        if record.is_empty() {
            return false;
        }
        self.merge(key, &record) && own
    }

    /// The answer to a read of `kind` at `key` at `now`: the record held or
    /// an empty one, and whether it counts (`ready`, and a kind known here).
    pub(crate) fn fetch(
        &self,
        now: Instant,
        key: Id,
        kind: Kind,
        ready: bool,
    ) -> (bool, WireRecord) {
        let Some(empty) = Record::empty(kind) else {
            let body = Vec::new();
            return (false, WireRecord::Tagged { kind, body });
        };
        match (ready, self.get(key, kind)) {
            (true, Some(record)) => (true, record.to_wire(now)),
            _ => (ready, empty.to_wire(now)),
        }
    }

    /// Drop expired items and emptied records.
    pub(crate) fn expire(&mut self, now: Instant) {
        let quota = &mut self.quota;
        self.records.retain(|_, record| {
            record.expire(now, quota);
            !record.is_empty()
        });
    }

    /// Forget the record of `kind` at `key` (its hand-off to the rightful
    /// replicas was acknowledged).
    pub(crate) fn remove(&mut self, key: Id, kind: Kind) {
        if let Some(record) = self.records.remove(&(key, kind)) {
            record.release(&mut self.quota);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, SocketAddr};
    use std::time::Duration;

    use super::*;
    use crate::chord::records::{Entry, GrowSet, RecordKind, SwarmList};
    use crate::chord::Role;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn announce(port: u16, base: Instant, secs: u64) -> Record {
        let entry = Entry {
            expiry: base + Duration::from_secs(secs),
            role: Role::Leecher,
            removed: false,
        };
        SwarmList::single(addr(port), entry).into()
    }

    fn limits(per_key: usize, per_source: usize) -> Limits {
        Limits {
            max_items_per_key: per_key,
            max_items_per_source: per_source,
            max_items_per_key_per_source: per_source,
            max_items: 0,
            max_ttl: Duration::from_secs(60),
        }
    }

    fn swarm(store: &Store, key: Id) -> &SwarmList {
        let record = store.get(key, SwarmList::KIND).expect("held");
        <&SwarmList>::try_from(record).expect("a swarm list")
    }

    #[test]
    fn store_enforces_per_key_and_per_source_limits() {
        let base = Instant::now();
        let mut store = Store::new(limits(2, 3));
        let k1 = Id::hash(b"one");
        let k2 = Id::hash(b"two");
        for port in 1..=3 {
            let ok = store.merge(k1, &announce(port, base, 10));
            assert_eq!(ok, port <= 2, "port {port}");
        }
        assert_eq!(swarm(&store, k1).len(), 2);
        assert!(store.merge(k2, &announce(9, base, 10)));
        // 127.0.0.1 now holds three entries: a fourth is refused anywhere.
        assert!(!store.merge(k2, &announce(10, base, 10)));
        // Updating an existing entry is always allowed.
        assert!(store.merge(k1, &announce(1, base, 20)));
        store.expire(base + Duration::from_secs(15));
        assert_eq!(store.keys(), vec![k1]);
        assert!(store.merge(k2, &announce(10, base, 30)));
    }

    #[test]
    fn kinds_never_share_a_record() {
        let base = Instant::now();
        let mut store = Store::new(limits(10, 10));
        let key = Id::hash(b"key");
        assert!(store.merge(key, &announce(1, base, 10)));
        assert!(store.merge(key, &GrowSet::of([5]).into()));
        assert_eq!(store.len(), 2);
        assert_eq!(store.keys(), vec![key], "one key, two records");
        assert_eq!(store.at(key).count(), 2);
        let set = store.get(key, GrowSet::KIND).expect("held");
        assert_eq!(set, &Record::from(GrowSet::of([5])));
        // Numbers never expire; the announce does, and only it goes.
        store.expire(base + Duration::from_secs(11));
        assert!(store.get(key, SwarmList::KIND).is_none());
        assert!(store.holds(key));
        store.remove(key, GrowSet::KIND);
        assert!(!store.holds(key));
    }

    #[test]
    fn invalid_and_unknown_records_are_refused() {
        let now = Instant::now();
        let mut store = Store::new(limits(10, 10));
        let key = Id::hash(b"key");
        assert!(!store.merge(key, &GrowSet::of([1 << 40]).into()));
        let unknown = WireRecord::Tagged {
            kind: 99,
            body: vec![1, 2, 3],
        };
        assert!(!store.merge_wire(now, key, &unknown, None));
        assert_eq!(store.decode(now, key, &unknown), None);
        assert_eq!(store.len(), 0);
        let valid = GrowSet::of([7]).to_wire(now);
        assert!(store.merge_wire(now, key, &valid, None));
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_fetch_counts_only_from_a_ready_replica_of_a_known_kind() {
        let base = Instant::now();
        let mut store = Store::new(limits(10, 10));
        let key = Id::hash(b"key");
        store.merge(key, &announce(1, base, 10));
        let held = announce(1, base, 10).to_wire(base);
        assert_eq!(store.fetch(base, key, SwarmList::KIND, true), (true, held));
        let empty = WireRecord::Swarm(vec![]);
        assert_eq!(
            store.fetch(base, key, SwarmList::KIND, false),
            (false, empty)
        );
        let (ready, value) = store.fetch(base, key, GrowSet::KIND, true);
        assert_eq!((ready, value), (true, GrowSet::default().to_wire(base)));
        let (ready, _) = store.fetch(base, key, 99, true);
        assert!(!ready, "a kind it does not know: its answer must not count");
    }

    #[test]
    fn pages_hold_whole_keys() {
        let base = Instant::now();
        let mut store = Store::new(limits(10, 10));
        let mut keys: Vec<Id> = (0..4u8).map(|k| Id::hash(&[k])).collect();
        keys.sort();
        for k in &keys {
            store.merge(*k, &announce(1, base, 10));
        }
        store.merge(keys[1], &GrowSet::of([1]).into());
        assert_eq!(store.keys_after(None, 2, |_| true), keys[..2].to_vec());
        assert_eq!(
            store.keys_after(Some(keys[1]), 2, |_| true),
            keys[2..].to_vec()
        );
        let not_second = |k: Id| k != keys[1];
        assert_eq!(
            store.keys_after(None, 2, not_second),
            vec![keys[0], keys[2]]
        );
    }

    fn at_ip(ip: [u8; 4], port: u16, base: Instant, secs: u64) -> Record {
        let entry = Entry {
            expiry: base + Duration::from_secs(secs),
            role: Role::Leecher,
            removed: false,
        };
        SwarmList::single(SocketAddr::from((ip, port)), entry).into()
    }

    #[test]
    fn a_write_bound_to_its_source_keeps_only_that_address() {
        let now = Instant::now();
        let mut store = Store::new(limits(10, 10));
        let key = Id::hash(b"key");
        let spoof = at_ip([10, 0, 0, 5], 1, now, 10).to_wire(now);
        let source = "10.0.0.9".parse().expect("ip");
        assert!(!store.merge_wire(now, key, &spoof, Some(source)));
        assert!(store.get(key, SwarmList::KIND).is_none());
        let own = at_ip([10, 0, 0, 9], 1, now, 10).to_wire(now);
        assert!(store.merge_wire(now, key, &own, Some(source)));
        assert!(store.merge_wire(now, key, &spoof, None), "a relay");
        assert_eq!(swarm(&store, key).len(), 2);
    }

    #[test]
    fn a_full_list_keeps_the_freshest_and_a_source_its_share() {
        let base = Instant::now();
        let mut store = Store::new(Limits {
            max_items_per_key_per_source: 2,
            ..limits(3, 100)
        });
        let key = Id::hash(b"key");
        assert!(store.merge(key, &at_ip([10, 0, 0, 1], 1, base, 10)));
        assert!(store.merge(key, &at_ip([10, 0, 0, 2], 1, base, 20)));
        assert!(store.merge(key, &at_ip([10, 0, 0, 3], 1, base, 30)));
        // Full: a fresher newcomer takes the stalest entry's place...
        assert!(store.merge(key, &at_ip([10, 0, 0, 4], 1, base, 40)));
        let list = swarm(&store, key);
        assert!(list
            .iter()
            .all(|(p, _)| p.ip() != "10.0.0.1".parse::<IpAddr>().unwrap()));
        // ...a staler one is refused...
        assert!(!store.merge(key, &at_ip([10, 0, 0, 5], 1, base, 5)));
        // ...and a source at its share replaces only its own entries.
        assert!(store.merge(key, &at_ip([10, 0, 0, 4], 2, base, 50)));
        assert!(store.merge(key, &at_ip([10, 0, 0, 4], 3, base, 60)));
        let list = swarm(&store, key);
        let fours = list
            .iter()
            .filter(|(p, _)| p.ip() == IpAddr::from([10, 0, 0, 4]));
        assert_eq!(fours.count(), 2);
        assert_eq!(list.len(), 3, "{list:?}");
    }

    #[test]
    fn a_full_replica_makes_room_only_from_the_heaviest_source() {
        let base = Instant::now();
        let mut store = Store::new(Limits {
            max_items: 4,
            ..limits(10, 100)
        });
        let flood = [10, 0, 0, 66];
        for k in 0..4u8 {
            assert!(store.merge(Id::hash(&[k]), &at_ip(flood, 1, base, 10 + k as u64)));
        }
        assert_eq!(store.items(), 4);
        // The flood cannot grow past the cap, not even by its own items.
        assert!(!store.merge(Id::hash(b"more"), &at_ip(flood, 1, base, 99)));
        // Another source gets room: the flood's soonest-expiring item goes.
        assert!(store.merge(Id::hash(b"honest"), &at_ip([10, 0, 0, 1], 1, base, 5)));
        assert_eq!(store.items(), 4);
        assert_eq!(store.items_of(IpAddr::from(flood)), 3);
        assert!(store.get(Id::hash(&[0]), SwarmList::KIND).is_none());
        // Never the honest source's, while it holds fewer than the flood.
        for k in 10..14u8 {
            store.merge(Id::hash(&[k]), &at_ip(flood, 1, base, 99));
        }
        assert_eq!(store.items_of(IpAddr::from([10, 0, 0, 1])), 1);
    }
}
