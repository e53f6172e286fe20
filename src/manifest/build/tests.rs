use super::*;
use sha1::{Digest, Sha1};

/// Files of odd sizes (one empty) that fill more than two read buffers:
/// every piece's hash, including those across file ends, buffer ends
/// and the short last piece, equals the SHA-1 of its bytes.
#[test]
fn pieces_across_files_and_read_buffers_hash_to_their_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let piece = 256 * 1024;
    let sizes = [
        7 * (1 << 20) + 1,
        0,
        13 * (1 << 20) - 5,
        20 * (1 << 20) + 777,
    ];
    assert!(sizes.iter().sum::<usize>() > 2 * HASH_BUFFER as usize);
    let mut stream = Vec::new();
    let mut sources = Vec::new();
    for (i, len) in sizes.into_iter().enumerate() {
        let data: Vec<u8> = (0..len).map(|j| (j * 7 + j / 4093 + i) as u8).collect();
        let disk = dir.path().join(format!("{i}.bin"));
        fs::write(&disk, &data).unwrap();
        stream.extend_from_slice(&data);
        sources.push(Source {
            disk,
            components: vec![format!("{i}.bin")],
            length: len as u64,
        });
    }
    let want: Vec<[u8; 20]> = stream
        .chunks(piece)
        .map(|p| Sha1::digest(p).into())
        .collect();
    assert_eq!(hash_pieces(&sources, piece as u64).unwrap(), want);
}
