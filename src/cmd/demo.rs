//! `songswarm demo`: the whole system in one process on loopback (the run
//! itself is [`crate::app::demo`]).

use std::path::{Path, PathBuf};

use clap::Args;

use super::output::{Event, Output};
use super::CmdError;
use crate::app::demo::{demo, DemoOptions};

/// The demo album, relative to the source tree.
const DEMO_MANIFEST: &str = "torrents/demo-album.torrent";
/// Its data directory, relative to the source tree.
const DEMO_DATA: &str = "torrents";

/// Flags of `demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The manifest to share (default: the demo album, found in the current
    /// directory or else in the source tree the binary was built from).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Where its data is (default: the demo album's directory).
    #[arg(long)]
    data: Option<PathBuf>,
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
    /// Keep the swarm running after the report, and print the web player's
    /// URL for a person to open; Ctrl-C ends it.
    #[arg(long)]
    keep: bool,
}

/// Runs the demo and prints its report; fails unless every file verified.
pub async fn run(args: DemoArgs) -> Result<(), CmdError> {
    let (manifest, data) = match (args.manifest, args.data) {
        (Some(manifest), Some(data)) => (manifest, data),
        (manifest, data) => {
            let root = demo_root()?;
            (
                manifest.unwrap_or_else(|| root.join(DEMO_MANIFEST)),
                data.unwrap_or_else(|| root.join(DEMO_DATA)),
            )
        }
    };
    let opts = DemoOptions {
        manifest,
        data,
        nodes: args.nodes,
        leechers: args.leechers,
        upload_rate: (args.upload_rate > 0).then_some(args.upload_rate),
        out: args.out,
    };
    let demo = demo(opts).await?;
    let output = Output::new(args.json);
    output.print(&Event::Demo(&demo.report));
    if args.keep {
        output.print(&Event::DemoKept {
            player_url: &demo.report.play.player_url,
        });
        crate::app::shutdown::signal().await;
    }
    let verified = demo.report.all_verified();
    demo.stop().await;
    if verified {
        Ok(())
    } else {
        Err(CmdError::DemoMismatch)
    }
}

/// Where the demo album is: the current directory when it holds one (a
/// checkout), else the source tree this binary was built from.
fn demo_root() -> Result<PathBuf, CmdError> {
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR"));
    [Path::new(""), built_from]
        .into_iter()
        .find(|root| root.join(DEMO_MANIFEST).is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| CmdError::NoDemoAlbum {
            source_tree: built_from.to_path_buf(),
        })
}
