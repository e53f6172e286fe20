//! Client lookups on the simulated network ([`crate::chord_sim`]): kill a
//! share of the ring at once, run a batch of lookups, and count how many
//! found the live successor of their key.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;
use songswarm::chord::node::{OpId, OpOutcome};
use songswarm::id::Id;

use crate::chord_sim::Sim;

/// How a batch of client lookups ended (see [`Sim::lookup_batch`]).
#[derive(Debug, Default, Clone)]
pub struct LookupStats {
    /// Lookups started.
    pub asked: usize,
    /// Found the live successor of their key.
    pub right: usize,
    /// Found some other node.
    pub wrong: usize,
    /// Ended with an error (out of candidates, hop limit).
    pub failed: usize,
    /// Still running at the limit.
    pub unfinished: usize,
    /// Not counted in `asked`: their asker died before they ended.
    pub orphaned: usize,
    /// Hops of each lookup that found an owner, right or wrong.
    pub hops: Vec<u32>,
    /// Longest time a lookup that ended took (virtual).
    pub slowest: Duration,
}

impl LookupStats {
    /// Share of the lookups started that were right.
    pub fn right_share(&self) -> f64 {
        self.right as f64 / self.asked.max(1) as f64
    }
}

/// Lookups not yet ended: (node, op) → (key, when it started).
type Pending = HashMap<(usize, OpId), (Id, Instant)>;

/// Every node ever created, by id: a key's owner is the first live
/// member at or after it on the asker's side. Nodes are added as they
/// appear, so judging a lookup costs a search, not a sort of the ring.
#[derive(Default)]
pub struct Owners {
    /// (id, node index), sorted.
    order: Vec<(Id, usize)>,
}

impl Owners {
    /// The owner of `key` on `side` now.
    pub fn owner(&mut self, sim: &Sim, side: u8, key: Id) -> Option<SocketAddr> {
        for i in self.order.len()..sim.nodes.len() {
            let entry = (sim.nodes[i].node.id(), i);
            let at = self.order.partition_point(|e| *e < entry);
            self.order.insert(at, entry);
        }
        let start = self.order.partition_point(|(id, _)| *id < key);
        (0..self.order.len())
            .map(|k| self.order[(start + k) % self.order.len()].1)
            .find(|&i| sim.is_member(i) && sim.nodes[i].side == side)
            .map(|i| sim.nodes[i].node.addr())
    }
}

impl Sim {
    /// Kill a random `fraction` of the live nodes at once, such that no `r`
    /// consecutive ring members die (else a node may be left with no live
    /// successor, which no protocol can repair). Returns the victims.
    pub fn kill_fraction(&mut self, fraction: f64) -> Vec<usize> {
        let r = self.config.successor_list_len;
        let mut live: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].alive)
            .collect();
        live.sort_by_key(|&i| self.nodes[i].node.id());
        let count = ((live.len() as f64 * fraction).round() as usize).min(live.len());
        for _ in 0..1000 {
            let mut dead = vec![false; live.len()];
            let mut victims = Vec::with_capacity(count);
            while victims.len() < count {
                let k = self.rng.gen_range(0..live.len());
                if !dead[k] {
                    dead[k] = true;
                    victims.push(live[k]);
                }
            }
            let mut run = 0;
            let admissible = (0..2 * live.len()).all(|k| {
                run = if dead[k % live.len()] { run + 1 } else { 0 };
                run < r || count == live.len()
            });
            if admissible {
                for &v in &victims {
                    self.kill(v);
                }
                return victims;
            }
        }
        panic!("seed {}: no admissible victim set", self.seed);
    }

    /// A random live member, found by trying random nodes: no scan of a
    /// big ring when most nodes are members.
    pub fn any_member(&mut self) -> Option<usize> {
        for _ in 0..64 {
            let i = self.rng.gen_range(0..self.nodes.len().max(1));
            if i < self.nodes.len() && self.is_member(i) {
                return Some(i);
            }
        }
        self.random_member()
    }

    /// Start a lookup of a random key from a random live member.
    fn random_lookup(&mut self, ops: &mut Pending) {
        let Some(i) = self.any_member() else {
            return;
        };
        let key = Id(self.rng.gen());
        let op = self.call(i, |n, now| n.lookup(now, key));
        ops.insert((i, op), (key, self.now));
    }

    /// Judge the lookups of `ops` among the operations finished since
    /// `seen` against the members alive now, taking them out of `ops`.
    fn judge(&self, seen: usize, ops: &mut Pending, owners: &mut Owners, stats: &mut LookupStats) {
        for f in &self.finished[seen..] {
            let Some((key, started)) = ops.remove(&(f.node, f.op)) else {
                continue;
            };
            stats.slowest = stats.slowest.max(f.at - started);
            match &f.result {
                Ok(OpOutcome::Located(info)) => {
                    let side = self.nodes[f.node].side;
                    if owners.owner(self, side, key) == Some(info.owner) {
                        stats.right += 1;
                    } else {
                        stats.wrong += 1;
                    }
                    stats.hops.push(info.hops);
                }
                _ => stats.failed += 1,
            }
        }
    }

    /// Run until every lookup in `ops` has ended or its asker died, or
    /// until `until`; then count what is left.
    fn finish_lookups(
        &mut self,
        until: Instant,
        ops: &mut Pending,
        owners: &mut Owners,
        stats: &mut LookupStats,
        mut check: impl FnMut(&Sim) -> Result<(), String>,
    ) {
        let mut seen = self.finished.len();
        while ops.keys().any(|&(i, _)| self.nodes[i].alive) && self.step(until) {
            if self.dirty {
                self.dirty = false;
                if let Err(e) = check(self) {
                    panic!("seed {}: t={:.3}s: {e}", self.seed, self.t());
                }
            }
            self.judge(seen, ops, owners, stats);
            seen = self.finished.len();
        }
        stats.orphaned = ops.keys().filter(|&&(i, _)| !self.nodes[i].alive).count();
        stats.unfinished = ops.len() - stats.orphaned;
    }

    /// Start `count` lookups of random keys, each from a random live member,
    /// all at this instant, and run (checking `check`) until every one has
    /// ended or `limit` has passed. A lookup is right if its owner is the
    /// first live member at or after its key when it ends.
    pub fn lookup_batch(
        &mut self,
        count: usize,
        limit: Duration,
        check: impl FnMut(&Sim) -> Result<(), String>,
    ) -> LookupStats {
        let seen = self.finished.len();
        let mut ops = Pending::new();
        let mut owners = Owners::default();
        for _ in 0..count {
            self.random_lookup(&mut ops);
        }
        let mut stats = LookupStats {
            asked: ops.len(),
            ..LookupStats::default()
        };
        self.judge(seen, &mut ops, &mut owners, &mut stats);
        let until = self.now + limit;
        self.finish_lookups(until, &mut ops, &mut owners, &mut stats, check);
        stats
    }

    /// Churn for `span`: nodes join (through a random member) and fail,
    /// each at `rate` per second (Poisson), while `count` lookups start at
    /// random instants; then run until every lookup has ended or `limit`
    /// more has passed. Each lookup is judged when it ends, against the
    /// members alive then; one whose asker died first is not counted as
    /// asked. No ring checks: a benchmark's loop.
    pub fn churn_lookups(
        &mut self,
        rate: f64,
        span: Duration,
        count: usize,
        limit: Duration,
    ) -> LookupStats {
        // (virtual offset, what): 0 join, 1 failure, 2 lookup.
        let mut events: Vec<(Duration, u8)> = Vec::new();
        for kind in [0u8, 1].into_iter().filter(|_| rate > 0.0) {
            let mut t = 0.0;
            loop {
                t += -(1.0 - self.rng.gen::<f64>()).ln() / rate;
                if t >= span.as_secs_f64() {
                    break;
                }
                events.push((Duration::from_secs_f64(t), kind));
            }
        }
        for _ in 0..count {
            events.push((span.mul_f64(self.rng.gen::<f64>()), 2));
        }
        events.sort();
        let start = self.now;
        let mut ops = Pending::new();
        let mut owners = Owners::default();
        let mut stats = LookupStats::default();
        let mut seen = self.finished.len();
        for (at, kind) in events {
            while self.step(start + at) {
                self.judge(seen, &mut ops, &mut owners, &mut stats);
                seen = self.finished.len();
            }
            self.now = self.now.max(start + at);
            match kind {
                0 => {
                    let via = self.any_member();
                    if via.is_some() {
                        self.add_node(via);
                    }
                }
                1 => {
                    if let Some(i) = self.any_member() {
                        self.kill(i);
                    }
                }
                _ => {
                    self.random_lookup(&mut ops);
                    stats.asked += 1;
                }
            }
            self.judge(seen, &mut ops, &mut owners, &mut stats);
            seen = self.finished.len();
        }
        let until = self.now + limit;
        self.finish_lookups(until, &mut ops, &mut owners, &mut stats, |_| Ok(()));
        stats.asked -= stats.orphaned;
        stats
    }
}
