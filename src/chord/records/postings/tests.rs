use super::*;
use crate::chord::records::assert_join_laws;

fn limits() -> Limits {
    Limits {
        max_items_per_key: 10,
        max_items_per_source: 10,
        max_items_per_key_per_source: 10,
        max_items: usize::MAX,
        max_ttl: Duration::from_secs(600),
    }
}

/// An info-hash in shard 0.
fn hash(n: u8) -> Id {
    let mut id = Id::hash(&[n]);
    id.0[0] = n.wrapping_mul(SHARDS);
    id
}

fn song(n: u8, title: &str) -> Song {
    Song {
        info_hash: hash(n),
        file: 0,
        title: title.to_string(),
        artist: "Nova Band".into(),
        album: "Blue Hours".into(),
        duration_ms: 1000 * n as u64,
    }
}

fn posting(word: &str, s: &Song, now: Instant, secs: u64) -> Postings {
    Postings::new(word, std::slice::from_ref(s), now, Duration::from_secs(secs))
}

#[test]
fn merge_is_a_join_keeping_the_later_expiry() {
    let now = Instant::now();
    let a = posting("nova", &song(1, "Sunrise"), now, 10);
    let b = posting("nova", &song(1, "Sunrise"), now, 20);
    let c = posting("nova", &song(2, "Dusk"), now, 5);
    assert_join_laws(&a, &b, &c);
    assert_join_laws(&a, &Postings::default(), &posting("hours", &song(3, "X"), now, 1));
    let mut m = a.clone();
    m.merge(&b);
    m.merge(&c);
    assert_eq!(m.count(), 2);
    assert!(a.is_behind(&m, Duration::ZERO));
    assert!(!m.is_behind(&b, Duration::ZERO));
}

#[test]
fn validation_binds_word_shard_and_key() {
    let now = Instant::now();
    let p = posting("sunrise", &song(1, "Sunrise"), now, 10);
    assert!(p.validate(&posting_key("sunrise", 0)));
    assert!(!p.validate(&posting_key("sunrise", 1)), "wrong shard key");
    assert!(!p.validate(&posting_key("dusk", 0)), "another word's key");
    // A word the song's own tags do not contain.
    let unrelated = posting("dusk", &song(1, "Sunrise"), now, 10);
    assert!(!unrelated.validate(&posting_key("dusk", 0)));
    // A song of another shard.
    let mut other = song(1, "Sunrise");
    other.info_hash.0[0] = 1;
    let misplaced = posting("sunrise", &other, now, 10);
    assert!(!misplaced.validate(&posting_key("sunrise", 0)));
    // An oversize field.
    let long = song(1, &format!("Sunrise {}", "x".repeat(MAX_FIELD)));
    assert!(!posting("sunrise", &long, now, 10).validate(&posting_key("sunrise", 0)));
    // A word that is not normalized.
    let upper = posting("Sunrise", &song(1, "Sunrise"), now, 10);
    assert!(!upper.validate(&posting_key("Sunrise", 0)));
}

#[test]
fn metadata_must_vouch_for_every_song() {
    let now = Instant::now();
    let s = song(1, "Sunrise");
    let p = posting("sunrise", &s, now, 10);
    assert!(p.vouched_by(|_| Some(vec![s.clone()])));
    assert!(!p.vouched_by(|_| None), "no metadata in the ring");
    let mut retitled = s.clone();
    retitled.title = "Sunrise Remix".into();
    assert!(!p.vouched_by(|_| Some(vec![retitled.clone()])), "tags differ");
}

#[test]
fn a_full_list_evicts_the_least_recently_seen() {
    let now = Instant::now();
    let mut list = Postings::default();
    let mut quota = Quota::default();
    for n in 0..MAX_POSTINGS as u8 {
        let p = posting("nova", &song(n, "T"), now, 100 + n as u64);
        assert!(list.merge_capped(&p, &limits(), &mut quota));
    }
    assert_eq!(list.count(), MAX_POSTINGS);
    // Older than everything held: refused.
    let stale = posting("nova", &song(200, "T"), now, 50);
    assert!(!list.merge_capped(&stale, &limits(), &mut quota));
    assert!(!list.songs().any(|s| s.info_hash == hash(200)));
    // Fresher: takes the place of song 0, the least recently seen.
    let fresh = posting("nova", &song(201, "T"), now, 1000);
    assert!(list.merge_capped(&fresh, &limits(), &mut quota));
    assert_eq!(list.count(), MAX_POSTINGS);
    assert!(list.songs().any(|s| s.info_hash == hash(201)));
    assert!(!list.songs().any(|s| s.info_hash == hash(0)));
    // A record of another word is never merged into this one.
    let other = posting("blue", &song(3, "T"), now, 1000);
    assert!(!list.merge_capped(&other, &limits(), &mut quota));
}

#[test]
fn wire_round_trip_carries_time_left_and_refuses_torn_bodies() {
    let now = Instant::now();
    let mut p = posting("nova", &song(1, "Sunrise"), now, 100);
    p.merge(&posting("nova", &song(2, "Jóga – live"), now, 50));
    let later = now + Duration::from_secs(10);
    let wire = p.to_wire(later);
    let back = Postings::from_wire(now, &wire, &limits()).expect("parses");
    assert_eq!(back, {
        let mut q = posting("nova", &song(1, "Sunrise"), now, 90);
        q.merge(&posting("nova", &song(2, "Jóga – live"), now, 40));
        q
    });
    let capped = Postings::from_wire(now, &wire, &Limits {
        max_ttl: Duration::from_secs(1),
        ..limits()
    })
    .expect("parses");
    assert!(capped.is_behind(&back, Duration::ZERO));
    let WireRecord::Tagged { body, .. } = wire else {
        panic!("tagged");
    };
    for cut in [0, 3, body.len() - 1] {
        let torn = WireRecord::Tagged {
            kind: Postings::KIND,
            body: body[..cut].to_vec(),
        };
        assert_eq!(Postings::from_wire(now, &torn, &limits()), None, "cut at {cut}");
    }
    let mut long = body.clone();
    long.push(0);
    let trailing = WireRecord::Tagged {
        kind: Postings::KIND,
        body: long,
    };
    assert_eq!(Postings::from_wire(now, &trailing, &limits()), None);
}
