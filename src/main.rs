//! The `songswarm` command line: clap parses it, the library runs it
//! (see `songswarm::cmd`).

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "songswarm",
    version,
    about = "Share and play songs peer to peer, with a Chord ring as the tracker"
)]
struct Cli {
    #[command(subcommand)]
    command: songswarm::cmd::Command,
}

fn main() -> ExitCode {
    songswarm::app::alloc::tune();
    songswarm::cmd::main(Cli::parse().command)
}
