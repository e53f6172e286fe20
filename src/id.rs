//! 160-bit identifiers and ring interval arithmetic.
//!
//! Chord node ids, keys and BitTorrent info-hashes are all SHA-1 digests, so
//! one type serves them all. The ring is the integers modulo 2^160; the
//! interval helpers below are the only place that reasons about wrap-around.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use sha1::{Digest, Sha1};

/// Number of bits in an id (and entries in a full finger table).
pub const ID_BITS: usize = 160;

/// A 160-bit identifier, big-endian: byte 0 is the most significant.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Id(pub [u8; 20]);

impl Id {
    /// The SHA-1 digest of `bytes`.
    pub fn hash(bytes: &[u8]) -> Id {
        Id(Sha1::digest(bytes).into())
    }

    /// A Chord node's id: SHA-1 of its advertised address as `ip:port`.
    pub fn of_addr(addr: SocketAddr) -> Id {
        Id::hash(addr.to_string().as_bytes())
    }

    /// `self + 2^k mod 2^160`: the start of finger `k`.
    pub fn add_pow2(self, k: usize) -> Id {
        assert!(k < ID_BITS, "finger index out of range");
        let mut out = self.0;
        let byte = 19 - k / 8;
        let mut carry = 1u16 << (k % 8);
        for b in out[..=byte].iter_mut().rev() {
            let sum = *b as u16 + carry;
            *b = sum as u8;
            carry = sum >> 8;
            if carry == 0 {
                break;
            }
        }
        Id(out)
    }

    /// True if `self` lies in the open interval (a, b) going clockwise.
    /// When a == b the interval is the whole ring except a.
    pub fn in_open(self, a: Id, b: Id) -> bool {
        if a < b {
            a < self && self < b
        } else {
            // Wraps (or a == b: everything but a itself).
            self > a || self < b
        }
    }

    /// True if `self` lies in the half-open interval (a, b] going clockwise.
    /// When a == b the interval is the whole ring.
    pub fn in_open_closed(self, a: Id, b: Id) -> bool {
        self == b || self.in_open(a, b) || a == b
    }

    /// Clockwise distance from `self` to `other`, as an id.
    pub fn distance_to(self, other: Id) -> Id {
        let mut out = [0u8; 20];
        let mut borrow = 0i16;
        for i in (0..20).rev() {
            let mut d = other.0[i] as i16 - self.0[i] as i16 - borrow;
            borrow = 0;
            if d < 0 {
                d += 256;
                borrow = 1;
            }
            out[i] = d as u8;
        }
        Id(out)
    }

    /// Lower-case hex, 40 characters.
    pub fn to_hex(self) -> String {
        // Digit by digit, not a `format!` per byte: a library's `listening`
        // line names 10,000 of them.
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(40);
        for b in self.0 {
            hex.push(DIGITS[usize::from(b >> 4)] as char);
            hex.push(DIGITS[usize::from(b & 15)] as char);
        }
        hex
    }
}

/// Error for an id written in hex that is not 40 hex digits.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("expected 40 hexadecimal digits, got {0:?}")]
pub struct ParseIdError(pub String);

impl FromStr for Id {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Id, ParseIdError> {
        let err = || ParseIdError(s.to_string());
        if s.len() != 40 || !s.is_ascii() {
            return Err(err());
        }
        let mut out = [0u8; 20];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| err())?;
        }
        Ok(Id(out))
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl serde::Serialize for Id {
    // Hex in JSON output, the way users type ids on the command line.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight digits are enough to tell ids apart in logs and test output.
        write!(f, "Id({})", &self.to_hex()[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(last: u8) -> Id {
        let mut b = [0u8; 20];
        b[19] = last;
        Id(b)
    }

    const MAX: Id = Id([0xff; 20]);

    #[test]
    fn open_interval_without_wrap() {
        assert!(id(5).in_open(id(1), id(9)));
        assert!(!id(1).in_open(id(1), id(9)));
        assert!(!id(9).in_open(id(1), id(9)));
        assert!(!id(10).in_open(id(1), id(9)));
    }

    #[test]
    fn open_interval_with_wrap() {
        assert!(id(0).in_open(id(200), id(5)));
        assert!(MAX.in_open(id(200), id(5)));
        assert!(id(201).in_open(id(200), id(5)));
        assert!(!id(100).in_open(id(200), id(5)));
        assert!(!id(5).in_open(id(200), id(5)));
    }

    #[test]
    fn degenerate_interval_is_whole_ring() {
        // One-node ring: (a, a) is everything except a; (a, a] is everything.
        assert!(id(3).in_open(id(7), id(7)));
        assert!(!id(7).in_open(id(7), id(7)));
        assert!(id(7).in_open_closed(id(7), id(7)));
        assert!(id(3).in_open_closed(id(7), id(7)));
    }

    #[test]
    fn half_open_includes_right_end_only() {
        assert!(id(9).in_open_closed(id(1), id(9)));
        assert!(!id(1).in_open_closed(id(1), id(9)));
        // Two-node ring: each node owns the arc after the other.
        let (a, b) = (id(10), id(20));
        assert!(id(15).in_open_closed(a, b));
        assert!(id(25).in_open_closed(b, a));
        assert!(id(5).in_open_closed(b, a));
        assert!(!id(15).in_open_closed(b, a));
    }

    #[test]
    fn adjacent_and_boundary_intervals() {
        // (a, a+1) is empty; (a, a+1] holds only a+1.
        assert!(!id(4).in_open(id(3), id(4)));
        assert!(!id(3).in_open(id(3), id(4)));
        assert!(id(4).in_open_closed(id(3), id(4)));
        assert!(!id(5).in_open_closed(id(3), id(4)));
        // Wrapping exactly at the top of the ring.
        let zero = Id::default();
        assert!(zero.in_open_closed(MAX, zero));
        assert!(!MAX.in_open_closed(MAX, zero));
        assert!(!zero.in_open(MAX, zero));
        assert!(MAX.in_open_closed(id(9), MAX));
        assert!(zero.in_open(id(9), id(1)));
        assert!(!id(9).in_open(id(9), id(1)));
    }

    #[test]
    fn successor_of_a_key_on_small_rings() {
        // The owner of k is the node n with k in (pred(n), n].
        let owner = |k: Id, ring: &[Id]| -> Id {
            let n = ring.len();
            (0..n)
                .map(|i| (ring[(i + n - 1) % n], ring[i]))
                .find(|(p, me)| k.in_open_closed(*p, *me))
                .map(|(_, me)| me)
                .expect("some node owns every key")
        };
        // One node owns everything, itself included.
        for k in [id(0), id(7), id(200), MAX] {
            assert_eq!(owner(k, &[id(7)]), id(7));
        }
        // Two nodes split the ring, wrap-around included.
        let two = [id(10), id(20)];
        assert_eq!(owner(id(15), &two), id(20));
        assert_eq!(owner(id(20), &two), id(20));
        assert_eq!(owner(id(21), &two), id(10));
        assert_eq!(owner(MAX, &two), id(10));
        assert_eq!(owner(id(0), &two), id(10));
        assert_eq!(owner(id(10), &two), id(10));
    }

    #[test]
    fn add_pow2_carries_and_wraps() {
        assert_eq!(id(0).add_pow2(0), id(1));
        assert_eq!(id(0xff).add_pow2(0).0[18], 1);
        assert_eq!(MAX.add_pow2(0), Id::default());
        let top = Id::default().add_pow2(159);
        assert_eq!(top.0[0], 0x80);
        assert_eq!(top.add_pow2(159), Id::default());
    }

    #[test]
    fn distance_wraps() {
        assert_eq!(id(3).distance_to(id(10)), id(7));
        assert_eq!(id(10).distance_to(id(3)).0[0], 0xff);
        assert_eq!(MAX.distance_to(id(0)), id(1));
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let x = Id::hash(b"127.0.0.1:6881");
        assert_eq!(x.to_hex().parse::<Id>(), Ok(x));
        assert!("zz".parse::<Id>().is_err());
        assert!("g".repeat(40).parse::<Id>().is_err());
    }

    #[test]
    fn node_id_is_sha1_of_address() {
        let addr: SocketAddr = "127.0.0.1:6881".parse().unwrap();
        assert_eq!(Id::of_addr(addr), Id::hash(b"127.0.0.1:6881"));
    }
}
