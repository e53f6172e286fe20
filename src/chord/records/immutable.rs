//! Immutable values: bytes stored under their own SHA-1, as BEP 44's
//! immutable items. A song's metadata is one (its raw bencoded `info`
//! dictionary under its info-hash), and so is any value `dht put` stores.
//!
//! The value validates itself: a replica stores it only if SHA-1 of the
//! bytes is the key, so nobody can plant other bytes under an info-hash.
//! Values expire like swarm-list entries (time left on the wire, the
//! holder's own clock, at most [`MAX_TTL`]); whoever keeps a value alive
//! stores it again. Merge keeps the later expiry; two different values
//! under one key would need a SHA-1 collision, and the merge then keeps the
//! smaller so it stays a join.
//!
//! On the wire: 8 bytes of time left in milliseconds (big-endian), then the
//! value. A value over [`MAX_VALUE`] bytes does not parse.

use std::time::{Duration, Instant};

use crate::chord::records::{Limits, Quota, RecordKind, Version, VersionOf};
use crate::id::Id;
use crate::wire::chord::message::{Kind, WireRecord};

/// Largest value stored (an album's `info` of a few thousand pieces).
pub const MAX_VALUE: usize = 64 * 1024;

/// Longest time left a received value is taken with (BEP 44's is 2 hours).
pub const MAX_TTL: Duration = Duration::from_secs(2 * 60 * 60);

/// One immutable value and when it expires here (`None`: nothing held).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Immutable {
    /// The bytes and their expiry on this replica's clock.
    held: Option<(Vec<u8>, Instant)>,
}

impl Immutable {
    /// `value`, stored at `now` to live `ttl` (at most [`MAX_TTL`]).
    pub fn new(value: Vec<u8>, now: Instant, ttl: Duration) -> Immutable {
        Immutable {
            held: Some((value, now + ttl.min(MAX_TTL))),
        }
    }

    /// The key a value is stored under: its SHA-1.
    pub fn key_of(value: &[u8]) -> Id {
        Id::hash(value)
    }

    /// The value, if one is held.
    pub fn value(&self) -> Option<&[u8]> {
        self.held.as_ref().map(|(v, _)| v.as_slice())
    }
}

impl RecordKind for Immutable {
    const KIND: Kind = 10;

    fn merge(&mut self, other: &Immutable) {
        let Some((theirs, their_expiry)) = &other.held else {
            return;
        };
        match &mut self.held {
            None => self.held = other.held.clone(),
            Some((mine, expiry)) => {
                if theirs < mine {
                    mine.clone_from(theirs);
                }
                *expiry = (*expiry).max(*their_expiry);
            }
        }
    }

    /// One value per key: nothing to cap beyond its size, checked on parse.
    fn merge_capped(&mut self, incoming: &Immutable, _limits: &Limits, _quota: &mut Quota) -> bool {
        self.merge(incoming);
        true
    }

    fn validate(&self, key: &Id) -> bool {
        self.value()
            .is_none_or(|v| !v.is_empty() && v.len() <= MAX_VALUE && Id::hash(v) == *key)
    }

    fn expire(&mut self, now: Instant, _quota: &mut Quota) {
        if self.held.as_ref().is_some_and(|(_, e)| *e <= now) {
            self.held = None;
        }
    }

    fn is_empty(&self) -> bool {
        self.held.is_none()
    }

    fn is_behind(&self, other: &Immutable, slack: Duration) -> bool {
        match (&self.held, &other.held) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some((mine, e1)), Some((theirs, e2))) => theirs < mine || *e2 > *e1 + slack,
        }
    }

    fn version(&self, now: Instant) -> Version {
        let mut v = VersionOf::new(now, 0);
        if let Some((value, expiry)) = &self.held {
            v.bytes(value).item(Some(*expiry));
        }
        v.done()
    }

    fn to_wire(&self, now: Instant) -> WireRecord {
        let body = match &self.held {
            Some((value, expiry)) if *expiry > now => {
                let ttl = expiry.duration_since(now).as_millis() as u64;
                let mut body = ttl.to_be_bytes().to_vec();
                body.extend_from_slice(value);
                body
            }
            _ => Vec::new(),
        };
        WireRecord::Tagged {
            kind: Self::KIND,
            body,
        }
    }

    fn from_wire(now: Instant, wire: &WireRecord, _limits: &Limits) -> Option<Immutable> {
        let WireRecord::Tagged { kind, body } = wire else {
            return None;
        };
        if *kind != Self::KIND || body.len() > 8 + MAX_VALUE {
            return None;
        }
        if body.is_empty() {
            return Some(Immutable::default());
        }
        let (ttl, value) = body.split_at_checked(8)?;
        let ttl = u64::from_be_bytes(ttl.try_into().ok()?);
        if ttl == 0 || value.is_empty() {
            return Some(Immutable::default());
        }
        let ttl = Duration::from_millis(ttl).min(MAX_TTL);
        Some(Immutable::new(value.to_vec(), now, ttl))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chord::records::assert_join_laws;

    fn limits() -> Limits {
        Limits {
            max_items_per_key: 10,
            max_items_per_source: 10,
            max_items_per_key_per_source: 10,
            max_items: usize::MAX,
            max_ttl: Duration::from_secs(60),
        }
    }

    #[test]
    fn merge_keeps_the_later_expiry_and_is_a_join() {
        let now = Instant::now();
        let a = Immutable::new(b"x".to_vec(), now, Duration::from_secs(5));
        let b = Immutable::new(b"x".to_vec(), now, Duration::from_secs(9));
        let c = Immutable::default();
        assert_join_laws(&a, &b, &c);
        let mut m = a.clone();
        m.merge(&b);
        assert_eq!(m, b);
        assert!(a.is_behind(&b, Duration::ZERO));
        assert!(!a.is_behind(&b, Duration::from_secs(5)));
        assert!(!b.is_behind(&a, Duration::ZERO));
    }

    #[test]
    fn only_bytes_that_hash_to_the_key_validate() {
        let now = Instant::now();
        let v = Immutable::new(b"hello".to_vec(), now, Duration::from_secs(5));
        assert!(v.validate(&Id::hash(b"hello")));
        assert!(!v.validate(&Id::hash(b"other")));
        assert!(Immutable::default().validate(&Id::hash(b"any")));
    }

    #[test]
    fn wire_carries_time_left_and_refuses_oversize_values() {
        let now = Instant::now();
        let v = Immutable::new(b"hello".to_vec(), now, Duration::from_secs(5));
        let later = now + Duration::from_secs(2);
        let wire = v.to_wire(later);
        let back = Immutable::from_wire(now, &wire, &limits()).expect("parses");
        assert_eq!(back, Immutable::new(b"hello".to_vec(), now, Duration::from_secs(3)));
        let mut body = 1000u64.to_be_bytes().to_vec();
        body.extend(vec![7u8; MAX_VALUE + 1]);
        let big = WireRecord::Tagged {
            kind: Immutable::KIND,
            body,
        };
        assert_eq!(Immutable::from_wire(now, &big, &limits()), None);
        let torn = WireRecord::Tagged {
            kind: Immutable::KIND,
            body: vec![1, 2, 3],
        };
        assert_eq!(Immutable::from_wire(now, &torn, &limits()), None);
        // A lying node cannot make a value live past MAX_TTL.
        let mut body = u64::MAX.to_be_bytes().to_vec();
        body.extend_from_slice(b"hello");
        let forever = WireRecord::Tagged {
            kind: Immutable::KIND,
            body,
        };
        let capped = Immutable::from_wire(now, &forever, &limits()).expect("parses");
        assert_eq!(capped, Immutable::new(b"hello".to_vec(), now, MAX_TTL));
        assert!(capped.to_wire(now + MAX_TTL) == Immutable::default().to_wire(now));
    }
}
