//! `songswarm create`: make a manifest for a song or an album.

use std::path::PathBuf;

use clap::Args;

use super::output::{Event, Output};
use super::CmdError;
use crate::manifest::{build, check_output, BuildOptions};

/// Flags of `create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
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

/// Builds the manifest, writes it atomically, prints it.
pub fn run(args: CreateArgs) -> Result<(), CmdError> {
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
    Output::new(args.json).print(&Event::Created {
        manifest: &manifest,
        out: &args.out,
    });
    Ok(())
}
