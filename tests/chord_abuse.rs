//! Seeded ring simulations of abuse: a node asked to announce a
//! third-party address (to point swarms at a victim), and one that floods
//! replicas with announces for random keys, and one running modified
//! software that relays a third party's address as anti-entropy would. A
//! node announces only its own address, the replicas' caps hold whatever
//! one source sends, without displacing other sources' entries, and a
//! relayed address found gone leaves every replica, joiners included.
//!
//! `CHORD_SIM_SEEDS=N` runs N seeds per scenario; `CHORD_SIM_SEED=S`
//! replays one. A failure prints its seed.

#[path = "support/chord_sim.rs"]
mod chord_sim;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use chord_sim::{for_each_seed, ring_invariants, sim_config, Sim};
use rand::Rng;
use songswarm::chord::message::{Message, WireEntry, WireRecord};
use songswarm::chord::node::{OpOutcome, Verdict};
use songswarm::chord::{ChordError, Role};
use songswarm::config::ChordConfig;
use songswarm::id::Id;

/// Grow a ring of `n` nodes, one join at a time, and settle it.
fn grow(sim: &mut Sim, n: usize) {
    sim.add_node(None);
    while sim.nodes.len() < n {
        let via = sim.random_member().expect("a member");
        sim.add_node(Some(via));
        sim.run_for(Duration::from_millis(300), ring_invariants);
    }
    sim.converge(Duration::from_secs(60), ring_invariants);
    sim.run_for(Duration::from_secs(5), ring_invariants);
}

/// The live peers of `key` as node `i` reads them.
fn read(sim: &mut Sim, i: usize, key: Id) -> Vec<(SocketAddr, Role)> {
    let op = sim.call(i, |n, now| n.peers(now, key));
    sim.run_for(Duration::from_secs(3), ring_invariants);
    match &sim.result(i, op).expect("a read ends").result {
        Ok(OpOutcome::Peers(peers)) => peers.clone(),
        other => panic!("seed {}: read of {key:?}: {other:?}", sim.seed),
    }
}

#[test]
fn a_nodes_announces_for_third_party_addresses_are_refused() {
    for_each_seed(4, 21, |seed| {
        let mut sim = Sim::new(seed, sim_config());
        grow(&mut sim, 24);
        let spoofer = sim.random_member().expect("a member");
        let own = SocketAddr::new(sim.nodes[spoofer].node.addr().ip(), 6881);
        let victim = SocketAddr::from(([10, 0, 0, 5], 6881));
        let key = Id(sim.rng.gen());

        // Through its own node: refused at once, with the reason.
        let op = sim.call(spoofer, |n, now| n.announce(now, key, victim, Role::Seeder));
        sim.run_for(Duration::from_secs(1), ring_invariants);
        let result = &sim.result(spoofer, op).expect("ends at once").result;
        assert!(
            matches!(result, Err(ChordError::NotYourAddress { peer, .. }) if *peer == victim),
            "seed {seed}: {result:?}"
        );

        // Nothing of it reached the ring; its own address is taken.
        let op = sim.call(spoofer, |n, now| n.announce(now, key, own, Role::Seeder));
        sim.run_for(Duration::from_secs(2), ring_invariants);
        let result = &sim.result(spoofer, op).expect("ended").result;
        assert_eq!(result, &Ok(OpOutcome::Stored), "seed {seed}");
        let reader = sim.random_member().expect("a member");
        let peers = read(&mut sim, reader, key);
        assert_eq!(peers, vec![(own, Role::Seeder)], "seed {seed}: {key:?}");
    });
}

#[test]
fn a_flooding_node_cannot_displace_other_sources_or_pass_the_caps() {
    for_each_seed(3, 22, |seed| {
        let config = ChordConfig {
            max_peers_per_key: 8,
            max_peers_per_key_per_source: 2,
            max_keys_per_source: 30,
            max_items_per_node: 40,
            ..sim_config()
        };
        let mut sim = Sim::new(seed, config);
        grow(&mut sim, 16);
        let members: Vec<usize> = (0..sim.nodes.len()).filter(|&i| sim.is_member(i)).collect();
        let (flooder, honest) = (members[0], &members[1..7]);
        let popular = Id(sim.rng.gen());

        // Six sources announce themselves for three keys each and for one
        // popular key.
        let mut announced = Vec::new();
        for &h in honest {
            let peer = SocketAddr::new(sim.nodes[h].node.addr().ip(), 6881);
            for k in 0..4 {
                let key = if k == 0 { popular } else { Id(sim.rng.gen()) };
                let op = sim.call(h, |n, now| n.announce(now, key, peer, Role::Seeder));
                announced.push((h, op, key, peer));
            }
        }
        sim.run_for(Duration::from_secs(5), ring_invariants);
        for &(h, op, key, _) in &announced {
            let result = &sim.result(h, op).expect("ended").result;
            assert_eq!(result, &Ok(OpOutcome::Stored), "seed {seed}: {key:?}");
        }

        // One source floods: 600 random keys, and the popular key from 20 ports.
        let ip = sim.nodes[flooder].node.addr().ip();
        for k in 0..620u16 {
            let key = if k < 600 { Id(sim.rng.gen()) } else { popular };
            let peer = SocketAddr::new(ip, 2000 + k);
            sim.call(flooder, |n, now| n.announce(now, key, peer, Role::Seeder));
        }
        sim.run_for(Duration::from_secs(20), ring_invariants);

        // Every replica within its caps.
        for &i in &members {
            let (items, flood) = sim.nodes[i].node.items(ip);
            assert!(items <= 40, "seed {seed}: node {i} holds {items} items");
            assert!(
                flood <= 30,
                "seed {seed}: node {i} holds {flood} of the flood"
            );
            if let Some(list) = sim.nodes[i].node.stored(&popular) {
                let of_flood = list.iter().filter(|(p, _)| p.ip() == ip).count();
                assert!(list.len() <= 8 && of_flood <= 2, "seed {seed}: {list:?}");
            }
        }
        // Every other source's announce still there.
        for &(_, _, key, peer) in &announced {
            let reader = honest[0];
            let peers = read(&mut sim, reader, key);
            assert!(
                peers.contains(&(peer, Role::Seeder)),
                "seed {seed}: {peer} lost from {key:?} after the flood: {peers:?}"
            );
        }
    });
}

/// Answer every probe asked so far: `victim` is gone, everyone else
/// serves. Returns the nodes that asked about the victim.
fn answer_probes(sim: &mut Sim, victim: SocketAddr) -> BTreeSet<usize> {
    let asked = std::mem::take(&mut sim.probes);
    for &(i, peer, key) in &asked {
        let verdict = if peer == victim {
            Verdict::Gone
        } else {
            Verdict::Serving
        };
        let now = sim.now;
        sim.nodes[i].node.on_probe(now, peer, key, verdict);
    }
    asked
        .iter()
        .filter(|(_, peer, _)| *peer == victim)
        .map(|(i, _, _)| *i)
        .collect()
}

/// Live nodes whose list of `key` holds `peer`.
fn holders(sim: &Sim, key: Id, peer: SocketAddr) -> Vec<usize> {
    (0..sim.nodes.len())
        .filter(|&i| sim.nodes[i].alive)
        .filter(|&i| {
            let list = sim.nodes[i].node.stored(&key);
            list.is_some_and(|l| l.get(&peer).is_some())
        })
        .collect()
}

/// `liar` relays an announce of `victim` at `key` to each of `targets`.
fn relay_to(sim: &mut Sim, liar: usize, targets: &[SocketAddr], key: Id, victim: SocketAddr) {
    for (n, to) in targets.iter().enumerate() {
        let entry = WireEntry {
            peer: victim,
            ttl_ms: 20 * 60 * 1000,
            role: Role::Seeder,
            removed: false,
        };
        let store = Message::Store {
            req: 1_000_000 + n as u64,
            key,
            value: WireRecord::Swarm(vec![entry]),
        };
        sim.send_raw(liar, *to, store);
    }
}

#[test]
fn a_relayed_address_found_gone_leaves_every_replica() {
    for_each_seed(3, 31, |seed| {
        let mut sim = Sim::new(seed, sim_config());
        grow(&mut sim, 16);
        let key = Id(sim.rng.gen());
        let honest = sim.random_member().expect("a member");
        let own = SocketAddr::new(sim.nodes[honest].node.addr().ip(), 6881);
        let op = sim.call(honest, |n, now| n.announce(now, key, own, Role::Seeder));
        sim.run_for(Duration::from_secs(2), ring_invariants);
        let result = &sim.result(honest, op).expect("ended").result;
        assert_eq!(result, &Ok(OpOutcome::Stored), "seed {seed}");

        // The modified member relays a victim's address to every node.
        let liar = sim.random_member().expect("a member");
        let victim = SocketAddr::from(([10, 0, 0, 5], 6881));
        let targets: Vec<SocketAddr> = (0..sim.nodes.len())
            .filter(|&i| i != liar)
            .map(|i| sim.nodes[i].node.addr())
            .collect();
        relay_to(&mut sim, liar, &targets, key, victim);
        sim.run_for(Duration::from_secs(1), ring_invariants);
        let kept = holders(&sim, key, victim);
        assert!(!kept.is_empty(), "seed {seed}: kept until asked");

        // Joiners take their key ranges (the relayed entry among them)
        // before anyone's verdict is in.
        for _ in 0..3 {
            let via = sim.random_member().expect("a member");
            sim.add_node(Some(via));
            sim.run_for(Duration::from_millis(500), ring_invariants);
        }
        // Every probe of the victim finds it gone, over several
        // anti-entropy periods (which relay it on to nodes not yet asked).
        let mut asked = BTreeSet::new();
        for _ in 0..7 {
            asked.extend(answer_probes(&mut sim, victim));
            sim.run_for(sim_config().replicate_interval, ring_invariants);
        }
        asked.extend(answer_probes(&mut sim, victim));
        assert!(
            kept.iter().all(|i| asked.contains(i)),
            "seed {seed}: holders asked"
        );
        assert_eq!(
            holders(&sim, key, victim),
            Vec::<usize>::new(),
            "seed {seed}"
        );

        // Relayed again: no node that found it gone takes it back (one the
        // first relay missed takes it, and asks).
        relay_to(&mut sim, liar, &targets, key, victim);
        sim.run_for(Duration::from_secs(1), ring_invariants);
        let again = holders(&sim, key, victim);
        assert!(
            again.iter().all(|i| !asked.contains(i)),
            "seed {seed}: {again:?}"
        );
        let asking = answer_probes(&mut sim, victim);
        assert!(
            asking.iter().all(|i| !asked.contains(i)),
            "seed {seed}: asked twice"
        );
        assert!(
            again.iter().all(|i| asking.contains(i)),
            "seed {seed}: {again:?}"
        );
        let reader = sim.random_member().expect("a member");
        let peers = read(&mut sim, reader, key);
        assert_eq!(peers, vec![(own, Role::Seeder)], "seed {seed}: {key:?}");
    });
}
