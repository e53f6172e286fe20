//! Signed mutable items, in the layout of BEP 44's mutable items, so that
//! one could be stored in the Mainline DHT unchanged: an ed25519 public key
//! `k`, a `salt` (at most 64 bytes), a sequence number `seq`, a bencoded
//! value `v` (at most 1000 bytes) and the signature `sig` of BEP 44's
//! signing buffer `4:salt<len>:<salt>3:seqi<seq>e1:v<v>`. An item lives at
//! SHA-1(k ‖ salt): only the holder of the secret key can write there.
//!
//! A replica stores an item only if its signature verifies and its key is
//! SHA-1(k ‖ salt) of the item's own `k` and `salt`. It keeps the highest
//! `seq` and refuses a lower one. A write may carry `cas`, the sequence
//! number it expects the replica to hold (0: none): a replica holding
//! another refuses it, so two devices of one owner cannot silently
//! overwrite each other. Repairs and hand-offs carry no `cas`.
//!
//! Merge (the CRDT join): the greater of (seq, sig, v, salt, k) wins, so
//! two items of one seq (two devices that raced) resolve the same way on
//! every replica, whatever the order they arrive in.
//!
//! Items expire unless published again, as BEP 44's do: an item lives at
//! most [`MAX_TTL`] from its last write here (the owner's process writes
//! its items again at half of it), and merge keeps the later expiry of the
//! winning item. So an item its owner stopped keeping (a part no head
//! references any more) goes away.
//!
//! On the wire: a bencoded dictionary {cas?, k, salt, seq, sig, ttl?, v},
//! with `v` as a byte string (its bencoded bytes, exactly as signed) and
//! `ttl` the milliseconds left on the sender's clock (a write or a node that
//! sends none gives the item [`MAX_TTL`]); an empty record is `de`.

use std::time::{Duration, Instant};

use bendy::decoding::{Decoder, FromBencode};
use bendy::value::Value;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::chord::records::{Limits, Quota, RecordKind, Version, VersionOf};
use crate::id::Id;
use crate::wire::chord::message::{Kind, WireRecord};

/// Largest bencoded value an item holds (BEP 44's limit).
pub const MAX_VALUE: usize = 1000;
/// Longest salt (BEP 44's limit).
pub const MAX_SALT: usize = 64;
/// Longest an item lives from its last write here (BEP 44's 2 hours).
pub const MAX_TTL: Duration = Duration::from_secs(2 * 60 * 60);
/// Deepest nesting accepted in a value or a wire body.
const MAX_DEPTH: usize = 8;

/// Why a replica refuses a mutable item.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MutableError {
    /// The signature does not verify for `k` over the signing buffer.
    #[error("the signature does not verify")]
    BadSignature,
    /// `k` is not a valid ed25519 public key.
    #[error("the public key is not a valid ed25519 point")]
    BadPublicKey,
    /// The item is offered under another key than SHA-1(k ‖ salt).
    #[error("the key is not SHA-1 of the item's public key and salt")]
    KeyMismatch,
    /// The value is longer than [`MAX_VALUE`].
    #[error("the value is {len} bytes, more than the {MAX_VALUE} an item holds")]
    Oversize {
        /// The value's length.
        len: usize,
    },
    /// The salt is longer than [`MAX_SALT`].
    #[error("the salt is {len} bytes, more than {MAX_SALT}")]
    SaltTooLong {
        /// The salt's length.
        len: usize,
    },
    /// The value is not one well-formed bencoded value.
    #[error("the value is not bencode")]
    NotBencode,
    /// The replica holds a higher sequence number.
    #[error("sequence number {offered} is lower than the {held} held")]
    LowerSeq {
        /// The item's seq.
        offered: u64,
        /// The replica's.
        held: u64,
    },
    /// Compare-and-swap failed: the replica holds another seq than expected.
    #[error("compare-and-swap failed: expected sequence number {expected}, the replica holds {held}")]
    CasFailed {
        /// The seq the write expected.
        expected: u64,
        /// The seq the replica holds (0: none).
        held: u64,
    },
}

/// The key an item of public key `k` and `salt` lives at.
pub fn target(k: &[u8; 32], salt: &[u8]) -> Id {
    let mut buf = Vec::with_capacity(32 + salt.len());
    buf.extend_from_slice(k);
    buf.extend_from_slice(salt);
    Id::hash(&buf)
}

/// BEP 44's signing buffer: `4:salt<len>:<salt>3:seqi<seq>e1:v<v>` (the
/// salt part only when there is a salt).
pub fn signing_buffer(salt: &[u8], seq: u64, v: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(salt.len() + v.len() + 40);
    if !salt.is_empty() {
        buf.extend_from_slice(format!("4:salt{}:", salt.len()).as_bytes());
        buf.extend_from_slice(salt);
    }
    buf.extend_from_slice(format!("3:seqi{seq}e1:v").as_bytes());
    buf.extend_from_slice(v);
    buf
}

/// One signed item.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SignedItem {
    // Field order is the merge order: seq first, then the signature.
    /// Sequence number: the item's version.
    pub seq: u64,
    /// ed25519 signature of the signing buffer.
    pub sig: [u8; 64],
    /// The bencoded value, as signed.
    pub v: Vec<u8>,
    /// The salt (e.g. a playlist's name).
    pub salt: Vec<u8>,
    /// The owner's ed25519 public key.
    pub k: [u8; 32],
}

impl SignedItem {
    /// `v` under `salt` at `seq`, signed with `key`; refused if it would be
    /// refused by a replica for its size or form.
    pub fn sign(key: &SigningKey, salt: &[u8], seq: u64, v: Vec<u8>) -> Result<SignedItem, MutableError> {
        check_form(salt, &v)?;
        let sig = key.sign(&signing_buffer(salt, seq, &v)).to_bytes();
        Ok(SignedItem {
            seq,
            sig,
            v,
            salt: salt.to_vec(),
            k: key.verifying_key().to_bytes(),
        })
    }

    /// The key this item lives at.
    pub fn target(&self) -> Id {
        target(&self.k, &self.salt)
    }

    /// Ok if a replica may store this item under `key`.
    pub fn verify(&self, key: &Id) -> Result<(), MutableError> {
        check_form(&self.salt, &self.v)?;
        if self.target() != *key {
            return Err(MutableError::KeyMismatch);
        }
        let public = VerifyingKey::from_bytes(&self.k).map_err(|_| MutableError::BadPublicKey)?;
        let sig = Signature::from_bytes(&self.sig);
        public
            .verify(&signing_buffer(&self.salt, self.seq, &self.v), &sig)
            .map_err(|_| MutableError::BadSignature)
    }
}

/// Size and form checks of BEP 44: salt and value lengths, `v` bencode.
fn check_form(salt: &[u8], v: &[u8]) -> Result<(), MutableError> {
    if salt.len() > MAX_SALT {
        return Err(MutableError::SaltTooLong { len: salt.len() });
    }
    if v.len() > MAX_VALUE {
        return Err(MutableError::Oversize { len: v.len() });
    }
    decode_one(v).map(|_| ()).ok_or(MutableError::NotBencode)
}

/// `bytes` as exactly one bencoded value, nesting limited.
pub fn decode_one(bytes: &[u8]) -> Option<Value<'static>> {
    let mut decoder = Decoder::new(bytes).with_max_depth(MAX_DEPTH);
    let object = decoder.next_object().ok()??;
    let value = Value::decode_bencode_object(object).ok()?.into_owned();
    let trailing = !matches!(decoder.next_object(), Ok(None));
    (!trailing).then_some(value)
}

/// The record kind: at most one signed item per key, and on a write in
/// flight the sequence number it expects the replica to hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mutable {
    /// The winning item, if any.
    pub item: Option<SignedItem>,
    /// Compare-and-swap: the seq a write expects (0: none held). Never
    /// stored; repairs and hand-offs carry none.
    pub cas: Option<u64>,
    /// When the item expires here; None on a write not yet received (a
    /// replica gives it [`MAX_TTL`]).
    pub expiry: Option<Instant>,
}

impl Mutable {
    /// A write of `item` with no compare-and-swap.
    pub fn put(item: SignedItem) -> Mutable {
        Mutable {
            item: Some(item),
            cas: None,
            expiry: None,
        }
    }

    /// A write of `item` that only a replica holding `expected` takes.
    pub fn swap(item: SignedItem, expected: u64) -> Mutable {
        Mutable {
            item: Some(item),
            cas: Some(expected),
            expiry: None,
        }
    }

    /// The same, expiring at `expiry`.
    pub fn until(self, expiry: Instant) -> Mutable {
        Mutable {
            expiry: Some(expiry),
            ..self
        }
    }

    /// The item and its expiry, in merge order: the greater item wins,
    /// and of one item the later expiry.
    fn rank(&self) -> (&Option<SignedItem>, Option<Instant>) {
        (&self.item, self.expiry)
    }

    /// The held item's seq, 0 if none.
    pub fn seq(&self) -> u64 {
        self.item.as_ref().map_or(0, |i| i.seq)
    }

    /// Ok if a replica may store this under `key` (an empty one always).
    pub fn check(&self, key: &Id) -> Result<(), MutableError> {
        self.item.as_ref().map_or(Ok(()), |i| i.verify(key))
    }

    /// Ok if a replica holding `self` takes `incoming` (already checked by
    /// [`Mutable::check`]): the compare-and-swap and the seq rules.
    pub fn admit(&self, incoming: &Mutable) -> Result<(), MutableError> {
        let Some(item) = &incoming.item else {
            return Ok(());
        };
        let held = self.seq();
        if let Some(expected) = incoming.cas {
            if expected != held {
                return Err(MutableError::CasFailed { expected, held });
            }
        }
        if self.item.is_some() && item.seq < held {
            return Err(MutableError::LowerSeq {
                offered: item.seq,
                held,
            });
        }
        Ok(())
    }
}

impl RecordKind for Mutable {
    const KIND: Kind = 44;

    fn merge(&mut self, other: &Mutable) {
        if other.rank() > self.rank() {
            self.item = other.item.clone();
            self.expiry = other.expiry;
        }
        self.cas = self.cas.max(other.cas);
    }

    /// Takes `incoming` if [`Mutable::admit`] does; never keeps a `cas`.
    fn merge_capped(&mut self, incoming: &Mutable, _limits: &Limits, _quota: &mut Quota) -> bool {
        if let Err(why) = self.admit(incoming) {
            tracing::debug!("mutable item refused: {why}");
            return false;
        }
        if incoming.rank() > self.rank() {
            self.item = incoming.item.clone();
            self.expiry = incoming.expiry;
        }
        self.cas = None;
        true
    }

    fn expire(&mut self, now: Instant, _quota: &mut Quota) {
        if self.expiry.is_some_and(|e| e <= now) {
            self.item = None;
            self.expiry = None;
        }
    }

    fn is_behind(&self, other: &Mutable, slack: Duration) -> bool {
        match (other.item > self.item, other.item == self.item) {
            (true, _) => true,
            (false, true) => match (self.expiry, other.expiry) {
                (Some(mine), Some(theirs)) => theirs > mine + slack,
                (mine, theirs) => theirs > mine,
            },
            (false, false) => false,
        }
    }

    fn validate(&self, key: &Id) -> bool {
        match self.check(key) {
            Ok(()) => true,
            Err(why) => {
                tracing::debug!("mutable item for {key} refused: {why}");
                false
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.item.is_none()
    }

    fn version(&self, now: Instant) -> Version {
        let mut v = VersionOf::new(now, self.seq());
        if let Some(i) = &self.item {
            v.bytes(&i.sig).bytes(&i.k).bytes(&i.salt).bytes(&i.v);
            v.item(self.expiry);
        }
        v.done()
    }

    fn to_wire(&self, now: Instant) -> WireRecord {
        wire::encode(self, now)
    }

    fn from_wire(now: Instant, wire: &WireRecord, _limits: &Limits) -> Option<Mutable> {
        wire::decode(now, wire)
    }
}

mod wire;

#[cfg(test)]
mod tests;
