//! Routing from our own tables, and lookups driven to their end.

use std::time::{Duration, Instant};

use super::*;
use crate::chord::message::ReqId;
use crate::chord::rpc::{Failure, Output, Pending};
use crate::chord::testing::ring;

mod failures;

/// r = 4, N = 3, at most 3 hops.
fn config() -> ChordConfig {
    ChordConfig {
        successor_list_len: 4,
        replicas: 3,
        max_hops: 3,
        ..ChordConfig::default()
    }
}

/// Node `r[0]`, a member with successors `succs` and predecessor `pred`.
fn node(r: &[Peer], succs: &[Peer], pred: Option<Peer>) -> (Lookups, Neighbours, Rpcs) {
    let mut n = Neighbours::new(r[0], config().successor_list_len);
    n.start(true);
    if !succs.is_empty() {
        n.join(succs.to_vec());
    }
    let mut rpcs = Rpcs::new(Duration::from_millis(800));
    if let Some(p) = pred {
        n.rectify(Instant::now(), p, &mut rpcs);
        while rpcs.poll_output().is_some() {}
    }
    (Lookups::new(r[0], &config()), n, rpcs)
}

/// The one request queued since the last call: its addressee and message.
fn request(rpcs: &mut Rpcs) -> (SocketAddr, Message) {
    let mut out = Vec::new();
    while let Some(o) = rpcs.poll_output() {
        if let Output::Send { to, msg } = o {
            out.push((to, msg));
        }
    }
    assert_eq!(out.len(), 1, "{out:?}");
    out.remove(0)
}

fn req_of(msg: &Message) -> ReqId {
    match msg {
        Message::FindSuccessor { req, .. } | Message::Ping { req } => *req,
        other => panic!("not a request: {other:?}"),
    }
}

fn answer(
    l: &mut Lookups,
    ring: &Neighbours,
    rpcs: &mut Rpcs,
    from: Peer,
    msg: Message,
) -> Option<LookupEnd> {
    let req = msg.answer_to().expect("an answer");
    let rpc = rpcs
        .take_answer(Instant::now(), req, from.addr)
        .expect("asked");
    let Pending::Route(kind) = rpc.kind else {
        panic!("not a routing request: {:?}", rpc.kind);
    };
    l.on_answer(Instant::now(), rpc.to, kind, msg, ring, rpcs)
}

/// Start locating `key` (op 1) at `now`; returns the first request sent.
fn locate(
    l: &mut Lookups,
    ring: &Neighbours,
    rpcs: &mut Rpcs,
    now: Instant,
    key: Id,
) -> (SocketAddr, Message) {
    let op = Purpose::Locate { op: 1 };
    assert!(l.start(now, ring, key, op, None, rpcs).is_none());
    request(rpcs)
}

/// `Found` with `succs`, answering request `msg`.
fn found(msg: &Message, succs: &[Peer]) -> Message {
    let succs = succs.iter().map(|p| p.addr).collect();
    Message::Found {
        req: req_of(msg),
        succs,
    }
}

/// `Pong`, answering ping `msg`.
fn pong(msg: &Message) -> Message {
    Message::Pong { req: req_of(msg) }
}

/// The owner's list and the hop count of a lookup that ended found.
fn found_list(end: Option<LookupEnd>) -> (Vec<Peer>, u32) {
    let Some(LookupEnd::Found { list, hops, .. }) = end else {
        panic!("{end:?}");
    };
    (list, hops)
}

/// Request `req` to `to` timed out (`refused`: its connection was refused).
fn failed(
    l: &mut Lookups,
    ring: &Neighbours,
    rpcs: &mut Rpcs,
    (to, req): (Peer, ReqId),
    refused: bool,
) -> Option<LookupEnd> {
    let rpc = rpcs.take(req).expect("asked");
    assert_eq!(rpc.to, to);
    let why = if refused {
        Failure::Refused
    } else {
        rpc.timed_out()
    };
    let Pending::Route(kind) = rpc.kind else {
        panic!("not a routing request: {:?}", rpc.kind);
    };
    l.on_failure(Instant::now(), rpc.to, kind, why, ring, rpcs)
}

/// Request `req` to `to` timed out.
fn fail(
    l: &mut Lookups,
    ring: &Neighbours,
    rpcs: &mut Rpcs,
    to: Peer,
    req: ReqId,
) -> Option<LookupEnd> {
    failed(l, ring, rpcs, (to, req), false)
}

/// The connection to `to` carrying request `req` was refused.
fn refuse(
    l: &mut Lookups,
    ring: &Neighbours,
    rpcs: &mut Rpcs,
    to: Peer,
    req: ReqId,
) -> Option<LookupEnd> {
    failed(l, ring, rpcs, (to, req), true)
}

#[test]
fn local_answers_come_with_enough_followers_for_a_replica_set() {
    let r = ring(10);
    let (l, n, _) = node(&r, &r[1..=4], Some(r[9]));
    let answer = |key: Id| l.local_answer(&n, key);
    assert_eq!(answer(r[0].id), Some(r[0..=4].to_vec()), "ours");
    assert_eq!(answer(r[1].id), Some(r[1..=4].to_vec()));
    assert_eq!(answer(r[2].id), Some(r[2..=4].to_vec()), "N = 3 follow");
    assert_eq!(answer(r[3].id), None, "too few followers known");
    assert_eq!(answer(r[6].id), None, "beyond the list");
    let (l, n, _) = node(&r, &[], None);
    assert_eq!(l.local_answer(&n, r[6].id), None, "not a member yet");
}

#[test]
fn a_short_successor_list_is_the_whole_ring() {
    let r = ring(3);
    let (l, n, _) = node(&r, &r[1..=2], None);
    assert_eq!(
        l.local_answer(&n, r[2].id),
        Some(vec![r[2], r[0], r[1]]),
        "the owner's list wraps round to us"
    );
    let mut alone = Neighbours::new(r[0], 4);
    alone.start(false);
    assert_eq!(l.local_answer(&alone, r[2].id), Some(vec![r[0]]));
}

#[test]
fn closest_preceding_nodes_are_ordered_towards_the_key() {
    let r = ring(10);
    let (l, n, _) = node(&r, &r[1..=4], None);
    assert_eq!(l.closest_preceding(&n, r[3].id, 4), vec![r[2], r[1]]);
    assert_eq!(l.closest_preceding(&n, r[8].id, 2), vec![r[4], r[3]]);
}

#[test]
fn a_local_answer_ends_a_lookup_once_its_owner_answers() {
    let r = ring(10);
    let (mut l, n, mut rpcs) = node(&r, &r[1..=4], Some(r[9]));
    let now = Instant::now();
    let end = l.start(now, &n, r[0].id, Purpose::Replicate, None, &mut rpcs);
    assert_eq!(found_list(end), (r[0..=4].to_vec(), 0), "ours: no check");
    assert!(rpcs.poll_output().is_none(), "nobody asked");
    let end = l.start(now, &n, r[1].id, Purpose::Replicate, None, &mut rpcs);
    assert!(end.is_none(), "the owner is checked first");
    let (to, ping) = request(&mut rpcs);
    assert_eq!(to, r[1].addr);
    let end = answer(&mut l, &n, &mut rpcs, r[1], pong(&ping));
    assert_eq!(found_list(end), (r[1..=4].to_vec(), 0));
}

#[test]
fn a_lookup_goes_round_a_dead_hop_and_stops_at_the_hop_limit() {
    let r = ring(10);
    let (mut l, n, mut rpcs) = node(&r, &r[1..=4], None);
    let key = r[8].id;
    let start = Some(vec![r[0], r[5], r[6]]);
    assert!(l
        .start(Instant::now(), &n, key, Purpose::Rejoin, start, &mut rpcs)
        .is_none());
    let (to, msg) = request(&mut rpcs);
    assert_eq!(to, r[5].addr, "never ourselves");
    assert!(refuse(&mut l, &n, &mut rpcs, r[5], req_of(&msg)).is_none());
    let (to, msg) = request(&mut rpcs);
    assert_eq!(to, r[6].addr, "refused: at once the next candidate");
    let closer = Message::Closer {
        req: req_of(&msg),
        nodes: vec![r[7].addr, r[2].addr],
    };
    assert!(answer(&mut l, &n, &mut rpcs, r[6], closer).is_none());
    // r[2] does not lie between r[6] and the key: only r[7] is asked.
    let (to, msg) = request(&mut rpcs);
    assert_eq!(to, r[7].addr);
    let closer = Message::Closer {
        req: req_of(&msg),
        nodes: vec![r[7].addr],
    };
    let end = answer(&mut l, &n, &mut rpcs, r[7], closer);
    let Some(LookupEnd::Failed { hops, purpose, .. }) = end else {
        panic!("{end:?}");
    };
    assert_eq!(hops, 3);
    assert!(matches!(purpose, Purpose::Rejoin));
    assert!(!l.any(|_, _| true), "nothing left in flight");
}

#[test]
fn found_ends_a_lookup_with_the_owners_list() {
    let r = ring(10);
    let (mut l, n, mut rpcs) = node(&r, &r[1..=4], None);
    let key = r[7].id;
    let op = Purpose::Locate { op: 9 };
    assert!(l
        .start(Instant::now(), &n, key, op, None, &mut rpcs)
        .is_none());
    let (to, msg) = request(&mut rpcs);
    assert_eq!(to, r[4].addr, "the closest known node before the key");
    assert!(l.any(|k, p| k == key && matches!(p, Purpose::Locate { op: 9 })));
    let found = found(&msg, &[r[7], r[8]]);
    assert!(answer(&mut l, &n, &mut rpcs, r[4], found).is_none());
    let (to, ping) = request(&mut rpcs);
    assert_eq!(to, r[7].addr, "the owner is checked alive");
    let end = answer(&mut l, &n, &mut rpcs, r[7], pong(&ping));
    assert_eq!(
        found_list(end),
        (vec![r[7], r[8]], 1),
        "the check is no hop"
    );
}
