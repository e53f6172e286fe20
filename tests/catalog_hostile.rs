//! Hostile input to the catalog's record kinds, delivered to a replica as
//! another node's `Store`: metadata that does not hash to its key, an
//! oversize value, a posting whose word is not in the song's metadata, a
//! posting whose tags differ from the metadata's, a posting of a song the
//! ring has no metadata for. Each is refused (`Stored { ok: false }`) and
//! leaves the replica's records as they were; honest ones are taken.

#[path = "support/song_info.rs"]
mod song_info;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use song_info::{song_info, song_of};
use songswarm::chord::message::{Message, WireRecord};
use songswarm::chord::node::{Node, Output};
use songswarm::chord::records::{Immutable, Postings, Record, RecordKind, MAX_VALUE};
use songswarm::config::ChordConfig;
use songswarm::id::Id;
use songswarm::words::{posting_key, shard_of};

const TTL: Duration = Duration::from_secs(600);

fn addr(last: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, last], 7000))
}

/// A node alone in its ring: it holds every key.
fn lone_node() -> (Node, Instant) {
    let now = Instant::now();
    let mut node = Node::new(addr(1), ChordConfig::default(), 1, now);
    node.start(now, Vec::new());
    while node.poll_output().is_some() {}
    (node, now)
}

/// Delivers a `Store` of `value` at `key` from another node; returns its
/// answer.
fn store(node: &mut Node, now: Instant, key: Id, value: WireRecord) -> bool {
    node.handle_message(
        now,
        addr(9),
        Message::Store {
            req: 77,
            key,
            value,
        },
    );
    // The node may first read the ring (itself) for metadata: run its
    // timers, in virtual time, until it answers.
    let mut at = now;
    for _ in 0..50 {
        while let Some(out) = node.poll_output() {
            if let Output::Send {
                to,
                msg: Message::Stored { req: 77, ok },
            } = out
            {
                assert_eq!(to, addr(9));
                return ok;
            }
        }
        at = node.poll_timeout().expect("a timer").max(at);
        node.handle_timeout(at);
    }
    panic!("the store was never answered")
}

fn metadata(info: &[u8], now: Instant) -> WireRecord {
    Immutable::new(info.to_vec(), now, TTL).to_wire(now)
}

#[test]
fn metadata_must_hash_to_its_key_and_fit() {
    let (mut node, now) = lone_node();
    let info = song_info("Sunrise", "Nova", "Blue Hours", 200_000, 50_000);
    let ih = Id::hash(&info);
    let wrong = Id::hash(b"another torrent");
    assert!(!store(&mut node, now, wrong, metadata(&info, now)));
    assert!(node.record(&wrong, Immutable::KIND).is_none());

    let big = vec![b'x'; MAX_VALUE + 1];
    assert!(!store(&mut node, now, Id::hash(&big), metadata(&big, now)));
    assert!(node.record(&Id::hash(&big), Immutable::KIND).is_none());

    assert!(store(&mut node, now, ih, metadata(&info, now)));
    let held = node.record(&ih, Immutable::KIND).expect("stored").clone();
    // Other bytes under the same key later: refused, the value unchanged.
    let other = song_info("Sunrise", "Nova", "Blue Hours", 1, 50_000);
    assert!(!store(&mut node, now, ih, metadata(&other, now)));
    assert_eq!(node.record(&ih, Immutable::KIND), Some(&held));
}

#[test]
fn postings_must_be_vouched_for_by_the_metadata() {
    let (mut node, now) = lone_node();
    let info = song_info("Sunrise", "Nova", "Blue Hours", 200_000, 50_000);
    let ih = Id::hash(&info);
    let song = song_of(&info);
    let shard = shard_of(&ih);
    assert!(store(&mut node, now, ih, metadata(&info, now)));

    // Honest: taken.
    let key = posting_key("sunrise", shard);
    let honest = Postings::new("sunrise", std::slice::from_ref(&song), now, TTL);
    assert!(store(&mut node, now, key, honest.to_wire(now)));
    let before = node.record(&key, Postings::KIND).cloned();
    assert_eq!(before, Some(Record::from(honest.clone())));

    // A word the metadata does not have, with tags claimed to match it.
    let mut forged = song.clone();
    forged.title = "Sunrise Jackpot".into();
    let jackpot = posting_key("jackpot", shard);
    let unrelated = Postings::new("jackpot", std::slice::from_ref(&forged), now, TTL);
    assert!(!store(&mut node, now, jackpot, unrelated.to_wire(now)));
    assert!(node.record(&jackpot, Postings::KIND).is_none());

    // The right word, other tags: refused, the list as it was.
    let retitled = Postings::new("sunrise", &[forged], now + TTL, TTL);
    assert!(!store(&mut node, now, key, retitled.to_wire(now)));
    assert_eq!(node.record(&key, Postings::KIND).cloned(), before);

    // A posting filed under another shard's key, or another word's key.
    let wrong_shard = posting_key("sunrise", (shard + 1) % songswarm::words::SHARDS);
    assert!(!store(&mut node, now, wrong_shard, honest.to_wire(now)));
    assert!(node.record(&wrong_shard, Postings::KIND).is_none());
    let nova = posting_key("nova", shard);
    assert!(!store(&mut node, now, nova, honest.to_wire(now)));
    assert!(node.record(&nova, Postings::KIND).is_none());

    // A torn body: refused.
    let WireRecord::Tagged { kind, mut body } = honest.to_wire(now) else {
        panic!("postings are tagged");
    };
    body.truncate(body.len() - 3);
    assert!(!store(
        &mut node,
        now,
        key,
        WireRecord::Tagged { kind, body }
    ));
    assert_eq!(node.record(&key, Postings::KIND).cloned(), before);
}

#[test]
fn a_posting_of_a_song_without_metadata_in_the_ring_is_refused() {
    let (mut node, now) = lone_node();
    let info = song_info("Nowhere", "Ghost", "Unpublished", 1000, 10_000);
    let song = song_of(&info);
    let key = posting_key("nowhere", shard_of(&song.info_hash));
    let posting = Postings::new("nowhere", &[song], now, TTL);
    // The node reads the ring for the metadata (none), then refuses.
    assert!(!store(&mut node, now, key, posting.to_wire(now)));
    assert!(node.record(&key, Postings::KIND).is_none());
}
