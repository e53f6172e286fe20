//! `songswarm seed`: serve torrents from one process and one port until
//! SIGINT/SIGTERM.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;

use super::args::{addresses, host_port, HostPort, HttpArgs, RateArgs, RingArgs};
use super::music_dir;
use super::output::{Event, Output};
use crate::app::ring::RingOptions;
use crate::app::{load_manifest, resume, shutdown, App, AppError};
use crate::config::SwarmConfig;
use crate::manifest::Manifest;
use crate::swarm::coordinator::TorrentHandle;
use crate::swarm::TorrentEvent;

/// Flags of `seed`.
#[derive(Args, Debug)]
pub struct SeedArgs {
    /// Manifests to serve.
    #[arg(required_unless_present = "library")]
    manifests: Vec<PathBuf>,
    /// Where the data lives: the directory that holds each torrent's name, or
    /// for a single-file torrent the file itself. With --library, the tree
    /// the library mirrors (default: the library itself).
    #[arg(long, required_unless_present = "library")]
    data: Option<PathBuf>,
    /// Serve every manifest (*.torrent) under DIR, recursively: the one at
    /// DIR/a/b.torrent with its data under DATA/a/. A manifest that cannot
    /// be served is skipped with a warning.
    #[arg(long, value_name = "DIR")]
    library: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:6881")]
    listen: SocketAddr,
    /// A peer to connect to and serve, HOST:PORT (repeatable): for a client
    /// that only accepts connections.
    #[arg(long = "peer", value_parser = host_port)]
    peers: Vec<HostPort>,
    #[command(flatten)]
    rates: RateArgs,
    #[command(flatten)]
    ring: RingArgs,
    #[command(flatten)]
    http: HttpArgs,
    /// Print a JSON line when ready instead of text.
    #[arg(long)]
    json: bool,
    /// Hash every piece, trusting no resume record (by default only files
    /// changed since the last run are read).
    #[arg(long)]
    recheck: bool,
}

impl SeedArgs {
    /// What `seed` needs, from the flags.
    pub fn options(self) -> SeedOptions {
        SeedOptions {
            config: self.rates.config(),
            ring: self.ring.options(),
            manifests: self.manifests,
            data: self
                .data
                .or_else(|| self.library.clone())
                .unwrap_or_default(),
            library: self.library,
            listen: self.listen,
            peers: addresses(&self.peers),
            json: self.json,
            recheck: self.recheck,
            http: self.http.http,
        }
    }
}

/// What `seed` needs.
#[derive(Clone, Debug)]
pub struct SeedOptions {
    /// Manifests to serve.
    pub manifests: Vec<PathBuf>,
    /// Data root.
    pub data: PathBuf,
    /// A library directory: every manifest under it (data under `data`).
    pub library: Option<PathBuf>,
    /// Listen address.
    pub listen: SocketAddr,
    /// Peers to dial and serve.
    pub peers: Vec<SocketAddr>,
    /// Swarm tunables and limits.
    pub config: SwarmConfig,
    /// Ring membership (None: no Chord node; peers must dial us).
    pub ring: Option<RingOptions>,
    /// JSON output.
    pub json: bool,
    /// Where to serve HTTP (`--http`), if anywhere.
    pub http: Option<SocketAddr>,
    /// Hash every piece at start, ignoring resume records.
    pub recheck: bool,
}

/// Serves torrents until SIGINT/SIGTERM.
pub async fn seed(opts: SeedOptions) -> Result<(), AppError> {
    let out = Output::new(opts.json);
    let mut torrents: Vec<(Manifest, _)> = Vec::new();
    for path in &opts.manifests {
        let manifest = load_manifest(path)?;
        if torrents
            .iter()
            .any(|(m, _)| m.info_hash == manifest.info_hash)
        {
            return Err(AppError::Duplicate(path.display().to_string()));
        }
        let storage = resume::open_seeding(&opts.data, &manifest, opts.recheck).await?;
        torrents.push((manifest, storage));
    }
    if let Some(dir) = &opts.library {
        let found = music_dir::open_all(dir, &opts.data, opts.recheck, out).await?;
        for (manifest, storage) in found {
            if torrents
                .iter()
                .any(|(m, _)| m.info_hash == manifest.info_hash)
            {
                out.warn(format_args!(
                    "{} is given twice; served once",
                    manifest.name
                ));
                continue;
            }
            torrents.push((manifest, storage));
        }
    }
    let mut app = App::bind(opts.listen, opts.config).await?;
    let http = match opts.http {
        Some(addr) => Some(app.serve_http(addr).await?),
        None => None,
    };
    if let Some(ring_opts) = &opts.ring {
        app.keep_playlists_of(crate::identity::default_config_dir());
        let nodes: Vec<String> = torrents
            .iter()
            .flat_map(|(m, _)| m.nodes.iter().cloned())
            .collect();
        app.join_ring(ring_opts, &nodes).await;
    }
    let (mut hashes, mut served) = (Vec::new(), Vec::new());
    for (manifest, storage) in torrents {
        let n = manifest.piece_count() as usize;
        let (info_hash, name) = (manifest.info_hash, manifest.name.clone());
        let manifest = Arc::new(manifest);
        let handle = app.add_shared_torrent(manifest.clone(), storage, vec![true; n]);
        if let Some(ring) = app.ring() {
            ring.track_published(handle.clone(), None, manifest);
        }
        if !opts.peers.is_empty() {
            let named = TorrentEvent::NamedPeers(opts.peers.clone());
            let _ = handle.events.send(named).await;
        }
        hashes.push(info_hash);
        served.push((handle, name));
    }
    let stop = shutdown::signal();
    out.print(&Event::Listening {
        addr: app.local_addr(),
        info_hashes: &hashes,
        http,
    });
    let result = serve(&served, stop, out).await;
    // After every task has stopped: the torrents' last counts are final.
    app.shutdown().await;
    print_stats(&served, out);
    result
}

/// Serves until `stop`, saying so when a torrent stops on an error (its
/// data changed on disk); the other torrents go on. Fails once every
/// torrent has stopped.
pub(super) async fn serve(
    torrents: &[(TorrentHandle, String)],
    stop: impl Future<Output = ()>,
    out: Output,
) -> Result<(), AppError> {
    let mut failures: FuturesUnordered<_> = torrents
        .iter()
        .map(|(h, name)| {
            let mut stats = h.stats.clone();
            async move {
                let error = stats
                    .wait_for(|s| s.error.is_some())
                    .await
                    .ok()
                    .and_then(|s| s.error.clone());
                (h.info_hash, name, error)
            }
        })
        .collect();
    let mut stop = std::pin::pin!(stop);
    let mut stopped = 0;
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            Some((info_hash, name, error)) = failures.next() => {
                // No error: the torrent ended because the process is ending.
                let Some(error) = error else { continue };
                stopped += 1;
                out.print(&Event::Stopped { info_hash, name, error: &error });
                if stopped == torrents.len() {
                    return Err(AppError::NothingToServe { name: name.clone(), error });
                }
                out.warn(format_args!("stopped serving {name}: {error}"));
            }
        }
    }
}

/// The closing `stats` line (with --json) when a serving process is
/// stopped: what it moved over its whole life.
pub(super) fn print_stats(torrents: &[(TorrentHandle, String)], out: Output) {
    let (mut uploaded, mut downloaded) = (0u64, 0u64);
    for (h, _) in torrents {
        let s = h.stats.borrow();
        uploaded += s.uploaded_bytes;
        downloaded += s.downloaded_bytes;
    }
    out.print(&Event::Stats {
        uploaded,
        downloaded,
    });
}
