//! The finger table: finger k points at about successor(me + 2^k), so a
//! lookup halves its distance to the key with every hop. Only an
//! optimisation: correctness never depends on fingers, and every finger was
//! checked alive when it was set.

use std::net::SocketAddr;

use crate::chord::Peer;
use crate::id::{Id, ID_BITS};

/// Most a settled node slows its finger refresh by.
pub(crate) const MAX_FINGER_BACKOFF: u32 = 16;

/// One finger per bit of the id space, refreshed one at a time.
#[derive(Debug)]
pub(crate) struct Fingers {
    /// finger[k] ≈ successor(me + 2^k); checked alive when set.
    table: Vec<Option<Peer>>,
    /// The nodes of `table` once each, in k order: of 160 fingers only
    /// about log2 N differ, and routing reads these on every hop.
    distinct: Vec<Peer>,
    /// Finger to refresh next.
    next: usize,
    /// The refresh interval is multiplied by this (1 to
    /// [`MAX_FINGER_BACKOFF`]): doubled after a sweep over the fingers that
    /// changed none, back to 1 when one changes. A settled ring then costs
    /// few lookups.
    backoff: u32,
    /// A finger changed during the current sweep.
    changed: bool,
}

impl Fingers {
    /// An empty table.
    pub(crate) fn new() -> Fingers {
        Fingers {
            table: vec![None; ID_BITS],
            distinct: Vec::new(),
            next: 0,
            backoff: 1,
            changed: false,
        }
    }

    /// Finger `k`.
    pub(crate) fn get(&self, k: usize) -> Option<Peer> {
        self.table[k]
    }

    /// Set finger `k`, noting a change for the refresh back-off.
    pub(crate) fn set(&mut self, k: usize, finger: Option<Peer>) {
        if self.table[k] != finger {
            self.table[k] = finger;
            self.changed = true;
            self.backoff = 1;
            self.distinct.clear();
            for p in self.table.iter().flatten() {
                if !self.distinct.iter().any(|d| d.addr == p.addr) {
                    self.distinct.push(*p);
                }
            }
        }
    }

    /// `addr` failed to answer: no finger points at it any more.
    pub(crate) fn forget(&mut self, addr: SocketAddr) {
        for k in 0..ID_BITS {
            if self.table[k].is_some_and(|p| p.addr == addr) {
                self.set(k, None);
            }
        }
    }

    /// Every node a finger points at, once, in order of its first k.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Peer> {
        self.distinct.iter()
    }

    /// How many distinct nodes the table points at.
    pub(crate) fn distinct(&self) -> usize {
        self.distinct.len()
    }

    /// The factor on the refresh interval.
    pub(crate) fn backoff(&self) -> u32 {
        self.backoff
    }

    /// The next finger that needs a lookup, and the id to look up. Fingers
    /// whose start the successor list `succs` of node `me` already covers
    /// are set from it on the way (no lookup needed).
    pub(crate) fn next_to_look_up(&mut self, me: Id, succs: &[Peer]) -> Option<(usize, Id)> {
        let last = succs.last()?;
        for _ in 0..ID_BITS {
            let k = self.next;
            self.next = (self.next + 1) % ID_BITS;
            if self.next == 0 {
                self.end_sweep();
            }
            let start = me.add_pow2(k);
            if start.in_open_closed(me, last.id) {
                let owner = succs
                    .iter()
                    .find(|s| start.in_open_closed(me, s.id))
                    .copied();
                self.set(k, owner);
                continue;
            }
            return Some((k, start));
        }
        None
    }

    /// A sweep over all fingers ended: slow down if nothing changed in it
    /// (a change already restored full speed).
    fn end_sweep(&mut self) {
        if !self.changed {
            self.backoff = (self.backoff * 2).min(MAX_FINGER_BACKOFF);
        }
        self.changed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> Peer {
        Peer::new(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn quiet_sweeps_back_off_and_a_change_restores_speed() {
        let mut f = Fingers::new();
        let me = Id::default();
        // A successor far round the ring covers every finger: no lookups,
        // and the fingers are all set from the list in the first sweep.
        let far = Peer {
            id: Id([0xff; 20]),
            addr: peer(1).addr,
        };
        assert_eq!(f.next_to_look_up(me, &[far]), None);
        assert_eq!(f.backoff(), 1, "the first sweep changed every finger");
        assert_eq!(f.distinct(), 1);
        // A sweep's end is noted as its last finger comes up, before that
        // finger is set: the first quiet sweep still saw a change.
        for sweeps in 1..=6 {
            f.next_to_look_up(me, &[far]);
            assert_eq!(f.backoff(), (1 << (sweeps - 1)).min(MAX_FINGER_BACKOFF));
        }
        f.forget(far.addr);
        assert_eq!(f.distinct(), 0);
        assert_eq!(f.backoff(), 1);
    }

    #[test]
    fn fingers_beyond_the_successor_list_need_lookups() {
        let mut f = Fingers::new();
        let me = Id::default();
        let near = Peer {
            id: me.add_pow2(3),
            addr: peer(1).addr,
        };
        // Fingers 0..=3 start within (me, near]: set from the list.
        assert_eq!(f.next_to_look_up(me, &[near]), Some((4, me.add_pow2(4))));
        assert_eq!(
            (0..4).map(|k| f.get(k)).collect::<Vec<_>>(),
            vec![Some(near); 4]
        );
        assert_eq!(f.next_to_look_up(me, &[near]), Some((5, me.add_pow2(5))));
        assert_eq!(f.next_to_look_up(me, &[]), None, "alone: no fingers");
    }
}
