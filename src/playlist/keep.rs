//! The owner's process keeps its playlists alive: signed items expire
//! unless written again (see [`crate::chord::records::Mutable`]), so every
//! ring member of the owner's (`node`, `seed`, `leech`, `play`) writes the
//! records of the current version of each own playlist (the index in the
//! config directory) again at half their life. Parts of older versions are
//! not written and go away.

use std::path::PathBuf;
use std::time::Duration;

use tracing::debug;

use super::own::read_index;
use super::ring;
use super::PlaylistRef;
use crate::chord::driver::ChordHandle;
use crate::chord::records::MAX_MUTABLE_TTL;
use crate::identity::Identity;

/// Wait before trying again after a failure.
const RETRY: Duration = Duration::from_secs(60);

/// Keeps the own playlists of the identity in `dir` in the ring through
/// `chord` until the node stops. Reads the directory only: with no index
/// (no playlist made here) it writes nothing, and makes no identity.
pub fn spawn(chord: &ChordHandle, dir: PathBuf) {
    let (mut ring, stopped) = (chord.clone(), chord.stopped());
    chord.spawn(async move {
        loop {
            let next = match keep_all(&mut ring, &dir).await {
                true => MAX_MUTABLE_TTL / 2,
                false => RETRY,
            };
            tokio::select! {
                _ = stopped.cancelled() => return,
                _ = tokio::time::sleep(next) => {}
            }
        }
    });
}

/// One round: every own playlist written again; false if any failed.
async fn keep_all(ring: &mut ChordHandle, dir: &std::path::Path) -> bool {
    let names = read_index(dir);
    if names.is_empty() {
        return true;
    }
    let owner = match Identity::load_or_create(dir) {
        Ok(me) => me.public(),
        Err(e) => {
            debug!(error = %e, "no identity to keep playlists of");
            return true;
        }
    };
    let mut all_ok = true;
    for name in names {
        let r = PlaylistRef { owner, name };
        match ring::keep(ring, &r).await {
            Ok(n) => debug!(playlist = %r, records = n, "playlist kept"),
            Err(e) => {
                debug!(playlist = %r, error = %e, "keeping the playlist failed; retrying");
                all_ok = false;
            }
        }
    }
    all_ok
}
