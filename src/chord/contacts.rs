//! Nodes this node knows besides its neighbours: where it joined through,
//! and a sample of every node it has heard from. Looking our own id up
//! through a past contact now and then merges rings that a partition split.

use std::net::SocketAddr;

use rand::rngs::StdRng;
use rand::Rng;

use crate::chord::Peer;

/// Past contacts remembered for partition healing.
pub(crate) const MAX_CONTACTS: usize = 32;

/// Bootstrap nodes and past contacts.
#[derive(Debug)]
pub(crate) struct Contacts {
    /// This node's address (never its own contact).
    me: SocketAddr,
    /// Where to join through.
    bootstrap: Vec<SocketAddr>,
    /// Random sample of nodes heard from, at most [`MAX_CONTACTS`].
    seen: Vec<SocketAddr>,
}

impl Contacts {
    /// No contacts yet.
    pub(crate) fn new(me: SocketAddr) -> Contacts {
        Contacts {
            me,
            bootstrap: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// Join through `bootstrap` (ourselves left out); they are contacts too.
    pub(crate) fn set_bootstrap(&mut self, bootstrap: Vec<SocketAddr>, rng: &mut StdRng) {
        self.bootstrap = bootstrap.into_iter().filter(|a| *a != self.me).collect();
        for a in self.bootstrap.clone() {
            self.note(a, rng);
        }
    }

    /// True if there is a ring to join (else this node founds one).
    pub(crate) fn has_bootstrap(&self) -> bool {
        !self.bootstrap.is_empty()
    }

    /// `addr` spoke to us: remember it, keeping a random sample once full.
    pub(crate) fn note(&mut self, addr: SocketAddr, rng: &mut StdRng) {
        if addr == self.me || self.seen.contains(&addr) {
            return;
        }
        if self.seen.len() < MAX_CONTACTS {
            self.seen.push(addr);
        } else if rng.gen_ratio(1, 4) {
            // Random replacement keeps a sample of every era, so contacts
            // from before a partition survive it.
            let i = rng.gen_range(0..MAX_CONTACTS);
            self.seen[i] = addr;
        }
    }

    /// One past contact, chosen at random.
    pub(crate) fn pick(&self, rng: &mut StdRng) -> Option<Peer> {
        if self.seen.is_empty() {
            return None;
        }
        Some(Peer::new(self.seen[rng.gen_range(0..self.seen.len())]))
    }

    /// Whom a join asks first: the bootstrap nodes, then past contacts.
    pub(crate) fn join_through(&self) -> Vec<Peer> {
        let mut start: Vec<Peer> = self.bootstrap.iter().map(|a| Peer::new(*a)).collect();
        start.extend(self.past());
        start
    }

    /// Every past contact.
    pub(crate) fn past(&self) -> impl Iterator<Item = Peer> + '_ {
        self.seen.iter().map(|a| Peer::new(*a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn never_itself_never_twice_and_bounded() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut c = Contacts::new(addr(1));
        c.set_bootstrap(vec![addr(1), addr(2)], &mut rng);
        assert!(c.has_bootstrap());
        c.note(addr(2), &mut rng);
        c.note(addr(1), &mut rng);
        assert_eq!(c.past().collect::<Vec<_>>(), vec![Peer::new(addr(2))]);
        assert_eq!(
            c.join_through(),
            vec![Peer::new(addr(2)), Peer::new(addr(2))]
        );
        for port in 3..200 {
            c.note(addr(port), &mut rng);
        }
        assert_eq!(c.past().count(), MAX_CONTACTS);
        // Late arrivals replaced some early ones at random.
        assert!(c.past().any(|p| p.addr.port() > MAX_CONTACTS as u16 + 2));
        assert!(c.past().any(|p| p.addr.port() <= MAX_CONTACTS as u16 + 1));
    }

    #[test]
    fn alone_there_is_nobody_to_pick() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut c = Contacts::new(addr(1));
        c.set_bootstrap(vec![addr(1)], &mut rng);
        assert!(!c.has_bootstrap());
        assert_eq!(c.pick(&mut rng), None);
        c.note(addr(5), &mut rng);
        assert_eq!(c.pick(&mut rng), Some(Peer::new(addr(5))));
    }
}
