//! The signed mutable item: BEP 44's signing buffer, the replica's checks
//! (each refusal with its reason, the record unchanged), and the join.

use std::time::{Duration, Instant};

use super::*;
use crate::chord::records::{assert_join_laws, Record};
use crate::chord::store::Store;

fn owner(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn item(key: &SigningKey, salt: &[u8], seq: u64, v: &[u8]) -> SignedItem {
    SignedItem::sign(key, salt, seq, v.to_vec()).expect("a valid item")
}

fn limits() -> Limits {
    Limits {
        max_items_per_key: 10,
        max_items_per_source: 10,
        max_items_per_key_per_source: 10,
        max_items: usize::MAX,
        max_ttl: Duration::from_secs(60),
    }
}

/// BEP 44's test vector 2 (mutable item with salt): its signing buffer.
#[test]
fn signing_buffer_is_bep44s() {
    let buf = signing_buffer(b"foobar", 1, b"12:Hello World!");
    assert_eq!(buf, b"4:salt6:foobar3:seqi1e1:v12:Hello World!".to_vec());
    assert_eq!(signing_buffer(b"", 1, b"12:Hello World!"), b"3:seqi1e1:v12:Hello World!".to_vec());
}

/// BEP 44's test vector: the published key pair, value and signature.
#[test]
fn bep44_test_vector_verifies() {
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    };
    let k: [u8; 32] = hex("77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548").try_into().unwrap();
    let sig: [u8; 64] = hex(
        "6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17d\
         df9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f18f14951a87d9a08",
    )
    .try_into()
    .unwrap();
    let signed = SignedItem {
        seq: 1,
        sig,
        v: b"12:Hello World!".to_vec(),
        salt: b"foobar".to_vec(),
        k,
    };
    let key: Id = "411eba73b6f087ca51a3795d9c8c938d365e32c1".parse().unwrap();
    assert_eq!(signed.target(), key);
    assert_eq!(signed.verify(&key), Ok(()));
}

#[test]
fn join_keeps_the_highest_seq_and_breaks_ties_the_same_everywhere() {
    let (a, b) = (owner(1), owner(2));
    let x = Mutable::put(item(&a, b"list", 3, b"1:x"));
    let y = Mutable::put(item(&b, b"list", 3, b"1:y"));
    let z = Mutable::put(item(&a, b"list", 4, b"1:z"));
    assert_join_laws(&x, &y, &z);
    assert_join_laws(&x, &Mutable::default(), &y);
    let mut m = x.clone();
    m.merge(&z);
    assert_eq!(m.seq(), 4);
    // Of one item, the later expiry; a greater item wins whatever its expiry.
    let t = Instant::now();
    let (x1, x2) = (x.clone().until(t), x.clone().until(t + Duration::from_secs(9)));
    let z1 = z.clone().until(t);
    assert_join_laws(&x1, &x2, &z1);
    let mut m = x1.clone();
    m.merge(&x2);
    assert_eq!(m, x2);
    m.merge(&z1);
    assert_eq!(m, z1);
    assert!(x1.is_behind(&x2, Duration::ZERO));
    assert!(!x1.is_behind(&x2, Duration::from_secs(9)));
    assert!(!z1.is_behind(&x2, Duration::ZERO));
}

#[test]
fn an_item_not_written_again_expires_and_leaves_the_store() {
    let t = Instant::now();
    let pair = owner(4);
    let it = item(&pair, b"old part", 1, b"1:p");
    let key = it.target();
    let mut store = Store::new(limits());
    let wire = Mutable::put(it).until(t + Duration::from_secs(10)).to_wire(t);
    assert!(store.merge_wire(t, key, &wire, None));
    store.expire(t + Duration::from_secs(9));
    assert!(store.get(key, Mutable::KIND).is_some(), "gone early");
    // Written again (same seq): lives on from the new write.
    let again = store.get(key, Mutable::KIND).cloned().unwrap();
    let renewed = <&Mutable>::try_from(&again).unwrap().clone();
    let renewed = renewed.until(t + Duration::from_secs(20));
    assert!(store.merge(key, &renewed.into()));
    store.expire(t + Duration::from_secs(15));
    assert!(store.get(key, Mutable::KIND).is_some(), "renewal not kept");
    store.expire(t + Duration::from_secs(20));
    assert!(store.get(key, Mutable::KIND).is_none(), "never expired");
    assert_eq!(store.len(), 0);
}

#[test]
fn travels_and_comes_back_the_same() {
    let now = Instant::now();
    let m = Mutable::swap(item(&owner(1), b"name", 7, b"li1ei2ee"), 6);
    let m = m.until(now + Duration::from_secs(60));
    let wire = m.to_wire(now);
    assert_eq!(Mutable::from_wire(now, &wire, &limits()), Some(m.clone()));
    // A write sent without time left lives MAX_TTL; none lives longer.
    let fresh = Mutable { expiry: None, ..m.clone() }.to_wire(now);
    let taken = Mutable::from_wire(now, &fresh, &limits()).unwrap();
    assert_eq!(taken.expiry, Some(now + MAX_TTL));
    let long = m.clone().until(now + MAX_TTL * 5).to_wire(now);
    let capped = Mutable::from_wire(now, &long, &limits()).unwrap();
    assert_eq!(capped.expiry, Some(now + MAX_TTL));
    let empty = Mutable::default().to_wire(now);
    assert_eq!(empty, WireRecord::Tagged { kind: 44, body: b"de".to_vec() });
    assert_eq!(Mutable::from_wire(now, &empty, &limits()), Some(Mutable::default()));
    let short_sig = WireRecord::Tagged { kind: 44, body: b"d1:k32:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa4:salt0:3:seqi1e3:sig2:xx1:v1:xe".to_vec() };
    assert_eq!(Mutable::from_wire(now, &short_sig, &limits()), None);
    let torn = WireRecord::Tagged { kind: 44, body: b"d1:k".to_vec() };
    assert_eq!(Mutable::from_wire(now, &torn, &limits()), None);
}

/// A store holding seq 5 of `key`, and that key.
fn store_at_5() -> (Store, Id, SigningKey) {
    let key_pair = owner(9);
    let first = item(&key_pair, b"mix", 5, b"1:a");
    let key = first.target();
    let mut store = Store::new(limits());
    assert!(store.merge(key, &Mutable::put(first).into()));
    (store, key, key_pair)
}

fn held(store: &Store, key: Id) -> Record {
    store.get(key, Mutable::KIND).cloned().expect("held")
}

/// Each hostile write is refused, names its reason, and leaves the
/// replica's item as it was.
#[test]
fn hostile_writes_are_refused_and_change_nothing() {
    let (mut store, key, pair) = store_at_5();
    let before = held(&store, key);

    let mut forged = item(&pair, b"mix", 6, b"1:b");
    forged.v = b"1:c".to_vec();
    let forged = Mutable::put(forged);
    assert_eq!(forged.check(&key), Err(MutableError::BadSignature));

    let lower = Mutable::put(item(&pair, b"mix", 4, b"1:b"));
    let current = <&Mutable>::try_from(&before).unwrap();
    assert_eq!(current.admit(&lower), Err(MutableError::LowerSeq { offered: 4, held: 5 }));

    let stale_cas = Mutable::swap(item(&pair, b"mix", 6, b"1:b"), 4);
    assert_eq!(current.admit(&stale_cas), Err(MutableError::CasFailed { expected: 4, held: 5 }));

    let big = vec![b'x'; MAX_VALUE];
    let mut oversize_v = format!("{}:", big.len()).into_bytes();
    oversize_v.extend(big);
    assert_eq!(
        SignedItem::sign(&pair, b"mix", 6, oversize_v.clone()),
        Err(MutableError::Oversize { len: oversize_v.len() })
    );
    let mut oversize = item(&pair, b"mix", 6, b"1:b");
    oversize.v = oversize_v;
    let oversize = Mutable::put(oversize);
    assert!(matches!(oversize.check(&key), Err(MutableError::Oversize { .. })));

    let other_owner = Mutable::put(item(&owner(3), b"mix", 6, b"1:b"));
    assert_eq!(other_owner.check(&key), Err(MutableError::KeyMismatch));
    let other_salt = Mutable::put(item(&pair, b"max", 6, b"1:b"));
    assert_eq!(other_salt.check(&key), Err(MutableError::KeyMismatch));

    let not_bencode = SignedItem::sign(&pair, b"mix", 6, b"hello".to_vec());
    assert_eq!(not_bencode, Err(MutableError::NotBencode));

    for hostile in [forged, lower, stale_cas, oversize, other_owner, other_salt] {
        assert!(!store.merge(key, &hostile.clone().into()), "{hostile:?} was taken");
        assert_eq!(held(&store, key), before, "{hostile:?} changed the replica");
    }
}

#[test]
fn compare_and_swap_takes_the_expected_seq_and_stores_no_cas() {
    let (mut store, key, pair) = store_at_5();
    let next = Mutable::swap(item(&pair, b"mix", 6, b"1:b"), 5);
    assert!(store.merge(key, &next.into()));
    let now = <&Mutable>::try_from(&held(&store, key)).unwrap().clone();
    assert_eq!((now.seq(), now.cas), (6, None));
    // A second device that read seq 5 too is refused.
    let racer = Mutable::swap(item(&pair, b"mix", 6, b"1:z"), 5);
    assert!(!store.merge(key, &racer.into()));
    // A first write expects nothing held (0).
    let fresh = item(&pair, b"new", 1, b"1:n");
    let fresh_key = fresh.target();
    assert!(!store.merge(fresh_key, &Mutable::swap(fresh.clone(), 3).into()));
    assert!(store.merge(fresh_key, &Mutable::swap(fresh, 0).into()));
    // A repair of the same version is idempotent.
    let again = <&Mutable>::try_from(&held(&store, key)).unwrap().clone();
    assert!(store.merge(key, &again.into()));
}
