//! Waiting for an in-process torrent to finish.

use std::time::Duration;

use songswarm::swarm::coordinator::TorrentHandle;

/// Waits until the torrent has every piece; panics if it stops with an
/// error or takes longer than `deadline`.
pub async fn wait_complete(handle: &TorrentHandle, deadline: Duration) {
    let mut stats = handle.stats.clone();
    let done = tokio::time::timeout(
        deadline,
        stats.wait_for(|s| s.complete || s.error.is_some()),
    )
    .await
    .expect("download did not complete in time")
    .expect("torrent stopped");
    assert_eq!(done.error, None);
}
