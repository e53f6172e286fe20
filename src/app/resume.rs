//! Fast resume: what a torrent finds verified at start, and the record of
//! its progress kept on disk while it runs (see [`crate::storage::resume`]).
//!
//! At start the torrent's record is read and only the pieces touching files
//! changed since are hashed (`--recheck` hashes every piece). While a
//! download runs, the record is rewritten at most every [`SAVE_EVERY`]
//! after pieces verify, and once more when the process stops: each time the
//! verified set is taken first, then the files are `fsync`ed, then the
//! record is replaced atomically, so a crash never leaves a record that
//! calls an unwritten piece verified. A record that cannot be written (a
//! read-only music directory) costs a full check at the next start, nothing
//! else: it is logged, never fatal.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, warn};

use super::{hashing_threads, App, AppError};
use crate::manifest::Manifest;
use crate::storage::{ResumeDir, Resumed, Storage};
use crate::swarm::coordinator::TorrentHandle;

/// Shortest time between two records of a running download.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The verified pieces of `storage` at start, from its record where the
/// files are unchanged (every piece hashed when `recheck`).
pub async fn check(
    storage: &Arc<Storage>,
    place: Option<&ResumeDir>,
    info_hash: [u8; 20],
    recheck: bool,
) -> Result<Resumed, AppError> {
    let (s, place) = (storage.clone(), place.cloned());
    tokio::task::spawn_blocking(move || {
        let record = match recheck {
            true => None,
            false => place.as_ref().and_then(|p| p.load(&info_hash)),
        };
        s.resume(record.as_ref(), hashing_threads())
    })
    .await
    .map_err(|e| AppError::Failed(e.to_string()))
}

/// Opens the data of a torrent to seed and checks that it is all there and
/// right, reading only what changed since its record (all with `recheck`);
/// writes a new record when anything was read.
pub async fn open_seeding(
    data: &Path,
    manifest: &Manifest,
    recheck: bool,
) -> Result<Arc<Storage>, AppError> {
    let (data, manifest) = (data.to_path_buf(), manifest.clone());
    tokio::task::spawn_blocking(move || {
        open_seeding_now(&data, &manifest, recheck, hashing_threads())
    })
    .await
    .map_err(|e| AppError::Failed(e.to_string()))?
}

/// [`open_seeding`] on the calling thread (it may wait for a disk), hashing
/// on `threads` threads. A library opens its songs this way, a share of
/// them on each blocking thread: one hand-off per thread, not two per song.
pub fn open_seeding_now(
    data: &Path,
    manifest: &Manifest,
    recheck: bool,
    threads: usize,
) -> Result<Arc<Storage>, AppError> {
    let storage = Arc::new(Storage::open_existing(data, manifest)?);
    let place = ResumeDir::for_root(data, &manifest.name);
    let info_hash = manifest.info_hash.0;
    let record = match recheck {
        true => None,
        false => place.as_ref().and_then(|p| p.load(&info_hash)),
    };
    let resumed = storage.resume(record.as_ref(), threads);
    storage.check_resumed(&resumed.verified)?;
    if let (Some(place), true) = (place, resumed.checked > 0) {
        save(&storage, &place, info_hash, resumed.verified);
    }
    Ok(storage)
}

/// Writes the record of `verified` (taken before this call): the files are
/// made durable first. A failure is logged.
fn save(storage: &Storage, place: &ResumeDir, info_hash: [u8; 20], verified: Vec<bool>) {
    let saved = storage
        .sync()
        .and_then(|()| storage.record(info_hash, verified))
        .map_err(|e| e.to_string())
        .and_then(|record| place.save(&record).map_err(|e| e.to_string()));
    match saved {
        Ok(()) => debug!(dir = %place.path().display(), "resume record saved"),
        Err(e) => warn!(dir = %place.path().display(), error = %e, "resume record not saved"),
    }
}

impl App {
    /// Keeps the record of a download up to date while the process runs:
    /// after pieces verify (at most every [`SAVE_EVERY`]) and at the end.
    pub fn keep_resume_record(&self, handle: &TorrentHandle, place: ResumeDir) {
        let mut verified = handle.verified.clone();
        let storage = handle.storage.clone();
        let info_hash = handle.info_hash.0;
        let stop = self.shutdown.token();
        let snapshot = move |v: &crate::swarm::verified::VerifiedPieces| -> Vec<bool> {
            (0..v.piece_count()).map(|i| v.has(i)).collect()
        };
        self.shutdown.spawn(async move {
            let mut last = Instant::now();
            loop {
                tokio::select! {
                    changed = verified.changed() => if changed.is_err() { break },
                    _ = stop.cancelled() => break,
                }
                // Let more pieces verify before the next record.
                tokio::select! {
                    _ = tokio::time::sleep_until(last + SAVE_EVERY) => {}
                    _ = stop.cancelled() => break,
                }
                let now = snapshot(&verified.borrow_and_update());
                let (s, p) = (storage.clone(), place.clone());
                let _ = tokio::task::spawn_blocking(move || save(&s, &p, info_hash, now)).await;
                last = Instant::now();
            }
            // The last record: what is verified when the process stops
            // (files may have changed since: a finished download is trimmed).
            let now = snapshot(&verified.borrow());
            let _ =
                tokio::task::spawn_blocking(move || save(&storage, &place, info_hash, now)).await;
        });
    }
}
