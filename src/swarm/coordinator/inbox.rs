//! The coordinator's inbox: what each [`TorrentEvent`] does, and the links
//! to connected peers that events open and close.

use std::collections::HashSet;
use std::net::SocketAddr;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::dial::{Dial, FIRST_BACKOFF};
use super::{Coordinator, Link};
use crate::swarm::connection::{self, REQUEST_QUEUE};
use crate::swarm::pieces::PeerKey;
use crate::swarm::{PeerCommand, TorrentEvent};
use crate::wire::peer::{ExtensionHandshake, Message};

impl Coordinator {
    pub(super) fn handle_event(&mut self, ev: TorrentEvent) {
        let now = Instant::now().into_std();
        match ev {
            TorrentEvent::Connected {
                key,
                addr,
                peer_id,
                outgoing,
                commands,
            } => self.connected(key, addr, peer_id, outgoing, commands),
            TorrentEvent::Extension { key, handshake } => {
                let Some(link) = self.links.get_mut(&key) else {
                    return;
                };
                link.extended = true;
                link.pex_id = handshake.id_of("ut_pex");
                link.ours = handshake
                    .v
                    .as_deref()
                    .is_some_and(|v| v.starts_with("songswarm"));
                if let Some(p) = handshake.p.filter(|p| *p != 0) {
                    let listen = SocketAddr::new(link.addr.ip(), p);
                    link.listen = Some(listen);
                    // Do not dial a peer that is already connected to us.
                    self.known.entry(listen).or_insert_with(Dial::new).active = Some(key);
                }
                if let Some(q) = handshake.reqq {
                    self.sched.handle_peer_reqq(now, key, q);
                }
                if handshake.stream {
                    self.sched.handle_peer_streams(now, key);
                }
            }
            TorrentEvent::Message { key, message } => {
                if !self.links.contains_key(&key) {
                    return;
                }
                match message {
                    Message::Bitfield(bits) => self.sched.handle_bitfield(now, key, &bits),
                    Message::Have(i) => self.sched.handle_have(now, key, i),
                    Message::Choke => self.sched.handle_peer_choke(now, key, true),
                    Message::Unchoke => self.sched.handle_peer_choke(now, key, false),
                    Message::Interested => self.sched.handle_peer_interest(now, key, true),
                    Message::NotInterested => self.sched.handle_peer_interest(now, key, false),
                    Message::Reject(r) => self.sched.handle_reject(now, key, r),
                    Message::Suggest(i) => self.sched.handle_suggest(now, key, i),
                    Message::AllowedFast(i) => self.sched.handle_allowed_fast(now, key, i),
                    Message::Piece { index, begin, data } => {
                        self.sched.handle_block(now, key, index, begin, data);
                    }
                    _ => {}
                }
            }
            TorrentEvent::Requested { key, piece } => {
                self.sched.handle_peer_requested(now, key, piece);
            }
            TorrentEvent::Uploaded { key, bytes } => {
                self.sched.handle_uploaded(now, key, bytes);
            }
            TorrentEvent::Pex { key: _, added } => self.add_peers(added, false),
            TorrentEvent::Closed {
                key,
                reason,
                violation,
            } => self.closed(key, &reason, violation),
            TorrentEvent::Incoming { stream, handshake } => {
                let Ok(remote) = stream.peer_addr() else {
                    return;
                };
                let now = Instant::now();
                if self.refusals.refuses(remote.ip(), handshake.peer_id, now) {
                    debug!(%remote, "refusing a peer that broke the protocol or lied");
                    return;
                }
                if self.banned.contains(&remote) || !self.admit(remote.ip(), now) {
                    return;
                }
                let key = self.new_key();
                self.accepting.insert(key, remote.ip());
                self.ctx.tracker.spawn(connection::accept(
                    self.ctx.clone(),
                    key,
                    stream,
                    *handshake,
                ));
            }
            TorrentEvent::AddPeers(addrs) => {
                self.add_peers(addrs, false);
                self.dial_due(Instant::now());
            }
            TorrentEvent::NamedPeers(addrs) => {
                self.add_peers(addrs, true);
                self.dial_due(Instant::now());
            }
            TorrentEvent::Verified(results) => {
                self.hashing -= 1;
                for (piece, result) in results {
                    match result {
                        Ok(ok) => {
                            if ok {
                                debug!(piece, "piece verified");
                                self.verified.send_modify(|v| {
                                    v.set(piece);
                                });
                            } else {
                                warn!(piece, "piece failed its hash check");
                                self.current.failed_pieces += 1;
                            }
                            self.sched.handle_verified(now, piece, ok);
                        }
                        Err(e) => self.current.error = Some(e.to_string()),
                    }
                }
                self.start_hashing();
            }
            TorrentEvent::StorageFailed(e) => {
                // The command says so to the user; this is for the log.
                warn!(error = %e, "stopping the torrent");
                self.current.error = Some(e.to_string());
            }
            TorrentEvent::StreamAt {
                id,
                offset,
                end,
                byte_rate,
            } => {
                debug!(id, offset, end, byte_rate, "stream at");
                self.sched.handle_stream_at(now, id, offset, end, byte_rate);
                self.tell_streaming();
            }
            TorrentEvent::StreamClosed { id } => {
                debug!(id, "stream closed");
                self.sched.handle_stream_closed(now, id);
            }
        }
        self.drain_outputs();
    }

    pub(super) fn new_key(&mut self) -> PeerKey {
        let k = self.next_key;
        self.next_key += 1;
        k
    }

    fn connected(
        &mut self,
        key: PeerKey,
        addr: SocketAddr,
        peer_id: [u8; 20],
        outgoing: bool,
        commands: mpsc::Sender<PeerCommand>,
    ) {
        if peer_id == self.ctx.peer_id {
            // We dialled ourselves: forget that address for good.
            if let Some(a) = self.dialled.get(&key) {
                self.known.remove(a);
            }
            return;
        }
        self.accepting.remove(&key);
        let refused = (self.refusals).refuses(addr.ip(), peer_id, Instant::now());
        if self.banned.contains(&addr) || refused {
            return;
        }
        // Two connections to one peer (both dialled at once): both sides keep
        // the one opened by the smaller peer id, so they agree which survives.
        let initiator = |out: bool, theirs: [u8; 20]| if out { self.ctx.peer_id } else { theirs };
        let new_init = initiator(outgoing, peer_id);
        let dup = self
            .links
            .iter()
            .find(|(_, l)| l.peer_id == peer_id)
            .map(|(k, l)| (*k, initiator(l.outgoing, l.peer_id)));
        if let Some((old_key, old_init)) = dup {
            if old_init <= new_init {
                return;
            }
            self.remove_link(old_key);
        }
        // Slots were counted when the connection was dialled or admitted,
        // but others may have connected meanwhile.
        if self.links.len() >= self.config.max_peers && !self.make_room(Instant::now()) {
            return;
        }
        self.seen.insert(peer_id);
        let now = Instant::now().into_std();
        self.sched.handle_peer_connected(now, key, None);
        let bitfield = self.sched.bitfield_for(key).map(Bytes::from);
        let streaming = self.sched.stream_count() > 0;
        let start = PeerCommand::Start {
            bitfield,
            streaming,
        };
        if commands.try_send(start).is_err() {
            self.sched.handle_peer_gone(now, key);
            return;
        }
        let listen = self.dialled.get(&key).copied();
        if let Some(a) = listen {
            if let Some(d) = self.known.get_mut(&a) {
                d.backoff = FIRST_BACKOFF;
            }
        }
        debug!(%addr, key, outgoing, "peer connected");
        self.links.insert(
            key,
            Link {
                addr,
                peer_id,
                outgoing,
                commands,
                listen,
                pex_id: None,
                pex_sent: HashSet::new(),
                pex_at: None,
                ours: false,
                extended: false,
            },
        );
    }

    /// The first stream opened: peers already connected hear that we play
    /// the torrent while it downloads (a second extension handshake, as
    /// BEP 10 allows), so that a super-seed among them shows us every
    /// piece. Later connections hear it in their first handshake.
    fn tell_streaming(&mut self) {
        if self.told_streaming || self.sched.stream_count() == 0 {
            return;
        }
        self.told_streaming = true;
        let metadata_size = self.ctx.info.as_ref().map(|i| i.len() as u64);
        let listen_port = self.ctx.listen_port;
        let payload = ExtensionHandshake::ours(listen_port, REQUEST_QUEUE as u32, metadata_size)
            .streaming(true)
            .to_bytes();
        let keys: Vec<PeerKey> = (self.links.iter())
            .filter(|(_, l)| l.extended)
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            let payload = payload.clone();
            self.send(key, PeerCommand::Send(Message::Extended { id: 0, payload }));
        }
    }

    pub(super) fn remove_link(&mut self, key: PeerKey) {
        if self.links.remove(&key).is_some() {
            self.pending_requests.remove(&key);
            self.pending_offers.remove(&key);
            self.sched.handle_peer_gone(Instant::now().into_std(), key);
        }
    }
}
