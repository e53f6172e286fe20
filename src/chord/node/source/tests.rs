//! Asking the source, through a whole node: relays arrive as `Store`
//! messages, probes leave as outputs, verdicts come back by `on_probe`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::chord::message::{Message, Role};
use crate::chord::node::{Node, Output, Verdict};
use crate::config::ChordConfig;
use crate::id::Id;
use crate::wire::chord::message::{WireEntry, WireRecord};

fn at(host: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, host], port))
}

/// The relaying ring member (it lists peers at other addresses).
const RELAY: u8 = 2;

/// A node that founded a ring alone: it holds every key.
fn node(config: ChordConfig, now: Instant) -> Node {
    let mut node = Node::new(at(1, 4000), config, 7, now);
    node.start(now, Vec::new());
    drain(&mut node);
    node
}

fn config() -> ChordConfig {
    ChordConfig {
        probes_per_ip: 2,
        max_outstanding_probes: 4,
        ..ChordConfig::default()
    }
}

/// Everything the node wants done: (probes, other outputs).
fn drain(node: &mut Node) -> (Vec<(SocketAddr, Id)>, Vec<Output>) {
    let (mut probes, mut rest) = (Vec::new(), Vec::new());
    while let Some(out) = node.poll_output() {
        match out {
            Output::Probe { peer, info_hash } => probes.push((peer, info_hash)),
            other => rest.push(other),
        }
    }
    (probes, rest)
}

/// `from` stores an announce of `peer` at `key` on `node`; what came out.
fn relay(
    node: &mut Node,
    now: Instant,
    from: SocketAddr,
    key: Id,
    peer: SocketAddr,
) -> (Vec<(SocketAddr, Id)>, Vec<Output>) {
    let entry = WireEntry {
        peer,
        ttl_ms: 60_000,
        role: Role::Seeder,
        removed: false,
    };
    let value = WireRecord::Swarm(vec![entry]);
    node.handle_message(now, from, Message::Store { req: 9, key, value });
    drain(node)
}

fn holds(node: &Node, key: Id, peer: SocketAddr) -> bool {
    node.stored(&key).is_some_and(|l| l.get(&peer).is_some())
}

fn stored_ok(outputs: &[Output]) -> bool {
    outputs.iter().any(|o| {
        matches!(
            o,
            Output::Send {
                msg: Message::Stored { ok: true, .. },
                ..
            }
        )
    })
}

#[test]
fn a_relayed_third_party_entry_is_kept_and_probed_once() {
    let t = Instant::now();
    let mut n = node(config(), t);
    let (key, peer) = (Id::hash(b"song"), at(9, 6881));
    let (probes, rest) = relay(&mut n, t, at(RELAY, 4000), key, peer);
    assert_eq!(probes, vec![(peer, key)]);
    assert!(stored_ok(&rest), "a relay is acknowledged as before");
    assert!(holds(&n, key, peer), "kept while unknown");
    assert_eq!(n.probes_in_flight(), 1);
    // Relayed again (anti-entropy from another member): already held.
    let (probes, _) = relay(&mut n, t, at(3, 4000), key, peer);
    assert!(probes.is_empty(), "{probes:?}");
}

#[test]
fn gone_drops_the_entry_and_its_quota_and_no_relay_brings_it_back() {
    let t = Instant::now();
    let mut n = node(config(), t);
    let (key, peer) = (Id::hash(b"song"), at(9, 6881));
    relay(&mut n, t, at(RELAY, 4000), key, peer);
    assert_eq!(n.items(peer.ip()).1, 1);
    n.on_probe(t, peer, key, Verdict::Gone);
    assert!(!holds(&n, key, peer));
    assert_eq!(n.items(peer.ip()), (0, 0), "the source's quota is released");
    for from in [at(RELAY, 4000), at(3, 4000)] {
        let later = t + Duration::from_secs(30);
        let (probes, rest) = relay(&mut n, later, from, key, peer);
        assert!(!holds(&n, key, peer), "relayed back by {from}");
        assert!(probes.is_empty());
        assert!(stored_ok(&rest), "the rest of a relay is still taken");
    }
    // The peer's own address may announce it again (its next announce).
    let (probes, _) = relay(&mut n, t, at(9, 4000), key, peer);
    assert!(holds(&n, key, peer));
    assert!(probes.is_empty());
}

#[test]
fn serving_and_silent_keep_the_entry() {
    let t = Instant::now();
    let mut n = node(config(), t);
    for (i, verdict) in [Verdict::Serving, Verdict::Silent].into_iter().enumerate() {
        let (key, peer) = (Id::hash(&[i as u8]), at(9 + i as u8, 6881));
        let (probes, _) = relay(&mut n, t, at(RELAY, 4000), key, peer);
        assert_eq!(probes.len(), 1);
        n.on_probe(t, peer, key, verdict);
        assert!(holds(&n, key, peer), "{verdict:?}");
        assert_eq!(n.probes_in_flight(), 0);
    }
}

#[test]
fn probes_are_rate_limited_per_target_ip_and_bounded_in_flight() {
    let t = Instant::now();
    let mut n = node(config(), t);
    let mut asked = 0;
    for i in 0..5u8 {
        let (probes, _) = relay(&mut n, t, at(RELAY, 4000), Id::hash(&[i]), at(9, 6881));
        asked += probes.len();
    }
    assert_eq!(asked, 2, "probes_per_ip");
    for host in 10..20u8 {
        let (probes, _) = relay(&mut n, t, at(RELAY, 4000), Id::hash(&[host]), at(host, 1));
        asked += probes.len();
    }
    assert_eq!(asked, 4, "max_outstanding_probes");
    assert_eq!(n.probes_in_flight(), 4);
    for i in 0..5u8 {
        assert!(
            holds(&n, Id::hash(&[i]), at(9, 6881)),
            "unprobed relays are kept"
        );
    }
}

#[test]
fn a_nodes_own_announce_is_never_probed() {
    let t = Instant::now();
    let mut n = node(config(), t);
    let key = Id::hash(b"song");
    // Stored by the node at the peer's own address: announced directly.
    let (probes, _) = relay(&mut n, t, at(RELAY, 4000), key, at(RELAY, 6881));
    assert!(probes.is_empty(), "{probes:?}");
    assert!(holds(&n, key, at(RELAY, 6881)));
    // And this node's own announce, stored on itself.
    n.announce(t, key, at(1, 6881), Role::Seeder);
    let (probes, _) = drain(&mut n);
    assert!(probes.is_empty(), "{probes:?}");
}

#[test]
fn a_nodes_own_announce_lifts_a_denial_of_its_address() {
    let t = Instant::now();
    let mut n = node(config(), t);
    let (key, mine) = (Id::hash(b"song"), at(1, 6881));
    // Another member relays an entry at our own address: we probe it.
    let (probes, _) = relay(&mut n, t, at(RELAY, 4000), key, mine);
    assert_eq!(probes, vec![(mine, key)]);
    n.on_probe(t, mine, key, Verdict::Gone);
    assert!(!holds(&n, key, mine));
    // Now we announce it ourselves (this node is the only replica).
    n.announce(t, key, mine, Role::Seeder);
    drain(&mut n);
    assert!(holds(&n, key, mine), "our own word beats the denial");
}
