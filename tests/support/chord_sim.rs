//! A seeded in-memory network for `chord::node`: virtual clock, random
//! delays, drops, kills and partitions, plus the ring invariants.
//!
//! Every message is delivered (or dropped) by this one event loop, so a run
//! is a pure function of its seed and can be replayed with `CHORD_SIM_SEED`.
//!
//! For the soak runner (`scripts/soak-ring`): `CHORD_SIM_SEED_FROM=K` starts
//! the seed range at K, `CHORD_SIM_KEEP_GOING=1` runs every seed even after
//! one failed, and `CHORD_SIM_STATS=FILE` appends one line per run to FILE:
//! the test, seed, steps, invariant checks, acknowledged announces, checked
//! reads and whether the run failed.
#![allow(dead_code)]

#[path = "sim_seeds.rs"]
mod sim_seeds;
#[allow(unused_imports)]
pub use sim_seeds::{for_each_seed, for_each_seed_costly, seeds};

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use songswarm::chord::message::Message;
use songswarm::chord::node::{Node, OpId, OpOutcome, Output, Phase};
use songswarm::chord::{ChordError, Peer};
use songswarm::config::ChordConfig;
use songswarm::id::Id;

/// One simulated node.
pub struct SimNode {
    /// The state machine under test.
    pub node: Node,
    /// False once killed (it never comes back; a restart is a new node).
    pub alive: bool,
    /// Partition side; messages only flow between nodes of the same side.
    pub side: u8,
    /// When it was killed.
    pub killed_at: Option<Instant>,
    /// The nodes it was told to join through.
    pub bootstrap: Vec<usize>,
}

/// A finished client operation.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Node it ran on.
    pub node: usize,
    /// Its handle.
    pub op: OpId,
    /// When it finished.
    pub at: Instant,
    /// Its result.
    pub result: Result<OpOutcome, ChordError>,
}

/// The simulated network.
pub struct Sim {
    /// Virtual time zero.
    pub base: Instant,
    /// Virtual now.
    pub now: Instant,
    /// Drives delays, drops and scenario choices.
    pub rng: StdRng,
    /// Seed of this run (printed on failure).
    pub seed: u64,
    /// Every node ever created, dead ones included.
    pub nodes: Vec<SimNode>,
    /// Address → node index.
    index: HashMap<SocketAddr, usize>,
    /// Messages in flight by delivery time: (to, from, message), where no
    /// message is the news that `from` refused a connection.
    in_flight: BTreeMap<(Instant, u64), (usize, SocketAddr, Option<Message>)>,
    /// Node wake-ups (may be stale; checked against `poll_timeout`).
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Tie-breaker for in-flight messages.
    seq: u64,
    /// Probes the nodes asked for and nobody answered yet: (node, peer,
    /// info-hash). The network never answers them (silence keeps); a
    /// test may, with `Node::on_probe`.
    pub probes: Vec<(usize, SocketAddr, Id)>,
    /// Probability that a message is lost.
    pub drop_rate: f64,
    /// Smallest and largest one-way delay.
    pub delay: (Duration, Duration),
    /// Dead nodes refuse connections (a killed process on a live host: the
    /// sender learns it a round trip later), rather than stay silent (a
    /// host that vanished, the default).
    pub refuse_dead: bool,
    /// Extra delay of everything a node sends: a slow (loaded) node.
    pub slow: HashMap<usize, Duration>,
    /// Config given to new nodes.
    pub config: ChordConfig,
    /// Client operations finished so far.
    pub finished: Vec<Finished>,
    /// Set when some node's ring state changed since the last check.
    pub dirty: bool,
    /// Lookup requests (`FindSuccessor`) delivered so far.
    pub lookups_delivered: u64,
    /// Record stores (`Store`: writes, repairs, anti-entropy, hand-off)
    /// delivered so far.
    pub stores_delivered: u64,
    /// Anti-entropy digests (`Digest`) delivered so far.
    pub digests_delivered: u64,
    /// Events processed (deliveries and wake-ups), for the soak summary.
    pub steps: u64,
    /// Invariant checks run, for the soak summary.
    pub checks: u64,
    /// Announces acknowledged (set by history scenarios), for the summary.
    pub acked: u64,
    /// Reads checked against the history (set by history scenarios).
    pub reads: u64,
}

impl Drop for Sim {
    /// One line of counters per run for the soak runner, if it asked.
    fn drop(&mut self) {
        let Ok(path) = std::env::var("CHORD_SIM_STATS") else {
            return;
        };
        let thread = std::thread::current();
        let test = thread.name().unwrap_or("unnamed").replace(' ', "_");
        let failed = u8::from(std::thread::panicking());
        let line = format!(
            "test={test} seed={} steps={} checks={} acked={} reads={} failed={failed}\n",
            self.seed, self.steps, self.checks, self.acked, self.reads
        );
        use std::io::Write;
        // One write of one short line to a file opened for appending: lines
        // of concurrent processes do not interleave.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path);
        if let Err(e) = file.and_then(|mut f| f.write_all(line.as_bytes())) {
            eprintln!("CHORD_SIM_STATS={path}: {e}");
        }
    }
}

impl Sim {
    pub fn new(seed: u64, config: ChordConfig) -> Sim {
        let base = Instant::now();
        Sim {
            base,
            now: base,
            rng: StdRng::seed_from_u64(seed),
            seed,
            nodes: Vec::new(),
            index: HashMap::new(),
            in_flight: BTreeMap::new(),
            timers: BinaryHeap::new(),
            seq: 0,
            probes: Vec::new(),
            drop_rate: 0.005,
            delay: (Duration::from_millis(1), Duration::from_millis(30)),
            refuse_dead: false,
            slow: HashMap::new(),
            config,
            finished: Vec::new(),
            dirty: true,
            lookups_delivered: 0,
            stores_delivered: 0,
            digests_delivered: 0,
            steps: 0,
            checks: 0,
            acked: 0,
            reads: 0,
        }
    }

    /// Virtual seconds since the start, for messages.
    pub fn t(&self) -> f64 {
        (self.now - self.base).as_secs_f64()
    }

    /// Add a node; it joins through `bootstrap` (a new ring if none).
    pub fn add_node(&mut self, bootstrap: Option<usize>) -> usize {
        self.add_node_via(bootstrap.into_iter().collect())
    }

    /// Add a node that joins through any of `bootstrap` (a new ring if empty).
    pub fn add_node_via(&mut self, bootstrap: Vec<usize>) -> usize {
        let addr = self.next_addr(7000);
        self.add_node_at(addr, bootstrap)
    }

    /// The address the next node gets, at `port`.
    pub fn next_addr(&self, port: u16) -> SocketAddr {
        let i = self.nodes.len();
        SocketAddr::from(([127, 0, (i / 250) as u8, (i % 250) as u8 + 1], port))
    }

    /// Add a node at `addr` that joins through any of `bootstrap`.
    pub fn add_node_at(&mut self, addr: SocketAddr, bootstrap: Vec<usize>) -> usize {
        let i = self.nodes.len();
        let node_seed = self.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
        let mut node = Node::new(addr, self.config.clone(), node_seed, self.now);
        let boot = bootstrap
            .iter()
            .map(|&b| self.nodes[b].node.addr())
            .collect();
        node.start(self.now, boot);
        let side = bootstrap.first().map(|&b| self.nodes[b].side).unwrap_or(0);
        self.nodes.push(SimNode {
            node,
            alive: true,
            side,
            killed_at: None,
            bootstrap,
        });
        self.index.insert(addr, i);
        self.drain(i);
        self.dirty = true;
        i
    }

    /// A random live member, if any.
    pub fn random_member(&mut self) -> Option<usize> {
        let members: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.is_member(i))
            .collect();
        if members.is_empty() {
            return None;
        }
        Some(members[self.rng.gen_range(0..members.len())])
    }

    pub fn is_member(&self, i: usize) -> bool {
        self.nodes[i].alive && self.nodes[i].node.phase() == Phase::Member
    }

    pub fn kill(&mut self, i: usize) {
        self.nodes[i].alive = false;
        self.nodes[i].killed_at = Some(self.now);
        self.dirty = true;
    }

    /// Run a client call on node `i` and drain its outputs.
    pub fn call(&mut self, i: usize, f: impl FnOnce(&mut Node, Instant) -> OpId) -> OpId {
        let now = self.now;
        let op = f(&mut self.nodes[i].node, now);
        self.drain(i);
        op
    }

    /// The result of op `op` on node `i`, if finished.
    pub fn result(&self, i: usize, op: OpId) -> Option<&Finished> {
        self.finished.iter().find(|f| f.node == i && f.op == op)
    }

    fn drain(&mut self, i: usize) {
        while let Some(out) = self.nodes[i].node.poll_output() {
            match out {
                Output::Send { to, msg } => self.transmit(i, to, msg),
                // The network answers no probe: silence keeps the entry.
                Output::Probe { peer, info_hash } => self.probes.push((i, peer, info_hash)),
                Output::Done { op, result } => self.finished.push(Finished {
                    node: i,
                    op,
                    at: self.now,
                    result,
                }),
            }
        }
        if let Some(t) = self.nodes[i].node.poll_timeout() {
            self.timers.push(Reverse((t, i)));
        }
    }

    /// Send `msg` from node `from` to `to` as if `from`'s node had: for
    /// nodes that do not follow the protocol (spoofers, flooders).
    pub fn send_raw(&mut self, from: usize, to: SocketAddr, msg: Message) {
        self.transmit(from, to, msg);
    }

    fn transmit(&mut self, from: usize, to: SocketAddr, msg: Message) {
        let Some(&j) = self.index.get(&to) else {
            return;
        };
        if self.rng.gen_bool(self.drop_rate) {
            return;
        }
        let (lo, hi) = self.delay;
        let slow = self.slow.get(&from).copied().unwrap_or_default();
        let at = self.now + self.rng.gen_range(lo..=hi) + slow;
        self.seq += 1;
        let from_addr = self.nodes[from].node.addr();
        self.in_flight
            .insert((at, self.seq), (j, from_addr, Some(msg)));
    }

    /// Process the next event (a delivery or a wake-up); false if none is
    /// due by `until`.
    pub fn step(&mut self, until: Instant) -> bool {
        // Drop stale wake-ups.
        while let Some(Reverse((t, i))) = self.timers.peek().copied() {
            let current = self.nodes[i].node.poll_timeout();
            if !self.nodes[i].alive || current.is_none_or(|c| c > t) {
                self.timers.pop();
            } else {
                break;
            }
        }
        let next_msg = self.in_flight.keys().next().map(|k| k.0);
        let next_timer = self.timers.peek().map(|Reverse((t, _))| *t);
        let next = match (next_msg, next_timer) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(t) => t,
                None => return false,
            },
        };
        if next > until {
            return false;
        }
        self.steps += 1;
        self.now = self.now.max(next);
        if next_msg == Some(next) {
            let (_, (j, from, msg)) = self.in_flight.pop_first().expect("peeked");
            let from_side = self.index.get(&from).map(|&f| self.nodes[f].side);
            let Some(msg) = msg else {
                // `from` refused `j`'s connection.
                if self.nodes[j].alive {
                    let before = ring_state(&self.nodes[j].node);
                    self.nodes[j].node.handle_unreachable(self.now, from);
                    self.dirty |= before != ring_state(&self.nodes[j].node);
                    self.drain(j);
                }
                return true;
            };
            if self.refuse_dead && !self.nodes[j].alive && from_side == Some(self.nodes[j].side) {
                if let Some(&f) = self.index.get(&from) {
                    let (lo, hi) = self.delay;
                    let at = self.now + self.rng.gen_range(lo..=hi);
                    self.seq += 1;
                    let dead = self.nodes[j].node.addr();
                    self.in_flight.insert((at, self.seq), (f, dead, None));
                }
                return true;
            }
            if let Ok(t) = std::env::var("CHORD_SIM_TRACE") {
                let to = self.nodes[j].node.addr().to_string();
                if t == to || t == from.to_string() || format!("{msg:?}").contains(&t) {
                    eprintln!("{:.3} {from} -> {to}: {msg:?}", self.t());
                }
            }
            if self.nodes[j].alive && from_side == Some(self.nodes[j].side) {
                if matches!(msg, Message::FindSuccessor { .. }) {
                    self.lookups_delivered += 1;
                }
                match msg {
                    Message::Store { .. } => self.stores_delivered += 1,
                    Message::Digest { .. } => self.digests_delivered += 1,
                    _ => {}
                }
                let before = ring_state(&self.nodes[j].node);
                let node = &mut self.nodes[j].node;
                node.handle_features(from, songswarm::wire::chord::FEATURES);
                node.handle_message(self.now, from, msg);
                self.dirty |= before != ring_state(&self.nodes[j].node);
                self.drain(j);
            }
        } else {
            let Reverse((_, i)) = self.timers.pop().expect("peeked");
            let before = ring_state(&self.nodes[i].node);
            self.nodes[i].node.handle_timeout(self.now);
            self.dirty |= before != ring_state(&self.nodes[i].node);
            self.drain(i);
        }
        true
    }

    /// Run until `until`, checking `check` after every step that changed
    /// some node's ring state (the invariants depend on nothing else).
    pub fn run_until(&mut self, until: Instant, mut check: impl FnMut(&Sim) -> Result<(), String>) {
        while self.step(until) {
            if self.dirty {
                self.dirty = false;
                self.checks += 1;
                if let Err(e) = check(self) {
                    panic!("seed {}: t={:.3}s: {e}", self.seed, self.t());
                }
            }
        }
        self.now = self.now.max(until);
    }

    pub fn run_for(&mut self, d: Duration, check: impl FnMut(&Sim) -> Result<(), String>) {
        let until = self.now + d;
        self.run_until(until, check);
    }

    /// Run until the ideal ring is reached (checking `check` meanwhile), or
    /// panic at `limit`.
    pub fn converge(
        &mut self,
        limit: Duration,
        mut check: impl FnMut(&Sim) -> Result<(), String>,
    ) -> Duration {
        let start = self.now;
        loop {
            self.checks += 1;
            if ideal_ring(self).is_ok() {
                return self.now - start;
            }
            if self.now - start > limit {
                let why = ideal_ring(self).unwrap_err();
                if std::env::var("CHORD_SIM_DUMP").is_ok() {
                    self.dump();
                }
                panic!(
                    "seed {}: t={:.3}s: no ideal ring after {limit:?}: {why}",
                    self.seed,
                    self.t()
                );
            }
            self.run_for(Duration::from_millis(250), &mut check);
        }
    }

    /// Print every live node's view, in ring order (failure diagnostics).
    pub fn dump(&self) {
        let mut live: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].alive)
            .collect();
        live.sort_by_key(|&i| self.nodes[i].node.id());
        for i in live {
            let n = &self.nodes[i].node;
            let name = |a: SocketAddr| self.index[&a];
            let succs: Vec<usize> = n.successors().iter().map(|p| name(p.addr)).collect();
            eprintln!(
                "node {i} side {} {:?} {:?} pred {:?} succs {succs:?}",
                self.nodes[i].side,
                n.phase(),
                n.id(),
                n.predecessor().map(|p| name(p.addr))
            );
        }
    }

    /// Live members by side.
    fn sides(&self) -> BTreeMap<u8, Vec<usize>> {
        let mut sides: BTreeMap<u8, Vec<usize>> = BTreeMap::new();
        for i in (0..self.nodes.len()).filter(|&i| self.is_member(i)) {
            sides.entry(self.nodes[i].side).or_default().push(i);
        }
        sides
    }

    /// The node at `addr` if it is alive and on `side`.
    fn live_on(&self, addr: SocketAddr, side: u8) -> Option<usize> {
        self.index
            .get(&addr)
            .copied()
            .filter(|&j| self.nodes[j].alive && self.nodes[j].side == side)
    }
}

/// What of a node the ring invariants depend on.
fn ring_state(n: &Node) -> (Phase, Vec<Peer>) {
    (n.phase(), n.successors().to_vec())
}

/// Zave's invariants, per partition side: every member has a live successor
/// in its list; successor lists are ordered and duplicate-free; following the
/// first live successor from every member ends in exactly one cycle, and that
/// cycle goes round the identifier space exactly once (one ordered ring);
/// hence every member off the ring (an appendage) reaches it.
pub fn ring_invariants(sim: &Sim) -> Result<(), String> {
    list_invariants(sim)?;
    for (side, members) in sim.sides() {
        let mut next: HashMap<usize, usize> = HashMap::new();
        for &i in &members {
            let n = &sim.nodes[i].node;
            let succ = if n.successors().is_empty() {
                i
            } else {
                match n
                    .successors()
                    .iter()
                    .find_map(|p| sim.live_on(p.addr, side))
                {
                    Some(j) => j,
                    None => {
                        return Err(format!(
                            "node {i} has no live successor in {:?}",
                            n.successors()
                        ))
                    }
                }
            };
            if !sim.is_member(succ) {
                return Err(format!(
                    "node {i}'s first live successor {succ} is not a member"
                ));
            }
            next.insert(i, succ);
        }
        // Cycles of the functional graph i → next[i].
        let mut state: HashMap<usize, u8> = HashMap::new(); // 1: on path, 2: done
        let mut cycles: Vec<Vec<usize>> = Vec::new();
        for &start in &members {
            let mut path = Vec::new();
            let mut cur = start;
            while !state.contains_key(&cur) {
                state.insert(cur, 1);
                path.push(cur);
                cur = next[&cur];
            }
            if state[&cur] == 1 {
                let pos = path.iter().position(|&p| p == cur).expect("on path");
                cycles.push(path[pos..].to_vec());
            }
            for p in path {
                state.insert(p, 2);
            }
        }
        if cycles.len() != 1 {
            return Err(format!(
                "side {side}: {} rings instead of one: {cycles:?}",
                cycles.len()
            ));
        }
        let cycle = &cycles[0];
        let wraps = (0..cycle.len())
            .filter(|&k| {
                let a = sim.nodes[cycle[k]].node.id();
                let b = sim.nodes[cycle[(k + 1) % cycle.len()]].node.id();
                b <= a
            })
            .count();
        if wraps != 1 {
            return Err(format!(
                "side {side}: the ring of {} goes round {wraps} times",
                cycle.len()
            ));
        }
    }
    Ok(())
}

/// The part of the invariants that holds at every instant, partitions
/// included: successor lists are ordered clockwise and duplicate-free.
pub fn list_invariants(sim: &Sim) -> Result<(), String> {
    for i in (0..sim.nodes.len()).filter(|&i| sim.is_member(i)) {
        let n = &sim.nodes[i].node;
        let mut last = Id::default();
        for p in n.successors() {
            let d = n.id().distance_to(p.id);
            if p.id == n.id() || d <= last {
                return Err(format!(
                    "node {i}: successor list out of order: {:?}",
                    n.successors()
                ));
            }
            last = d;
        }
    }
    Ok(())
}

/// The ideal ring on every side: each live node is a member, its successor
/// list is exactly the next r live nodes and its predecessor the previous one.
pub fn ideal_ring(sim: &Sim) -> Result<(), String> {
    let r = sim.config.successor_list_len;
    for (i, n) in sim.nodes.iter().enumerate() {
        if n.alive && n.node.phase() != Phase::Member {
            return Err(format!("node {i} has not joined"));
        }
    }
    for (side, mut members) in sim.sides() {
        members.sort_by_key(|&i| sim.nodes[i].node.id());
        let len = members.len();
        for (k, &i) in members.iter().enumerate() {
            let n = &sim.nodes[i].node;
            let want: Vec<SocketAddr> = (1..len.min(r + 1))
                .map(|d| sim.nodes[members[(k + d) % len]].node.addr())
                .collect();
            let have: Vec<SocketAddr> = n.successors().iter().map(|p| p.addr).collect();
            if have != want {
                return Err(format!(
                    "side {side}: node {i} successors {have:?}, want {want:?}"
                ));
            }
            let want_pred = (len > 1).then(|| sim.nodes[members[(k + len - 1) % len]].node.addr());
            if n.predecessor().map(|p| p.addr) != want_pred {
                return Err(format!(
                    "side {side}: node {i} predecessor {:?}, want {want_pred:?}",
                    n.predecessor()
                ));
            }
        }
    }
    Ok(())
}

/// Config for simulations: default sizes, test-speed timers.
pub fn sim_config() -> ChordConfig {
    ChordConfig {
        stabilize_interval: Duration::from_millis(500),
        fix_finger_interval: Duration::from_millis(500),
        replicate_interval: Duration::from_secs(3),
        rejoin_interval: Duration::from_secs(3),
        rpc_timeout: Duration::from_millis(800),
        ..ChordConfig::default()
    }
}
