//! `songswarm node`: a process that is only a ring node, built like any
//! other (one listener, one Chord node) with no torrents, until
//! SIGINT/SIGTERM; then it hands its keys on and leaves. Meanwhile it keeps
//! the user's own playlists alive in the ring ([`crate::playlist::keep`]).

use std::net::SocketAddr;

use clap::Args;

use super::args::{addresses, host_port, HostPort, HttpArgs};
use super::output::{Event, Output};
use super::playlist::IdentityArgs;
use super::{placement, CmdError};
use crate::app::ring::RingOptions;
use crate::app::{shutdown, App};
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
    /// Pick the node's place on the ring: of K ports from --listen's port
    /// on (skipping ports in use), listen on the one whose node id would
    /// own the longest arc of the ring it joins (asked of the ring through
    /// --bootstrap), for a more even share of the ring's records.
    #[arg(long, value_name = "K", conflicts_with = "advertise")]
    placement: Option<u16>,
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
pub async fn run(args: NodeArgs) -> Result<(), CmdError> {
    let out = Output::new(args.json);
    let bootstrap = addresses(&args.bootstrap);
    let listen = match args.placement {
        Some(k) => placement::choose(args.listen, k, &bootstrap).await?,
        None => args.listen,
    };
    let ring = RingOptions {
        bootstrap,
        advertise: args.advertise,
        // A bare node joins only where it is told to (or founds a ring).
        no_discovery: true,
        ..RingOptions::default()
    };
    let keep = Some(args.identity.dir());
    let (node, http) = App::bare_node_serving(listen, &ring, args.http.http, keep).await?;
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
