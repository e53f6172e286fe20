//! Song metadata: read from audio files with lofty, merged with the flags.

use std::path::Path;

use lofty::file::FileType;
use lofty::prelude::*;

use super::{BuildOptions, SongMeta};

/// Reads title, artist, album, duration and codec from an audio file.
///
/// Returns `None` when lofty does not recognise the file (a cover image, a
/// text file): such files are still shared, just without song metadata.
fn read_tags(path: &Path) -> Option<SongMeta> {
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

/// Reads the tags of `files` and merges them with the options into
/// (`info.song`, one `files[i].song` per file; empty for a single file).
/// The rules are in the `build` module documentation.
pub(super) fn merge_songs(
    files: &[&Path],
    single: bool,
    opts: &BuildOptions,
) -> (Option<SongMeta>, Vec<Option<SongMeta>>) {
    let over = |tag: Option<String>, flag: &Option<String>| flag.clone().or(tag);
    if single {
        let tags = read_tags(files[0]).unwrap_or_default();
        let song = SongMeta {
            title: over(tags.title, &opts.title),
            artist: over(tags.artist, &opts.artist),
            album: over(tags.album, &opts.album),
            ..tags
        };
        return (non_empty(song), Vec::new());
    }
    let file_songs: Vec<Option<SongMeta>> = files
        .iter()
        .map(|path| {
            read_tags(path).map(|tags| SongMeta {
                artist: over(tags.artist, &opts.artist),
                album: over(tags.album, &opts.album),
                ..tags
            })
        })
        .collect();
    let audio: Vec<&SongMeta> = file_songs.iter().flatten().collect();
    let agreed = |field: fn(&SongMeta) -> Option<&String>| -> Option<String> {
        let first = field(audio.first()?)?;
        audio
            .iter()
            .all(|s| field(s) == Some(first))
            .then(|| first.clone())
    };
    let duration_ms = if audio.is_empty() {
        None
    } else {
        audio.iter().map(|s| s.duration_ms).sum::<Option<u64>>()
    };
    let album = SongMeta {
        title: opts.title.clone(),
        artist: opts
            .artist
            .clone()
            .or_else(|| agreed(|s| s.artist.as_ref())),
        album: opts.album.clone().or_else(|| agreed(|s| s.album.as_ref())),
        duration_ms,
        codec: agreed(|s| s.codec.as_ref()),
    };
    (
        non_empty(album),
        file_songs
            .into_iter()
            .map(|s| s.and_then(non_empty))
            .collect(),
    )
}

fn non_empty(song: SongMeta) -> Option<SongMeta> {
    (song != SongMeta::default()).then_some(song)
}
