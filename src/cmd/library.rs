//! `songswarm library`: every song in the ring, page by page. Walks the
//! ring along successor pointers and asks each member for the songs whose
//! metadata it owns (keys between its predecessor and itself), so each
//! song is listed once; each page prints as it arrives.

use std::net::SocketAddr;

use clap::Args;

use super::output::{Event, Output};
use super::search::{ring_node, SEARCH_TIMEOUT};
use super::CmdError;
use crate::chord::client::walk_library;

/// `library`'s flags.
#[derive(Args, Debug)]
pub struct LibraryArgs {
    /// A ring node to start from (default: the first one that answers on
    /// the LAN).
    #[arg(long, alias = "bootstrap", value_name = "ADDR")]
    node: Option<SocketAddr>,
    /// Torrents per page asked of each node.
    #[arg(long, default_value_t = 50)]
    page: u32,
    /// One JSON object per song per line.
    #[arg(long)]
    json: bool,
}

/// Runs `library`, printing each page as it comes.
pub async fn run(args: LibraryArgs) -> Result<(), CmdError> {
    let node = ring_node(args.node).await?;
    let out = Output::new(args.json);
    let mut count = 0;
    let members = walk_library(node, SEARCH_TIMEOUT, args.page.max(1), |_, songs| {
        count += songs.len();
        out.print(&Event::Songs(&songs));
    })
    .await?;
    if !args.json {
        out.warn(format!("{count} songs on {members} ring members"));
    }
    Ok(())
}
