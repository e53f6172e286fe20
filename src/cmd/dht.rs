//! `songswarm dht ...`: talk to the ring from outside, through any node.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Subcommand;

use super::dht_mutable;
use super::output::{Event, Output};
use super::playlist::IdentityArgs;
use super::CmdError;
use crate::chord::client::{self, ChordClient};
use crate::chord::Role;
use crate::id::Id;

/// Longest a `dht` command waits for an answer (a quorum takes several RPCs).
const DHT_TIMEOUT: Duration = Duration::from_secs(30);

/// Most members `dht walk` visits before it calls the ring broken.
const WALK_LIMIT: usize = 100_000;

/// The `dht` subcommands.
#[derive(Subcommand, Debug)]
pub enum DhtCommand {
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
    /// Store a value in the ring: without `--mutable`, immutable under
    /// its SHA-1 (it lives two hours unless stored again); with
    /// `--mutable NAME`, signed as the next version of your value NAME
    /// (compare-and-swap on the version read).
    Put {
        value: String,
        /// The value's name (1-64 bytes): others read it as YOUR-KEY/NAME.
        #[arg(long, value_name = "NAME")]
        mutable: Option<String>,
        #[arg(long)]
        node: SocketAddr,
        #[command(flatten)]
        identity: IdentityArgs,
        #[arg(long)]
        json: bool,
    },
    /// The value stored under a key (`dht put`'s key, or an info-hash:
    /// the torrent's raw info dictionary), or the signed value OWNER/NAME
    /// (OWNER: a public key, 64 hex digits).
    Get {
        key: String,
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

fn parse_id(s: &str) -> Result<Id, CmdError> {
    s.parse::<Id>().map_err(|source| CmdError::BadId {
        arg: s.to_string(),
        source,
    })
}

/// Runs one `dht` subcommand and prints its answer.
pub async fn run(command: DhtCommand) -> Result<(), CmdError> {
    let connect = |node| ChordClient::connect(node, DHT_TIMEOUT);
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
            connect(node).await?.announce(key, peer, role).await?;
            Output::new(json).print(&Event::Announced { key, peer, role });
        }
        DhtCommand::Peers {
            info_hash,
            node,
            json,
        } => {
            let key = parse_id(&info_hash)?;
            let peers = connect(node).await?.peers(key).await?;
            Output::new(json).print(&Event::Peers { key, peers: &peers });
        }
        DhtCommand::Lookup { key, node, json } => {
            let key = parse_id(&key)?;
            let info = connect(node).await?.lookup(key).await?;
            Output::new(json).print(&Event::Located(&info));
        }
        DhtCommand::Walk { node, json } => {
            let members = client::walk(node, DHT_TIMEOUT, WALK_LIMIT).await?;
            Output::new(json).print(&Event::Walked(&members));
        }
        DhtCommand::Put {
            mutable: Some(name),
            value,
            node,
            identity,
            json,
        } => dht_mutable::put(node, &identity, &name, &value, json).await?,
        DhtCommand::Put {
            mutable: None,
            value,
            node,
            json,
            ..
        } => {
            let value = value.into_bytes();
            let (key, bytes) = (Id::hash(&value), value.len());
            connect(node).await?.put_value(value).await?;
            Output::new(json).print(&Event::StoredValue { key, bytes });
        }
        DhtCommand::Get { key, node, json } if key.contains('/') => {
            dht_mutable::get(node, &key, json).await?
        }
        DhtCommand::Get { key, node, json } => {
            let key = parse_id(&key)?;
            let value = connect(node).await?.get_value(key).await?;
            if value.is_none() && !json {
                return Err(CmdError::NotFound(key));
            }
            Output::new(json).print(&Event::Value { key, value: &value });
        }
        DhtCommand::Ring { node, json } => {
            let info = connect(node).await?.ring().await?;
            Output::new(json).print(&Event::Ring(&info));
        }
    }
    Ok(())
}
