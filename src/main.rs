//! The `songswarm` command line: parse flags, build the config, call the library.

use std::error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use songswarm::chord::client::ChordClient;
use songswarm::chord::driver::Driver;
use songswarm::chord::Role;
use songswarm::config::ChordConfig;
use songswarm::id::Id;
use tracing_subscriber::EnvFilter;

type BoxError = Box<dyn Error + Send + Sync>;

#[derive(Parser)]
#[command(
    name = "songswarm",
    version,
    about = "Share and play songs peer to peer, with a Chord ring as the tracker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a manifest (.torrent) for a song file or an album directory.
    Create(CreateArgs),
    /// Serve one or more torrents from one process and one port.
    Seed(SeedArgs),
    /// Download a torrent, verify every piece, and upload to others meanwhile.
    Leech(LeechArgs),
    /// The whole system on loopback in one process: a ring, a seeder of the
    /// demo album, and leechers that find it through the ring.
    Demo(DemoArgs),
    /// Run a bare Chord node until SIGINT/SIGTERM.
    Node(NodeArgs),
    /// Talk to the Chord ring through any node.
    Dht {
        #[command(subcommand)]
        command: DhtCommand,
    },
}

#[derive(Args)]
struct CreateArgs {
    /// One audio file, one album directory, or several files of one directory
    /// (an album named after that directory).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Where to write the manifest.
    #[arg(short, long)]
    out: PathBuf,
    /// Piece length in bytes (power of two, at least 16 KiB); default: the
    /// smallest power of two ≥ 32 KiB giving at most 64 pieces, capped at 1 MiB.
    #[arg(long)]
    piece_length: Option<u64>,
    /// Song title (overrides the file's tags).
    #[arg(long)]
    title: Option<String>,
    /// Artist (overrides the file's tags).
    #[arg(long)]
    artist: Option<String>,
    /// Album (overrides the file's tags).
    #[arg(long)]
    album: Option<String>,
    /// Chord bootstrap node written into the manifest's `nodes` list.
    #[arg(long = "node")]
    nodes: Vec<String>,
    /// Print a JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RateArgs {
    /// Upload cap in bytes per second.
    #[arg(long)]
    max_upload_rate: Option<u64>,
    /// Download cap in bytes per second.
    #[arg(long)]
    max_download_rate: Option<u64>,
    /// Most peer connections per torrent.
    #[arg(long)]
    max_peers: Option<usize>,
}

impl RateArgs {
    /// The swarm settings: defaults with these limits applied.
    fn config(&self) -> songswarm::config::SwarmConfig {
        let mut c = songswarm::config::SwarmConfig {
            max_upload_rate: self.max_upload_rate,
            max_download_rate: self.max_download_rate,
            ..Default::default()
        };
        if let Some(n) = self.max_peers {
            c.max_peers = n.max(1);
        }
        c
    }
}

#[derive(Args)]
struct RingArgs {
    /// A ring member to join through, HOST:PORT (repeatable). Without one:
    /// the manifest's `nodes`, then LAN discovery, else a new ring.
    #[arg(long, value_parser = host_port)]
    bootstrap: Vec<HostPort>,
    /// Address other peers reach this one at (default: the listen address,
    /// or the interface that routes to the ring).
    #[arg(long)]
    advertise: Option<SocketAddr>,
    /// Run no Chord node: trade only with --peer addresses and peers that dial in.
    #[arg(long, env = "SONGSWARM_NO_RING", value_parser = clap::builder::BoolishValueParser::new())]
    no_ring: bool,
    /// Do not look for a ring on the LAN by multicast.
    #[arg(long)]
    no_discovery: bool,
    /// Multicast group and port of LAN discovery (separate deployments on
    /// one LAN use different groups).
    #[arg(long, default_value_t = songswarm::discovery::DEFAULT_GROUP)]
    discovery_group: std::net::SocketAddrV4,
}

impl RingArgs {
    /// The ring settings, or None with --no-ring.
    fn options(&self) -> Option<songswarm::app::ring::RingOptions> {
        (!self.no_ring).then(|| songswarm::app::ring::RingOptions {
            bootstrap: addresses(&self.bootstrap),
            advertise: self.advertise,
            no_discovery: self.no_discovery,
            discovery: songswarm::discovery::DiscoveryConfig {
                group: self.discovery_group,
                ..Default::default()
            },
            ..Default::default()
        })
    }
}

#[derive(Args)]
struct SeedArgs {
    /// Manifests to serve.
    #[arg(required = true)]
    manifests: Vec<PathBuf>,
    /// Where the data lives: the directory that holds each torrent's name, or
    /// for a single-file torrent the file itself.
    #[arg(long)]
    data: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:6881")]
    listen: SocketAddr,
    #[command(flatten)]
    rates: RateArgs,
    #[command(flatten)]
    ring: RingArgs,
    /// Print a JSON line when ready instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct LeechArgs {
    /// Manifest file to download, or a 40-hex-digit info-hash to find in the ring.
    manifest: String,
    /// Directory to download into.
    #[arg(long)]
    out: PathBuf,
    /// A peer to connect to, HOST:PORT (repeatable).
    #[arg(long = "peer", value_parser = host_port)]
    peers: Vec<HostPort>,
    /// Address to listen on for other peers.
    #[arg(long, default_value = "0.0.0.0:0")]
    listen: SocketAddr,
    /// Keep seeding after the download completes.
    #[arg(long)]
    seed_after: bool,
    #[command(flatten)]
    rates: RateArgs,
    #[command(flatten)]
    ring: RingArgs,
    /// Print one JSON summary at the end instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DemoArgs {
    /// The manifest to share.
    #[arg(long, default_value = "torrents/demo-album.torrent")]
    manifest: PathBuf,
    /// Where its data is.
    #[arg(long, default_value = "torrents")]
    data: PathBuf,
    /// Bare Chord nodes in the ring.
    #[arg(long, default_value_t = 8)]
    nodes: usize,
    /// Leeching peers.
    #[arg(long, default_value_t = 4)]
    leechers: usize,
    /// Upload cap of every peer in bytes per second (0: none).
    #[arg(long, default_value_t = 1_000_000)]
    upload_rate: u64,
    /// Keep the downloads in this directory (default: a temporary one, removed).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct NodeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:6881")]
    listen: SocketAddr,
    /// Address other nodes reach this one at (default: the listen address).
    #[arg(long)]
    advertise: Option<SocketAddr>,
    /// A node of the ring to join through, HOST:PORT (repeatable); none
    /// starts a new ring.
    #[arg(long, value_parser = host_port)]
    bootstrap: Vec<HostPort>,
}

/// The addresses of one HOST:PORT or IP:PORT argument.
#[derive(Clone, Debug)]
struct HostPort(Vec<SocketAddr>);

/// Parses IP:PORT, or looks a host name up once, here: every address it
/// has is kept (IPv6 and IPv4 alike), as a peer may listen on only one.
fn host_port(arg: &str) -> Result<HostPort, String> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = arg.parse() {
        return Ok(HostPort(vec![addr]));
    }
    match arg.to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                return Err(format!("{arg} has no address"));
            }
            Ok(HostPort(addrs))
        }
        Err(e) => Err(format!("expected HOST:PORT or IP:PORT ({e})")),
    }
}

/// Every address of every argument, in order, once each.
fn addresses(args: &[HostPort]) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for addr in args.iter().flat_map(|h| &h.0) {
        if !out.contains(addr) {
            out.push(*addr);
        }
    }
    out
}

#[derive(Subcommand)]
enum DhtCommand {
    /// Announce a peer for an info-hash.
    Announce {
        info_hash: String,
        peer: SocketAddr,
        #[arg(long)]
        node: SocketAddr,
        /// Announce as a seeder (default: leecher).
        #[arg(long)]
        seeder: bool,
        #[arg(long)]
        json: bool,
    },
    /// List the peers of an info-hash.
    Peers {
        info_hash: String,
        #[arg(long)]
        node: SocketAddr,
        #[arg(long)]
        json: bool,
    },
    /// Find the owner and replica set of a key.
    Lookup {
        key: String,
        #[arg(long)]
        node: SocketAddr,
        #[arg(long)]
        json: bool,
    },
    /// Walk the ring from one node along successor pointers: its members.
    Walk {
        #[arg(long)]
        node: SocketAddr,
        #[arg(long)]
        json: bool,
    },
    /// Show one node's view of the ring.
    Ring {
        #[arg(long)]
        node: SocketAddr,
        #[arg(long)]
        json: bool,
    },
}

/// Keeps freed buffers in the heap instead of giving them back to the
/// kernel. The peer wire reads into 256 KiB buffers that live until their
/// piece is hashed and written, so a download frees and allocates them at
/// its own rate. glibc's defaults return such memory at once and fault it
/// in again zeroed: two thirds of a leecher's page faults and a few per
/// cent of its CPU at 1 GB/s. Memory is still bounded by what is in flight.
///
/// And one heap for all threads: a connection's reader allocates on
/// whichever worker thread runs it, hashing threads free, and with glibc's
/// heap per thread each worker's heap grew to hold its own peak of the
/// buffers in flight. A 1 GiB leech peaked at 57 MiB RSS with them and at
/// 34 MiB with one heap, no slower (alternating runs).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    /// Allocations below this come from the heap, not their own mapping.
    const MMAP_THRESHOLD: libc::c_int = 4 << 20;
    /// Free memory at the top of a heap kept before it is returned.
    const TRIM_THRESHOLD: libc::c_int = 64 << 20;
    // SAFETY: mallopt only sets allocator parameters; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

fn main() -> ExitCode {
    tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("songswarm: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("songswarm: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), BoxError> {
    match command {
        Command::Create(args) => create(args),
        Command::Seed(args) => {
            let opts = songswarm::app::SeedOptions {
                manifests: args.manifests,
                data: args.data,
                listen: args.listen,
                config: args.rates.config(),
                ring: args.ring.options(),
                json: args.json,
            };
            Ok(songswarm::app::seed(opts).await?)
        }
        Command::Leech(args) => {
            let opts = songswarm::app::LeechOptions {
                target: songswarm::app::LeechTarget::parse(&args.manifest),
                out: args.out,
                peers: addresses(&args.peers),
                listen: args.listen,
                seed_after: args.seed_after,
                config: args.rates.config(),
                ring: args.ring.options(),
                json: args.json,
            };
            songswarm::app::leech(opts).await?;
            Ok(())
        }
        Command::Demo(args) => {
            let opts = songswarm::app::demo::DemoOptions {
                manifest: args.manifest,
                data: args.data,
                nodes: args.nodes,
                leechers: args.leechers,
                upload_rate: (args.upload_rate > 0).then_some(args.upload_rate),
                out: args.out,
            };
            let report = songswarm::app::demo::demo(opts).await?;
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", report.to_text());
            }
            if report.all_verified() {
                Ok(())
            } else {
                Err("a leecher's files differ from the originals".into())
            }
        }
        Command::Node(args) => run_node(args).await,
        Command::Dht { command } => run_dht(command).await,
    }
}

/// `songswarm create`: build the manifest, write it atomically, print it.
fn create(args: CreateArgs) -> Result<(), BoxError> {
    use songswarm::manifest::{build, check_output, BuildOptions};
    check_output(&args.out, &args.inputs)?;
    let opts = BuildOptions {
        piece_length: args.piece_length,
        title: args.title,
        artist: args.artist,
        album: args.album,
        nodes: args.nodes,
    };
    let manifest = build(&args.inputs, &opts)?;
    manifest.save(&args.out)?;
    if args.json {
        let files: Vec<_> = manifest
            .files
            .iter()
            .map(|f| serde_json::json!({"path": f.path, "length": f.length}))
            .collect();
        let line = serde_json::json!({
            "info_hash": manifest.info_hash.to_hex(),
            "name": manifest.name,
            "piece_length": manifest.piece_length,
            "pieces": manifest.piece_count(),
            "total_length": manifest.total_length,
            "files": files,
            "song": manifest.song,
            "out": args.out,
        });
        println!("{line}");
    } else {
        println!("info-hash {}", manifest.info_hash);
        println!("name {}", manifest.name);
        println!(
            "pieces {} x {} bytes, {} bytes in {} file(s)",
            manifest.piece_count(),
            manifest.piece_length,
            manifest.total_length,
            manifest.files.len()
        );
        println!("wrote {}", args.out.display());
    }
    Ok(())
}

/// `songswarm node`: serve until SIGINT/SIGTERM, then leave cleanly.
async fn run_node(args: NodeArgs) -> Result<(), BoxError> {
    let config = ChordConfig::default();
    let seed = rand::random::<u64>();
    let handle = Driver::bind(
        config,
        args.listen,
        args.advertise,
        addresses(&args.bootstrap),
        seed,
    )
    .await?;
    let info = handle.ring_info().await?;
    eprintln!("songswarm node {} listening, id {}", info.addr, info.id);
    wait_for_signal().await?;
    eprintln!("leaving the ring");
    handle.leave().await;
    Ok(())
}

async fn wait_for_signal() -> Result<(), BoxError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

/// Longest a `dht` command waits for an answer (a quorum takes several RPCs).
const DHT_TIMEOUT: Duration = Duration::from_secs(30);

fn parse_id(s: &str) -> Result<Id, BoxError> {
    s.parse::<Id>().map_err(|e| format!("{s:?}: {e}").into())
}

/// The `dht` client commands.
async fn run_dht(command: DhtCommand) -> Result<(), BoxError> {
    match command {
        DhtCommand::Announce {
            info_hash,
            peer,
            node,
            seeder,
            json,
        } => {
            let key = parse_id(&info_hash)?;
            let role = if seeder { Role::Seeder } else { Role::Leecher };
            let mut client = ChordClient::connect(node, DHT_TIMEOUT).await?;
            client.announce(key, peer, role).await?;
            if json {
                let out = serde_json::json!({"info_hash": key, "peer": peer, "role": role, "stored": true});
                println!("{out}");
            } else {
                println!("announced {peer} ({role:?}) for {key}");
            }
        }
        DhtCommand::Peers {
            info_hash,
            node,
            json,
        } => {
            let key = parse_id(&info_hash)?;
            let mut client = ChordClient::connect(node, DHT_TIMEOUT).await?;
            let peers = client.peers(key).await?;
            if json {
                let list: Vec<_> = peers
                    .iter()
                    .map(|(p, r)| serde_json::json!({"peer": p, "role": r}))
                    .collect();
                println!("{}", serde_json::json!({"info_hash": key, "peers": list}));
            } else {
                for (p, r) in peers {
                    println!(
                        "{p} {}",
                        if r == Role::Seeder {
                            "seeder"
                        } else {
                            "leecher"
                        }
                    );
                }
            }
        }
        DhtCommand::Lookup { key, node, json } => {
            let key = parse_id(&key)?;
            let mut client = ChordClient::connect(node, DHT_TIMEOUT).await?;
            let info = client.lookup(key).await?;
            if json {
                println!("{}", serde_json::to_string(&info)?);
            } else {
                println!("key      {}", info.key);
                println!("owner    {}", info.owner);
                let replicas: Vec<String> = info.replicas.iter().map(|a| a.to_string()).collect();
                println!("replicas {}", replicas.join(" "));
                println!("hops     {}", info.hops);
            }
        }
        DhtCommand::Walk { node, json } => {
            let members = songswarm::chord::client::walk(node, DHT_TIMEOUT, 100_000).await?;
            if json {
                let out = serde_json::json!({"size": members.len(), "members": members});
                println!("{out}");
            } else {
                for m in &members {
                    println!("{} {m}", Id::of_addr(*m));
                }
                println!("{} members", members.len());
            }
        }
        DhtCommand::Ring { node, json } => {
            let mut client = ChordClient::connect(node, DHT_TIMEOUT).await?;
            let info = client.ring().await?;
            if json {
                println!("{}", serde_json::to_string(&info)?);
            } else {
                println!("id          {}", info.id);
                println!("address     {}", info.addr);
                let pred = info
                    .predecessor
                    .map_or("none".to_string(), |p| p.to_string());
                println!("predecessor {pred}");
                for (i, s) in info.successors.iter().enumerate() {
                    println!("successor {i} {s}");
                }
                println!("fingers     {}", info.fingers);
                println!("keys        {}", info.keys);
            }
        }
    }
    Ok(())
}
