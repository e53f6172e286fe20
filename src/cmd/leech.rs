//! `songswarm leech`: download a torrent, verify every piece, and upload to
//! the others meanwhile; by manifest, or by info-hash through the ring.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;

use super::args::{addresses, host_port, HostPort, HttpArgs, RateArgs, RingArgs};
use super::output::{Event, Output};
use super::seed::{print_stats, serve};
use crate::app::progress::Progress;
use crate::app::ring::{fetch_manifest_from, RingOptions};
use crate::app::stall::{Stall, StallWatch};
use crate::app::{load_manifest, resume, shutdown, App, AppError};
use crate::config::SwarmConfig;
use crate::id::Id;
use crate::manifest::Manifest;
use crate::storage::{ResumeDir, Storage};
use crate::swarm::coordinator::{TorrentHandle, TorrentStats};
use crate::swarm::TorrentEvent;

/// How often `leech <info-hash> --peer ADDR --no-ring` asks the named
/// peers for the metadata again while none answers.
const METADATA_RETRY: std::time::Duration = std::time::Duration::from_secs(1);
/// How often a download's progress is checked for a stall.
const STALL_CHECK: std::time::Duration = std::time::Duration::from_millis(250);

/// Flags of `leech`.
#[derive(Args, Debug)]
pub struct LeechArgs {
    /// Manifest file to download, or a 40-hex-digit info-hash to find in the
    /// ring or at the `--peer`s.
    manifest: String,
    /// Directory to download into.
    #[arg(long)]
    out: PathBuf,
    /// A peer to connect to, HOST:PORT (repeatable); with --seed-after it is
    /// dialled and served even when the data is complete already.
    #[arg(long = "peer", value_parser = host_port)]
    peers: Vec<HostPort>,
    /// Address to listen on for other peers.
    #[arg(long, default_value = "0.0.0.0:0")]
    listen: SocketAddr,
    /// Keep seeding after the download completes.
    #[arg(long)]
    seed_after: bool,
    /// Hash every piece already on disk, trusting no resume record.
    #[arg(long)]
    recheck: bool,
    #[command(flatten)]
    rates: RateArgs,
    #[command(flatten)]
    ring: RingArgs,
    #[command(flatten)]
    http: HttpArgs,
    /// Give up (exit non-zero, saying why) after this many seconds without
    /// progress: no peers, choked by every peer, or peers that send
    /// nothing. Without it the leecher says why and waits on.
    #[arg(long, value_name = "SECS")]
    give_up_after: Option<u64>,
    /// Print one JSON summary at the end instead of text.
    #[arg(long)]
    json: bool,
}

impl LeechArgs {
    /// What `leech` needs, from the flags.
    pub fn options(self) -> LeechOptions {
        LeechOptions {
            target: LeechTarget::parse(&self.manifest),
            peers: addresses(&self.peers),
            config: self.rates.config(),
            ring: self.ring.options(),
            out: self.out,
            listen: self.listen,
            seed_after: self.seed_after,
            recheck: self.recheck,
            json: self.json,
            http: self.http.http,
            give_up_after: self.give_up_after.map(std::time::Duration::from_secs),
        }
    }
}

/// What `leech` needs.
#[derive(Clone, Debug)]
pub struct LeechOptions {
    /// What to download: a manifest file, or an info-hash to find in the ring.
    pub target: LeechTarget,
    /// Download directory.
    pub out: PathBuf,
    /// Peers to dial.
    pub peers: Vec<SocketAddr>,
    /// Listen address.
    pub listen: SocketAddr,
    /// Keep serving after completion.
    pub seed_after: bool,
    /// Swarm tunables and limits.
    pub config: SwarmConfig,
    /// Ring membership (None: peers from `peers` only).
    pub ring: Option<RingOptions>,
    /// JSON output.
    pub json: bool,
    /// Where to serve HTTP (`--http`), if anywhere.
    pub http: Option<SocketAddr>,
    /// Give up after this long without progress (and fetching the
    /// metadata: after this long instead of a minute).
    pub give_up_after: Option<std::time::Duration>,
    /// Hash every piece on disk at start, ignoring the resume record.
    pub recheck: bool,
}

/// The outcome of a completed download.
#[derive(Clone, Debug)]
pub struct LeechSummary {
    /// The torrent.
    pub info_hash: Id,
    /// Final counters.
    pub stats: TorrentStats,
    /// Seconds from start to completion.
    pub seconds: f64,
}

/// What `leech` downloads.
#[derive(Clone, Debug)]
pub enum LeechTarget {
    /// A manifest file.
    Manifest(PathBuf),
    /// Only an info-hash: the manifest comes from the swarm (BEP 9).
    InfoHash(Id),
}

impl LeechTarget {
    /// A path that exists is a manifest; otherwise 40 hex digits are an
    /// info-hash; anything else is taken as a (missing) manifest path, so the
    /// error names the file.
    pub fn parse(arg: &str) -> LeechTarget {
        let path = PathBuf::from(arg);
        match arg.parse::<Id>() {
            Ok(hash) if !path.exists() => LeechTarget::InfoHash(hash),
            _ => LeechTarget::Manifest(path),
        }
    }
}

/// A download under way: the process, its torrent, and the signal that
/// stops it (listened for since before the `listening` line).
pub struct Started {
    /// The process.
    pub app: App,
    /// The torrent's manifest.
    pub manifest: Manifest,
    /// Its coordinator.
    pub handle: TorrentHandle,
    /// Its files.
    pub storage: Arc<Storage>,
    /// Where the HTTP server listens, if there is one.
    pub http: Option<SocketAddr>,
    /// SIGINT/SIGTERM.
    pub stop: Pin<Box<dyn Future<Output = ()> + Send>>,
}

/// Starts downloading: binds the process (and its HTTP server), finds the
/// manifest and the swarm, checks what is already on disk, and says
/// `listening`. `leech` and `play` both start here.
pub async fn start(opts: &LeechOptions, out: Output) -> Result<Started, AppError> {
    if opts.out.exists() && !opts.out.is_dir() {
        return Err(AppError::OutNotDir(opts.out.clone()));
    }
    let mut app = App::bind(opts.listen, opts.config.clone()).await?;
    let http = match opts.http {
        Some(addr) => match app.serve_http(addr).await {
            Ok(bound) => Some(bound),
            Err(e) => {
                app.shutdown().await;
                return Err(e);
            }
        },
        None => None,
    };
    let found = target_manifest(&mut app, opts, out).await?;
    let manifest = found.manifest;
    let storage = Arc::new(Storage::open_or_create(&opts.out, &manifest)?);
    let place = ResumeDir::for_root(&opts.out, &manifest.name);
    let info_hash = manifest.info_hash.0;
    let have = resume::check(&storage, place.as_ref(), info_hash, opts.recheck).await?;
    let handle = app.add_torrent(&manifest, storage.clone(), have.verified);
    if let Some(place) = place {
        app.keep_resume_record(&handle, place);
    }
    if let Some(ring) = app.ring() {
        let manifest = Arc::new(manifest.clone());
        ring.track_published(handle.clone(), found.looked_up, manifest);
    }
    // One listener for the whole run: a signal at any point after
    // `listening` (during the download or right after `done`) is seen.
    let stop = Box::pin(shutdown::signal());
    out.print(&Event::Listening {
        addr: app.local_addr(),
        info_hashes: &[manifest.info_hash],
        http,
    });
    let _ = handle
        .events
        .send(TorrentEvent::AddPeers(found.peers))
        .await;
    if !opts.peers.is_empty() {
        // Dialled even when the data is already complete (--seed-after).
        let named = TorrentEvent::NamedPeers(opts.peers.clone());
        let _ = handle.events.send(named).await;
    }
    Ok(Started {
        app,
        manifest,
        handle,
        storage,
        http,
        stop,
    })
}

/// Downloads a torrent; returns once every piece is verified on disk (and,
/// with `seed_after`, after SIGINT/SIGTERM).
pub async fn leech(opts: LeechOptions) -> Result<LeechSummary, AppError> {
    let start_time = Instant::now();
    let out = Output::new(opts.json);
    let Started {
        app,
        manifest,
        handle,
        storage,
        mut stop,
        ..
    } = start(&opts, out).await?;
    let bar = Progress::start(handle.stats.clone(), manifest.name.clone());
    let mut stats = handle.stats.clone();
    let mut watch = StallWatch::new(Instant::now(), opts.give_up_after);
    let mut check = tokio::time::interval(STALL_CHECK);
    let outcome = loop {
        tokio::select! {
            r = stats.wait_for(|s| s.complete || s.error.is_some()) => {
                break Ok(r.map(|s| s.clone()).ok());
            }
            _ = &mut stop => break Ok(None),
            _ = check.tick() => {
                let now = handle.stats.borrow().clone();
                match watch.check(Instant::now(), &now) {
                    Stall::Fine => {}
                    Stall::Report { reason, for_ } => out.print(&Event::Stalled {
                        info_hash: manifest.info_hash,
                        reason: &reason,
                        seconds: for_.as_secs_f64(),
                    }),
                    Stall::GiveUp { reason, for_ } => {
                        break Err(AppError::GaveUp {
                            seconds: for_.as_secs(),
                            reason: reason.to_string(),
                        });
                    }
                }
            }
        }
    };
    bar.finish();
    let done = match outcome.and_then(|outcome| completed(outcome, &handle)) {
        Ok(done) => done,
        Err(e) => {
            app.shutdown().await;
            return Err(e);
        }
    };
    // Every piece is verified; a file that was longer before is cut to size.
    tokio::task::spawn_blocking(move || storage.trim_excess())
        .await
        .map_err(|e| AppError::Failed(e.to_string()))??;
    let summary = LeechSummary {
        info_hash: manifest.info_hash,
        stats: done,
        seconds: start_time.elapsed().as_secs_f64(),
    };
    out.print(&Event::Done {
        name: &manifest.name,
        info_hash: summary.info_hash,
        stats: &summary.stats,
        seconds: summary.seconds,
    });
    let mut served = Ok(());
    if opts.seed_after {
        let torrents = [(handle, manifest.name.clone())];
        served = serve(&torrents, stop, out).await;
        app.shutdown().await;
        print_stats(&torrents, out);
        return served.map(|()| summary);
    }
    app.shutdown().await;
    served.map(|()| summary)
}

/// The manifest to download and the peers to start with: loaded from its
/// file (peers: `--peer`), or fetched from the swarm by info-hash and saved
/// in `--out` (peers: the swarm that was found, the one that served the
/// metadata first, handed straight to the coordinator so the swarm is not
/// looked up again at once). Joins the ring on the way.
async fn target_manifest(
    app: &mut App,
    opts: &LeechOptions,
    out: Output,
) -> Result<Target, AppError> {
    // The user's playlists live as long as one of their processes is in
    // the ring.
    app.keep_playlists_of(crate::identity::default_config_dir());
    let info_hash = match &opts.target {
        LeechTarget::Manifest(path) => {
            let manifest = load_manifest(path)?;
            if let Some(ring_opts) = &opts.ring {
                app.join_ring(ring_opts, &manifest.nodes).await;
            }
            return Ok(Target {
                manifest,
                peers: opts.peers.clone(),
                looked_up: None,
            });
        }
        LeechTarget::InfoHash(info_hash) => *info_hash,
    };
    let fetched = match &opts.ring {
        Some(ring_opts) => {
            let ring = app.join_ring(ring_opts, &[]).await;
            ring.fetch_manifest(info_hash, &opts.peers, opts.give_up_after)
                .await?
        }
        // The user named the swarm: no ring needed.
        None if !opts.peers.is_empty() => {
            fetch_manifest_from(info_hash, &opts.peers, METADATA_RETRY, opts.give_up_after).await?
        }
        None => return Err(AppError::NeedsRing),
    };
    let manifest = fetched.manifest;
    std::fs::create_dir_all(&opts.out).map_err(|e| AppError::Failed(e.to_string()))?;
    let saved = opts.out.join(format!("{info_hash}.torrent"));
    manifest.save(&saved).map_err(|source| AppError::Manifest {
        path: saved.clone(),
        source,
    })?;
    out.print(&Event::MetadataFetched {
        name: &manifest.name,
        saved: &saved,
    });
    Ok(Target {
        manifest,
        peers: fetched.peers,
        looked_up: Some(fetched.looked_up),
    })
}

/// What `leech` starts from.
struct Target {
    /// The torrent.
    manifest: Manifest,
    /// Peers to dial at once.
    peers: Vec<SocketAddr>,
    /// When the ring was asked for the swarm (None: not yet).
    looked_up: Option<tokio::time::Instant>,
}

/// The final counters of a download that completed; an error when it was
/// interrupted (`outcome` None) or failed.
fn completed(
    outcome: Option<TorrentStats>,
    torrent: &TorrentHandle,
) -> Result<TorrentStats, AppError> {
    let Some(done) = outcome else {
        let now = torrent.stats.borrow();
        return Err(AppError::Interrupted {
            have: now.have_pieces,
            total: now.piece_count,
        });
    };
    match done.error {
        Some(e) => Err(AppError::Failed(e)),
        None => Ok(done),
    }
}
