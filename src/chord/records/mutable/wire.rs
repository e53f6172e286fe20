//! A signed item's wire form: a bencoded dictionary {cas?, k, salt, seq,
//! sig, ttl?, v} (see the parent module).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bendy::encoding::ToBencode;
use bendy::value::Value;

use super::{decode_one, Mutable, SignedItem, MAX_TTL};
use crate::chord::records::RecordKind;
use crate::wire::chord::message::WireRecord;

/// The record as it travels, measured at `now`.
pub(super) fn encode(m: &Mutable, now: Instant) -> WireRecord {
    let mut d: BTreeMap<Cow<'static, [u8]>, Value<'static>> = BTreeMap::new();
    let bytes = |b: &[u8]| Value::Bytes(Cow::Owned(b.to_vec()));
    let int = |i: u64| Value::Integer(i.min(i64::MAX as u64) as i64);
    if let Some(cas) = m.cas {
        d.insert(Cow::Borrowed(b"cas"), int(cas));
    }
    if let Some(i) = &m.item {
        d.insert(Cow::Borrowed(b"k"), bytes(&i.k));
        d.insert(Cow::Borrowed(b"salt"), bytes(&i.salt));
        d.insert(Cow::Borrowed(b"seq"), int(i.seq));
        d.insert(Cow::Borrowed(b"sig"), bytes(&i.sig));
        if let Some(expiry) = m.expiry {
            // At least 1 ms: an item sent at its last instant is still one.
            let left = expiry.saturating_duration_since(now).as_millis().max(1);
            d.insert(Cow::Borrowed(b"ttl"), int(left as u64));
        }
        d.insert(Cow::Borrowed(b"v"), bytes(&i.v));
    }
    let body = Value::Dict(d).to_bencode().unwrap_or_else(|_| b"de".to_vec());
    WireRecord::Tagged {
        kind: Mutable::KIND,
        body,
    }
}

/// A record received at `now`; None if it does not parse.
pub(super) fn decode(now: Instant, wire: &WireRecord) -> Option<Mutable> {
    let WireRecord::Tagged { kind, body } = wire else {
        return None;
    };
    if *kind != Mutable::KIND {
        return None;
    }
    let Value::Dict(d) = decode_one(body)? else {
        return None;
    };
    let int = |k: &[u8]| match d.get(k) {
        Some(Value::Integer(i)) if *i >= 0 => Some(Some(*i as u64)),
        None => Some(None),
        _ => None,
    };
    let bytes = |k: &[u8]| match d.get(k) {
        Some(Value::Bytes(b)) => Some(b.to_vec()),
        _ => None,
    };
    let cas = int(b"cas")?;
    if !d.contains_key(&b"k"[..]) {
        return Some(Mutable {
            item: None,
            cas,
            expiry: None,
        });
    }
    let ttl = int(b"ttl")?.map_or(MAX_TTL, |ms| Duration::from_millis(ms).min(MAX_TTL));
    let item = SignedItem {
        seq: int(b"seq")??,
        sig: bytes(b"sig")?.try_into().ok()?,
        v: bytes(b"v")?,
        salt: bytes(b"salt")?,
        k: bytes(b"k")?.try_into().ok()?,
    };
    Some(Mutable {
        item: Some(item),
        cas,
        expiry: Some(now + ttl),
    })
}
