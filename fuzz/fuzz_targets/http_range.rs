//! The HTTP Range / If-Range / If-None-Match decision: any header values,
//! any length. Never a panic; a 206 is always inside the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use songswarm::http::range::{answer, Answer, Conditions};

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let len = u64::from_le_bytes(data[..8].try_into().unwrap()) >> (data[0] % 64);
    let text = String::from_utf8_lossy(&data[8..]);
    let mut parts = text.splitn(3, '\n');
    let cond = Conditions {
        range: parts.next(),
        if_range: parts.next(),
        if_none_match: parts.next(),
    };
    match answer(&cond, len, "\"etag\"") {
        Answer::Partial { start, end } => assert!(start < end && end <= len, "{start}..{end} of {len}"),
        Answer::Full | Answer::NotModified | Answer::Unsatisfiable => {}
    }
});
