//! Anchoring at the owner, answered by hand.

use super::*;

#[test]
fn anchoring_walks_back_to_the_owner_a_lookup_did_not_know() {
    // Seed 5000005 of the announce history: two nodes joined just before
    // the owner r[3] that the lookup found.
    let r = ring(8);
    let list = [r[3], r[4], r[5], r[6]];
    let (mut ops, mut store, mut rpcs, _) = write_from(&r, r[1].id, &list);
    let (to, reqs, _) = sent_to_any(&mut rpcs);
    assert_eq!(to, vec![r[3].addr]);
    // r[3]'s predecessor r[2] lies between the key and r[3]: ask it.
    let parts = (&mut ops, &mut store, &mut rpcs);
    state_of(parts, r[3], reqs[0], r[2], &[r[4], r[5]]);
    let (to, reqs, _) = sent_to_any(&mut rpcs);
    assert_eq!(to, vec![r[2].addr]);
    let parts = (&mut ops, &mut store, &mut rpcs);
    state_of(parts, r[2], reqs[0], r[1], &[r[3], r[4]]);
    let (to, reqs, _) = sent_to_any(&mut rpcs);
    assert_eq!(to, vec![r[1].addr]);
    // r[1] is the key itself, owned by r[1]: the write goes to r[1..=3].
    let parts = (&mut ops, &mut store, &mut rpcs);
    state_of(parts, r[1], reqs[0], r[0], &[r[2], r[3]]);
    let (to, _, _) = sent_to_any(&mut rpcs);
    assert_eq!(to, vec![r[1].addr, r[2].addr, r[3].addr]);
}

/// `head` answers the anchoring request `req` with its predecessor and
/// successors.
fn state_of(
    (ops, store, rpcs): (&mut Ops, &mut Store, &mut Rpcs),
    head: Peer,
    req: ReqId,
    pred: Peer,
    succs: &[Peer],
) {
    let msg = Message::State {
        req,
        pred: Some(pred.addr),
        succs: succs.iter().map(|p| p.addr).collect(),
    };
    answer(ops, store, rpcs, head, req, msg);
}

/// The anchoring asks `head` for its state, twice, and hears nothing.
fn silent_twice(ops: &mut Ops, store: &mut Store, rpcs: &mut Rpcs, head: Peer) {
    for _ in 0..2 {
        let (to, reqs, _) = sent_to_any(rpcs);
        assert_eq!(to, vec![head.addr], "asked twice");
        fail(ops, store, rpcs, reqs[0]);
    }
}

#[test]
fn a_silent_head_leaves_the_operation_unanchored() {
    let r = ring(6);
    let (mut ops, mut store, mut rpcs, op) = write_from(&r, r[1].id, &[r[1], r[2], r[3], r[4]]);
    silent_twice(&mut ops, &mut store, &mut rpcs, r[1]);
    // The next one still names the silent head as its predecessor.
    let (to, reqs, _) = sent_to_any(&mut rpcs);
    assert_eq!(to, vec![r[2].addr]);
    let parts = (&mut ops, &mut store, &mut rpcs);
    state_of(parts, r[2], reqs[0], r[1], &[r[3], r[4]]);
    // Still a primary (spares decide nothing), but not needed.
    let (to, reqs, _) = sent_to_any(&mut rpcs);
    assert_eq!(to, vec![r[1].addr, r[2].addr, r[3].addr]);
    let parts = (&mut ops, &mut store, &mut rpcs);
    assert_eq!(
        stored_by(parts, [(r[2], reqs[1]), (r[3], reqs[2])]),
        write_done(op)
    );
}

#[test]
fn past_a_silent_head_the_walk_finds_its_successors() {
    // Seed 5005839 of the announce history: the owner r[1] had died, and
    // the lookup's list named, after it, only nodes far past the key's
    // replicas. Run over that list as it stood, the read asked the dead
    // owner and two nodes that held nothing, and missed an acknowledged
    // announce that r[2] and r[3] held.
    let r = ring(8);
    let (mut ops, mut store, mut rpcs, op) = write_from(&r, r[1].id, &[r[1], r[5], r[6]]);
    silent_twice(&mut ops, &mut store, &mut rpcs, r[1]);
    // Each node names the one before it, back to the silent owner.
    for (head, pred) in [(5, 4), (4, 3), (3, 2), (2, 1)] {
        let (to, reqs, _) = sent_to_any(&mut rpcs);
        assert_eq!(to, vec![r[head].addr], "walks back to r[{pred}]");
        let succs = [r[head + 1], r[head + 2]];
        let parts = (&mut ops, &mut store, &mut rpcs);
        state_of(parts, r[head], reqs[0], r[pred], &succs);
    }
    // The silent owner stays a primary; the others are its successors.
    let (to, reqs, done) = sent_to_any(&mut rpcs);
    assert_eq!(to, vec![r[1].addr, r[2].addr, r[3].addr]);
    assert!(done.is_empty());
    let parts = (&mut ops, &mut store, &mut rpcs);
    assert_eq!(
        stored_by(parts, [(r[2], reqs[1]), (r[3], reqs[2])]),
        write_done(op)
    );
}

#[test]
fn a_successor_that_forgot_the_silent_owner_is_no_anchor() {
    // The node after the silent owner already took the owner's
    // predecessor as its own: the silent owner still leads the list, and
    // the operation is not anchored at its successor.
    let r = ring(8);
    let (mut ops, mut store, mut rpcs, op) = write_from(&r, r[2].id, &[r[2], r[3], r[4]]);
    silent_twice(&mut ops, &mut store, &mut rpcs, r[2]);
    let (to, reqs, _) = sent_to_any(&mut rpcs);
    assert_eq!(to, vec![r[3].addr]);
    let parts = (&mut ops, &mut store, &mut rpcs);
    state_of(parts, r[3], reqs[0], r[1], &[r[4], r[5]]);
    let (to, reqs, _) = sent_to_any(&mut rpcs);
    assert_eq!(to, vec![r[2].addr, r[3].addr, r[4].addr]);
    // Without the silent owner, two of its successors make the write.
    let parts = (&mut ops, &mut store, &mut rpcs);
    let answered = stored_by(parts, [(r[3], reqs[1]), (r[4], reqs[2])]);
    assert_eq!(answered, write_done(op), "unanchored: W of the others");
}

/// Node `r[0]` starts writing an announce at `key`, from `list` as a
/// lookup found it.
fn write_from(r: &[Peer], key: Id, list: &[Peer]) -> (Ops, Store, Rpcs, OpId) {
    let (mut ops, mut store, mut rpcs) = node(r);
    let ring_part = Neighbours::new(r[0], 8);
    let (now, op) = (Instant::now(), ops.new_op());
    ops.queue_write(op, announce(1).into());
    ops.start_write(now, op, key, list, &ring_part, &mut store, &mut rpcs);
    (ops, store, rpcs, op)
}

/// Each of `answers` (a replica and the request it got) stored the write;
/// what finished then.
fn stored_by<const K: usize>(
    (ops, store, rpcs): (&mut Ops, &mut Store, &mut Rpcs),
    answers: [(Peer, ReqId); K],
) -> Vec<Output> {
    for (replica, req) in answers {
        let stored = Message::Stored { req, ok: true };
        answer(ops, store, rpcs, replica, req, stored);
    }
    sent_to_any(rpcs).2
}

/// Op `op` finished: stored.
fn write_done(op: OpId) -> Vec<Output> {
    vec![Output::Done {
        op,
        result: Ok(OpOutcome::Stored),
    }]
}

/// Like `sent_to`, for requests of any kind.
fn sent_to_any(rpcs: &mut Rpcs) -> (Vec<SocketAddr>, Vec<ReqId>, Vec<Output>) {
    let (sent, done) = outputs(rpcs);
    let to = sent.iter().map(|(a, _)| *a).collect();
    let reqs = sent
        .iter()
        .map(|(_, m)| match m {
            Message::GetState { req } => *req,
            other => req_of(other),
        })
        .collect();
    (to, reqs, done)
}
