//! The user's own playlists: editing one (read, change, write the next
//! version with compare-and-swap on the version read) and the index of
//! the names made here, in the config directory. `songswarm playlist` and
//! the HTTP API both edit through [`edit`].

use std::fs;
use std::path::Path;

use super::ring::{self, PlaylistError, RecordAccess};
use super::{chain, check_name, PlaylistRef};
use crate::id::Id;
use crate::identity::{Identity, IdentityError};

/// The file listing the playlists made here, one name a line.
pub const INDEX_FILE: &str = "playlists";

/// What an edit is based on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// A new playlist: none of that name may exist.
    New,
    /// The version the ring holds now (read, then written with
    /// compare-and-swap on it).
    Latest,
    /// This version, as the editor saw it: if the ring holds another, the
    /// edit is a conflict and nothing is written.
    Version(u64),
}

/// A playlist as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edited {
    /// OWNER/NAME.
    pub playlist: PlaylistRef,
    /// The new version.
    pub version: u64,
    /// Its tracks, in order.
    pub tracks: Vec<Id>,
    /// Records it spans in the ring.
    pub records: usize,
}

/// Reads the playlist `name` of `me`, checks it against `base`, applies
/// `change`, and writes the next version with compare-and-swap; then
/// remembers the name in the index in `dir`.
pub async fn edit<A: RecordAccess>(
    node: &mut A,
    me: &Identity,
    dir: &Path,
    name: &str,
    base: Base,
    change: impl FnOnce(&mut Vec<Id>) -> Result<(), PlaylistError>,
) -> Result<Edited, PlaylistError> {
    check_name(name)?;
    let r = PlaylistRef {
        owner: me.public(),
        name: name.to_string(),
    };
    let found = ring::read(node, &r).await?;
    let (expected, mut tracks) = match (found, base) {
        (Some(l), Base::New) => {
            return Err(PlaylistError::Exists {
                name: name.to_string(),
                seq: l.seq,
            })
        }
        (Some(l), Base::Version(v)) if l.seq != v => {
            return Err(PlaylistError::Conflict {
                what: format!("playlist {name:?}"),
                expected: v,
                found: l.seq,
            })
        }
        (Some(l), _) => (l.seq, l.tracks),
        (None, Base::New) => (0, Vec::new()),
        (None, _) => return Err(PlaylistError::NotFound(r.to_string())),
    };
    change(&mut tracks)?;
    let version = ring::write(node, me.signing_key(), name, &tracks, expected).await?;
    remember(dir, name).map_err(|e| PlaylistError::Index(e.to_string()))?;
    let records = chain(&r.owner, name, &tracks).len();
    Ok(Edited {
        playlist: r,
        version,
        tracks,
        records,
    })
}

/// The names in the index of own playlists (none if there is no index).
pub fn read_index(dir: &Path) -> Vec<String> {
    let text = fs::read_to_string(dir.join(INDEX_FILE)).unwrap_or_default();
    text.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Adds `name` to the index of own playlists.
pub fn remember(dir: &Path, name: &str) -> Result<(), IdentityError> {
    let mut names = read_index(dir);
    if names.iter().any(|n| n == name) {
        return Ok(());
    }
    names.push(name.to_string());
    let path = dir.join(INDEX_FILE);
    fs::write(&path, names.join("\n") + "\n").map_err(|source| IdentityError::Io { path, source })
}
