//! The records one replica holds, of every kind, within its caps.
//!
//! A record is addressed by its key and its kind: kinds never share a record,
//! so a value of one kind cannot squat the key of another. Records are kept
//! in key order (hand-off pages, deterministic simulations). The store knows
//! nothing of kinds beyond [`Record`]'s methods.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::chord::records::{Limits, Quota, Record};
use crate::id::Id;
use crate::wire::chord::message::{Kind, WireRecord};

/// Every record held here.
#[derive(Debug)]
pub(crate) struct Store {
    /// (key, kind) → record; never an empty record.
    records: BTreeMap<(Id, Kind), Record>,
    /// Items held per source over all records, for the per-source cap.
    quota: Quota,
    /// The caps applied on every merge.
    limits: Limits,
    /// False while a joiner is still receiving its key range: until then
    /// its answers to reads must not count.
    ready: bool,
    /// Peers found gone, by key: no merge takes them back until then
    /// (see [`Store::deny`]).
    denied: BTreeMap<(Id, SocketAddr), Instant>,
}

impl Store {
    /// An empty store with the given caps, not ready.
    pub(crate) fn new(limits: Limits) -> Store {
        Store {
            records: BTreeMap::new(),
            quota: Quota::new(limits.max_items),
            limits,
            ready: false,
            denied: BTreeMap::new(),
        }
    }

    /// True once this store holds its whole key range.
    pub(crate) fn is_ready(&self) -> bool {
        self.ready
    }

    /// Mark the key range complete (or, on joining, not yet).
    pub(crate) fn set_ready(&mut self, ready: bool) {
        self.ready = ready;
    }

    /// Items held in all (for the caps).
    pub(crate) fn items(&self) -> usize {
        self.quota.total()
    }

    /// Items held for `source` (for the caps).
    pub(crate) fn items_of(&self, source: IpAddr) -> usize {
        self.quota.held(source)
    }

    /// Number of records held.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// The record of `kind` at `key`.
    pub(crate) fn get(&self, key: Id, kind: Kind) -> Option<&Record> {
        self.records.get(&(key, kind))
    }

    /// Every record at `key`, by kind.
    pub(crate) fn at(&self, key: Id) -> impl Iterator<Item = &Record> {
        self.records
            .range((key, Kind::MIN)..=(key, Kind::MAX))
            .map(|(_, r)| r)
    }

    /// True if a record of any kind is held at `key`.
    pub(crate) fn holds(&self, key: Id) -> bool {
        self.at(key).next().is_some()
    }

    /// Every record held, with its key, in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Id, &Record)> {
        self.records.iter().map(|(&(key, _), r)| (key, r))
    }

    /// Every key held (once, whatever its kinds), in order.
    pub(crate) fn keys(&self) -> Vec<Id> {
        self.keys_after(None, usize::MAX, |_| true)
    }

    /// Keys after `after` (exclusive) that satisfy `keep`, at most `limit`.
    pub(crate) fn keys_after(
        &self,
        after: Option<Id>,
        limit: usize,
        keep: impl Fn(Id) -> bool,
    ) -> Vec<Id> {
        let mut keys: Vec<Id> = Vec::new();
        for &(key, _) in self.records.keys() {
            if keys.len() == limit && keys.last() != Some(&key) {
                break;
            }
            if after.is_none_or(|a| key > a) && keep(key) && keys.last() != Some(&key) {
                keys.push(key);
            }
        }
        keys
    }

    /// Parse a record received at `now` within this store's caps; None if
    /// its kind is unknown here, it does not parse, or it is not valid under
    /// `key`.
    pub(crate) fn decode(&self, now: Instant, key: Id, wire: &WireRecord) -> Option<Record> {
        Record::from_wire(now, wire, &self.limits).filter(|r| r.validate(&key))
    }

    /// Merge `incoming` into the record of its kind at `key`, within the
    /// caps. Returns false if the record is invalid under `key` or anything
    /// was left out.
    pub(crate) fn merge(&mut self, key: Id, incoming: &Record) -> bool {
        if !incoming.validate(&key) {
            return false;
        }
        let screened = self.without_denied(key, incoming);
        let incoming = screened.as_ref().unwrap_or(incoming);
        let mut taken = self.merge_once(key, incoming);
        // Full: make room by the rule of [`Quota`], one item at a time.
        while let Some(wanting) = self.quota.take_wanted() {
            if !self.evict_for(wanting) {
                break;
            }
            taken = self.merge_once(key, incoming);
        }
        taken
    }

    /// `incoming` without the peers denied at `key`; None if none is.
    fn without_denied(&self, key: Id, incoming: &Record) -> Option<Record> {
        let first = SocketAddr::from(([0, 0, 0, 0], 0)); // the least address
        let mut denied = self
            .denied
            .range((key, first)..)
            .take_while(|((k, _), _)| *k == key)
            .peekable();
        denied.peek()?;
        let mut screened = incoming.clone();
        let mut uncharged = Quota::default(); // nothing of it was charged
        for ((_, peer), _) in denied {
            screened.drop_peer(*peer, &mut uncharged);
        }
        Some(screened)
    }

    /// Drop `peer` from the record of `kind` at `key` (a swarm entry found
    /// gone), releasing its quota, and take it back in no merge until
    /// `until`; at most `max` denials are kept (those that run out first
    /// go first).
    pub(crate) fn deny(
        &mut self,
        key: Id,
        kind: Kind,
        peer: SocketAddr,
        until: Instant,
        max: usize,
    ) {
        if let Some(record) = self.records.get_mut(&(key, kind)) {
            record.drop_peer(peer, &mut self.quota);
            if record.is_empty() {
                self.records.remove(&(key, kind));
            }
        }
        while self.denied.len() >= max.max(1) {
            let soonest = self
                .denied
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(at, _)| *at);
            match soonest {
                Some(at) => self.denied.remove(&at),
                None => break,
            };
        }
        self.denied.insert((key, peer), until);
    }

    /// `peer` wrote for itself (from its own address): its denial at `key`,
    /// if any, is lifted.
    pub(crate) fn lift(&mut self, key: Id, peer: SocketAddr) {
        self.denied.remove(&(key, peer));
    }

    /// Drop the soonest-expiring item of the heaviest source, if it holds
    /// more than `wanting`; false if none may give way.
    fn evict_for(&mut self, wanting: IpAddr) -> bool {
        let Some(heaviest) = self.quota.heaviest_above(wanting) else {
            return false;
        };
        let soonest = self
            .records
            .iter()
            .filter_map(|(at, r)| r.soonest_of(heaviest).map(|t| (t, *at)))
            .min();
        let Some((_, at)) = soonest else {
            return false;
        };
        if let Some(record) = self.records.get_mut(&at) {
            record.evict_soonest_of(heaviest, &mut self.quota);
            if record.is_empty() {
                self.records.remove(&at);
            }
        }
        true
    }

    /// [`Store::merge`] without making room.
    fn merge_once(&mut self, key: Id, incoming: &Record) -> bool {
        let address = (key, incoming.kind());
        let Some(record) = self.records.get_mut(&address) else {
            let Some(mut record) = Record::empty(incoming.kind()) else {
                return false;
            };
            let taken = record.merge_capped(incoming, &self.limits, &mut self.quota);
            if !record.is_empty() {
                self.records.insert(address, record);
            }
            return taken;
        };
        let taken = record.merge_capped(incoming, &self.limits, &mut self.quota);
        if record.is_empty() {
            self.records.remove(&address);
        }
        taken
    }

    /// Parse and merge a record received at `now` (see [`Store::decode`]).
    /// With `bound`, the record was written by the node at that address for
    /// itself, not relayed: only what that address may write is taken (see
    /// [`Record::keep_own`]). Returns false if anything was left out.
    pub(crate) fn merge_wire(
        &mut self,
        now: Instant,
        key: Id,
        wire: &WireRecord,
        bound: Option<IpAddr>,
    ) -> bool {
        let Some(mut record) = self.decode(now, key, wire) else {
            return false;
        };
        let own = bound.is_none_or(|ip| record.keep_own(ip));
        if record.is_empty() {
            return false;
        }
        self.merge(key, &record) && own
    }

    /// The answer to a read of `kind` at `key` at `now`: the record held or
    /// an empty one, and whether it counts (`ready`, and a kind known here).
    pub(crate) fn fetch(
        &self,
        now: Instant,
        key: Id,
        kind: Kind,
        ready: bool,
    ) -> (bool, WireRecord) {
        let Some(empty) = Record::empty(kind) else {
            let body = Vec::new();
            return (false, WireRecord::Tagged { kind, body });
        };
        match (ready, self.get(key, kind)) {
            (true, Some(record)) => (true, record.to_wire(now)),
            _ => (ready, empty.to_wire(now)),
        }
    }

    /// Drop expired items, emptied records and denials run out.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.denied.retain(|_, until| *until > now);
        let quota = &mut self.quota;
        self.records.retain(|_, record| {
            record.expire(now, quota);
            !record.is_empty()
        });
    }

    /// Forget the record of `kind` at `key` (its hand-off to the rightful
    /// replicas was acknowledged).
    pub(crate) fn remove(&mut self, key: Id, kind: Kind) {
        if let Some(record) = self.records.remove(&(key, kind)) {
            record.release(&mut self.quota);
        }
    }
}

#[cfg(test)]
mod tests;
