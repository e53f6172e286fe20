//! The peer-wire codec (BEP 3/6/10 frames) and the payload parsers behind
//! it (extension handshake, PEX, BEP 9 messages), fed in chunks as a
//! socket would. Never a panic; an error ends the stream.
#![no_main]

#[path = "../../tests/support/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::peer_wire(data));
