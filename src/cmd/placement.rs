//! `node --placement K`: of the ports P..P+K-1 of `--listen`, the one
//! whose id would own the longest arc of the ring being joined (see
//! [`crate::chord::placement`]). Ports another process holds are skipped.
//! Each candidate's arc is asked of the ring itself: a lookup of its id
//! through a bootstrap node finds the successor, which names its
//! predecessor; the candidate would own the arc between the two.

use std::collections::btree_map::{BTreeMap, Entry};
use std::net::SocketAddr;
use std::time::Duration;

use super::CmdError;
use crate::app::ring::advertise_addr;
use crate::chord::client::ChordClient;
use crate::chord::placement::pick_address;
use crate::chord::ChordError;
use crate::id::Id;

/// Longest wait for one answer of the ring while placing.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// Most ports one placement may try.
pub const MAX_CHOICES: u16 = 64;

/// A candidate port: where we would listen, and the address others would
/// reach us at (whose SHA-1 is the id).
#[derive(Clone, Copy, Debug)]
struct Candidate {
    listen: SocketAddr,
    advertise: SocketAddr,
}

/// The listen address `node` should bind: of the ports `listen.port()`
/// and the next `choices - 1`, the free one whose id owns the longest arc
/// of the ring `bootstrap` belongs to (the first free one for a new ring).
pub async fn choose(
    listen: SocketAddr,
    choices: u16,
    bootstrap: &[SocketAddr],
) -> Result<SocketAddr, CmdError> {
    if listen.port() == 0 {
        return Err(CmdError::Usage(
            "--placement picks among the ports from --listen's port on: give a port (not 0)".into(),
        ));
    }
    let last = u32::from(listen.port()) + u32::from(choices) - 1;
    if choices == 0 || choices > MAX_CHOICES || last > u32::from(u16::MAX) {
        return Err(CmdError::Usage(format!(
            "--placement {choices}: give 1 to {MAX_CHOICES} ports, all at most 65535 from --listen's port"
        )));
    }
    let candidates: Vec<Candidate> = (listen.port()..=last as u16)
        .map(|port| SocketAddr::new(listen.ip(), port))
        .filter(|addr| std::net::TcpListener::bind(addr).is_ok())
        .map(|addr| Candidate {
            listen: addr,
            advertise: advertise_addr(addr, None, bootstrap.first().copied()),
        })
        .collect();
    let Some(first) = candidates.first() else {
        return Err(CmdError::Usage(format!(
            "--placement {choices}: every port from {listen} on is taken"
        )));
    };
    if bootstrap.is_empty() || candidates.len() == 1 {
        return Ok(first.listen);
    }
    let ids = arcs_around(&candidates, bootstrap).await?;
    let advertised: Vec<SocketAddr> = candidates.iter().map(|c| c.advertise).collect();
    let best = pick_address(&advertised, &ids).unwrap_or(first.advertise);
    let chosen = candidates
        .iter()
        .find(|c| c.advertise == best)
        .unwrap_or(first);
    tracing::info!(
        candidates = candidates.len(),
        chosen = %chosen.advertise,
        "placement: the candidate whose id owns the longest arc"
    );
    Ok(chosen.listen)
}

/// The ids that bound each candidate's arc: for each, its successor in the
/// ring (a lookup through a bootstrap node) and that node's predecessor.
async fn arcs_around(
    candidates: &[Candidate],
    bootstrap: &[SocketAddr],
) -> Result<Vec<Id>, ChordError> {
    let mut client = connect_any(bootstrap).await?;
    // Successor → its predecessor, asked once per successor.
    let mut preds: BTreeMap<SocketAddr, Option<SocketAddr>> = BTreeMap::new();
    for c in candidates {
        let owner = client.lookup(Id::of_addr(c.advertise)).await?.owner;
        if let Entry::Vacant(slot) = preds.entry(owner) {
            let mut at_owner = ChordClient::connect(owner, ASK_TIMEOUT).await?;
            slot.insert(at_owner.ring().await?.predecessor);
        }
    }
    let mut ids: Vec<Id> = preds
        .iter()
        .flat_map(|(owner, pred)| std::iter::once(*owner).chain(*pred))
        .map(Id::of_addr)
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// A client of the first bootstrap node that answers.
async fn connect_any(bootstrap: &[SocketAddr]) -> Result<ChordClient, ChordError> {
    let mut last = ChordError::Unreachable("no bootstrap node".into());
    for addr in bootstrap {
        match ChordClient::connect(*addr, ASK_TIMEOUT).await {
            Ok(client) => return Ok(client),
            Err(e) => last = e,
        }
    }
    Err(last)
}
