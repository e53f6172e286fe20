//! The JSON bodies of the playlist routes.

use serde::{Deserialize, Serialize};

use crate::http::tracks::Track;

/// A playlist as the web player shows it.
#[derive(Debug, Serialize)]
pub struct PlaylistJson {
    /// OWNER/NAME.
    pub playlist: String,
    /// The owner's public key, hex.
    pub owner: String,
    /// Its name.
    pub name: String,
    /// Its version: send it back with an edit.
    pub version: u64,
    /// True if it is ours (we may edit it).
    pub mine: bool,
    /// Records it spans in the ring.
    pub records: usize,
    /// Its tracks, in order.
    pub tracks: Vec<Track>,
}

/// One of our playlists, as listed.
#[derive(Debug, Serialize)]
pub struct OwnSummary {
    /// Its name.
    pub name: String,
    /// OWNER/NAME.
    pub playlist: String,
    /// Its version, None if the ring holds none.
    pub version: Option<u64>,
    /// Its number of tracks.
    pub tracks: usize,
}

/// The body of `POST /api/playlists`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Create {
    pub(super) name: String,
    #[serde(default)]
    pub(super) tracks: Vec<String>,
}

/// The body of `PUT /api/playlists/{owner}/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replace {
    pub(super) version: u64,
    pub(super) tracks: Vec<String>,
}

/// The body of the `tracks` routes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackEdit {
    #[serde(default)]
    pub(super) tracks: Vec<String>,
    #[serde(default)]
    pub(super) positions: Vec<usize>,
    pub(super) version: Option<u64>,
}
