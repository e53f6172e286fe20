//! Typed records: what the ring stores, one kind per file.
//!
//! A record kind says how two values merge (a CRDT join: commutative,
//! associative, idempotent, so read repair, hand-off, anti-entropy and the
//! merge of healed partitions can run in any order and lose nothing), how a
//! replica validates a value before storing it, when its items expire, and
//! its size caps ([`RecordKind`]). The store, the quorum operations and
//! replication move [`Record`]s and never look inside one.
//!
//! Adding a kind takes one file that implements [`RecordKind`] and one line
//! in the list at the bottom of this file. Kinds so far:
//! - [`SwarmList`]: who shares an info-hash (its frames predate kinds);
//! - [`Immutable`]: bytes under their own SHA-1 (a song's metadata, `dht
//!   put` values);
//! - [`Postings`]: one shard of a search word's list of songs;
//! - [`Mutable`]: signed mutable items in BEP 44's layout (playlists,
//!   `dht put --mutable`);
//! - a grow-only set of numbers, in tests only: the proof that a second kind
//!   needs nothing else.

use std::fmt::Debug;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::id::Id;
use crate::wire::chord::message::{Kind, WireRecord};

pub use immutable::{MAX_TTL as MAX_VALUE_TTL, MAX_VALUE};
pub use mutable::{
    decode_one, signing_buffer, target, MutableError, SignedItem, MAX_SALT,
    MAX_TTL as MAX_MUTABLE_TTL, MAX_VALUE as MAX_MUTABLE_VALUE,
};
pub use postings::{song_words, songs_of, songs_of_info, Song, MAX_POSTINGS};
pub use swarm::{same_ip, Entry, TOMBSTONE_MARGIN};
pub use version::{Version, VersionOf};

mod quota;
mod version;

pub use quota::Quota;

/// One kind of record: its merge, validation, expiry, caps and wire form.
pub trait RecordKind: Clone + Debug + Default + Eq + Into<Record> {
    /// The tag that names this kind on the wire: one per kind, for good.
    const KIND: Kind;

    /// The join of two values: afterwards `self` holds what either held.
    /// Must be commutative, associative and idempotent.
    fn merge(&mut self, other: &Self);

    /// Merge `incoming` as a replica stores it: what would exceed this
    /// kind's caps (`limits`, and each source's share of `quota`) is left
    /// out, and what is taken is charged to its source. Returns false if
    /// anything was left out.
    fn merge_capped(&mut self, incoming: &Self, limits: &Limits, quota: &mut Quota) -> bool;

    /// True if a replica may store this value under `key` (checked before
    /// every store; a value that fails is refused whole).
    fn validate(&self, _key: &Id) -> bool {
        true
    }

    /// Keep only what `source` may write for itself (a swarm list: the
    /// entries for its own IP address), for a write a node makes rather
    /// than relays. Returns false if anything was dropped. Kinds whose
    /// items are not bound to an address keep the default.
    fn keep_own(&mut self, _source: IpAddr) -> bool {
        true
    }

    /// Drop the item of `peer` (a swarm list: its entry, found gone by a
    /// probe), releasing its quota; false if none was held. Kinds whose
    /// items are not addresses keep the default.
    fn drop_peer(&mut self, _peer: SocketAddr, _quota: &mut Quota) -> bool {
        false
    }

    /// Drop what has expired by `now` on this replica's clock, releasing
    /// its quota. Kinds whose items never expire keep the default.
    fn expire(&mut self, _now: Instant, _quota: &mut Quota) {}

    /// When the item of `source` that expires first expires; None if this
    /// record holds none (or its kind charges no quota).
    fn soonest_of(&self, _source: IpAddr) -> Option<Instant> {
        None
    }

    /// Drop the item of `source` that expires first, releasing its quota
    /// (the replica is full: see [`Quota`]).
    fn evict_soonest_of(&mut self, _source: IpAddr, _quota: &mut Quota) {}

    /// Release the quota of everything held (the record is being dropped).
    /// Kinds that charge no quota keep the default.
    fn release(&self, _quota: &mut Quota) {}

    /// True if nothing is held: an emptied record leaves the store.
    fn is_empty(&self) -> bool;

    /// True if `self` lacks something of `other` worth a repair (`slack`:
    /// differences in expiry below it are transfer delay). By default: if
    /// merging `other` would change `self`.
    fn is_behind(&self, other: &Self, _slack: Duration) -> bool {
        let mut merged = self.clone();
        merged.merge(other);
        merged != *self
    }

    /// What anti-entropy compares before pushing this record (see
    /// [`Version`]), measured at `now`. By default: a hash of the value as
    /// it travels, for kinds whose items never expire.
    fn version(&self, now: Instant) -> Version {
        let wire = self.to_wire(now);
        let mut v = VersionOf::new(now, 0);
        if let WireRecord::Tagged { body, .. } = &wire {
            v.bytes(body);
        }
        v.done()
    }

    /// The value as it travels, measured at `now`.
    fn to_wire(&self, now: Instant) -> WireRecord;

    /// A value received at `now`, parsed within `limits` (e.g. no item
    /// lives longer than `limits.max_ttl`); None if it is not of this kind
    /// or does not parse.
    fn from_wire(now: Instant, wire: &WireRecord, limits: &Limits) -> Option<Self>;
}

/// The caps a replica applies, as each kind reads them.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most items one record holds (a swarm list: peers per info-hash).
    pub max_items_per_key: usize,
    /// Most items one source may hold over all keys (a swarm list: entries
    /// per announced IP address).
    pub max_items_per_source: usize,
    /// Most items one source may hold in one record: a full record makes
    /// room for a source under this share, never for one at it.
    pub max_items_per_key_per_source: usize,
    /// Most items a replica holds in all (see [`Quota`] for who gives way).
    pub max_items: usize,
    /// Longest time left an item received is taken with (a swarm list: the
    /// announce TTL), so a lying node cannot plant one that never expires.
    pub max_ttl: Duration,
}

/// Declares the record kinds: each line `module::Type => Variant` adds the
/// kind's file (`module.rs`) and its place in [`Record`], and dispatches
/// every [`Record`] method to the kind's [`RecordKind`] impl.
macro_rules! record_kinds {
    ($( $(#[$attr:meta])* $module:ident::$kind:ident => $variant:ident, )+) => {
        $( $(#[$attr])* mod $module; $(#[$attr])* pub use $module::$kind; )+

        /// A record of any kind: what the store holds and the quorum
        /// operations, hand-off and repair move.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Record {
            $( $(#[$attr])* $variant($kind), )+
        }

        $(
            $(#[$attr])*
            impl From<$kind> for Record {
                fn from(value: $kind) -> Record {
                    Record::$variant(value)
                }
            }

            $(#[$attr])*
            impl<'a> TryFrom<&'a Record> for &'a $kind {
                type Error = Kind;

                /// The value, if the record is of this kind (else its kind).
                #[allow(unreachable_patterns)]
                fn try_from(record: &'a Record) -> Result<&'a $kind, Kind> {
                    match record {
                        Record::$variant(value) => Ok(value),
                        other => Err(other.kind()),
                    }
                }
            }
        )+

        impl Record {
            /// This record's kind.
            pub fn kind(&self) -> Kind {
                match self {
                    $( $(#[$attr])* Record::$variant(_) => <$kind as RecordKind>::KIND, )+
                }
            }

            /// The empty record of `kind`; None if this node knows no such kind.
            pub fn empty(kind: Kind) -> Option<Record> {
                $( $(#[$attr])* if kind == <$kind as RecordKind>::KIND {
                    return Some(Record::$variant($kind::default()));
                } )+
                None
            }

            /// A record received at `now`, parsed by its kind within `limits`.
            pub fn from_wire(now: Instant, wire: &WireRecord, limits: &Limits) -> Option<Record> {
                $( $(#[$attr])* if wire.kind() == <$kind as RecordKind>::KIND {
                    return $kind::from_wire(now, wire, limits).map(Record::$variant);
                } )+
                None
            }

            /// What anti-entropy compares before pushing this record.
            pub fn version(&self, now: Instant) -> Version {
                match self {
                    $( $(#[$attr])* Record::$variant(value) => value.version(now), )+
                }
            }

            /// The record as it travels, measured at `now`.
            pub fn to_wire(&self, now: Instant) -> WireRecord {
                match self {
                    $( $(#[$attr])* Record::$variant(value) => value.to_wire(now), )+
                }
            }

            /// Merge `other` (the CRDT join); a record of another kind is ignored.
            #[allow(unreachable_patterns)]
            pub fn merge(&mut self, other: &Record) {
                match (self, other) {
                    $( $(#[$attr])* (Record::$variant(a), Record::$variant(b)) => a.merge(b), )+
                    _ => {}
                }
            }

            /// Merge `other` within the caps (see [`RecordKind::merge_capped`]);
            /// false if anything was left out, or all of it (another kind).
            #[allow(unreachable_patterns)]
            pub fn merge_capped(&mut self, other: &Record, limits: &Limits, quota: &mut Quota) -> bool {
                match (self, other) {
                    $( $(#[$attr])* (Record::$variant(a), Record::$variant(b)) => {
                        a.merge_capped(b, limits, quota)
                    } )+
                    _ => false,
                }
            }

            /// True if a replica may store this record under `key`.
            pub fn validate(&self, key: &Id) -> bool {
                match self {
                    $( $(#[$attr])* Record::$variant(value) => value.validate(key), )+
                }
            }

            /// Keep only what `source` may write for itself; false if
            /// anything was dropped.
            pub fn keep_own(&mut self, source: IpAddr) -> bool {
                match self {
                    $( $(#[$attr])* Record::$variant(value) => value.keep_own(source), )+
                }
            }

            /// Drop the item of `peer`, releasing its quota; false if none.
            pub fn drop_peer(&mut self, peer: SocketAddr, quota: &mut Quota) -> bool {
                match self {
                    $( $(#[$attr])* Record::$variant(value) => value.drop_peer(peer, quota), )+
                }
            }

            /// Drop what has expired by `now`, releasing its quota.
            pub fn expire(&mut self, now: Instant, quota: &mut Quota) {
                match self {
                    $( $(#[$attr])* Record::$variant(value) => value.expire(now, quota), )+
                }
            }

            /// When the item of `source` that expires first expires.
            pub fn soonest_of(&self, source: IpAddr) -> Option<Instant> {
                match self {
                    $( $(#[$attr])* Record::$variant(value) => value.soonest_of(source), )+
                }
            }

            /// Drop the item of `source` that expires first.
            pub fn evict_soonest_of(&mut self, source: IpAddr, quota: &mut Quota) {
                match self {
                    $( $(#[$attr])* Record::$variant(value) => value.evict_soonest_of(source, quota), )+
                }
            }

            /// Release the quota of everything held.
            pub fn release(&self, quota: &mut Quota) {
                match self {
                    $( $(#[$attr])* Record::$variant(value) => value.release(quota), )+
                }
            }

            /// True if nothing is held.
            pub fn is_empty(&self) -> bool {
                match self {
                    $( $(#[$attr])* Record::$variant(value) => value.is_empty(), )+
                }
            }

            /// True if `self` lacks something of `other` worth a repair; never
            /// for a record of another kind.
            #[allow(unreachable_patterns)]
            pub fn is_behind(&self, other: &Record, slack: Duration) -> bool {
                match (self, other) {
                    $( $(#[$attr])* (Record::$variant(a), Record::$variant(b)) => a.is_behind(b, slack), )+
                    _ => false,
                }
            }
        }
    };
}

// The record kinds. A new kind is its file and one line here.
record_kinds! {
    swarm::SwarmList => Swarm,
    immutable::Immutable => Immutable,
    postings::Postings => Postings,
    mutable::Mutable => Mutable,
    #[cfg(test)]
    grow_set::GrowSet => GrowSet,
}

/// Checks that `merge` is a join on these three values: commutative,
/// associative and idempotent.
#[cfg(test)]
pub(crate) fn assert_join_laws<K: RecordKind>(a: &K, b: &K, c: &K) {
    let join = |x: &K, y: &K| {
        let mut out = x.clone();
        out.merge(y);
        out
    };
    assert_eq!(join(a, b), join(b, a), "commutative");
    assert_eq!(join(&join(a, b), c), join(a, &join(b, c)), "associative");
    assert_eq!(join(a, a), *a, "idempotent");
}
