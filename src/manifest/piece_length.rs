//! The piece length `create` chooses when not told: small pieces for songs,
//! so that a player's first byte and a seek wait for little, and the old
//! rule for everything else.
//!
//! Why small for songs (numbers in README.md, "Piece length for songs"): an
//! HTTP stream serves only verified bytes, so a seek into a missing piece
//! waits for the whole piece. A seeder capped near the song's bitrate
//! delivers one 16 KiB block in about a quarter of a second (a 320 kbit/s
//! MP3, caps at 1.5x), and a piece of `n` blocks from `k` peers takes about
//! `n / k` of those after the block each peer is already sending. The cost
//! of small pieces is 20 bytes of hash per piece in the manifest, which
//! must fit the ring's 64 KiB records: at most [`SONG_TARGET_PIECES`]
//! pieces keeps the hashes at 20 KiB.

/// Smallest piece length `build` chooses by default (and accepts): one
/// 16 KiB block, the least that libtorrent and the BitTorrent wire accept.
pub const MIN_BUILD_PIECE_LENGTH: u64 = 16 << 10;
/// Smallest default piece length of data that is not songs.
const DEFAULT_MIN_PIECE: u64 = 32 << 10;
/// Largest default piece length.
const DEFAULT_MAX_PIECE: u64 = 1 << 20;
/// Most pieces the default piece length aims for (data that is not songs).
const DEFAULT_TARGET_PIECES: u64 = 64;
/// Smallest default piece length of songs.
const SONG_MIN_PIECE: u64 = MIN_BUILD_PIECE_LENGTH;
/// Most pieces the default piece length of songs aims for: 20 KiB of
/// hashes, a third of the ring's 64 KiB record for the whole manifest.
pub const SONG_TARGET_PIECES: u64 = 1024;

/// The smallest power of two of at least `min` that gives at most `target`
/// pieces of `total_length` bytes, capped at 1 MiB.
fn smallest(total_length: u64, min: u64, target: u64) -> u64 {
    let mut length = min;
    while length < DEFAULT_MAX_PIECE && total_length.div_ceil(length) > target {
        length *= 2;
    }
    length
}

/// The default piece length for `total_length` bytes of data that is not
/// songs: the smallest power of two of at least 32 KiB that gives at most
/// 64 pieces, capped at 1 MiB. Anything above 64 MiB simply gets 1 MiB
/// pieces.
pub fn default_piece_length(total_length: u64) -> u64 {
    smallest(total_length, DEFAULT_MIN_PIECE, DEFAULT_TARGET_PIECES)
}

/// The default piece length for `total_length` bytes of songs: the
/// smallest power of two of at least 16 KiB that gives at most 1,024
/// pieces, capped at 1 MiB. A song of up to 16 MiB (an MP3 of an hour at
/// 320 kbit/s, a FLAC of a few minutes) gets 16 KiB pieces, one block
/// each; a 30 MB FLAC 32 KiB; a 100 MB album 128 KiB.
pub fn default_song_piece_length(total_length: u64) -> u64 {
    smallest(total_length, SONG_MIN_PIECE, SONG_TARGET_PIECES)
}

/// Whether an album of files given as (length, whether its codec was
/// recognised) is songs: the recognised songs hold at least half its bytes
/// (an album with its cover and booklet is; a video with a soundtrack file
/// is not).
pub(super) fn mostly_songs(files: impl Iterator<Item = (u64, bool)>) -> bool {
    let (songs, total) = files.fold((0u64, 0u64), |(songs, total), (len, song)| {
        (songs + if song { len } else { 0 }, total + len)
    });
    songs.saturating_mul(2) >= total
}
