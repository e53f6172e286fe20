use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn reference(m: &[u8]) -> [u8; 20] {
    Sha1::digest(m).into()
}

/// Lengths around the padding boundaries and block multiples.
#[test]
fn every_length_near_a_block_boundary_matches_the_reference() {
    let data: Vec<u8> = (0..300u32).map(|i| (i * 37 + 11) as u8).collect();
    let messages: Vec<Vec<u8>> = (0..=200).map(|n| data[..n].to_vec()).collect();
    for group in messages.chunks(5) {
        let chunked: Vec<[&[u8]; 1]> = group.iter().map(|m| [&m[..]]).collect();
        let refs: Vec<&[&[u8]]> = chunked.iter().map(|c| &c[..]).collect();
        let got = digests(&refs);
        for (m, d) in group.iter().zip(got) {
            assert_eq!(d, reference(m), "length {}", m.len());
        }
    }
}

/// Random messages cut into random chunks (empty ones, ones shorter than
/// a block, 16 KiB blocks), hashed in groups of every size.
#[test]
fn randomly_chunked_messages_match_the_reference() {
    let mut rng = StdRng::seed_from_u64(7);
    for round in 0..300 {
        let count = rng.gen_range(0..=9);
        let same_len = rng.gen_bool(0.5);
        let common = rng.gen_range(0..70_000);
        let messages: Vec<Vec<u8>> = (0..count)
            .map(|_| {
                let len = if same_len {
                    common
                } else {
                    rng.gen_range(0..70_000)
                };
                (0..len).map(|_| rng.gen()).collect()
            })
            .collect();
        let chunkings: Vec<Vec<&[u8]>> = messages
            .iter()
            .map(|m| {
                let mut chunks = Vec::new();
                let mut rest = &m[..];
                while !rest.is_empty() {
                    let n = match rng.gen_range(0..4) {
                        0 => 0,
                        1 => rng.gen_range(1..130),
                        2 => 16384,
                        _ => rng.gen_range(1..40_000),
                    }
                    .min(rest.len());
                    chunks.push(&rest[..n]);
                    rest = &rest[n..];
                }
                chunks
            })
            .collect();
        let refs: Vec<&[&[u8]]> = chunkings.iter().map(|c| &c[..]).collect();
        let got = digests(&refs);
        assert_eq!(got.len(), messages.len());
        for (i, (m, d)) in messages.iter().zip(got).enumerate() {
            assert_eq!(d, reference(m), "round {round}, message {i}");
            assert_eq!(digest(&chunkings[i]), d);
        }
    }
}

/// One wrong byte in one lane changes that lane's digest only.
#[test]
fn lanes_do_not_leak_into_each_other() {
    let a = vec![5u8; 1 << 20];
    let mut b = a.clone();
    b[777_777] ^= 1;
    let got = digests(&[&[&a[..]][..], &[&b[..]][..], &[&a[..]][..], &[&a[..]][..]]);
    assert_eq!(got[0], reference(&a));
    assert_eq!(got[1], reference(&b));
    assert_ne!(got[0], got[1]);
    assert_eq!(got[2], got[0]);
    assert_eq!(got[3], got[0]);
}
