//! Song metadata read from audio files with lofty.

use std::path::Path;

use lofty::file::FileType;
use lofty::prelude::*;

use super::SongMeta;

/// Reads title, artist, album, duration and codec from an audio file.
///
/// Returns `None` when lofty does not recognise the file (a cover image, a
/// text file): such files are still shared, just without song metadata.
pub(super) fn read_tags(path: &Path) -> Option<SongMeta> {
    let tagged = match lofty::read_from_path(path) {
        Ok(tagged) => tagged,
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "no audio tags");
            return None;
        }
    };
    // The primary tag is the format's native one (Vorbis comments for FLAC,
    // ID3v2 for MP3/WAV); fall back to whatever tag the file has.
    let tag = tagged.primary_tag().or_else(|| tagged.first_tag());
    let text = |value: Option<std::borrow::Cow<'_, str>>| {
        value
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let duration_ms = tagged.properties().duration().as_millis();
    Some(SongMeta {
        title: tag.and_then(|t| text(t.title())),
        artist: tag.and_then(|t| text(t.artist())),
        album: tag.and_then(|t| text(t.album())),
        duration_ms: u64::try_from(duration_ms).ok().filter(|&ms| ms > 0),
        codec: Some(codec_name(tagged.file_type())),
    })
}

/// A short lower-case codec name for a container type.
fn codec_name(file_type: FileType) -> String {
    match file_type {
        FileType::Aac => "aac".into(),
        FileType::Aiff => "aiff".into(),
        FileType::Ape => "ape".into(),
        FileType::Flac => "flac".into(),
        FileType::Mpeg => "mp3".into(),
        FileType::Mp4 => "mp4".into(),
        FileType::Mpc => "musepack".into(),
        FileType::Opus => "opus".into(),
        FileType::Vorbis => "vorbis".into(),
        FileType::Speex => "speex".into(),
        FileType::Wav => "wav".into(),
        FileType::WavPack => "wavpack".into(),
        FileType::Custom(name) => name.to_lowercase(),
        // FileType is non-exhaustive: name future formats by their Debug form.
        #[allow(unreachable_patterns)]
        other => format!("{other:?}").to_lowercase(),
    }
}
