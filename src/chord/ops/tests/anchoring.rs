//! Anchoring at the owner, answered by hand.

use super::*;

#[test]
fn anchoring_walks_back_to_the_owner_a_lookup_did_not_know() {
    // Seed 5000005 of the announce history: two nodes joined just before
    // the owner r[3] that the lookup found.
    let r = ring(8);
    let (mut ops, mut store, mut rpcs) = node(&r);
    let ring_part = Neighbours::new(r[0], 8);
    let (now, op) = (Instant::now(), ops.new_op());
    ops.queue_write(op, announce(1).into());
    let key = r[1].id;
    let list = [r[3], r[4], r[5], r[6]];
    ops.start_write(now, op, key, &list, &ring_part, &mut store, &mut rpcs);
    let (to, reqs, _) = sent_to_any(&mut rpcs);
    assert_eq!(to, vec![r[3].addr]);
    let state = |req, pred: Peer, succs: &[Peer]| Message::State {
        req,
        pred: Some(pred.addr),
        succs: succs.iter().map(|p| p.addr).collect(),
    };
    // r[3]'s predecessor r[2] lies between the key and r[3]: ask it.
    let msg = state(reqs[0], r[2], &[r[4], r[5]]);
    answer(&mut ops, &mut store, &mut rpcs, r[3], reqs[0], msg);
    let (to, reqs, _) = sent_to_any(&mut rpcs);
    assert_eq!(to, vec![r[2].addr]);
    let msg = state(reqs[0], r[1], &[r[3], r[4]]);
    answer(&mut ops, &mut store, &mut rpcs, r[2], reqs[0], msg);
    let (to, reqs, _) = sent_to_any(&mut rpcs);
    assert_eq!(to, vec![r[1].addr]);
    // r[1] is the key itself, owned by r[1]: the write goes to r[1..=3].
    let msg = state(reqs[0], r[0], &[r[2], r[3]]);
    answer(&mut ops, &mut store, &mut rpcs, r[1], reqs[0], msg);
    let (to, _, _) = sent_to_any(&mut rpcs);
    assert_eq!(to, vec![r[1].addr, r[2].addr, r[3].addr]);
}

#[test]
fn a_silent_head_leaves_the_operation_unanchored() {
    let r = ring(6);
    let (mut ops, mut store, mut rpcs) = node(&r);
    let ring_part = Neighbours::new(r[0], 8);
    let (now, op) = (Instant::now(), ops.new_op());
    ops.queue_write(op, announce(1).into());
    let list = [r[1], r[2], r[3], r[4]];
    ops.start_write(now, op, r[1].id, &list, &ring_part, &mut store, &mut rpcs);
    for _ in 0..2 {
        let (to, reqs, _) = sent_to_any(&mut rpcs);
        assert_eq!(to, vec![r[1].addr], "asked twice");
        fail(&mut ops, &mut store, &mut rpcs, reqs[0]);
    }
    // Still a primary (spares decide nothing), but not needed.
    let (to, reqs, _) = sent_to_any(&mut rpcs);
    assert_eq!(to, vec![r[1].addr, r[2].addr, r[3].addr]);
    for (i, req) in [(2, reqs[1]), (3, reqs[2])] {
        let stored = Message::Stored { req, ok: true };
        answer(&mut ops, &mut store, &mut rpcs, r[i], req, stored);
    }
    let (_, _, done) = sent_to_any(&mut rpcs);
    assert_eq!(
        done,
        vec![Output::Done {
            op,
            result: Ok(OpOutcome::Stored)
        }]
    );
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
