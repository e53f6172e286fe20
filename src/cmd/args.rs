//! Flags that several commands share, and the HOST:PORT parser.

use std::net::{SocketAddr, SocketAddrV4};

use clap::{Args, ValueEnum};

use crate::app::ring::RingOptions;
use crate::config::{SuperSeedMode, SwarmConfig};
use crate::discovery::{self, DiscoveryConfig};

/// Rate and peer limits of `seed` and `leech`.
#[derive(Args, Debug)]
pub struct RateArgs {
    /// Upload cap in bytes per second.
    #[arg(long)]
    max_upload_rate: Option<u64>,
    /// Download cap in bytes per second.
    #[arg(long)]
    max_download_rate: Option<u64>,
    /// Most peer connections per torrent. When all are taken, a new
    /// connection takes the slot of a peer with which no data moved for a
    /// while, or is refused.
    #[arg(long, default_value_t = SwarmConfig::default().max_peers)]
    max_peers: usize,
    /// Most peer connections per torrent from one IP address.
    #[arg(long, default_value_t = SwarmConfig::default().max_peers_per_ip)]
    max_peers_per_ip: usize,
    /// Super-seeding of a torrent whose data is complete at start
    /// (announcing pieces one peer at a time, so leechers trade among
    /// themselves): auto = only while several leechers are connected.
    #[arg(long, value_enum, default_value_t = SuperSeedArg::Auto)]
    super_seed: SuperSeedArg,
    /// Do not speak the fast extension (BEP 6: have-all, have-none, and a
    /// reject for each request not served) even with peers that do.
    #[arg(long)]
    no_fast_extension: bool,
    /// Most song files kept open at once, over all torrents of the process
    /// (others are opened again when needed); at most a quarter of the
    /// open-file limit.
    #[arg(long, default_value_t = SwarmConfig::default().max_open_files)]
    max_open_files: usize,
}

/// The values of `--super-seed`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SuperSeedArg {
    /// Only while several leechers are connected; never for a lone one.
    Auto,
    /// For every peer that reports the pieces it completes.
    On,
    /// Never: every peer gets the whole bitfield.
    Off,
}

impl RateArgs {
    /// The swarm settings: defaults with these limits applied.
    pub fn config(&self) -> SwarmConfig {
        SwarmConfig {
            max_upload_rate: self.max_upload_rate,
            max_download_rate: self.max_download_rate,
            max_peers: self.max_peers.max(1),
            max_peers_per_ip: self.max_peers_per_ip.max(1),
            fast_extension: !self.no_fast_extension,
            max_open_files: self.max_open_files.max(1),
            super_seed: match self.super_seed {
                SuperSeedArg::Auto => SuperSeedMode::Auto,
                SuperSeedArg::On => SuperSeedMode::On,
                SuperSeedArg::Off => SuperSeedMode::Off,
            },
            ..Default::default()
        }
    }
}

/// `--http` of `seed`, `leech` and `node`.
#[derive(Args, Debug)]
pub struct HttpArgs {
    /// Serve songs, the web player, the JSON API and /metrics over HTTP.
    /// ADDR is a port alone, bound on loopback only (8080 means
    /// 127.0.0.1:8080), or IP:PORT / HOST:PORT to bind that address
    /// (0.0.0.0:8080 serves every interface; port 0 picks a free port).
    #[arg(long, value_name = "ADDR", value_parser = http_addr)]
    pub http: Option<SocketAddr>,
}

/// Parses `--http`: a port alone is on loopback (nobody else can reach the
/// songs unless the user names another address); IP:PORT as given;
/// HOST:PORT is looked up once, its first address taken.
pub fn http_addr(arg: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = arg.parse::<u16>() {
        return Ok(SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port)));
    }
    host_port(arg)?
        .0
        .first()
        .copied()
        .ok_or_else(|| format!("{arg} has no address"))
}

/// How `seed` and `leech` take part in the ring.
#[derive(Args, Debug)]
pub struct RingArgs {
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
    #[arg(long, default_value_t = discovery::DEFAULT_GROUP)]
    discovery_group: SocketAddrV4,
}

impl RingArgs {
    /// The ring settings, or None with --no-ring.
    pub fn options(&self) -> Option<RingOptions> {
        (!self.no_ring).then(|| RingOptions {
            bootstrap: addresses(&self.bootstrap),
            advertise: self.advertise,
            no_discovery: self.no_discovery,
            discovery: DiscoveryConfig {
                group: self.discovery_group,
                ..Default::default()
            },
            ..Default::default()
        })
    }
}

/// The addresses of one HOST:PORT or IP:PORT argument.
#[derive(Clone, Debug)]
pub struct HostPort(Vec<SocketAddr>);

/// Parses IP:PORT, or looks a host name up once, here: every address it
/// has is kept (IPv6 and IPv4 alike), as a peer may listen on only one.
pub fn host_port(arg: &str) -> Result<HostPort, String> {
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
pub fn addresses(args: &[HostPort]) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for addr in args.iter().flat_map(|h| &h.0) {
        if !out.contains(addr) {
            out.push(*addr);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_binds_loopback_unless_told_otherwise() {
        let addr = |s| http_addr(s).unwrap().to_string();
        assert_eq!(addr("8080"), "127.0.0.1:8080");
        assert_eq!(addr("0"), "127.0.0.1:0");
        assert_eq!(addr("127.0.0.1:9000"), "127.0.0.1:9000");
        assert_eq!(addr("0.0.0.0:9000"), "0.0.0.0:9000");
        assert_eq!(addr("[::1]:9000"), "[::1]:9000");
        assert!(http_addr("localhost:9000").unwrap().ip().is_loopback());
        assert!(http_addr("70000").is_err());
        assert!(http_addr("nonsense").is_err());
    }
}
