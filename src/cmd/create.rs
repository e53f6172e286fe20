//! `songswarm create`: make a manifest for a song or an album.

use std::path::{Path, PathBuf};

use clap::Args;

use super::music_dir;
use super::output::{Event, Output};
use super::CmdError;
use crate::manifest::{build, check_output, BuildOptions, ManifestError};

/// Flags of `create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// One audio file, one album directory, or several files of one directory
    /// (an album named after that directory).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Where to write the manifest (with --per-song: the directory of the
    /// manifests).
    #[arg(short, long)]
    out: PathBuf,
    /// One manifest per song of the directory given (recursively; hidden
    /// entries and links skipped): DIR/a/b.flac gets OUT/a/b.flac.torrent,
    /// the layout `seed --library OUT --data DIR` serves.
    #[arg(long, conflicts_with = "title")]
    per_song: bool,
    /// Piece length in bytes (power of two, at least 16 KiB); default for
    /// songs: the smallest power of two ≥ 16 KiB giving at most 1,024
    /// pieces (16 KiB up to 16 MiB), for other data: the smallest ≥ 32 KiB
    /// giving at most 64 pieces; capped at 1 MiB.
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
    let opts = BuildOptions {
        piece_length: args.piece_length,
        title: args.title,
        artist: args.artist,
        album: args.album,
        nodes: args.nodes,
    };
    if args.per_song {
        return per_song(&args.inputs, &args.out, &opts, Output::new(args.json));
    }
    check_output(&args.out, &args.inputs)?;
    let manifest = build(&args.inputs, &opts)?;
    manifest.save(&args.out)?;
    Output::new(args.json).print(&Event::Created {
        manifest: &manifest,
        out: &args.out,
    });
    Ok(())
}

/// `create DIR --per-song -o OUT`: one manifest per song under `DIR`.
fn per_song(
    inputs: &[PathBuf],
    out: &Path,
    opts: &BuildOptions,
    output: Output,
) -> Result<(), CmdError> {
    let [dir] = inputs else {
        return Err(CmdError::Usage(
            "--per-song takes one directory of songs".into(),
        ));
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ManifestError::Io { path, source }
    };
    let songs = music_dir::songs(dir).map_err(io(dir))?;
    if songs.is_empty() {
        return Err(CmdError::Usage(format!(
            "no songs under {} (files ending in {})",
            dir.display(),
            music_dir::SONG_EXTENSIONS.join(", .")
        )));
    }
    for rel in songs {
        let manifest = build(&[dir.join(&rel)], opts)?;
        let mut target = out.join(&rel).into_os_string();
        target.push(".torrent");
        let target = PathBuf::from(target);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        manifest.save(&target)?;
        output.print(&Event::Created {
            manifest: &manifest,
            out: &target,
        });
    }
    Ok(())
}
