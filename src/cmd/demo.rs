//! `songswarm demo`: the whole system in one process on loopback (the run
//! itself is [`crate::app::demo`]).

use std::path::PathBuf;

use clap::Args;

use super::output::{Event, Output};
use super::CmdError;
use crate::app::demo::{demo, DemoOptions};

/// Flags of `demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The manifest to share.
    #[arg(long, default_value = "torrents/demo-album.torrent")]
    manifest: PathBuf,
    /// Where its data is.
    #[arg(long, default_value = "torrents")]
    data: PathBuf,
    /// Bare Chord nodes in the ring (the seeder and leechers join it too).
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

/// Runs the demo and prints its report; fails unless every file verified.
pub async fn run(args: DemoArgs) -> Result<(), CmdError> {
    let opts = DemoOptions {
        manifest: args.manifest,
        data: args.data,
        nodes: args.nodes,
        leechers: args.leechers,
        upload_rate: (args.upload_rate > 0).then_some(args.upload_rate),
        out: args.out,
    };
    let report = demo(opts).await?;
    Output::new(args.json).print(&Event::Demo(&report));
    if report.all_verified() {
        Ok(())
    } else {
        Err(CmdError::DemoMismatch)
    }
}
