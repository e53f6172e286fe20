//! Client lookups on the simulated network ([`crate::chord_sim`]): kill a
//! share of the ring at once, run a batch of lookups, and count how many
//! found the live successor of their key.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
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

    /// The live members of `side` by id: a key's owner is the first at or
    /// after it.
    pub fn member_ring(&self, side: u8) -> Vec<(Id, SocketAddr)> {
        let mut ring: Vec<(Id, SocketAddr)> = (0..self.nodes.len())
            .filter(|&i| self.is_member(i) && self.nodes[i].side == side)
            .map(|i| (self.nodes[i].node.id(), self.nodes[i].node.addr()))
            .collect();
        ring.sort();
        ring
    }

    /// Start a lookup of a random key from a random live member.
    fn random_lookup(&mut self, ops: &mut HashMap<(usize, OpId), (Id, Instant)>) {
        let Some(i) = self.random_member() else {
            return;
        };
        let key = Id(self.rng.gen());
        let op = self.call(i, |n, now| n.lookup(now, key));
        ops.insert((i, op), (key, self.now));
    }

    /// Count the lookups of `ops` among the operations finished since
    /// `seen`, judged against the members alive now; returns how many.
    fn judge(
        &self,
        seen: usize,
        ops: &HashMap<(usize, OpId), (Id, Instant)>,
        stats: &mut LookupStats,
    ) -> usize {
        let mut rings: BTreeMap<u8, Vec<(Id, SocketAddr)>> = BTreeMap::new();
        let mut ended = 0;
        for f in &self.finished[seen..] {
            let Some(&(key, started)) = ops.get(&(f.node, f.op)) else {
                continue;
            };
            ended += 1;
            stats.slowest = stats.slowest.max(f.at - started);
            match &f.result {
                Ok(OpOutcome::Located(info)) => {
                    let side = self.nodes[f.node].side;
                    let ring = rings.entry(side).or_insert_with(|| self.member_ring(side));
                    let at = ring.partition_point(|(id, _)| *id < key) % ring.len();
                    if info.owner == ring[at].1 {
                        stats.right += 1;
                    } else {
                        stats.wrong += 1;
                    }
                    stats.hops.push(info.hops);
                }
                _ => stats.failed += 1,
            }
        }
        ended
    }

    /// Start `count` lookups of random keys, each from a random live member,
    /// all at this instant, and run (checking `check`) until every one has
    /// ended or `limit` has passed. A lookup is right if its owner is the
    /// first live member at or after its key when it ends.
    pub fn lookup_batch(
        &mut self,
        count: usize,
        limit: Duration,
        mut check: impl FnMut(&Sim) -> Result<(), String>,
    ) -> LookupStats {
        let mut seen = self.finished.len();
        let mut ops = HashMap::new();
        for _ in 0..count {
            self.random_lookup(&mut ops);
        }
        let mut stats = LookupStats {
            asked: ops.len(),
            ..LookupStats::default()
        };
        let until = self.now + limit;
        let mut ended = self.judge(seen, &ops, &mut stats);
        seen = self.finished.len();
        while ended < stats.asked && self.step(until) {
            if self.dirty {
                self.dirty = false;
                if let Err(e) = check(self) {
                    panic!("seed {}: t={:.3}s: {e}", self.seed, self.t());
                }
            }
            ended += self.judge(seen, &ops, &mut stats);
            seen = self.finished.len();
        }
        stats.unfinished = stats.asked - ended;
        stats
    }

    /// Churn for `span`: nodes join (through a random member) and fail,
    /// each at `rate` per second (Poisson), while `count` lookups start at
    /// random instants; then run until every lookup has ended or `limit`
    /// more has passed. Each lookup is judged when it ends, against the
    /// members alive then. No ring checks: a benchmark's loop.
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
        let mut ops = HashMap::new();
        let mut stats = LookupStats::default();
        let (mut ended, mut seen) = (0, self.finished.len());
        for (at, kind) in events {
            while self.step(start + at) {
                ended += self.judge(seen, &ops, &mut stats);
                seen = self.finished.len();
            }
            self.now = self.now.max(start + at);
            match kind {
                0 => {
                    let via = self.random_member();
                    if via.is_some() {
                        self.add_node(via);
                    }
                }
                1 => {
                    if let Some(i) = self.random_member() {
                        self.kill(i);
                    }
                }
                _ => self.random_lookup(&mut ops),
            }
            ended += self.judge(seen, &ops, &mut stats);
            seen = self.finished.len();
        }
        stats.asked = ops.len();
        let until = self.now + limit;
        while ended < stats.asked && self.step(until) {
            ended += self.judge(seen, &ops, &mut stats);
            seen = self.finished.len();
        }
        stats.unfinished = stats.asked - ended;
        stats
    }
}
