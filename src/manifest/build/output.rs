//! Where `create` may write its manifest.

use std::fs;
use std::path::{Path, PathBuf};

use crate::manifest::{Manifest, ManifestError};

/// Refuses an output path that would destroy something: one of the input
/// files, a directory, or any existing file that is not a manifest (a typo
/// like `-o song.flac`). An existing manifest may be replaced.
pub fn check_output(out: &Path, inputs: &[PathBuf]) -> Result<(), ManifestError> {
    use std::os::unix::fs::MetadataExt;
    let refuse = |reason: &str| {
        Err(ManifestError::BadInput(format!(
            "{}: {reason}; choose another output path, or remove it first",
            out.display()
        )))
    };
    let Ok(meta) = fs::metadata(out) else {
        return Ok(()); // nothing there yet
    };
    if meta.is_dir() {
        return refuse("is a directory");
    }
    let same = |input: &PathBuf| {
        fs::metadata(input).is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
    };
    if inputs.iter().any(same) {
        return refuse("is one of the files to share; writing the manifest there would destroy it");
    }
    if Manifest::load(out).is_err() {
        return refuse("exists and is not a manifest");
    }
    Ok(())
}
