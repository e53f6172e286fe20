//! Inputs the fuzzers found (crashes, hangs) replayed through the fuzz
//! targets' own checks (tests/support/fuzz_checks.rs) on the stable
//! toolchain, plus a short pass of seeded random inputs per target so the
//! checks themselves stay exercised by `cargo test`.
//!
//! A new finding: copy `fuzz/artifacts/TARGET/crash-…` to
//! `tests/fuzz_inputs/TARGET/` and fix the bug; the test below fails until
//! then.

#[path = "support/fuzz_checks.rs"]
mod fuzz_checks;

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Check = fn(&[u8]);

const TARGETS: &[(&str, Check)] = &[
    ("manifest", fuzz_checks::manifest),
    ("peer_wire", fuzz_checks::peer_wire),
    ("chord_codec", fuzz_checks::chord_codec),
    ("metadata", fuzz_checks::metadata),
    ("http_range", fuzz_checks::http_range),
];

#[test]
fn every_saved_finding_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_inputs");
    for (name, check) in TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(name)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let result = std::panic::catch_unwind(|| check(&data));
            assert!(result.is_ok(), "{name}: {} fails again", path.display());
        }
    }
}

#[test]
fn seeded_random_inputs_pass_every_target() {
    let mut rng = StdRng::seed_from_u64(6);
    for (name, check) in TARGETS {
        for i in 0..2_000 {
            let len = rng.gen_range(0..600);
            let mut data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            // Some inputs start like the real thing, to get past the first check.
            if i % 2 == 0 {
                let prefix: &[u8] = match *name {
                    "manifest" => b"d4:infod6:lengthi5e4:name1:a12:piece lengthi16384e6:pieces20:",
                    "http_range" => b"\x00\x10\x00\x00\x00\x00\x00\x00bytes=",
                    _ => b"",
                };
                data.splice(0..0, prefix.iter().copied());
            }
            let result = std::panic::catch_unwind(|| check(&data));
            assert!(result.is_ok(), "{name}: input {data:?}");
        }
    }
}
