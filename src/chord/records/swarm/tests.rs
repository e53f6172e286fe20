use super::*;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn entry(base: Instant, secs: u64, removed: bool) -> Entry {
    Entry {
        expiry: base + Duration::from_secs(secs),
        role: Role::Leecher,
        removed,
    }
}

fn lists(base: Instant) -> [SwarmList; 3] {
    let mut a = SwarmList::single(addr(1), entry(base, 10, false));
    a.merge_entry(addr(2), entry(base, 5, false));
    let mut b = SwarmList::single(addr(1), entry(base, 20, true));
    b.merge_entry(addr(3), entry(base, 7, false));
    let mut c = SwarmList::single(addr(2), entry(base, 9, false));
    c.merge_entry(addr(1), entry(base, 20, false));
    [a, b, c]
}

fn merged(x: &SwarmList, y: &SwarmList) -> SwarmList {
    let mut out = x.clone();
    out.merge(y);
    out
}

#[test]
fn merge_is_commutative_associative_idempotent() {
    let base = Instant::now();
    let [a, b, c] = lists(base);
    assert_eq!(merged(&a, &b), merged(&b, &a));
    assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
    assert_eq!(merged(&a, &a), a);
    // The tie at expiry 20 between removal and announce goes to the removal.
    let abc = merged(&merged(&a, &b), &c);
    assert!(abc.get(&addr(1)).unwrap().removed);
    assert_eq!(
        abc.get(&addr(2)).unwrap().expiry,
        base + Duration::from_secs(9)
    );
}

#[test]
fn removal_survives_merge_with_older_announce() {
    let base = Instant::now();
    let announce = SwarmList::single(addr(1), entry(base, 10, false));
    let mut removed = SwarmList::single(addr(1), entry(base, 12, true));
    removed.merge(&announce);
    assert!(removed.live(base).is_empty());
    // A re-announce after the removal wins again.
    removed.merge_entry(addr(1), entry(base, 30, false));
    assert_eq!(removed.live(base), vec![(addr(1), Role::Leecher)]);
}

#[test]
fn expiry_drops_entries_and_wire_carries_time_left() {
    let base = Instant::now();
    let list = SwarmList::single(addr(1), entry(base, 10, false));
    let later = base + Duration::from_secs(4);
    let wire = list.entries_at(later);
    assert_eq!(wire[0].ttl_ms, 6000);
    let there = SwarmList::from_entries(base, &wire, Duration::from_secs(60));
    assert_eq!(
        there.get(&addr(1)).unwrap().expiry,
        base + Duration::from_secs(6)
    );
    assert!(list.live(base + Duration::from_secs(10)).is_empty());
    let capped = SwarmList::from_entries(base, &wire, Duration::from_secs(1));
    assert_eq!(
        capped.get(&addr(1)).unwrap().expiry,
        base + Duration::from_secs(1)
    );
}

/// An announce sent a moment before a removal, whose time left was
/// rounded up while the removal's was rounded down and which reached the
/// replica last (its lookup was the faster one), still loses.
#[test]
fn a_removal_beats_an_announce_sent_just_before_it() {
    let ttl = Duration::from_secs(60);
    let base = Instant::now();
    let announce = WireEntry {
        peer: addr(1),
        ttl_ms: 60_000,
        role: Role::Seeder,
        removed: false,
    };
    let removal = WireEntry {
        ttl_ms: 60_000 - 1 + TOMBSTONE_MARGIN.as_millis() as u64,
        removed: true,
        role: Role::Leecher,
        ..announce
    };
    let mut list = SwarmList::from_entries(base, &[removal], ttl);
    list.merge(&SwarmList::from_entries(
        base + Duration::from_micros(300),
        &[announce],
        ttl,
    ));
    assert!(list.get(&addr(1)).unwrap().removed);
    assert!(list.live(base).is_empty());
}

#[test]
fn behind_detects_missing_and_older_entries() {
    let base = Instant::now();
    let [a, b, _] = lists(base);
    let ab = merged(&a, &b);
    assert!(a.is_behind(&ab, Duration::ZERO));
    assert!(!ab.is_behind(&a, Duration::ZERO));
    let mut late = a.clone();
    late.merge_entry(addr(2), entry(base, 6, false));
    assert!(a.is_behind(&late, Duration::ZERO));
    assert!(!a.is_behind(&late, Duration::from_secs(2)));
}
