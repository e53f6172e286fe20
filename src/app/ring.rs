//! The ring as the tracker: joining it, announcing our torrents in it, and
//! feeding the swarms it lists to the coordinators.
//!
//! Finding the ring, in order: `--bootstrap` flags; the manifest's `nodes`;
//! LAN discovery by multicast; otherwise this process founds a new ring and
//! says so. Every process also answers discovery queries, so the next one
//! on the network finds it.
//!
//! One announcer task per torrent keeps it there ([`announcer`]): announces,
//! swarm lookups, the library's metadata, and the removal at a clean exit,
//! all on one budget of ring operations.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::pace::Pace;
use crate::chord::catalog;
use crate::chord::driver::{ChordHandle, Driver};
use crate::config::{AnnounceConfig, ChordConfig};
use crate::discovery::{self, DiscoveryConfig, Responder};
use crate::id::Id;
use crate::manifest::Manifest;
use crate::swarm::magnet::{self, MagnetError};

mod announcer;

/// How this process takes part in the ring.
#[derive(Clone, Debug, Default)]
pub struct RingOptions {
    /// Ring members to join through (`--bootstrap`), tried before anything else.
    pub bootstrap: Vec<SocketAddr>,
    /// The address other peers reach us at (`--advertise`); default: the
    /// listen address, or the interface that routes to the ring.
    pub advertise: Option<SocketAddr>,
    /// Do not look for a ring on the LAN (tests that want rings of their own).
    pub no_discovery: bool,
    /// Ring tunables.
    pub chord: ChordConfig,
    /// Announce and lookup periods.
    pub announce: AnnounceConfig,
    /// LAN discovery settings.
    pub discovery: DiscoveryConfig,
    /// Seed of the node's RNG (None: a random one); tests and the demo
    /// fix it to repeat a run.
    pub rng_seed: Option<u64>,
}

/// Where the first ring contacts came from, for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootstrapSource {
    /// `--bootstrap` flags.
    Flags,
    /// The manifest's `nodes` list.
    Manifest,
    /// Answers to a LAN discovery query.
    Discovered,
    /// Nobody: this process starts a new ring.
    NewRing,
}

/// This process's membership of the ring (a clone shares it).
#[derive(Clone)]
pub struct Ring {
    /// The Chord node (shares the process's one port).
    pub chord: ChordHandle,
    /// Our advertised address: node id and the peer address we announce.
    pub advertise: SocketAddr,
    /// Where the bootstrap contacts came from.
    pub source: BootstrapSource,
    /// Announce periods.
    announce: AnnounceConfig,
    /// What every announcer shares: the node, our address, the budget of
    /// ring operations, the token that stops them.
    announcing: Arc<announcer::Announcing>,
    /// Cancelled to stop announcers (they then remove us) and the responder.
    cancel: CancellationToken,
    /// The announcer tasks and the discovery responder.
    tasks: TaskTracker,
}

impl Ring {
    /// Joins (or founds) the ring for a process listening on `local`.
    /// `manifest_nodes` are the `nodes` of the manifests it serves.
    pub async fn join(opts: &RingOptions, local: SocketAddr, manifest_nodes: &[String]) -> Ring {
        let first_hint = opts.bootstrap.first().copied();
        let mut advertise = advertise_addr(local, opts.advertise, first_hint);
        let (mut contacts, mut source) = (opts.bootstrap.clone(), BootstrapSource::Flags);
        if contacts.is_empty() {
            contacts = resolve_nodes(manifest_nodes).await;
            source = BootstrapSource::Manifest;
            if opts.advertise.is_none() {
                advertise = advertise_addr(local, None, contacts.first().copied());
            }
        }
        contacts.retain(|&c| c != advertise);
        let discovery_config = opts.discovery.clone().interface_for(advertise);
        if contacts.is_empty() && !opts.no_discovery {
            match discovery::discover(&discovery_config, Some(advertise)).await {
                Ok(found) => contacts = found,
                Err(e) => warn!(error = %e, "LAN discovery failed"),
            }
            source = BootstrapSource::Discovered;
        }
        if contacts.is_empty() {
            source = BootstrapSource::NewRing;
        }
        match source {
            BootstrapSource::NewRing => info!(%advertise, "no ring found: starting a new ring"),
            _ => info!(%advertise, ?source, ?contacts, "joining the ring"),
        }
        let seed = opts.rng_seed.unwrap_or_else(rand::random);
        let chord = Driver::start(opts.chord.clone(), advertise, contacts, seed);
        let cancel = CancellationToken::new();
        let announcing = Arc::new(announcer::Announcing {
            chord: chord.clone(),
            me: advertise,
            config: opts.announce.clone(),
            pace: Pace::new(opts.announce.max_ops_per_second),
            cancel: cancel.clone(),
        });
        let ring = Ring {
            chord,
            advertise,
            source,
            announce: opts.announce.clone(),
            announcing,
            cancel,
            tasks: TaskTracker::new(),
        };
        if !opts.no_discovery {
            match Responder::bind(&discovery_config) {
                Ok(responder) => {
                    ring.tasks
                        .spawn(responder.run(advertise, ring.cancel.child_token()));
                }
                Err(e) => warn!(error = %e, "cannot answer LAN discovery"),
            }
        }
        ring
    }

    /// Leaves cleanly: every announcer removes us from its swarm list, then
    /// the node hands its keys on and leaves.
    pub async fn leave(self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        self.chord.leave().await;
    }
}

impl Ring {
    /// Finds the manifest of `info_hash`: its metadata record in the ring
    /// (stored by the swarm's seeders), else from the peers of its swarm
    /// (the ring's and `extra`) by BEP 9, retrying while the swarm is being
    /// announced.
    pub async fn fetch_manifest(
        &self,
        info_hash: Id,
        extra: &[SocketAddr],
        give_up_after: Option<Duration>,
    ) -> Result<FetchedManifest, MagnetError> {
        let deadline = Instant::now() + give_up_after.unwrap_or(METADATA_DEADLINE);
        let peer_id = super::new_peer_id();
        loop {
            let mut peers = extra.to_vec();
            // The ring's copy of the metadata, if the torrent was
            // published, and the swarm, both at once.
            let (found, in_ring) = tokio::join!(
                self.chord.peers(info_hash),
                catalog::get_value(&self.chord, info_hash)
            );
            if let Ok(found) = found {
                peers.extend(
                    found
                        .into_iter()
                        .map(|(a, _)| a)
                        .filter(|&a| a != self.advertise),
                );
            }
            peers.sort();
            peers.dedup();
            if let Ok(Some(info)) = in_ring {
                // The replicas checked that it hashes to the info-hash.
                debug!(%info_hash, "metadata found in the ring");
                let manifest = Manifest::from_info_bytes(&info).map_err(MagnetError::Unusable)?;
                return Ok(FetchedManifest {
                    manifest,
                    peers,
                    looked_up: Instant::now(),
                });
            }
            let error = match fetch_once(peers, info_hash, peer_id).await {
                Err(MagnetError::Unusable(e)) => return Err(MagnetError::Unusable(e)),
                Err(e) => e,
                found => return found,
            };
            if Instant::now() + self.announce.retry > deadline {
                return Err(error);
            }
            debug!(%info_hash, error = %error, "no metadata yet; retrying");
            tokio::time::sleep(self.announce.retry).await;
        }
    }
}

/// Fetches the manifest of `info_hash` from `peers` alone (no ring: the
/// user named them), retrying every `retry` while none answers yet (a
/// seed that is still starting), for `give_up_after` or a minute; the
/// error says what each peer did (refused, bad metadata, unreachable).
pub async fn fetch_manifest_from(
    info_hash: Id,
    peers: &[SocketAddr],
    retry: Duration,
    give_up_after: Option<Duration>,
) -> Result<FetchedManifest, MagnetError> {
    let deadline = Instant::now() + give_up_after.unwrap_or(METADATA_DEADLINE);
    let peer_id = super::new_peer_id();
    loop {
        let error = match fetch_once(peers.to_vec(), info_hash, peer_id).await {
            Err(MagnetError::Unusable(e)) => return Err(MagnetError::Unusable(e)),
            Err(e) => e,
            found => return found,
        };
        if Instant::now() + retry > deadline {
            return Err(error);
        }
        debug!(%info_hash, error = %error, "no metadata yet; retrying");
        tokio::time::sleep(retry).await;
    }
}

/// One pass over `peers` for the metadata; the one that served it first
/// leads the swarm that is handed on.
async fn fetch_once(
    mut peers: Vec<SocketAddr>,
    info_hash: Id,
    peer_id: [u8; 20],
) -> Result<FetchedManifest, MagnetError> {
    peers.sort();
    peers.dedup();
    let (info, served_by) = magnet::fetch(&peers, info_hash, peer_id, METADATA_PER_PEER).await?;
    // It hashed right, so this is the torrent; we may still be unable to use it.
    let manifest = Manifest::from_info_bytes(&info).map_err(MagnetError::Unusable)?;
    // The one that served first: it is known to answer.
    peers.retain(|&a| a != served_by);
    peers.insert(0, served_by);
    Ok(FetchedManifest {
        manifest,
        peers,
        looked_up: Instant::now(),
    })
}

/// A manifest fetched from its swarm, with the swarm as it was found.
pub struct FetchedManifest {
    /// The manifest, checked against the info-hash.
    pub manifest: Manifest,
    /// The swarm's peers (ring and `--peer`), the one that served the
    /// metadata first: the download starts with them.
    pub peers: Vec<SocketAddr>,
    /// When the ring was last asked for the swarm, so the announcer does
    /// not ask again at once.
    pub looked_up: Instant,
}

/// How long `leech <info-hash>` looks for the metadata before giving up
/// (unless `--give-up-after` says otherwise).
const METADATA_DEADLINE: Duration = Duration::from_secs(60);
/// How long one peer has to hand the metadata over.
const METADATA_PER_PEER: Duration = Duration::from_secs(10);

/// The address we advertise: the explicit one; else the listen address when
/// it names an interface; else the local address of the interface that
/// routes towards `toward` (a ring contact) or, with none, towards the
/// discovery group; else loopback.
pub fn advertise_addr(
    local: SocketAddr,
    explicit: Option<SocketAddr>,
    toward: Option<SocketAddr>,
) -> SocketAddr {
    if let Some(addr) = explicit {
        return addr;
    }
    if !local.ip().is_unspecified() {
        return local;
    }
    let target = toward.unwrap_or(SocketAddr::V4(discovery::DEFAULT_GROUP));
    // Connecting a UDP socket sends nothing; it only asks the routing table
    // which local address would be used.
    let routed = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| s.connect(target).and_then(|_| s.local_addr()))
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified());
    let ip = routed.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    SocketAddr::new(ip, local.port())
}

/// Resolves the manifest's `nodes` ("host:port"); unresolvable ones are
/// skipped with a warning (a stale bootstrap list must not stop a download).
pub async fn resolve_nodes(nodes: &[String]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for node in nodes {
        match tokio::net::lookup_host(node.as_str()).await {
            Ok(addrs) => out.extend(addrs.filter(|a| a.is_ipv4()).take(1)),
            Err(e) => warn!(node, error = %e, "cannot resolve a bootstrap node from the manifest"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertise_prefers_explicit_then_listen_address() {
        let local: SocketAddr = "10.0.0.5:7000".parse().unwrap();
        let explicit: SocketAddr = "192.0.2.1:9".parse().unwrap();
        assert_eq!(advertise_addr(local, Some(explicit), None), explicit);
        assert_eq!(advertise_addr(local, None, None), local);
    }

    #[test]
    fn unspecified_listen_address_advertises_the_routed_interface() {
        let local: SocketAddr = "0.0.0.0:7000".parse().unwrap();
        let toward: SocketAddr = "127.0.0.1:6881".parse().unwrap();
        assert_eq!(
            advertise_addr(local, None, Some(toward)),
            "127.0.0.1:7000".parse::<SocketAddr>().unwrap()
        );
    }
}
