//! What each source (an IP address) holds over every record of a replica,
//! and who gives way when the replica is full.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// Items held per source (an IP address), over every record of a replica,
/// and in all.
///
/// At the replica's cap ([`Limits::max_items`](super::Limits::max_items))
/// a new item is refused, and the source that wanted room is noted: the store then drops the item of
/// the heaviest source (the most items held) that expires first, if that
/// source holds more than the one that wanted room, and tries again. So a
/// flood from one source, once the replica is full, displaces only its own
/// items, and never another source's.
#[derive(Debug, Default)]
pub struct Quota {
    /// Items charged per source; sources at zero are dropped.
    held: BTreeMap<IpAddr, usize>,
    /// Items charged in all.
    total: usize,
    /// Most items in all (0: no cap).
    max_total: usize,
    /// A source refused at the total cap since the store last looked.
    wanted: Option<IpAddr>,
}

impl Quota {
    /// No items; at most `max_total` in all (0: no cap).
    pub fn new(max_total: usize) -> Quota {
        Quota {
            max_total,
            ..Quota::default()
        }
    }

    /// Charge one item to `source` unless it already holds `max`, or the
    /// replica is full (then `source` is noted as wanting room).
    pub fn try_charge(&mut self, source: IpAddr, max: usize) -> bool {
        let held = self.held(source);
        if held >= max {
            return false;
        }
        if self.max_total > 0 && self.total >= self.max_total {
            self.wanted.get_or_insert(source);
            return false;
        }
        self.held.insert(source, held + 1);
        self.total += 1;
        true
    }

    /// Release one item of `source`.
    pub fn release(&mut self, source: IpAddr) {
        if let Some(n) = self.held.get_mut(&source) {
            *n -= 1;
            self.total -= 1;
            if *n == 0 {
                self.held.remove(&source);
            }
        }
    }

    /// Items charged in all.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The source refused at the total cap since the last call, if any.
    pub fn take_wanted(&mut self) -> Option<IpAddr> {
        self.wanted.take()
    }

    /// The source that may give way to `wanting`: the one holding the most
    /// items, if it holds more than `wanting` does (after its item came).
    pub fn heaviest_above(&self, wanting: IpAddr) -> Option<IpAddr> {
        let (&heaviest, &n) = self.held.iter().max_by_key(|(_, n)| **n)?;
        (n > self.held(wanting) + 1).then_some(heaviest)
    }

    /// Items charged to `source`.
    pub fn held(&self, source: IpAddr) -> usize {
        self.held.get(&source).copied().unwrap_or(0)
    }
}
