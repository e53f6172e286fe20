//! What the paced-library tests share: small songs of their own bytes, and
//! a seeding process's ring options with a tight budget and no lookups.
//! Included with `#[path]`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use songswarm::app::ring::RingOptions;
use songswarm::config::{AnnounceConfig, ChordConfig};
use songswarm::manifest::{build, BuildOptions, Manifest};

/// Song `i`: a few KB of bytes of its own in `{stem}{i:03}.flac` under
/// `dir`, and its manifest (titled by its file name).
pub fn make_song(dir: &Path, stem: &str, i: usize) -> Manifest {
    let data: Vec<u8> = (0..4_000 + i as u32)
        .map(|b| (b.wrapping_add(i as u32 * 7919).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let path = dir.join(format!("{stem}{i:03}.flac"));
    std::fs::write(&path, &data).unwrap();
    build(&[path], &BuildOptions::default()).unwrap()
}

/// Ring options joining through `bootstrap` with `rate` ring operations a
/// second, and no lookups: the budget goes to announces, publishing and
/// removals.
pub fn paced_options(bootstrap: SocketAddr, config: &ChordConfig, rate: u32) -> RingOptions {
    RingOptions {
        bootstrap: vec![bootstrap],
        no_discovery: true,
        chord: config.clone(),
        announce: AnnounceConfig {
            requery_seeding: Duration::from_secs(3600),
            retry: Duration::from_millis(200),
            max_ops_per_second: rate,
            ..AnnounceConfig::default()
        },
        ..RingOptions::default()
    }
}
