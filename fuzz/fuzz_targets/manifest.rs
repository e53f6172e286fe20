//! The manifest decoder: any bytes as a .torrent file, and as a BEP 9 info
//! dictionary. Never a panic; whatever parses keeps its own invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use songswarm::manifest::Manifest;

fuzz_target!(|data: &[u8]| {
    for parsed in [Manifest::from_bytes(data), Manifest::from_info_bytes(data)] {
        if let Ok(m) = parsed {
            // A manifest that parsed is consistent: its pieces cover its length.
            let g = m.geometry();
            let covered: u64 = (0..m.piece_count()).map(|i| u64::from(m.piece_len(i))).sum();
            assert_eq!(covered, g.total_length);
            let _ = m.file_spans();
            let _ = m.to_bytes();
        }
    }
});
