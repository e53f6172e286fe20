//! `songswarm search <WORDS>...`: the songs in the ring whose title,
//! artist or album hold every word, best first (most live seeders, then
//! the title that matches best). The search runs on a ring node, which
//! reads the words' posting lists and the swarms found, all at once.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::output::{Event, Output};
use super::CmdError;
use crate::chord::client::ChordClient;
use crate::chord::ChordError;
use crate::discovery::{self, DiscoveryConfig};
use crate::wire::chord::Hit;

/// Longest a search waits for its node's answer (reads take a few RPCs).
pub const SEARCH_TIMEOUT: Duration = Duration::from_secs(30);

/// `search`'s flags.
#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Words of the title, artist or album (case and accents do not matter).
    #[arg(required = true)]
    words: Vec<String>,
    /// A ring node to ask (default: the first one that answers on the LAN).
    #[arg(long, alias = "bootstrap", value_name = "ADDR")]
    node: Option<SocketAddr>,
    /// Most results shown.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// One JSON object: {"query", "results": [...]}.
    #[arg(long)]
    json: bool,
}

/// The node to ask: `node`, else the first ring member found on the LAN.
pub async fn ring_node(node: Option<SocketAddr>) -> Result<SocketAddr, CmdError> {
    if let Some(node) = node {
        return Ok(node);
    }
    let found = discovery::discover(&DiscoveryConfig::default(), None)
        .await
        .map_err(|e| ChordError::Unreachable(format!("LAN discovery: {e}")))?;
    found.first().copied().ok_or_else(|| {
        ChordError::Unreachable("no ring node answered on the LAN: name one with --node".into())
            .into()
    })
}

/// Asks the ring for the songs matching `query`, best first.
pub async fn find(node: Option<SocketAddr>, query: &str, limit: u32) -> Result<Vec<Hit>, CmdError> {
    let node = ring_node(node).await?;
    let mut client = ChordClient::connect(node, SEARCH_TIMEOUT).await?;
    Ok(client.search(query, limit).await?)
}

/// Runs `search` and prints the results.
pub async fn run(args: SearchArgs) -> Result<(), CmdError> {
    let query = args.words.join(" ");
    let hits = find(args.node, &query, args.limit.max(1)).await?;
    let query = query.as_str();
    Output::new(args.json).print(&Event::Hits { query, hits: &hits });
    Ok(())
}
