//! Carrying out the scheduler's outputs: commands to peers (always
//! `try_send`: a peer whose queue is full is too slow and is dropped), and
//! piece verification on blocking threads.

use bytes::Bytes;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::Coordinator;
use crate::piece_hash::LANES;
use crate::swarm::pieces::PeerKey;
use crate::swarm::scheduler::{Output, BOTH_SEEDS};
use crate::swarm::{PeerCommand, TorrentEvent};
use crate::wire::peer::Message;

/// Most hashing jobs one torrent runs at once. Each also writes its pieces:
/// with one alone a 1 GiB loopback leech ran at 1,240 MB/s, with two at 1,328
/// (medians of six alternating runs).
const MAX_HASHING_JOBS: usize = 2;

/// A hashing job takes more than `LANES` waiting pieces while they total
/// less than this: small pieces then cost one trip to a blocking thread per
/// MiB, not one per four pieces (with 16 KiB pieces those trips, and the
/// context switches they bring, were a tenth of a leecher's CPU).
const JOB_BYTES: usize = 1024 * 1024;

/// Bytes of a piece given as its blocks.
fn total(blocks: &[Bytes]) -> usize {
    blocks.iter().map(Bytes::len).sum()
}

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

    /// Sends what a batch of events collected: requests, HAVEs of the
    /// pieces verified, a super-seed's offers; at most one command of each
    /// kind per peer.
    pub(super) fn flush_commands(&mut self) {
        self.drain_outputs();
        for (key, blocks) in std::mem::take(&mut self.pending_requests) {
            self.send(key, PeerCommand::Request(blocks));
        }
        let haves = std::mem::take(&mut self.pending_haves);
        if !haves.is_empty() {
            let keys: Vec<PeerKey> = self.links.keys().copied().collect();
            for key in keys {
                self.send(key, PeerCommand::Have(haves.clone()));
            }
        }
        for (peer, pieces) in std::mem::take(&mut self.pending_offers) {
            self.send(peer, PeerCommand::Have(pieces));
        }
    }

    pub(super) fn drain_outputs(&mut self) {
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
                    // Offers made before an unchoke go before it: a client
                    // asks for what it knows the moment it is unchoked,
                    // and rqbit, finding nothing more, looks again 5 s on.
                    if let Some(pieces) = self.pending_offers.remove(&peer) {
                        self.send(peer, PeerCommand::Have(pieces));
                    }
                    self.send(peer, PeerCommand::Choke(choke));
                }
                Output::Have(piece) => self.pending_haves.push(piece),
                Output::Offer { peer, piece } => {
                    debug!(peer, piece, "offering piece");
                    self.pending_offers.entry(peer).or_default().push(piece);
                }
                Output::Verify { piece, blocks } => self.verify(piece, blocks),
                Output::Disconnect { peer, ban, reason } => {
                    if let Some(link) = self.links.get(&peer) {
                        if ban {
                            warn!(addr = %link.addr, reason, "banning peer");
                            self.banned.insert(link.addr);
                            let now = Instant::now();
                            self.refusals.ban(link.addr.ip(), link.peer_id, now);
                            if let Some(l) = link.listen {
                                self.banned.insert(l);
                                self.known.remove(&l);
                            }
                        } else {
                            debug!(addr = %link.addr, reason, "disconnecting peer");
                        }
                        if let (true, Some(l)) = (reason == BOTH_SEEDS, link.listen) {
                            if let Some(d) = self.known.get_mut(&l) {
                                d.seed = true;
                            }
                        }
                    }
                    // The scheduler already forgot it; dropping the command
                    // sender stops its writer, which stops its reader.
                    self.links.remove(&peer);
                    self.pending_requests.remove(&peer);
                    self.pending_offers.remove(&peer);
                }
                Output::Complete => {
                    info!("download complete");
                    self.publish();
                }
            }
        }
    }

    /// Queues a complete piece for its hash check.
    pub(super) fn verify(&mut self, piece: u32, blocks: Vec<Bytes>) {
        self.to_verify.push_back((piece, blocks));
        self.start_hashing();
    }

    /// Starts hashing jobs for the waiting pieces. A job takes up to
    /// `LANES` of them (more while they are small, see `JOB_BYTES`) and
    /// hashes them `LANES` at a time: pieces that complete while
    /// the jobs are busy wait, and are then hashed at up to twice the speed
    /// per piece. With no job running any waiting piece starts one; beside a
    /// running job only a full batch does (pieces hashed alone cost the
    /// leecher about a twentieth more CPU per GiB, loopback, 1 MiB pieces).
    /// The running job's end calls this again, so no piece waits for more.
    pub(super) fn start_hashing(&mut self) {
        while !self.to_verify.is_empty() && self.hashing < MAX_HASHING_JOBS {
            if self.hashing > 0 && self.to_verify.len() < LANES {
                break;
            }
            let mut n = self.to_verify.len().min(LANES);
            let mut bytes: usize = self.to_verify.iter().take(n).map(|(_, b)| total(b)).sum();
            while n < self.to_verify.len() && bytes < JOB_BYTES {
                bytes += total(&self.to_verify[n].1);
                n += 1;
            }
            let batch: Vec<(u32, Vec<Bytes>)> = self.to_verify.drain(..n).collect();
            self.hashing += 1;
            let storage = self.ctx.storage.clone();
            let events = self.ctx.events.clone();
            self.ctx.tracker.spawn(async move {
                let pieces: Vec<u32> = batch.iter().map(|(p, _)| *p).collect();
                let results = tokio::task::spawn_blocking(move || storage.verify_and_write(&batch))
                    .await
                    .unwrap_or_else(|e| {
                        let failed = || {
                            Err(crate::storage::StorageError::Io {
                                path: Default::default(),
                                source: std::io::Error::other(e.to_string()),
                            })
                        };
                        pieces.iter().map(|_| failed()).collect()
                    });
                let results = pieces.into_iter().zip(results).collect();
                let _ = events.send(TorrentEvent::Verified(results)).await;
            });
        }
    }
}
