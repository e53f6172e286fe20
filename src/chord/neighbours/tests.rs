//! Zave's rules one at a time, driven through the request table as the
//! node drives them.

use std::time::{Duration, Instant};

use super::rescue::BARREN_RESCUES;
use super::*;
use crate::chord::rpc::Output;
use crate::chord::testing::ring;

/// A member `r[0]` of the ring `r` whose successor list is `succs`.
fn member(r: &[Peer], succs: &[Peer]) -> (Neighbours, Rpcs) {
    let mut n = Neighbours::new(r[0], 4);
    n.start(true);
    n.join(succs.to_vec()).expect("a usable list");
    (n, Rpcs::new(Duration::from_millis(800)))
}

/// The messages queued since the last call.
fn sent(rpcs: &mut Rpcs) -> Vec<(SocketAddr, Message)> {
    let mut out = Vec::new();
    while let Some(o) = rpcs.poll_output() {
        if let Output::Send { to, msg } = o {
            out.push((to, msg));
        }
    }
    out
}

/// The id of the one request queued since the last call, to `to`.
fn request_to(rpcs: &mut Rpcs, to: Peer) -> ReqId {
    let mut sent = sent(rpcs);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (addr, msg) = sent.remove(0);
    assert_eq!(addr, to.addr, "{msg:?}");
    match msg {
        Message::Ping { req } | Message::GetState { req } => req,
        other => panic!("not a request: {other:?}"),
    }
}

fn answer(
    n: &mut Neighbours,
    rpcs: &mut Rpcs,
    req: ReqId,
    from: Peer,
    msg: Message,
) -> Option<Report> {
    let now = Instant::now();
    let rpc = rpcs.take_answer(now, req, from.addr).expect("asked");
    let Pending::Ring(kind) = rpc.kind else {
        panic!("not a ring request: {:?}", rpc.kind);
    };
    n.on_answer(now, rpc.to, kind, msg, rpcs)
}

fn fail(n: &mut Neighbours, rpcs: &mut Rpcs, req: ReqId) -> Option<Report> {
    let rpc = rpcs.take(req).expect("asked");
    let Pending::Ring(kind) = rpc.kind else {
        panic!("not a ring request: {:?}", rpc.kind);
    };
    n.on_failure(Instant::now(), rpc.to, kind, rpcs)
}

fn addrs(peers: &[Peer]) -> Vec<SocketAddr> {
    peers.iter().map(|p| p.addr).collect()
}

#[test]
fn a_join_adopts_the_list_in_ring_order_up_to_r() {
    let r = ring(8);
    let mut n = Neighbours::new(r[0], 3);
    assert_eq!(n.join(vec![r[1]]), None, "not joining yet");
    n.start(true);
    // Out of order, ourselves, and more than r = 3 entries.
    let found = vec![r[2], r[1], r[3], r[4], r[5], r[0], r[6]];
    assert_eq!(n.join(found), Some(r[2]));
    assert_eq!(n.phase(), Phase::Member);
    assert_eq!(n.successors(), &[r[2], r[3], r[4]]);
}

#[test]
fn a_joiner_adopts_the_node_found_once_it_answers_and_its_full_list() {
    // Seed 3000282 of the churn simulation: the lookup answered with a
    // three-entry cut of someone's list, all of it dead by then.
    let r = ring(10);
    let mut n = Neighbours::new(r[0], 5);
    n.start(true);
    let mut rpcs = Rpcs::new(Duration::from_millis(800));
    n.begin_join(Instant::now(), vec![r[0], r[1], r[2], r[3]], &mut rpcs);
    assert!(n.checking_join(&rpcs));
    // Ourselves (a former incarnation) skipped; one lost answer is no death.
    let req = request_to(&mut rpcs, r[1]);
    assert_eq!(fail(&mut n, &mut rpcs, req), Some(Report::Forget(r[1])));
    assert_eq!(n.phase(), Phase::Joining, "nothing adopted unchecked");
    let req = request_to(&mut rpcs, r[1]);
    let state = Message::State {
        req,
        pred: Some(r[0].addr),
        succs: addrs(&[r[2], r[3], r[4], r[5], r[6]]),
    };
    let report = answer(&mut n, &mut rpcs, req, r[1], state);
    assert_eq!(report, Some(Report::Joined(r[1])));
    assert_eq!(n.phase(), Phase::Member);
    assert_eq!(n.successors(), &[r[1], r[2], r[3], r[4], r[5]], "r entries");
    assert!(!n.checking_join(&rpcs));
}

#[test]
fn a_joiner_whose_node_found_stays_silent_starts_over() {
    // Seed 2000028 of the kill simulation: the list [r[1], r[9]] wraps
    // round the small ring to the node before us; taking r[9] as our
    // successor when r[1] was silent made a ring of two.
    let r = ring(10);
    let mut n = Neighbours::new(r[0], 5);
    n.start(true);
    let mut rpcs = Rpcs::new(Duration::from_millis(800));
    n.begin_join(Instant::now(), vec![r[1], r[9]], &mut rpcs);
    for _ in 0..2 {
        let req = request_to(&mut rpcs, r[1]);
        fail(&mut n, &mut rpcs, req);
    }
    assert!(sent(&mut rpcs).is_empty(), "r[9] is not asked");
    assert!(!n.checking_join(&rpcs), "the next tick looks up again");
    assert_eq!(n.phase(), Phase::Joining);
    assert!(n.successors().is_empty());
}

#[test]
fn a_joiner_takes_no_head_whose_predecessor_lies_between_them() {
    // Seed 2005782 of the kill simulation: the lookup gave up on a silent
    // node and answered with the one after it, r[9], a node behind us;
    // joining it made a ring of two.
    let r = ring(10);
    for (head, pred) in [(r[9], r[8]), (r[2], r[1])] {
        let mut n = Neighbours::new(r[0], 5);
        n.start(true);
        let mut rpcs = Rpcs::new(Duration::from_millis(800));
        n.begin_join(Instant::now(), vec![head], &mut rpcs);
        let req = request_to(&mut rpcs, head);
        let state = Message::State {
            req,
            pred: Some(pred.addr),
            succs: addrs(&[r[3], r[4]]),
        };
        assert_eq!(answer(&mut n, &mut rpcs, req, head, state), None);
        assert_eq!(n.phase(), Phase::Joining, "not adopted");
        assert!(n.successors().is_empty());
        assert!(sent(&mut rpcs).is_empty(), "the next tick looks up again");
        assert!(!n.checking_join(&rpcs));
    }
}

#[test]
fn stabilize_adopts_the_successors_list_and_checks_its_predecessor_first() {
    let r = ring(6);
    let (mut n, mut rpcs) = member(&r, &[r[2]]);
    n.tick(Instant::now(), &mut rpcs);
    let req = request_to(&mut rpcs, r[2]);
    let state = Message::State {
        req,
        pred: Some(r[1].addr),
        succs: addrs(&[r[3], r[4]]),
    };
    assert_eq!(answer(&mut n, &mut rpcs, req, r[2], state), None);
    assert_eq!(n.successors(), &[r[2], r[3], r[4]]);
    // r[1] sits between us and r[2]: adopted once it answers a ping.
    let ping = request_to(&mut rpcs, r[1]);
    assert_eq!(n.successors()[0], r[2], "not before the check");
    answer(&mut n, &mut rpcs, ping, r[1], Message::Pong { req: ping });
    assert_eq!(n.successors(), &[r[1], r[2], r[3], r[4]]);
    // ... and is asked for its state at once.
    let next = request_to(&mut rpcs, r[1]);
    let state = Message::State {
        req: next,
        pred: Some(r[0].addr),
        succs: addrs(&[r[2], r[3]]),
    };
    answer(&mut n, &mut rpcs, next, r[1], state);
    assert_eq!(n.successors(), &[r[1], r[2], r[3]]);
    // The round ends by notifying the successor.
    assert_eq!(sent(&mut rpcs), vec![(r[1].addr, Message::Notify)]);
}

#[test]
fn a_dead_successor_is_dropped_after_two_misses() {
    let r = ring(6);
    let (mut n, mut rpcs) = member(&r, &[r[1], r[2]]);
    n.tick(Instant::now(), &mut rpcs);
    let req = request_to(&mut rpcs, r[1]);
    assert_eq!(fail(&mut n, &mut rpcs, req), None, "one miss is no death");
    let req = request_to(&mut rpcs, r[1]);
    assert_eq!(fail(&mut n, &mut rpcs, req), Some(Report::Forget(r[1])));
    assert_eq!(n.successors(), &[r[2]]);
    request_to(&mut rpcs, r[2]);
}

#[test]
fn an_only_successor_stays_until_a_rescue_finds_a_live_one() {
    let r = ring(6);
    let (mut n, mut rpcs) = member(&r, &[r[1]]);
    n.tick(Instant::now(), &mut rpcs);
    let req = request_to(&mut rpcs, r[1]);
    fail(&mut n, &mut rpcs, req);
    let req = request_to(&mut rpcs, r[1]);
    assert_eq!(fail(&mut n, &mut rpcs, req), Some(Report::Rescue(r[1])));
    assert_eq!(n.successors(), &[r[1]], "kept: it may only be slow");
    // The rescue's answer starts with the silent successor: skipped.
    n.found_self(Instant::now(), true, vec![r[1], r[2], r[3]], &mut rpcs);
    let ping = request_to(&mut rpcs, r[2]);
    answer(&mut n, &mut rpcs, ping, r[2], Message::Pong { req: ping });
    assert_eq!(n.successors(), &[r[2], r[3]]);
}

/// `n`, whose only successor is `r[1]`, suspects it after two misses.
fn suspect_only_successor(n: &mut Neighbours, rpcs: &mut Rpcs, r: &[Peer]) {
    n.tick(Instant::now(), rpcs);
    for _ in 0..2 {
        let req = request_to(rpcs, r[1]);
        fail(n, rpcs, req);
    }
}

#[test]
fn a_rescue_never_takes_our_predecessor_while_the_ring_names_the_silent_one() {
    let r = ring(6);
    let (mut n, mut rpcs) = member(&r, &[r[1]]);
    suspect_only_successor(&mut n, &mut rpcs, &r);
    n.rectify(Instant::now(), r[5], &mut rpcs);
    assert!(sent(&mut rpcs).is_empty());
    // Someone whose short list wraps names the silent one, then our
    // predecessor: adopting it would make a ring of two.
    for _ in 0..BARREN_RESCUES {
        n.found_self(Instant::now(), true, vec![r[0], r[1], r[5]], &mut rpcs);
        assert!(sent(&mut rpcs).is_empty(), "nobody checked");
        assert_eq!(n.successors(), &[r[1]]);
    }
    // Enough rescues found nothing else: the ring may really be us two.
    n.found_self(Instant::now(), true, vec![r[0], r[1], r[5]], &mut rpcs);
    let ping = request_to(&mut rpcs, r[5]);
    answer(&mut n, &mut rpcs, ping, r[5], Message::Pong { req: ping });
    assert_eq!(n.successors(), &[r[5]]);
}

#[test]
fn a_rescue_takes_the_nodes_ahead_of_our_predecessor() {
    let r = ring(6);
    let (mut n, mut rpcs) = member(&r, &[r[1]]);
    suspect_only_successor(&mut n, &mut rpcs, &r);
    n.rectify(Instant::now(), r[5], &mut rpcs);
    assert!(sent(&mut rpcs).is_empty());
    n.found_self(
        Instant::now(),
        true,
        vec![r[1], r[2], r[5], r[3]],
        &mut rpcs,
    );
    let ping = request_to(&mut rpcs, r[2]);
    answer(&mut n, &mut rpcs, ping, r[2], Message::Pong { req: ping });
    assert_eq!(n.successors(), &[r[2]], "cut before the predecessor");
}

#[test]
fn a_rescue_that_finds_nobody_leaves_the_node_alone() {
    let r = ring(4);
    let (mut n, mut rpcs) = member(&r, &[r[1]]);
    n.rescue_failed();
    assert_eq!(n.successors(), &[r[1]], "not suspected: kept");
    n.tick(Instant::now(), &mut rpcs);
    for _ in 0..2 {
        let req = request_to(&mut rpcs, r[1]);
        fail(&mut n, &mut rpcs, req);
    }
    n.rescue_failed();
    assert!(n.successors().is_empty());
}

#[test]
fn rectify_takes_a_closer_notifier_and_checks_a_farther_ones_rival() {
    let r = ring(8);
    let (mut n, mut rpcs) = member(&r, &[r[1]]);
    let now = Instant::now();
    n.rectify(now, r[5], &mut rpcs);
    assert_eq!(n.predecessor(), Some(r[5]), "none known: taken");
    n.rectify(now, r[6], &mut rpcs);
    assert_eq!(n.predecessor(), Some(r[6]), "between it and us: taken");
    assert!(sent(&mut rpcs).is_empty());
    // r[4] is no closer: r[6] is checked, and replaced by r[4] only once
    // it has missed twice.
    n.rectify(now, r[4], &mut rpcs);
    let req = request_to(&mut rpcs, r[6]);
    fail(&mut n, &mut rpcs, req);
    assert_eq!(n.predecessor(), Some(r[6]));
    let req = request_to(&mut rpcs, r[6]);
    fail(&mut n, &mut rpcs, req);
    assert_eq!(n.predecessor(), Some(r[4]));
}

#[test]
fn a_notifier_between_us_and_our_successor_is_checked_then_adopted() {
    let r = ring(8);
    let (mut n, mut rpcs) = member(&r, &[r[3]]);
    n.rectify(Instant::now(), r[2], &mut rpcs);
    let ping = request_to(&mut rpcs, r[2]);
    // A second notify while the check is under way asks nothing more.
    n.rectify(Instant::now(), r[2], &mut rpcs);
    assert!(sent(&mut rpcs).is_empty());
    answer(&mut n, &mut rpcs, ping, r[2], Message::Pong { req: ping });
    assert_eq!(n.successors(), &[r[2], r[3]]);
    // A dead candidate is only forgotten. (Our predecessor, r[2] since its
    // notify, is checked too: r[1] does not lie between it and us.)
    n.rectify(Instant::now(), r[1], &mut rpcs);
    let pings: Vec<(SocketAddr, Message)> = sent(&mut rpcs);
    let to = |p: Peer| {
        pings
            .iter()
            .find(|(a, _)| *a == p.addr)
            .map(|(_, m)| m.clone())
    };
    assert!(matches!(to(r[2]), Some(Message::Ping { .. })), "{pings:?}");
    let Some(Message::Ping { req }) = to(r[1]) else {
        panic!("{pings:?}");
    };
    assert_eq!(fail(&mut n, &mut rpcs, req), Some(Report::Forget(r[1])));
    assert_eq!(n.successors(), &[r[2], r[3]]);
}

#[test]
fn a_wrong_answer_counts_as_a_miss() {
    let r = ring(4);
    let (mut n, mut rpcs) = member(&r, &[r[1], r[2]]);
    n.tick(Instant::now(), &mut rpcs);
    for expected in [None, Some(Report::Forget(r[1]))] {
        let req = request_to(&mut rpcs, r[1]);
        let wrong = Message::Pong { req };
        assert_eq!(answer(&mut n, &mut rpcs, req, r[1], wrong), expected);
    }
}
