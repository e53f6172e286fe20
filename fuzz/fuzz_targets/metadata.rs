//! The BEP 9 metadata assembler: pieces of any size, index and order from a
//! lying peer. Never a panic; what it returns always hashes to the
//! info-hash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use songswarm::id::Id;
use songswarm::swarm::metadata::Assembler;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let size = u64::from(u32::from_le_bytes(data[..4].try_into().unwrap()) % 100_000);
    // Half the runs know the right hash of the bytes that follow.
    let rest = &data[4..];
    let info_hash = match size % 2 {
        0 => Id::hash(rest.get(..size as usize).unwrap_or(rest)),
        _ => Id([7; 20]),
    };
    let Ok(mut assembler) = Assembler::new(info_hash, size) else { return };
    let mut at = 0;
    while at + 6 <= rest.len() {
        let piece = u32::from(rest[at]);
        let told = if rest[at + 1] % 8 == 0 { size + 1 } else { size };
        let len = usize::from(u16::from_le_bytes([rest[at + 2], rest[at + 3]]));
        let body = &rest[(at + 4).min(rest.len())..(at + 4 + len).min(rest.len())];
        at += 4 + body.len();
        if let Ok(Some(whole)) = assembler.handle_data(piece, told, body) {
            assert_eq!(Id::hash(&whole), info_hash);
            assert_eq!(whole.len() as u64, size);
        }
    }
});
