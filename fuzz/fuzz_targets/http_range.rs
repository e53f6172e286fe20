//! The HTTP Range / If-Range / If-None-Match decision: any header values,
//! any length. Never a panic; a 206 is always inside the file.
#![no_main]

#[path = "../../tests/support/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::http_range(data));
