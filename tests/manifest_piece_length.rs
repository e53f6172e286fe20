//! The piece length `create` chooses: small pieces for songs (a stream's
//! first byte and a seek wait for a whole piece), the old rule for other
//! data, and a songs' manifest that still fits the ring's records.

use std::path::PathBuf;

use songswarm::chord::records::MAX_VALUE;
use songswarm::manifest::{
    build, default_piece_length, default_song_piece_length, BuildOptions, SONG_TARGET_PIECES,
};

const K: u64 = 1024;

#[test]
fn songs_get_the_smallest_piece_that_keeps_a_thousand_pieces() {
    assert_eq!(default_song_piece_length(1), 16 * K);
    assert_eq!(default_song_piece_length(9_600_000), 16 * K); // a 4-minute 320 kbit/s MP3
    assert_eq!(default_song_piece_length(1024 * 16 * K), 16 * K); // exactly 1,024 pieces
    assert_eq!(default_song_piece_length(1024 * 16 * K + 1), 32 * K);
    assert_eq!(default_song_piece_length(30_000_000), 32 * K); // a FLAC of a few minutes
    assert_eq!(default_song_piece_length(100_000_000), 128 * K); // an MP3 album
    assert_eq!(default_song_piece_length(1 << 40), 1024 * K); // capped
    for total in [1u64, 700_000, 9_999_999, 40_000_000, 300_000_000] {
        let len = default_song_piece_length(total);
        assert!(len.is_power_of_two() && len >= 16 * K);
        assert!(total.div_ceil(len) <= SONG_TARGET_PIECES);
        // The smallest such: half of it would need more pieces.
        assert!(len == 16 * K || total.div_ceil(len / 2) > SONG_TARGET_PIECES);
        // Never longer than the rule for other data.
        assert!(len <= default_piece_length(total));
    }
}

/// Builds a manifest of `files` (name, bytes) in a fresh directory, as
/// one file or as the album `album`.
fn built(files: &[(&str, Vec<u8>)]) -> songswarm::manifest::Manifest {
    let tmp = tempfile::tempdir().unwrap();
    let album = tmp.path().join("album");
    std::fs::create_dir(&album).unwrap();
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|(name, bytes)| {
            let p = album.join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        })
        .collect();
    let input = if paths.len() == 1 { paths } else { vec![album] };
    build(&input, &BuildOptions::default()).unwrap()
}

/// A mono 16-bit 22.05 kHz PCM WAV of `data_len` bytes of silence.
fn wav(data_len: u32) -> Vec<u8> {
    let rate = 22_050u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.resize(44 + data_len as usize, 0);
    out
}

fn noise(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

#[test]
fn a_song_gets_song_pieces_and_other_data_keeps_its_rule() {
    let song = wav(1_300_000);
    let len = song.len() as u64;
    let m = built(&[("song.wav", song)]);
    assert_eq!(
        m.song.as_ref().and_then(|s| s.codec.as_deref()),
        Some("wav")
    );
    assert_eq!(m.piece_length, 16 * K, "{len} bytes of song");
    let m = built(&[("data.bin", noise(len as usize, 1))]);
    assert_eq!(m.piece_length, default_piece_length(len));
    assert!(m.piece_length > 16 * K);
}

#[test]
fn an_album_is_songs_when_most_of_its_bytes_are() {
    let (a, b) = (wav(880_000), wav(880_000));
    let songs = (a.len() + b.len()) as u64;
    let m = built(&[
        ("a.wav", a.clone()),
        ("b.wav", b.clone()),
        ("cover.jpg", noise(300_000, 2)),
    ]);
    assert_eq!(m.piece_length, 16 * K, "songs are most of the album");
    let total = songs + 3_000_000;
    let m = built(&[
        ("a.wav", a),
        ("b.wav", b),
        ("video.bin", noise(3_000_000, 3)),
    ]);
    assert_eq!(
        m.piece_length,
        default_piece_length(total),
        "most of it is not songs"
    );
}

#[test]
fn a_song_manifest_at_the_piece_target_fits_a_ring_record() {
    // 1,024 pieces of 16 KiB, the last one short: the most hashes a songs'
    // default gives (past 16 MiB the pieces double).
    let m = built(&[("long.wav", wav((SONG_TARGET_PIECES * 16 * K - 1000) as u32))]);
    assert_eq!(m.piece_length, 16 * K);
    assert_eq!(m.piece_count() as u64, SONG_TARGET_PIECES);
    assert!(
        m.info_bytes.len() <= MAX_VALUE / 2,
        "{} bytes of info for the ring's {MAX_VALUE}",
        m.info_bytes.len()
    );
}
