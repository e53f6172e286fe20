//! Text fields of a manifest: names, paths and tags as libtorrent reads them.

use super::invalid;
use crate::manifest::{ManifestError, MAX_STRING_BYTES};

pub(super) fn utf8(bytes: &[u8], field: &str) -> Result<String, ManifestError> {
    check_len(bytes, field)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| invalid(field, "not valid UTF-8"))
}

/// A name, path component or tag: [`lossy_utf8`] of at most
/// [`MAX_STRING_BYTES`] bytes.
pub(super) fn text(bytes: &[u8], field: &str) -> Result<String, ManifestError> {
    check_len(bytes, field)?;
    Ok(lossy_utf8(bytes))
}

pub(super) fn check_len(bytes: &[u8], field: &str) -> Result<(), ManifestError> {
    if bytes.len() > MAX_STRING_BYTES {
        return Err(invalid(
            field,
            format!("longer than {MAX_STRING_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// `bytes` as UTF-8, each invalid sequence replaced by one `_` exactly as
/// libtorrent does it: a sequence is as long as its lead byte says (a stray
/// continuation byte is one), and a sequence cut short takes the rest of the
/// string. The result is checked as a path afterwards like any other name.
pub(super) fn lossy_utf8(bytes: &[u8]) -> String {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return text.to_string();
    }
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(&lead) = rest.first() {
        let len = match lead {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            0xf8..=0xfb => 5,
            // A continuation byte without a lead, or no lead at all.
            _ => 1,
        };
        let take = len.min(rest.len());
        match std::str::from_utf8(&rest[..take]) {
            Ok(valid) if take == len => out.push_str(valid),
            _ => out.push('_'),
        }
        rest = &rest[take..];
    }
    out
}
