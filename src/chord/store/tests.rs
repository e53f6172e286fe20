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

#[test]
fn a_denied_peer_is_dropped_with_its_quota_and_no_merge_takes_it_back() {
    let base = Instant::now();
    let mut store = Store::new(limits(10, 10));
    let (key, other) = (Id::hash(b"song"), Id::hash(b"other song"));
    assert!(store.merge(key, &announce(1, base, 30)));
    assert!(store.merge(key, &announce(2, base, 30)));
    assert!(store.merge(other, &announce(1, base, 30)));
    let until = base + Duration::from_secs(60);
    store.deny(key, SwarmList::KIND, addr(1), until, 10);
    assert!(swarm(&store, key).get(&addr(1)).is_none());
    assert_eq!(store.items_of(addr(1).ip()), 2, "one released, two left");
    // Hand-off, anti-entropy, read repair: every merge passes here.
    assert!(
        store.merge(key, &announce(1, base, 50)),
        "the rest is taken"
    );
    assert!(swarm(&store, key).get(&addr(1)).is_none());
    assert!(
        swarm(&store, other).get(&addr(1)).is_some(),
        "only at that key"
    );
    // The denial runs out...
    store.expire(until);
    assert!(store.merge(key, &announce(1, base, 90)));
    assert!(swarm(&store, key).get(&addr(1)).is_some());
    // ...or is lifted by the peer's own word.
    store.deny(
        key,
        SwarmList::KIND,
        addr(2),
        until + Duration::from_secs(60),
        10,
    );
    store.lift(key, addr(2));
    assert!(store.merge(key, &announce(2, base, 90)));
    assert!(swarm(&store, key).get(&addr(2)).is_some());
}

#[test]
fn denials_are_bounded() {
    let base = Instant::now();
    let mut store = Store::new(limits(10, 10));
    let key = Id::hash(b"song");
    for port in 1..=3u16 {
        let until = base + Duration::from_secs(u64::from(port));
        store.deny(key, SwarmList::KIND, addr(port), until, 2);
    }
    assert_eq!(store.denied.len(), 2);
    assert!(
        !store.denied.contains_key(&(key, addr(1))),
        "the soonest went"
    );
}
