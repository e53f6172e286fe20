//! Quorum writes and reads over a replica set, answered by hand.

use std::time::{Duration, Instant};

use super::*;
use crate::chord::records::{GrowSet, Limits, RecordKind, SwarmList};
use crate::chord::rpc::{Output, Pending};
use crate::chord::testing::ring;
use crate::chord::Role;
use crate::wire::chord::message::{ReqId, WireRecord};

fn limits() -> Limits {
    Limits {
        max_items_per_key: 10,
        max_items_per_source: 10,
        max_items_per_key_per_source: 10,
        max_items: 0,
        max_ttl: Duration::from_secs(60),
    }
}

/// Node `r[0]` with N = 3, W = R = 2, an empty ready store.
fn node(r: &[Peer]) -> (Ops, Store, Rpcs) {
    let mut store = Store::new(limits());
    store.set_ready(true);
    let ops = Ops::new(r[0].addr, &ChordConfig::default());
    (ops, store, Rpcs::new(Duration::from_millis(800)))
}

/// Everything queued since the last call: requests by addressee, results.
fn outputs(rpcs: &mut Rpcs) -> (Vec<(SocketAddr, Message)>, Vec<Output>) {
    let (mut sent, mut done) = (Vec::new(), Vec::new());
    while let Some(o) = rpcs.poll_output() {
        match o {
            Output::Send { to, msg } => sent.push((to, msg)),
            done_op => done.push(done_op),
        }
    }
    (sent, done)
}

fn req_of(msg: &Message) -> ReqId {
    match msg {
        Message::Store { req, .. } | Message::Fetch { req, .. } => *req,
        other => panic!("not a request: {other:?}"),
    }
}

/// `from` answers request `req` with `msg`.
fn answer(ops: &mut Ops, store: &mut Store, rpcs: &mut Rpcs, from: Peer, req: ReqId, msg: Message) {
    let rpc = rpcs
        .take_answer(Instant::now(), req, from.addr)
        .expect("asked");
    let Pending::Op(kind) = rpc.kind else {
        panic!("not an operation's request: {:?}", rpc.kind);
    };
    let ring = Neighbours::new(Peer::new(ops.me), 8);
    ops.on_answer(Instant::now(), rpc.to, kind, msg, &ring, store, rpcs);
}

fn fail(ops: &mut Ops, store: &mut Store, rpcs: &mut Rpcs, req: ReqId) {
    let rpc = rpcs.take(req).expect("asked");
    let Pending::Op(kind) = rpc.kind else {
        panic!("not an operation's request: {:?}", rpc.kind);
    };
    let ring = Neighbours::new(Peer::new(ops.me), 8);
    ops.on_failure(Instant::now(), rpc.to, kind, &ring, store, rpcs);
}

/// The head of `list` answers the anchoring: it owns the key (its
/// predecessor is us, before the key), and knows no successors beyond
/// the rest of `list`.
fn confirm(ops: &mut Ops, store: &mut Store, rpcs: &mut Rpcs, list: &[Peer]) {
    if list[0].addr == ops.me {
        return;
    }
    let (sent, _) = outputs(rpcs);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (to, Message::GetState { req }) = sent[0] else {
        panic!("not anchoring: {sent:?}");
    };
    assert_eq!(to, list[0].addr);
    let pred = Some(ops.me);
    let state = Message::State {
        req,
        pred,
        succs: vec![],
    };
    answer(ops, store, rpcs, list[0], req, state);
}

/// Start write `op` of `key` over `list`, anchored at its head.
fn write_confirmed(
    ops: &mut Ops,
    store: &mut Store,
    rpcs: &mut Rpcs,
    now: Instant,
    op: OpId,
    key: Id,
    list: &[Peer],
) {
    let ring = Neighbours::new(Peer::new(ops.me), 8);
    ops.start_write(now, op, key, list, &ring, store, rpcs);
    confirm(ops, store, rpcs, list);
}

/// Start read `op` of `key` over `list`, anchored at its head.
fn read_confirmed(
    ops: &mut Ops,
    store: &mut Store,
    rpcs: &mut Rpcs,
    now: Instant,
    op: OpId,
    read: (Id, Kind),
    list: &[Peer],
) {
    let ring = Neighbours::new(Peer::new(ops.me), 8);
    ops.start_read(now, op, read, list, &ring, store, rpcs);
    confirm(ops, store, rpcs, list);
}

fn announce(port: u16) -> SwarmList {
    let peer = SocketAddr::from(([10, 0, 0, 1], port));
    SwarmList::announce(peer, Role::Seeder, Instant::now(), Duration::from_secs(60))
}

#[test]
fn a_write_is_done_once_w_replicas_the_owner_among_them_stored_it() {
    let r = ring(6);
    let (mut ops, mut store, mut rpcs) = node(&r);
    let key = r[1].id;
    let op = ops.new_op();
    ops.queue_write(op, announce(1).into());
    // We are the second replica: our own copy counts as one of W.
    write_confirmed(
        &mut ops,
        &mut store,
        &mut rpcs,
        Instant::now(),
        op,
        key,
        &[r[1], r[0], r[2], r[3]],
    );
    assert!(store.get(key, SwarmList::KIND).is_some());
    let (sent, done) = outputs(&mut rpcs);
    assert!(done.is_empty());
    let to: Vec<SocketAddr> = sent.iter().map(|(a, _)| *a).collect();
    assert_eq!(to, vec![r[1].addr, r[2].addr]);
    let req = req_of(&sent[1].1);
    let stored = Message::Stored { req, ok: true };
    answer(&mut ops, &mut store, &mut rpcs, r[2], req, stored);
    let (_, done) = outputs(&mut rpcs);
    assert!(done.is_empty(), "two of three, but not the owner");
    let req = req_of(&sent[0].1);
    let stored = Message::Stored { req, ok: true };
    answer(&mut ops, &mut store, &mut rpcs, r[1], req, stored);
    let (_, done) = outputs(&mut rpcs);
    assert_eq!(
        done,
        vec![Output::Done {
            op,
            result: Ok(OpOutcome::Stored)
        }]
    );
}

/// The addressees of the requests queued since the last call, and the
/// requests themselves.
fn sent_to(rpcs: &mut Rpcs) -> (Vec<SocketAddr>, Vec<ReqId>, Vec<Output>) {
    let (sent, done) = outputs(rpcs);
    let to = sent.iter().map(|(a, _)| *a).collect();
    let reqs = sent.iter().map(|(_, m)| req_of(m)).collect();
    (to, reqs, done)
}

#[test]
fn lost_primaries_are_retried_once_and_a_spares_ack_never_counts() {
    let r = ring(6);
    let (mut ops, mut store, mut rpcs) = node(&r);
    let op = ops.new_op();
    ops.queue_write(op, announce(1).into());
    let list = [r[1], r[2], r[3], r[4], r[5]];
    write_confirmed(
        &mut ops,
        &mut store,
        &mut rpcs,
        Instant::now(),
        op,
        r[1].id,
        &list,
    );
    let (_, reqs, _) = sent_to(&mut rpcs);
    let (q1, q2, q3) = (reqs[0], reqs[1], reqs[2]);
    // A refusal is final: a spare is asked instead.
    let refused = Message::Stored { req: q3, ok: false };
    answer(&mut ops, &mut store, &mut rpcs, r[3], q3, refused);
    let (to, spare, done) = sent_to(&mut rpcs);
    assert_eq!(to, vec![r[4].addr], "the spare");
    assert!(done.is_empty());
    // A lost request to a primary is sent again, to the same primary.
    fail(&mut ops, &mut store, &mut rpcs, q2);
    let (to, again, done) = sent_to(&mut rpcs);
    assert_eq!(to, vec![r[2].addr], "asked once more");
    assert!(done.is_empty());
    // The spare stores it: that is no replica of the key, so no quorum.
    let stored = Message::Stored {
        req: spare[0],
        ok: true,
    };
    answer(&mut ops, &mut store, &mut rpcs, r[4], spare[0], stored);
    let (_, _, done) = sent_to(&mut rpcs);
    assert!(done.is_empty(), "a spare's ack does not count: {done:?}");
    // Lost twice: given up, and with it the quorum (only r[1] is left).
    fail(&mut ops, &mut store, &mut rpcs, again[0]);
    let (to, _, done) = sent_to(&mut rpcs);
    assert_eq!(to, vec![r[5].addr], "the next spare");
    let err = ChordError::QuorumFailed { got: 0, needed: 2 };
    assert_eq!(
        done,
        vec![Output::Done {
            op,
            result: Err(err)
        }]
    );
    // r[1] answering late changes nothing: reported once.
    let stored = Message::Stored { req: q1, ok: true };
    answer(&mut ops, &mut store, &mut rpcs, r[1], q1, stored);
    let (_, _, done) = sent_to(&mut rpcs);
    assert!(done.is_empty());
}

#[test]
fn a_primarys_second_try_counts() {
    let r = ring(6);
    let (mut ops, mut store, mut rpcs) = node(&r);
    let op = ops.new_op();
    ops.queue_write(op, announce(1).into());
    let list = [r[1], r[2], r[3], r[4]];
    write_confirmed(
        &mut ops,
        &mut store,
        &mut rpcs,
        Instant::now(),
        op,
        r[1].id,
        &list,
    );
    let (_, reqs, _) = sent_to(&mut rpcs);
    let stored = |req| Message::Stored { req, ok: true };
    answer(
        &mut ops,
        &mut store,
        &mut rpcs,
        r[1],
        reqs[0],
        stored(reqs[0]),
    );
    fail(&mut ops, &mut store, &mut rpcs, reqs[1]);
    let (to, again, done) = sent_to(&mut rpcs);
    assert_eq!(to, vec![r[2].addr]);
    assert!(done.is_empty());
    answer(
        &mut ops,
        &mut store,
        &mut rpcs,
        r[2],
        again[0],
        stored(again[0]),
    );
    let (_, _, done) = sent_to(&mut rpcs);
    assert_eq!(
        done,
        vec![Output::Done {
            op,
            result: Ok(OpOutcome::Stored)
        }]
    );
}

mod anchoring;
mod reads;
