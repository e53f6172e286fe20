//! The manifest decoder: any bytes as a .torrent file, and as a BEP 9 info
//! dictionary. Never a panic; whatever parses keeps its own invariants.
#![no_main]

#[path = "../../tests/support/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::manifest(data));
