//! Quorum reads: merge, repair, spares, kinds; answered by hand.

use super::*;

#[test]
fn a_read_merges_every_answer_then_repairs_the_replicas_behind() {
    let r = ring(6);
    let (mut ops, mut store, mut rpcs) = node(&r);
    let now = Instant::now();
    let (a, b) = (announce(1), announce(2));
    let mut ab = a.clone();
    ab.merge(&b);
    let op = ops.new_op();
    let key = r[1].id;
    read_confirmed(
        &mut ops,
        &mut store,
        &mut rpcs,
        now,
        op,
        (key, SwarmList::KIND),
        &r[1..=3],
    );
    let (sent, _) = outputs(&mut rpcs);
    let fetched = |req, list: &SwarmList| Message::Fetched {
        req,
        ready: true,
        value: list.to_wire(now),
    };
    for (i, list) in [(0, &a), (1, &ab), (2, &b)] {
        let req = req_of(&sent[i].1);
        answer(
            &mut ops,
            &mut store,
            &mut rpcs,
            r[i + 1],
            req,
            fetched(req, list),
        );
        let (repairs, done) = outputs(&mut rpcs);
        if i < 2 {
            // R answers are in, but the last one is still merged first.
            assert!(done.is_empty() && repairs.is_empty(), "answer {i}");
            continue;
        }
        let peers = ab.live(now);
        assert_eq!(
            done,
            vec![Output::Done {
                op,
                result: Ok(OpOutcome::Peers(peers))
            }]
        );
        let repaired: Vec<SocketAddr> = repairs.iter().map(|(a, _)| *a).collect();
        assert_eq!(
            repaired,
            vec![r[1].addr, r[3].addr],
            "not r[2], which had both"
        );
        let Message::Store {
            value: WireRecord::Swarm(entries),
            ..
        } = &repairs[0].1
        else {
            panic!("{repairs:?}");
        };
        let pushed: Vec<u16> = entries.iter().map(|e| e.peer.port()).collect();
        assert_eq!(pushed, vec![1, 2], "the union");
    }
}

#[test]
fn answers_that_do_not_count_send_the_read_to_a_spare() {
    let r = ring(6);
    let (mut ops, mut store, mut rpcs) = node(&r);
    let now = Instant::now();
    let op = ops.new_op();
    let key = r[1].id;
    read_confirmed(
        &mut ops,
        &mut store,
        &mut rpcs,
        now,
        op,
        (key, GrowSet::KIND),
        &r[1..=5],
    );
    let (sent, _) = outputs(&mut rpcs);
    assert!(matches!(
        sent[0].1,
        Message::Fetch {
            kind: GrowSet::KIND,
            ..
        }
    ));
    let (q1, q2, q3) = (req_of(&sent[0].1), req_of(&sent[1].1), req_of(&sent[2].1));
    // Still receiving its key range: no answer.
    let not_ready = Message::Fetched {
        req: q1,
        ready: false,
        value: GrowSet::default().to_wire(now),
    };
    answer(&mut ops, &mut store, &mut rpcs, r[1], q1, not_ready);
    // A record of another kind than asked: no answer either.
    let wrong_kind = Message::Fetched {
        req: q2,
        ready: true,
        value: WireRecord::Swarm(vec![]),
    };
    answer(&mut ops, &mut store, &mut rpcs, r[2], q2, wrong_kind);
    let (spares, done) = outputs(&mut rpcs);
    let spares: Vec<SocketAddr> = spares.iter().map(|(a, _)| *a).collect();
    assert_eq!(spares, vec![r[4].addr, r[5].addr]);
    // Only r[3] of the replica set is left, and spares never make a read.
    let err = ChordError::QuorumFailed { got: 0, needed: 2 };
    assert_eq!(
        done,
        vec![Output::Done {
            op,
            result: Err(err)
        }]
    );
    let set = Message::Fetched {
        req: q3,
        ready: true,
        value: GrowSet::of([3]).to_wire(now),
    };
    answer(&mut ops, &mut store, &mut rpcs, r[3], q3, set);
    let (_, done) = outputs(&mut rpcs);
    assert!(done.is_empty(), "reported once");
}

#[test]
fn a_read_of_another_kind_returns_the_merged_record() {
    let r = ring(6);
    let (mut ops, mut store, mut rpcs) = node(&r);
    let now = Instant::now();
    let key = r[0].id;
    assert!(store.merge(key, &GrowSet::of([1]).into()));
    let op = ops.new_op();
    // We are a replica: our own copy is one answer.
    read_confirmed(
        &mut ops,
        &mut store,
        &mut rpcs,
        now,
        op,
        (key, GrowSet::KIND),
        &r[..=1],
    );
    let (sent, _) = outputs(&mut rpcs);
    let req = req_of(&sent[0].1);
    let fetched = Message::Fetched {
        req,
        ready: true,
        value: GrowSet::of([2]).to_wire(now),
    };
    answer(&mut ops, &mut store, &mut rpcs, r[1], req, fetched);
    let (repairs, done) = outputs(&mut rpcs);
    let merged = Record::from(GrowSet::of([1, 2]));
    assert_eq!(
        done,
        vec![Output::Done {
            op,
            result: Ok(OpOutcome::Record(merged.clone()))
        }]
    );
    // Both were behind: ours is repaired in place, r[1]'s by a push.
    assert_eq!(store.get(key, GrowSet::KIND), Some(&merged));
    assert_eq!(repairs.len(), 1);
}
