//! Lookups when hops and owners die, fall silent or are slow.

use super::*;

#[test]
fn a_dead_owner_hands_the_key_to_the_next_of_its_list() {
    let r = ring(10);
    let (mut l, n, mut rpcs) = node(&r, &r[1..=4], None);
    let (_, msg) = locate(&mut l, &n, &mut rpcs, Instant::now(), r[7].id);
    let found = found(&msg, &[r[7], r[8], r[9]]);
    assert!(answer(&mut l, &n, &mut rpcs, r[4], found).is_none());
    let mut reqs = Vec::new();
    for _ in 0..OWNER_SENDS {
        let (to, ping) = request(&mut rpcs);
        assert_eq!(to, r[7].addr, "silence may be slowness or a lost message");
        reqs.push(req_of(&ping));
        assert!(fail(&mut l, &n, &mut rpcs, r[7], req_of(&ping)).is_none());
    }
    assert!(
        reqs.iter().all(|r| *r == reqs[0]),
        "one request, sent again"
    );
    let (to, ping) = request(&mut rpcs);
    assert_eq!(to, r[8].addr, "the dead owner's successor owns the key");
    let end = answer(&mut l, &n, &mut rpcs, r[8], pong(&ping));
    assert_eq!(found_list(end), (vec![r[8], r[9]], 1));
}

#[test]
fn one_lost_ping_does_not_move_the_key() {
    let r = ring(10);
    let (mut l, n, mut rpcs) = node(&r, &r[1..=4], None);
    let (_, msg) = locate(&mut l, &n, &mut rpcs, Instant::now(), r[7].id);
    let found = found(&msg, &[r[7], r[8], r[9]]);
    assert!(answer(&mut l, &n, &mut rpcs, r[4], found).is_none());
    let (_, ping) = request(&mut rpcs);
    assert!(fail(&mut l, &n, &mut rpcs, r[7], req_of(&ping)).is_none());
    let (to, ping) = request(&mut rpcs);
    assert_eq!(to, r[7].addr);
    let end = answer(&mut l, &n, &mut rpcs, r[7], pong(&ping));
    assert_eq!(found_list(end).0, vec![r[7], r[8], r[9]]);
}

#[test]
fn a_silent_hop_is_suspected_for_the_rest_of_the_lookup() {
    let r = ring(10);
    let (mut l, n, mut rpcs) = node(&r, &r[1..=4], None);
    let (to, msg) = locate(&mut l, &n, &mut rpcs, Instant::now(), r[7].id);
    assert_eq!(to, r[4].addr);
    let closer = Message::Closer {
        req: req_of(&msg),
        nodes: vec![r[6].addr, r[7].addr],
    };
    assert!(answer(&mut l, &n, &mut rpcs, r[4], closer).is_none());
    for _ in 0..HOP_SENDS {
        let (to, msg) = request(&mut rpcs);
        assert_eq!(to, r[7].addr, "the closest first, and again while silent");
        assert!(fail(&mut l, &n, &mut rpcs, r[7], req_of(&msg)).is_none());
    }
    let (to, msg) = request(&mut rpcs);
    assert_eq!(to, r[6].addr, "silent through every send: the next closest");
    // r[6] has not noticed r[7]'s death; the lookup has.
    let found = found(&msg, &[r[7], r[8], r[9]]);
    assert!(answer(&mut l, &n, &mut rpcs, r[6], found).is_none());
    let (to, ping) = request(&mut rpcs);
    assert_eq!(to, r[8].addr, "dead for this lookup: no owner");
    let end = answer(&mut l, &n, &mut rpcs, r[8], pong(&ping));
    assert_eq!(found_list(end), (vec![r[8], r[9]], 3));
}

#[test]
fn after_dead_hops_our_own_tables_give_more_candidates() {
    let r = ring(10);
    let (_, n, mut rpcs) = node(&r, &r[1..=4], None);
    let config = ChordConfig {
        max_hops: 8,
        ..config()
    };
    let mut l = Lookups::new(r[0], &config);
    // Two fingers beyond the list: six known nodes precede the key.
    l.fingers.set(150, Some(r[5]));
    l.fingers.set(151, Some(r[6]));
    let (to, msg) = locate(&mut l, &n, &mut rpcs, Instant::now(), r[9].id);
    assert_eq!(to, r[6].addr);
    let closer = Message::Closer {
        req: req_of(&msg),
        nodes: vec![r[8].addr],
    };
    assert!(answer(&mut l, &n, &mut rpcs, r[6], closer).is_none());
    let mut asked = Vec::new();
    loop {
        let (to, msg) = request(&mut rpcs);
        let dead = r.iter().find(|p| p.addr == to).copied().expect("a node");
        asked.push(dead);
        if dead == r[2] {
            break;
        }
        assert!(refuse(&mut l, &n, &mut rpcs, dead, req_of(&msg)).is_none());
    }
    // The first question came from four of the six; the rest came in as
    // the lookup ran out.
    assert_eq!(asked, vec![r[8], r[5], r[4], r[3], r[2]]);
    assert!(
        !l.fingers().iter().any(|p| *p == r[5]),
        "a refused finger is dropped"
    );
}

#[test]
fn a_slow_owner_is_waited_for_not_skipped() {
    let r = ring(10);
    let (mut l, n, mut rpcs) = node(&r, &r[1..=4], None);
    let t0 = Instant::now();
    let (_, msg) = locate(&mut l, &n, &mut rpcs, t0, r[7].id);
    let found = found(&msg, &[r[7], r[8], r[9]]);
    assert!(answer(&mut l, &n, &mut rpcs, r[4], found).is_none());
    let (_, ping) = request(&mut rpcs);
    let deadline = rpcs.next_deadline().expect("waiting");
    assert!(fail(&mut l, &n, &mut rpcs, r[7], req_of(&ping)).is_none());
    let (to, again) = request(&mut rpcs);
    assert_eq!((to, req_of(&again)), (r[7].addr, req_of(&ping)));
    let longer = rpcs.next_deadline().expect("waiting again");
    let timeout = Duration::from_millis(800);
    assert!(
        deadline - t0 < 2 * timeout && longer - t0 >= 2 * timeout,
        "twice the patience: {:?} then {:?}",
        deadline - t0,
        longer - t0
    );
    // The first ping's answer, late, still counts.
    let end = answer(&mut l, &n, &mut rpcs, r[7], pong(&ping));
    assert_eq!(
        found_list(end).0[0],
        r[7],
        "the slow owner is still the owner"
    );
}

#[test]
fn a_refused_owner_is_dead_at_once_and_a_slow_hop_stays_a_finger() {
    let r = ring(10);
    let (_, n, mut rpcs) = node(&r, &r[1..=4], None);
    let config = ChordConfig {
        max_hops: 8,
        ..config()
    };
    let mut l = Lookups::new(r[0], &config);
    l.fingers.set(151, Some(r[6]));
    let (to, msg) = locate(&mut l, &n, &mut rpcs, Instant::now(), r[8].id);
    assert_eq!(to, r[6].addr);
    assert!(fail(&mut l, &n, &mut rpcs, r[6], req_of(&msg)).is_none());
    assert!(
        l.fingers().iter().any(|p| *p == r[6]),
        "one time-out is no death"
    );
    let (to, msg) = request(&mut rpcs);
    assert_eq!(to, r[6].addr, "asked again");
    let found = found(&msg, &[r[8], r[9], r[0]]);
    assert!(answer(&mut l, &n, &mut rpcs, r[6], found).is_none());
    let (to, ping) = request(&mut rpcs);
    assert_eq!(to, r[8].addr);
    assert!(refuse(&mut l, &n, &mut rpcs, r[8], req_of(&ping)).is_none());
    let (to, _) = request(&mut rpcs);
    assert_eq!(to, r[9].addr, "refused: its successor owns the key at once");
}

#[test]
fn finger_lookups_end_here_with_a_checked_finger() {
    let r = ring(10);
    let (mut l, n, mut rpcs) = node(&r, &r[1..=2], None);
    l.fix_next_finger(Instant::now(), &n, &mut rpcs);
    let (to, msg) = request(&mut rpcs);
    let Message::FindSuccessor { req, key } = msg else {
        panic!("{msg:?}");
    };
    let asked = r
        .iter()
        .find(|p| p.addr == to)
        .copied()
        .expect("a ring node");
    let owner = r[5];
    let found = Message::Found {
        req,
        succs: vec![owner.addr],
    };
    assert!(
        answer(&mut l, &n, &mut rpcs, asked, found).is_none(),
        "not the node's business"
    );
    let (to, ping) = request(&mut rpcs);
    assert_eq!(to, owner.addr, "checked before it is used");
    assert!(answer(&mut l, &n, &mut rpcs, owner, pong(&ping)).is_none());
    assert!(
        l.fingers().iter().any(|p| *p == owner),
        "finger for {key:?}"
    );
}
