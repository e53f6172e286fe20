//! What the ring keeps and what it lets go, in the seeded simulation:
//! signed items and immutable values expire unless written again (a part
//! of a playlist that the head of the current version no longer
//! references goes away once its owner stops writing it), and anti-entropy
//! in a steady ring sends no records that both sides hold (a digest of
//! versions first).

#[path = "support/chord_sim.rs"]
mod chord_sim;

use std::time::Duration;

use chord_sim::{ideal_ring, sim_config, Sim};
use ed25519_dalek::SigningKey;
use songswarm::chord::node::OpOutcome;
use songswarm::chord::records::{
    Immutable, Mutable, Record, RecordKind, SignedItem, MAX_MUTABLE_TTL,
};
use songswarm::id::Id;
use songswarm::wire::chord::message::Kind;

const NODES: usize = 8;

/// A steady ring of [`NODES`] nodes without message loss.
fn ring(seed: u64) -> Sim {
    let mut sim = Sim::new(seed, sim_config());
    sim.drop_rate = 0.0;
    sim.add_node(None);
    for _ in 1..NODES {
        sim.add_node(Some(0));
        sim.run_for(Duration::from_millis(200), |_| Ok(()));
    }
    sim.converge(Duration::from_secs(120), |_| Ok(()));
    sim
}

/// Put `record` at `key` through a member; panics unless acknowledged.
fn put(sim: &mut Sim, key: Id, record: Record) {
    for _ in 0..5 {
        let i = sim.random_member().expect("a member");
        let value = record.clone();
        let op = sim.call(i, |node, now| node.put(now, key, value));
        sim.run_for(Duration::from_secs(2), |_| Ok(()));
        if let Some(Ok(OpOutcome::Stored)) = sim.result(i, op).map(|f| &f.result) {
            return;
        }
    }
    panic!("seed {}: no put of {key} acknowledged", sim.seed);
}

/// Nodes whose store holds a record of `kind` at `key`.
fn holders(sim: &Sim, key: Id, kind: Kind) -> usize {
    sim.nodes
        .iter()
        .filter(|n| n.alive && n.node.record(&key, kind).is_some())
        .count()
}

fn signed(pair: &SigningKey, salt: &str, seq: u64, v: &str) -> SignedItem {
    SignedItem::sign(pair, salt.as_bytes(), seq, v.as_bytes().to_vec()).expect("valid")
}

#[test]
fn an_unreferenced_part_and_an_unrepublished_value_go_away_after_their_ttl() {
    let mut sim = ring(14);
    let pair = SigningKey::from_bytes(&[7; 32]);
    // Version 1 of a playlist: a head and its part; version 2 replaces the
    // part. The owner then keeps only version 2's records.
    let old_part = signed(&pair, "#old", 1, "1:a");
    let new_part = signed(&pair, "#new", 1, "1:b");
    let head_v1 = signed(&pair, "mix", 1, "3:old");
    let head_v2 = signed(&pair, "mix", 2, "3:new");
    for item in [&old_part, &head_v1, &new_part, &head_v2] {
        put(&mut sim, item.target(), Mutable::put(item.clone()).into());
    }
    // A value written once, and one written again at half its life.
    let ttl = Duration::from_secs(20 * 60);
    let (once, kept) = (b"written once".to_vec(), b"kept alive".to_vec());
    let (once_key, kept_key) = (Immutable::key_of(&once), Immutable::key_of(&kept));
    let now = sim.now;
    put(&mut sim, once_key, Immutable::new(once, now, ttl).into());
    sim.run_for(Duration::from_secs(30), |_| Ok(()));
    let (head, part) = (head_v2.target(), new_part.target());
    for (key, kind) in [
        (old_part.target(), Mutable::KIND),
        (head, Mutable::KIND),
        (part, Mutable::KIND),
        (once_key, Immutable::KIND),
    ] {
        assert!(
            holders(&sim, key, kind) >= 3,
            "seed 14: {key} not on N replicas"
        );
    }
    // The owner's upkeep, for longer than MAX_MUTABLE_TTL.
    let end = sim.now + MAX_MUTABLE_TTL + Duration::from_secs(10 * 60);
    while sim.now < end {
        for item in [&head_v2, &new_part] {
            put(&mut sim, item.target(), Mutable::put(item.clone()).into());
        }
        let now = sim.now;
        put(
            &mut sim,
            kept_key,
            Immutable::new(kept.clone(), now, ttl).into(),
        );
        sim.run_for(ttl / 2, |_| Ok(()));
        assert!(ideal_ring(&sim).is_ok(), "the ring broke");
    }
    assert_eq!(
        holders(&sim, old_part.target(), Mutable::KIND),
        0,
        "the old part stayed"
    );
    assert_eq!(
        holders(&sim, once_key, Immutable::KIND),
        0,
        "the value written once stayed"
    );
    assert!(
        holders(&sim, head, Mutable::KIND) >= 3,
        "the head went away"
    );
    assert!(
        holders(&sim, part, Mutable::KIND) >= 3,
        "the current part went away"
    );
    assert!(
        holders(&sim, kept_key, Immutable::KIND) >= 3,
        "the kept value went away"
    );
    // And the head read is version 2.
    let i = sim.random_member().expect("a member");
    let op = sim.call(i, |node, now| node.get(now, head, Mutable::KIND));
    sim.run_for(Duration::from_secs(2), |_| Ok(()));
    let Some(Ok(OpOutcome::Record(record))) = sim.result(i, op).map(|f| &f.result) else {
        panic!("no read of the head");
    };
    let m = <&Mutable>::try_from(record).expect("a signed item");
    assert_eq!(m.seq(), 2);
}

#[test]
fn a_steady_ring_sends_no_record_bytes_for_records_both_sides_hold() {
    let mut sim = ring(15);
    let pair = SigningKey::from_bytes(&[8; 32]);
    let ttl = Duration::from_secs(3600);
    for n in 0..20u64 {
        let item = signed(&pair, &format!("list {n}"), n + 1, "2:ok");
        put(&mut sim, item.target(), Mutable::put(item).into());
        let value = format!("value {n}").into_bytes();
        let now = sim.now;
        put(
            &mut sim,
            Immutable::key_of(&value),
            Immutable::new(value, now, ttl).into(),
        );
    }
    // Anti-entropy runs every 3 s: let it bring every record to all N.
    sim.run_for(Duration::from_secs(20), |_| Ok(()));
    let before = sim.stores_delivered;
    let digests_before = sim.digests_delivered;
    sim.run_for(Duration::from_secs(60), |_| Ok(()));
    assert!(
        sim.digests_delivered > digests_before + 20,
        "anti-entropy did not run ({} digests)",
        sim.digests_delivered - digests_before
    );
    assert_eq!(
        sim.stores_delivered - before,
        0,
        "records pushed again in a steady ring"
    );
}

/// Digests and their answers travel unchanged (hashes use all 64 bits).
#[test]
fn digest_frames_round_trip() {
    use bytes::BytesMut;
    use songswarm::wire::chord::message::{Message, Version, SWARM_LIST};
    use songswarm::wire::chord::{ChordCodec, Frame};
    use tokio_util::codec::{Decoder, Encoder};

    let k = Id::hash(b"k");
    let version = Version {
        seq: 3,
        hash: u64::MAX - 1,
        life_ms: 7_200_000,
        items: 2,
    };
    let frames = vec![
        Frame::Node(Message::Digest {
            req: 1,
            records: vec![
                (k, SWARM_LIST, Version::default()),
                (k, Mutable::KIND, version),
            ],
        }),
        Frame::Node(Message::Wanted {
            req: 1,
            records: vec![(k, SWARM_LIST), (k, Mutable::KIND)],
        }),
    ];
    let mut codec = ChordCodec::new(1 << 20);
    let mut wire = BytesMut::new();
    for f in &frames {
        codec.encode(f.clone(), &mut wire).expect("encodes");
    }
    let mut back = Vec::new();
    let mut codec = ChordCodec::new(1 << 20);
    while let Some(f) = codec.decode(&mut wire).expect("decodes") {
        back.push(f);
    }
    assert_eq!(back, frames);
}
