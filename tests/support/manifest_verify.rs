//! Checks every piece hash of a manifest against files on disk.

#![allow(dead_code)]

use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha1::{Digest, Sha1};
use songswarm::manifest::Manifest;

/// Reads the torrent's byte stream from `root/<file.path>` (pad files are
/// zeros and need not exist) and compares each piece with its hash.
/// Returns the number of pieces checked.
pub fn verify_pieces(manifest: &Manifest, root: &Path) -> Result<u32, String> {
    let pads = manifest.pad_files();
    let mut stream: Box<dyn Read> = Box::new(std::io::empty());
    for (file, pad) in manifest.files.iter().zip(pads) {
        let part: Box<dyn Read> = if pad {
            Box::new(std::io::repeat(0).take(file.length))
        } else {
            let path = root.join(&file.path);
            let f = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let len = f.metadata().map_err(|e| e.to_string())?.len();
            if len != file.length {
                return Err(format!(
                    "{}: {len} bytes on disk, {} in the manifest",
                    path.display(),
                    file.length
                ));
            }
            Box::new(f)
        };
        stream = Box::new(stream.chain(part));
    }
    let mut buf = vec![0u8; manifest.piece_length as usize];
    for index in 0..manifest.piece_count() {
        let len = manifest.piece_len(index) as usize;
        stream
            .read_exact(&mut buf[..len])
            .map_err(|e| format!("piece {index}: {e}"))?;
        let digest: [u8; 20] = Sha1::digest(&buf[..len]).into();
        if digest != manifest.pieces[index as usize] {
            return Err(format!("piece {index} does not match its hash"));
        }
    }
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} bytes beyond the last piece", rest.len()));
    }
    Ok(manifest.piece_count())
}
