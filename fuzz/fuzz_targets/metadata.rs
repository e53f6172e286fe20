//! The BEP 9 metadata assembler: pieces of any size, index and order from a
//! lying peer. Never a panic; what it returns always hashes to the
//! info-hash.
#![no_main]

#[path = "../../tests/support/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::metadata(data));
