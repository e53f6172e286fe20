//! Anti-entropy, hand-off and a joiner's key range, answered by hand.

use std::time::{Duration, Instant};

use super::*;
use crate::chord::records::{GrowSet, Limits, RecordKind};
use crate::chord::rpc::{Output, Pending};
use crate::chord::testing::ring;
use crate::wire::chord::message::ReqId;

/// Node `r[0]` (N = 3) with successors `r[1..=4]`, predecessor `r[9]`, and
/// a ready store holding a set at each of `keys`.
fn node(r: &[Peer], keys: &[Id]) -> (Replication, Neighbours, Store, Rpcs) {
    let mut ring = Neighbours::new(r[0], 4);
    ring.start(true);
    ring.join(r[1..=4].to_vec());
    let mut rpcs = Rpcs::new(Duration::from_millis(800));
    ring.rectify(Instant::now(), r[9], &mut rpcs);
    while rpcs.poll_output().is_some() {}
    let mut store = Store::new(Limits {
        max_items_per_key: 10,
        max_items_per_source: 10,
        max_items_per_key_per_source: 10,
        max_items: 0,
        max_ttl: Duration::from_secs(60),
    });
    store.set_ready(true);
    for key in keys {
        store.merge(*key, &GrowSet::of([1]).into());
    }
    let mut part = Replication::new(r[0], &ChordConfig::default());
    // All of this build, but r[8]: it never said it takes digests.
    for p in r.iter().filter(|p| **p != r[8]) {
        part.note_features(p.addr, crate::wire::chord::FEATURES);
    }
    (part, ring, store, rpcs)
}

/// The requests queued since the last call, by addressee.
fn sent(rpcs: &mut Rpcs) -> Vec<(SocketAddr, Message)> {
    let mut out = Vec::new();
    while let Some(o) = rpcs.poll_output() {
        if let Output::Send { to, msg } = o {
            out.push((to, msg));
        }
    }
    out
}

fn to(sent: &[(SocketAddr, Message)]) -> Vec<SocketAddr> {
    sent.iter().map(|(a, _)| *a).collect()
}

fn req_of(msg: &Message) -> ReqId {
    match msg {
        Message::Store { req, .. }
        | Message::Handoff { req, .. }
        | Message::Digest { req, .. }
        | Message::GetState { req } => *req,
        other => panic!("not a request: {other:?}"),
    }
}

/// `from` answers request `req` with `msg`.
fn answer(part: &mut Replication, store: &mut Store, rpcs: &mut Rpcs, from: Peer, msg: Message) {
    let req = msg.answer_to().expect("an answer");
    let rpc = rpcs
        .take_answer(Instant::now(), req, from.addr)
        .expect("asked");
    let Pending::Replica(kind) = rpc.kind else {
        panic!("not a replication request: {:?}", rpc.kind);
    };
    let handled = part.on_answer(Instant::now(), rpc.to, kind, msg, store, rpcs);
    assert!(handled.is_ok());
}

fn fail(part: &mut Replication, ring: &Neighbours, store: &mut Store, rpcs: &mut Rpcs, req: ReqId) {
    let rpc = rpcs.take(req).expect("asked");
    let Pending::Replica(kind) = rpc.kind else {
        panic!("not a replication request: {:?}", rpc.kind);
    };
    part.on_failure(Instant::now(), rpc.to, kind, ring, store, rpcs);
}

/// The only request sent is a `GetState` to `head`, which answers that its
/// predecessor is `pred`.
fn head_answers(
    part: &mut Replication,
    store: &mut Store,
    rpcs: &mut Rpcs,
    head: Peer,
    pred: Peer,
) {
    let out = sent(rpcs);
    assert_eq!(to(&out), vec![head.addr], "the head is asked first");
    assert!(matches!(out[0].1, Message::GetState { .. }));
    let state = Message::State {
        req: req_of(&out[0].1),
        pred: Some(pred.addr),
        succs: Vec::new(),
    };
    answer(part, store, rpcs, head, state);
}

#[test]
fn an_owned_key_goes_to_the_next_successors() {
    let r = ring(10);
    let key = r[0].id;
    let (mut part, ring, store, mut rpcs) = node(&r, &[key]);
    let check_held = part.begin_pass(&store, &ring);
    assert!(!part.replicate_key(key, check_held, &ring));
    part.send_digests(Instant::now(), &store, &mut rpcs);
    assert_eq!(
        to(&sent(&mut rpcs)),
        vec![r[1].addr, r[2].addr],
        "N − 1 of them"
    );
}

#[test]
fn a_held_key_is_looked_up_then_pushed_to_the_set_found() {
    let r = ring(10);
    let key = r[4].id;
    let (mut part, ring, store, mut rpcs) = node(&r, &[key]);
    let now = Instant::now();
    assert!(part.begin_pass(&store, &ring), "a first pass looks sets up");
    assert!(part.replicate_key(key, false, &ring), "a lookup first");
    // We are in its replica set: the others get it, and the set is kept.
    part.on_located(now, key, &[r[4], r[0], r[5]], &ring, &store, &mut rpcs);
    let both = BTreeSet::from([r[4].addr, r[5].addr]);
    assert_eq!(BTreeSet::from_iter(to(&sent(&mut rpcs))), both);
    assert!(!part.replicate_key(key, false, &ring));
    part.send_digests(now, &store, &mut rpcs);
    assert_eq!(
        BTreeSet::from_iter(to(&sent(&mut rpcs))),
        both,
        "without a lookup"
    );
    // Every fourth pass looks the set up again...
    let checks: Vec<bool> = (0..4).map(|_| part.begin_pass(&store, &ring)).collect();
    assert_eq!(checks, vec![false, false, true, false]);
    // ...and so does the first pass after our neighbours changed (r[1]
    // gone, say).
    let mut moved = Neighbours::new(r[0], 4);
    moved.start(true);
    moved.join(r[2..=5].to_vec());
    assert!(part.begin_pass(&store, &moved), "other successors");
    assert!(!part.begin_pass(&store, &moved));
}

#[test]
fn a_key_handed_off_is_deleted_once_every_replica_took_it() {
    let r = ring(10);
    let (k1, k2) = (r[6].id, r[7].id);
    let (mut part, ring, mut store, mut rpcs) = node(&r, &[k1, k2]);
    let now = Instant::now();
    part.on_located(now, k1, &[r[6], r[7], r[8]], &ring, &store, &mut rpcs);
    head_answers(&mut part, &mut store, &mut rpcs, r[6], r[5]);
    for (addr, msg) in sent(&mut rpcs) {
        let stored = Message::Stored {
            req: req_of(&msg),
            ok: true,
        };
        let from = r.iter().find(|p| p.addr == addr).copied().expect("a node");
        answer(&mut part, &mut store, &mut rpcs, from, stored);
    }
    assert!(!store.holds(k1), "copied, acknowledged, deleted");
    // One refusal keeps the key for the next pass.
    part.on_located(now, k2, &[r[7], r[8], r[9]], &ring, &store, &mut rpcs);
    head_answers(&mut part, &mut store, &mut rpcs, r[7], r[6]);
    for (i, (addr, msg)) in sent(&mut rpcs).into_iter().enumerate() {
        let stored = Message::Stored {
            req: req_of(&msg),
            ok: i != 1,
        };
        let from = r.iter().find(|p| p.addr == addr).copied().expect("a node");
        answer(&mut part, &mut store, &mut rpcs, from, stored);
    }
    assert!(store.holds(k2));
}

#[test]
fn no_hand_off_to_a_set_whose_head_does_not_own_the_key() {
    // Seed 5005164 of the announce history: while a healed partition's
    // rings merged, a lookup named three nodes past the key's replicas,
    // and every replica handed the key off to them and deleted it.
    let r = ring(10);
    let key = r[6].id;
    let (mut part, ring, mut store, mut rpcs) = node(&r, &[key]);
    let now = Instant::now();
    part.on_located(now, key, &[r[8], r[9], r[1]], &ring, &store, &mut rpcs);
    // r[8]'s predecessor r[7] lies between the key and r[8].
    head_answers(&mut part, &mut store, &mut rpcs, r[8], r[7]);
    assert!(sent(&mut rpcs).is_empty(), "nothing pushed");
    assert!(store.holds(key));
    // A silent head hands nothing off either.
    part.on_located(now, key, &[r[8], r[9], r[1]], &ring, &store, &mut rpcs);
    let out = sent(&mut rpcs);
    assert_eq!(to(&out), vec![r[8].addr]);
    fail(&mut part, &ring, &mut store, &mut rpcs, req_of(&out[0].1));
    assert!(sent(&mut rpcs).is_empty());
    assert!(store.holds(key));
}

#[test]
fn an_owner_in_its_own_view_never_hands_off() {
    let r = ring(10);
    // Between our predecessor r[9] and us: ours.
    let key = r[0].id;
    let (mut part, ring, store, mut rpcs) = node(&r, &[key]);
    let now = Instant::now();
    part.on_located(now, key, &[r[2], r[3], r[4]], &ring, &store, &mut rpcs);
    assert!(sent(&mut rpcs).is_empty(), "not even asked");
    assert!(store.holds(key));
}

#[test]
fn a_joiner_pulls_its_range_page_by_page() {
    let r = ring(10);
    // A joiner at `upto` takes over every key outside (upto, r[0]]: here
    // all 70 the old owner r[0] holds.
    let keys: Vec<Id> = (0..70u8).map(|k| Id::hash(&[k])).collect();
    let (server, _, served, _) = node(&r, &keys);
    let upto = Id([0xff; 20]);
    assert!(keys.iter().all(|k| !k.in_open_closed(upto, r[0].id)));
    let (page, next) = server.serve_range(Instant::now(), upto, None, &served);
    assert_eq!((page.len(), next), (64, Some(page[63].0)));
    let (rest, last) = server.serve_range(Instant::now(), upto, next, &served);
    assert_eq!((rest.len(), last), (6, None));

    let (mut part, _, mut store, mut rpcs) = node(&r, &[]);
    store.set_ready(false);
    part.request_range(Instant::now(), r[1], None, 0, &mut rpcs);
    let (_, ask) = sent(&mut rpcs).remove(0);
    let data = Message::HandoffData {
        req: req_of(&ask),
        keys: page,
        next,
    };
    answer(&mut part, &mut store, &mut rpcs, r[1], data);
    assert!(!store.is_ready());
    let (_, ask) = sent(&mut rpcs).remove(0);
    assert!(matches!(ask, Message::Handoff { after, .. } if after == next));
    let data = Message::HandoffData {
        req: req_of(&ask),
        keys: rest,
        next: None,
    };
    answer(&mut part, &mut store, &mut rpcs, r[1], data);
    assert!(store.is_ready());
    assert_eq!(store.keys().len(), 70);
}

#[test]
fn an_unanswered_page_is_asked_again_then_given_up() {
    let r = ring(10);
    let (mut part, ring, mut store, mut rpcs) = node(&r, &[]);
    store.set_ready(false);
    part.request_range(Instant::now(), r[1], None, 0, &mut rpcs);
    for _ in 0..HANDOFF_TRIES {
        assert!(!store.is_ready());
        let sent = sent(&mut rpcs);
        assert_eq!(to(&sent), vec![r[1].addr], "our successor");
        fail(&mut part, &ring, &mut store, &mut rpcs, req_of(&sent[0].1));
    }
    assert!(sent(&mut rpcs).is_empty());
    assert!(
        store.is_ready(),
        "serving; anti-entropy brings the keys later"
    );
}

/// A replica holding a record at the same version is sent its version
/// only; one lacking it is sent the record; one that does not answer the
/// digest (gone, or older than digests) gets the records pushed.
#[test]
fn anti_entropy_pushes_only_what_the_replica_wants() {
    let r = ring(10);
    let (k1, k2) = (r[0].id, r[9].id.add_pow2(0));
    let (mut part, ring, mut store, mut rpcs) = node(&r, &[k1, k2]);
    let now = Instant::now();
    part.begin_pass(&store, &ring);
    assert!(!part.replicate_key(k1, false, &ring));
    assert!(!part.replicate_key(k2, false, &ring));
    part.send_digests(now, &store, &mut rpcs);
    let digests = sent(&mut rpcs);
    assert_eq!(to(&digests), vec![r[1].addr, r[2].addr]);
    // r[1] holds k1 as we do, and lacks k2.
    let mut theirs = Store::new(store_limits());
    theirs.merge(k1, &GrowSet::of([1]).into());
    let Message::Digest { req, records } = &digests[0].1 else {
        panic!("not a digest: {:?}", digests[0].1);
    };
    assert_eq!(records.len(), 2);
    let want = wanted(now, &theirs, records);
    assert_eq!(want, vec![(k2, GrowSet::KIND)]);
    let reply = Message::Wanted {
        req: *req,
        records: want,
    };
    answer(&mut part, &mut store, &mut rpcs, r[1], reply);
    let pushed = sent(&mut rpcs);
    assert_eq!(pushed.len(), 1);
    assert!(matches!(&pushed[0], (a, Message::Store { key, .. }) if *a == r[1].addr && *key == k2));
    // r[2] never answers: both records are pushed to it.
    fail(
        &mut part,
        &ring,
        &mut store,
        &mut rpcs,
        req_of(&digests[1].1),
    );
    let pushed = sent(&mut rpcs);
    let keys: Vec<Id> = pushed
        .iter()
        .map(|(_, m)| match m {
            Message::Store { key, .. } => *key,
            other => panic!("not a push: {other:?}"),
        })
        .collect();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&k1) && keys.contains(&k2));
}

fn store_limits() -> Limits {
    Limits {
        max_items_per_key: 10,
        max_items_per_source: 10,
        max_items_per_key_per_source: 10,
        max_items: 0,
        max_ttl: Duration::from_secs(60),
    }
}

/// A replica whose frames never said it takes digests (a build from before
/// them would close the connection on one) gets records pushed, never a
/// digest; one that left a digest unanswered gets pushes until it speaks.
#[test]
fn only_a_replica_that_takes_digests_is_sent_one() {
    let r = ring(10);
    let key = r[7].id;
    let (mut part, ring, mut store, mut rpcs) = node(&r, &[key]);
    let now = Instant::now();
    part.on_located(now, key, &[r[7], r[0], r[8]], &ring, &store, &mut rpcs);
    let mut out = sent(&mut rpcs);
    out.sort_by_key(|(a, _)| *a);
    let kinds: Vec<(SocketAddr, bool)> = out
        .iter()
        .map(|(a, m)| (*a, matches!(m, Message::Digest { .. })))
        .collect();
    let mut want = vec![(r[7].addr, true), (r[8].addr, false)];
    want.sort();
    assert_eq!(kinds, want);
    assert!(
        matches!(out.iter().find(|(a, _)| *a == r[8].addr), Some((_, Message::Store { key: k, .. })) if *k == key)
    );
    // r[7] does not answer its digest: pushed now, and next pass too.
    let (_, digest) = out.iter().find(|(a, _)| *a == r[7].addr).expect("sent");
    fail(&mut part, &ring, &mut store, &mut rpcs, req_of(digest));
    assert!(matches!(&sent(&mut rpcs)[..], [(a, Message::Store { .. })] if *a == r[7].addr));
    part.on_located(now, key, &[r[7], r[0], r[8]], &ring, &store, &mut rpcs);
    assert!(sent(&mut rpcs)
        .iter()
        .all(|(_, m)| matches!(m, Message::Store { .. })));
    // Once it speaks with the feature bit again, it gets digests again.
    part.note_features(r[7].addr, crate::wire::chord::FEATURES);
    part.on_located(now, key, &[r[7], r[0], r[8]], &ring, &store, &mut rpcs);
    let again = sent(&mut rpcs);
    assert!(again
        .iter()
        .any(|(a, m)| *a == r[7].addr && matches!(m, Message::Digest { .. })));
}
