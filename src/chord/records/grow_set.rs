//! A record kind for tests only: a grow-only set of numbers. It exists to
//! show that a kind is one file and one line in the list of kinds, and
//! that the quorum operations, hand-off, read repair and the merge of
//! healed partitions then work for it unchanged (see the simulation below).
//!
//! Merge is set union. A replica takes at most `max_items_per_key` numbers
//! per key and only numbers below 2^32 (its validation). Numbers never
//! expire. On the wire: the numbers as 8-byte big-endian integers.

use std::collections::BTreeSet;
use std::time::Instant;

use crate::chord::records::{Limits, Quota, RecordKind};
use crate::id::Id;
use crate::wire::chord::message::{Kind, WireRecord};

/// A grow-only set of numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrowSet(pub BTreeSet<u64>);

impl GrowSet {
    /// The set of `numbers`.
    pub fn of(numbers: impl IntoIterator<Item = u64>) -> GrowSet {
        GrowSet(numbers.into_iter().collect())
    }
}

impl RecordKind for GrowSet {
    const KIND: Kind = 250;

    fn merge(&mut self, other: &GrowSet) {
        self.0.extend(&other.0);
    }

    fn merge_capped(&mut self, incoming: &GrowSet, limits: &Limits, _quota: &mut Quota) -> bool {
        let mut all_taken = true;
        for n in &incoming.0 {
            if !self.0.contains(n) && self.0.len() >= limits.max_items_per_key {
                all_taken = false;
                continue;
            }
            self.0.insert(*n);
        }
        all_taken
    }

    fn validate(&self, _key: &Id) -> bool {
        self.0.iter().all(|n| *n <= u64::from(u32::MAX))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn to_wire(&self, _now: Instant) -> WireRecord {
        let body = self.0.iter().flat_map(|n| n.to_be_bytes()).collect();
        WireRecord::Tagged {
            kind: Self::KIND,
            body,
        }
    }

    fn from_wire(_now: Instant, wire: &WireRecord, _limits: &Limits) -> Option<GrowSet> {
        match wire {
            WireRecord::Tagged { kind, body } if *kind == Self::KIND && body.len() % 8 == 0 => {
                let numbers = body.chunks_exact(8).map(|c| {
                    let mut be = [0u8; 8];
                    be.copy_from_slice(c);
                    u64::from_be_bytes(be)
                });
                Some(GrowSet::of(numbers))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::chord::records::{assert_join_laws, Record, SwarmList};

    fn limits(max: usize) -> Limits {
        Limits {
            max_items_per_key: max,
            max_items_per_source: max,
            max_ttl: Duration::from_secs(60),
        }
    }

    #[test]
    fn union_is_a_join() {
        assert_join_laws(&GrowSet::of([1, 2]), &GrowSet::of([2, 3]), &GrowSet::of([9]));
    }

    #[test]
    fn travels_tagged_and_parses_only_its_own_kind() {
        let now = Instant::now();
        let set = GrowSet::of([7, 1 << 40]);
        let wire = set.to_wire(now);
        assert_eq!(wire.kind(), GrowSet::KIND);
        assert_eq!(GrowSet::from_wire(now, &wire, &limits(9)), Some(set.clone()));
        let record = Record::from_wire(now, &wire, &limits(9)).expect("a known kind");
        assert_eq!(<&GrowSet>::try_from(&record), Ok(&set));
        assert!(<&SwarmList>::try_from(&record).is_err());
        let torn = WireRecord::Tagged {
            kind: GrowSet::KIND,
            body: vec![0; 7],
        };
        assert_eq!(GrowSet::from_wire(now, &torn, &limits(9)), None);
        assert_eq!(GrowSet::from_wire(now, &WireRecord::Swarm(vec![]), &limits(9)), None);
    }

    #[test]
    fn caps_and_validation() {
        let mut quota = Quota::default();
        let mut set = GrowSet::of([1]);
        assert!(!set.merge_capped(&GrowSet::of([1, 2, 3]), &limits(2), &mut quota));
        assert_eq!(set, GrowSet::of([1, 2]));
        assert!(set.merge_capped(&GrowSet::of([2]), &limits(2), &mut quota));
        assert!(!GrowSet::of([1 << 40]).validate(&Id::default()));
        assert!(GrowSet::of([7]).validate(&Id::default()));
    }
}
