//! What anti-entropy compares before it pushes a record: its [`Version`],
//! a few bytes that say whether the receiver already holds as much.
//!
//! A version is the kind's sequence number (signed items; 0 for the
//! others), a 64-bit hash of what the record holds apart from expiries, and
//! the sum over its items of the time each has left. Two replicas holding
//! the same items, none renewed on one but not the other, have equal
//! hashes and sums within transfer delays of each other; a receiver wants a
//! record only if it holds none, a lower sequence number, other items, or
//! items that expire sooner by more than a slack per item (a renewal it
//! missed). Hash and sums travel; clocks never do (time left, as records).

use std::time::{Duration, Instant};

pub use crate::wire::chord::message::Version;

/// Expiry differences below this, per item, are transfer delay.
pub const SLACK_PER_ITEM: Duration = Duration::from_secs(2);

impl Version {
    /// True if a replica holding `mine` (None: nothing) wants a record of
    /// version `theirs` pushed to it.
    pub fn wanted(mine: Option<&Version>, theirs: &Version) -> bool {
        let Some(mine) = mine else {
            return true;
        };
        if theirs.seq != mine.seq {
            return theirs.seq > mine.seq;
        }
        if theirs.hash != mine.hash {
            return true;
        }
        let slack = SLACK_PER_ITEM.as_millis() as u64 * theirs.items.max(1);
        theirs.life_ms > mine.life_ms.saturating_add(slack)
    }
}

/// Builds a [`Version`] item by item (in a deterministic order).
#[derive(Debug)]
pub struct VersionOf {
    now: Instant,
    version: Version,
}

/// FNV-1a's 64-bit offset basis and prime.
const FNV_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl VersionOf {
    /// No items yet, measured at `now`, of sequence number `seq`.
    pub fn new(now: Instant, seq: u64) -> VersionOf {
        VersionOf {
            now,
            version: Version {
                seq,
                hash: FNV_BASIS,
                life_ms: 0,
                items: 0,
            },
        }
    }

    /// Adds bytes to the hash (each call's bytes are length-prefixed, so
    /// field boundaries count).
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut VersionOf {
        for b in (bytes.len() as u64).to_be_bytes().iter().chain(bytes) {
            self.version.hash ^= u64::from(*b);
            self.version.hash = self.version.hash.wrapping_mul(FNV_PRIME);
        }
        self
    }

    /// Ends one item that expires at `expiry`.
    pub fn item(&mut self, expiry: Option<Instant>) -> &mut VersionOf {
        let left = expiry.map_or(0, |e| e.saturating_duration_since(self.now).as_millis());
        self.version.life_ms = self.version.life_ms.saturating_add(left as u64);
        self.version.items += 1;
        self
    }

    /// The version.
    pub fn done(&self) -> Version {
        self.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_only_when_the_receiver_holds_less() {
        let t = Instant::now();
        let of = |seq, bytes: &[u8], left: u64| {
            VersionOf::new(t, seq)
                .bytes(bytes)
                .item(Some(t + Duration::from_secs(left)))
                .done()
        };
        let held = of(3, b"a", 100);
        assert!(Version::wanted(None, &held));
        assert!(!Version::wanted(Some(&held), &held));
        // Transfer delay is not a renewal; a renewal is.
        assert!(!Version::wanted(Some(&of(3, b"a", 99)), &held));
        assert!(Version::wanted(Some(&of(3, b"a", 50)), &held));
        // A higher seq is wanted, a lower one never.
        assert!(Version::wanted(Some(&of(2, b"z", 900)), &held));
        assert!(!Version::wanted(Some(&of(4, b"a", 1)), &held));
        // Other items are wanted (the merge is the receiver's business).
        assert!(Version::wanted(Some(&of(3, b"b", 100)), &held));
        // Field boundaries count.
        let ab = VersionOf::new(t, 0).bytes(b"ab").bytes(b"").done();
        let a_b = VersionOf::new(t, 0).bytes(b"a").bytes(b"b").done();
        assert_ne!(ab.hash, a_b.hash);
    }
}
