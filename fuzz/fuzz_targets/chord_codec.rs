//! The Chord codec (preamble, length-prefixed frames, message decoding),
//! fed in chunks. Never a panic; an error ends the stream.
#![no_main]

#[path = "../../tests/support/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::chord_codec(data));
