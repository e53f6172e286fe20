//! The Chord ring that replaces the tracker (DESIGN.md §4).
//!
//! `node`, `records` and `quorum` are pure: no tokio, no clock, no global
//! randomness. `driver` is the async shell that moves their inputs and outputs.

pub mod driver;
pub mod node;
pub mod quorum;
pub mod records;
