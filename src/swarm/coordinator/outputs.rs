//! Carrying out the scheduler's outputs: commands to peers (always
//! `try_send`: a peer whose queue is full is too slow and is dropped), and
//! piece verification on blocking threads.

use std::collections::BTreeMap;

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::Coordinator;
use crate::swarm::pieces::PeerKey;
use crate::swarm::scheduler::Output;
use crate::swarm::{PeerCommand, PeerEvent};
use crate::wire::peer::Message;

impl Coordinator {
    pub(super) fn send(&mut self, key: PeerKey, cmd: PeerCommand) {
        let Some(link) = self.links.get(&key) else {
            return;
        };
        if link.commands.try_send(cmd).is_err() {
            info!(
                key,
                "peer too slow to keep up with its command queue, dropping it"
            );
            self.remove_link(key);
        }
    }

    pub(super) fn flush_requests(&mut self) {
        for (key, blocks) in std::mem::take(&mut self.pending_requests) {
            self.send(key, PeerCommand::Request(blocks));
        }
        self.drain_outputs();
    }

    pub(super) fn drain_outputs(&mut self) {
        // A super-seed may offer a peer thousands of small pieces at once:
        // they go as one command per peer, after the rest.
        let mut offers: BTreeMap<PeerKey, Vec<u32>> = BTreeMap::new();
        while let Some(out) = self.sched.poll_output() {
            match out {
                Output::Request { peer, blocks } => self
                    .pending_requests
                    .entry(peer)
                    .or_default()
                    .extend(blocks),
                Output::Cancel { peer, block } => {
                    let pending = self.pending_requests.get_mut(&peer);
                    match pending.and_then(|p| p.iter().position(|b| *b == block).map(|i| (p, i))) {
                        Some((p, i)) => {
                            p.remove(i);
                        }
                        None => self.send(peer, PeerCommand::Send(Message::Cancel(block))),
                    }
                }
                Output::Interest { peer, interested } => {
                    let m = if interested {
                        Message::Interested
                    } else {
                        Message::NotInterested
                    };
                    self.send(peer, PeerCommand::Send(m));
                }
                Output::Choke { peer, choke } => {
                    debug!(peer, choke, "choke");
                    self.send(peer, PeerCommand::Choke(choke));
                }
                Output::Have(piece) => {
                    let keys: Vec<PeerKey> = self.links.keys().copied().collect();
                    for key in keys {
                        self.send(key, PeerCommand::Have(vec![piece]));
                    }
                }
                Output::Offer { peer, piece } => {
                    debug!(peer, piece, "offering piece");
                    offers.entry(peer).or_default().push(piece);
                }
                Output::Verify { piece, blocks } => self.verify(piece, blocks),
                Output::Disconnect { peer, ban, reason } => {
                    if let Some(link) = self.links.get(&peer) {
                        if ban {
                            warn!(addr = %link.addr, reason, "banning peer");
                            self.banned.insert(link.addr);
                            if let Some(l) = link.listen {
                                self.banned.insert(l);
                                self.known.remove(&l);
                            }
                        } else {
                            debug!(addr = %link.addr, reason, "disconnecting peer");
                        }
                    }
                    // The scheduler already forgot it; dropping the command
                    // sender stops its writer, which stops its reader.
                    self.links.remove(&peer);
                    self.pending_requests.remove(&peer);
                }
                Output::Complete => {
                    info!("download complete");
                    self.publish();
                }
            }
        }
        for (peer, pieces) in offers {
            self.send(peer, PeerCommand::Have(pieces));
        }
    }

    pub(super) fn verify(&mut self, piece: u32, blocks: Vec<Bytes>) {
        let storage = self.ctx.storage.clone();
        let events = self.ctx.events.clone();
        self.ctx.tracker.spawn(async move {
            let result =
                tokio::task::spawn_blocking(move || storage.verify_and_write(piece, &blocks)).await;
            let result = match result {
                Ok(r) => r,
                Err(e) => Err(crate::storage::StorageError::Io {
                    path: Default::default(),
                    source: std::io::Error::other(e.to_string()),
                }),
            };
            let _ = events.send(PeerEvent::Verified { piece, result }).await;
        });
    }
}
