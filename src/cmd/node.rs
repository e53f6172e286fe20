//! `songswarm node`: a process that is only a ring node, built like any
//! other (one listener, one Chord node) with no torrents, until
//! SIGINT/SIGTERM; then it hands its keys on and leaves. Meanwhile it keeps
//! the user's own playlists alive in the ring ([`crate::playlist::keep`]).

use std::net::SocketAddr;

use clap::Args;

use super::args::{addresses, host_port, HostPort, HttpArgs};
use super::output::{Event, Output};
use super::playlist::IdentityArgs;
use crate::app::ring::RingOptions;
use crate::app::{shutdown, App, AppError};
use crate::id::Id;

/// Flags of `node`.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:6881")]
    listen: SocketAddr,
    /// Address other nodes reach this one at (default: the listen address,
    /// or the interface that routes to the first bootstrap node).
    #[arg(long)]
    advertise: Option<SocketAddr>,
    /// A node of the ring to join through, HOST:PORT (repeatable); none
    /// starts a new ring.
    #[arg(long, value_parser = host_port)]
    bootstrap: Vec<HostPort>,
    #[command(flatten)]
    http: HttpArgs,
    /// Whose playlists this node keeps alive in the ring (they expire
    /// unless written again).
    #[command(flatten)]
    identity: IdentityArgs,
    /// Print JSON lines instead of text.
    #[arg(long)]
    json: bool,
}

/// Serves the ring until SIGINT/SIGTERM, then leaves cleanly.
pub async fn run(args: NodeArgs) -> Result<(), AppError> {
    let out = Output::new(args.json);
    let ring = RingOptions {
        bootstrap: addresses(&args.bootstrap),
        advertise: args.advertise,
        // A bare node joins only where it is told to (or founds a ring).
        no_discovery: true,
        ..RingOptions::default()
    };
    let keep = Some(args.identity.dir());
    let (node, http) = App::bare_node_serving(args.listen, &ring, args.http.http, keep).await?;
    let stop = shutdown::signal();
    out.print(&Event::NodeListening {
        addr: node.addr(),
        id: Id::of_addr(node.addr()),
        http,
    });
    stop.await;
    out.print(&Event::Leaving);
    node.leave().await;
    Ok(())
}
