//! A torrent's inbox, and the coordinator it starts.
//!
//! A torrent nobody talks to needs no task: a library of 10,000 songs that
//! started a coordinator for each held 10,000 inboxes (a first block of 32
//! event slots each, 2.3 KB) and 10,000 schedulers, about 5 KB a song, for
//! songs nobody asked for. So a torrent starts dormant, its handle and its
//! published progress alone, and the first event sent to it (a peer that
//! connects, peers found in the ring, a stream opened) starts its
//! coordinator, which then runs until the torrent stops.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::mpsc::error::{SendError, TrySendError};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;

use super::{Coordinator, CoordinatorParams, Refusals, TorrentStats, INBOX};
use crate::swarm::connection::ConnectionContext;
use crate::swarm::scheduler::Scheduler;
use crate::swarm::verified::VerifiedPieces;
use crate::swarm::TorrentEvent;

/// What a coordinator starts from, kept until its first event.
pub(super) struct Dormant {
    /// The torrent's parts and tunables.
    pub(super) params: CoordinatorParams,
    /// Its progress, already published to the handle.
    pub(super) stats: watch::Sender<TorrentStats>,
    /// Its verified pieces, already published to the handle.
    pub(super) verified: watch::Sender<VerifiedPieces>,
}

/// Where a torrent's inbox stands.
enum Slot {
    /// No event yet: the coordinator is not started. Also holds the runtime
    /// of the process, since the first event may come from any thread.
    Dormant(Box<(Dormant, tokio::runtime::Handle)>),
    /// The coordinator runs (or ran: a send then fails as closed).
    Running(mpsc::Sender<TorrentEvent>),
}

/// The inbox of a torrent's coordinator (a clone shares it): sending the
/// first event starts the coordinator.
#[derive(Clone)]
pub struct Inbox(Arc<Mutex<Slot>>);

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let started = matches!(*self.lock(), Slot::Running(_));
        f.debug_struct("Inbox").field("started", &started).finish()
    }
}

impl From<mpsc::Sender<TorrentEvent>> for Inbox {
    /// An inbox that is the channel `tx` (events go straight to it).
    fn from(tx: mpsc::Sender<TorrentEvent>) -> Inbox {
        Inbox(Arc::new(Mutex::new(Slot::Running(tx))))
    }
}

impl Inbox {
    /// The inbox of a torrent not started yet (called on the runtime that
    /// will run its coordinator).
    pub(super) fn dormant(dormant: Dormant) -> Inbox {
        let runtime = tokio::runtime::Handle::current();
        Inbox(Arc::new(Mutex::new(Slot::Dormant(Box::new((
            dormant, runtime,
        ))))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The coordinator's channel, starting the coordinator if it is not
    /// yet. A torrent already stopped (its token cancelled) is not started:
    /// its channel is closed.
    fn sender(&self) -> mpsc::Sender<TorrentEvent> {
        let mut slot = self.lock();
        if let Slot::Running(tx) = &*slot {
            return tx.clone();
        }
        let (tx, _) = mpsc::channel(1);
        let Slot::Dormant(dormant) = std::mem::replace(&mut *slot, Slot::Running(tx)) else {
            unreachable!("checked above")
        };
        let (dormant, runtime) = *dormant;
        if !dormant.params.cancel.is_cancelled() {
            *slot = Slot::Running(launch(dormant, &runtime));
        }
        match &*slot {
            Slot::Running(tx) => tx.clone(),
            Slot::Dormant(_) => unreachable!("just replaced"),
        }
    }

    /// Whether the coordinator was started (an event was sent).
    pub fn is_started(&self) -> bool {
        matches!(*self.lock(), Slot::Running(_))
    }

    /// Sends `event`, waiting for room; fails when the torrent stopped.
    pub async fn send(&self, event: TorrentEvent) -> Result<(), SendError<TorrentEvent>> {
        self.sender().send(event).await
    }

    /// Sends `event` if there is room now.
    pub fn try_send(&self, event: TorrentEvent) -> Result<(), TrySendError<TorrentEvent>> {
        self.sender().try_send(event)
    }
}

/// Starts the coordinator task of a dormant torrent on `runtime`; returns
/// its inbox.
pub(super) fn launch(
    dormant: Dormant,
    runtime: &tokio::runtime::Handle,
) -> mpsc::Sender<TorrentEvent> {
    let Dormant {
        params,
        stats,
        verified,
    } = dormant;
    let (tx, rx) = mpsc::channel(INBOX);
    let geometry = params.storage.geometry();
    let now = Instant::now();
    let mut sched = Scheduler::new(
        geometry,
        params.config.clone(),
        StdRng::seed_from_u64(params.rng_seed),
        now.into_std(),
    );
    for (i, _) in params.have.iter().enumerate().filter(|(_, ok)| **ok) {
        sched.set_have(i as u32);
    }
    let current = stats.borrow().clone();
    let ctx = Arc::new(ConnectionContext {
        info_hash: params.info_hash,
        peer_id: params.peer_id,
        geometry,
        storage: params.storage,
        events: tx.clone(),
        limits: params.limits,
        listen_port: params.listen.map(|a| a.port()),
        info: params.info,
        command_queue: params.config.peer_queue,
        fast: params.config.fast_extension,
        uploaded: Default::default(),
        downloaded: Default::default(),
        cancel: params.cancel.clone(),
        tracker: params.tracker.clone(),
    });
    // Boxed: the task's future then holds a pointer, not the state (an
    // async fn keeps its argument and the moved-in value apart, so a
    // by-value state took twice its size in each of a library's tasks).
    let coordinator = Box::new(Coordinator {
        ctx,
        config: params.config,
        sched,
        inbox: rx,
        links: HashMap::new(),
        known: HashMap::new(),
        dialled: HashMap::new(),
        accepting: HashMap::new(),
        banned: HashSet::new(),
        refusals: Refusals::default(),
        seen: HashSet::new(),
        next_key: 1,
        listen: params.listen,
        to_verify: VecDeque::new(),
        hashing: 0,
        pending_requests: HashMap::new(),
        pending_haves: Vec::new(),
        pending_offers: BTreeMap::new(),
        housekeeping_at: now,
        stats,
        current,
        verified,
        told_streaming: false,
    });
    let span = tracing::info_span!("torrent", info_hash = %params.info_hash.to_hex()[..8]);
    let cancel = params.cancel;
    params
        .tracker
        .spawn_on(coordinator.run(cancel).instrument(span), runtime);
    tx
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;
    use tokio_util::task::TaskTracker;

    use super::super::{spawn, CoordinatorParams, TorrentHandle};
    use super::*;
    use crate::config::SwarmConfig;
    use crate::manifest::{build, BuildOptions};
    use crate::storage::Storage;
    use crate::swarm::rate::RateLimits;

    /// A seeded song's torrent, stopped by `cancel`.
    fn seeded(dir: &std::path::Path, cancel: CancellationToken) -> TorrentHandle {
        let path = dir.join("song.flac");
        std::fs::write(&path, vec![7u8; 40_000]).unwrap();
        let manifest = build(&[path], &BuildOptions::default()).unwrap();
        let storage = Arc::new(Storage::open_existing(dir, &manifest).unwrap());
        spawn(CoordinatorParams {
            info_hash: manifest.info_hash,
            storage,
            config: SwarmConfig::default(),
            have: vec![true; manifest.piece_count() as usize],
            peer_id: [1; 20],
            listen: None,
            limits: Arc::new(RateLimits::new(None, None)),
            cancel,
            tracker: TaskTracker::new(),
            rng_seed: 1,
            info: None,
        })
    }

    #[tokio::test]
    async fn a_torrent_starts_its_coordinator_at_its_first_event() {
        let dir = tempfile::tempdir().unwrap();
        let handle = seeded(dir.path(), CancellationToken::new());
        assert!(!handle.events.is_started(), "no event yet: no coordinator");
        assert!(handle.stats.borrow().complete, "progress is known at once");
        let mut stats = handle.stats.clone();
        handle
            .events
            .send(TorrentEvent::AddPeers(vec![]))
            .await
            .unwrap();
        assert!(handle.events.is_started());
        // The coordinator handled the event: it published its progress.
        tokio::time::timeout(Duration::from_secs(10), stats.changed())
            .await
            .expect("the coordinator never ran")
            .unwrap();
        assert!(stats.borrow().complete);
    }

    #[tokio::test]
    async fn a_stopped_torrent_is_not_started() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = CancellationToken::new();
        let handle = seeded(dir.path(), cancel.clone());
        cancel.cancel();
        let sent = handle.events.try_send(TorrentEvent::AddPeers(vec![]));
        assert!(matches!(sent, Err(TrySendError::Closed(_))), "{sent:?}");
    }
}
